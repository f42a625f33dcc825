// Package github emulates the parts of the GitHub REST API that Valetkey's
// declarative execute engine and sync jobs call: the authenticated user's
// repositories, a repository, its issues (list, get, create, update) and its
// pull requests (list, get). It runs on an httptest server, keeps its data in
// memory, and adds the knobs a test needs (request counter, forced failures,
// the tokens it was shown).
//
// # Sources checked
//
// Stored copies, looked up while writing this package:
//
//   - https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api
//     (github/docs content/rest/using-the-rest-api/using-pagination-in-the-rest-api.md):
//     link header format and order (prev, next, last, first), per_page
//     carried into the links, "link" omitted when everything fits one page,
//     repository-scoped lists linking to /repositories/{id}/…
//   - https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
//     (…/rate-limits-for-the-rest-api.md): x-ratelimit-limit, -remaining,
//     -used, -reset (UTC epoch seconds), -resource; 403 or 429 with
//     x-ratelimit-remaining 0 for the primary limit; retry-after on a
//     secondary limit
//   - https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api
//     (…/troubleshooting-the-rest-api.md): "Problems parsing JSON" and "Body
//     should be a JSON object" (400), "Invalid request" (422), "Validation
//     Failed" (422) with errors[].code missing, missing_field, invalid,
//     already_exists, unprocessable, custom
//   - github/rest-api-description (descriptions/api.github.com): the
//     basic-error schema {message, documentation_url, url, status (string)}
//     and validation-error {message, documentation_url, errors[{resource,
//     field, message, code, index, value}]} (also seen through the generated
//     clients nickfloyd/curly-chainsaw BasicError.md and openapi-github's
//     ValidationErrorErrorsInner.md)
//   - real bodies quoted in public code and issues: {"message":"Bad
//     credentials","documentation_url":"https://docs.github.com/rest",
//     "status":"401"}; "API rate limit exceeded for user ID 1." and "You have
//     exceeded a secondary rate limit. Please wait a few minutes before you
//     try again." (KnpLabs/php-github-api#1070); Link headers such as
//     <https://api.github.com/repositories/8514/issues?page=2>; rel="next"
//     (gist jdennes/7212211)
//
// # Routes
//
//	GET   /user                                      the authenticated user (login ViewerLogin)
//	GET   /user/repos                                visibility, affiliation, type, sort, direction, per_page, page
//	GET   /repos/{owner}/{repo}
//	GET   /repos/{owner}/{repo}/issues               state, labels, creator, since, sort, direction, per_page, page
//	POST  /repos/{owner}/{repo}/issues               {title, body?, labels?, assignees?, assignee?} → 201 + Location
//	GET   /repos/{owner}/{repo}/issues/{number}
//	PATCH /repos/{owner}/{repo}/issues/{number}      {title?, body?, state?, state_reason?, labels?, assignees?}
//	GET   /repos/{owner}/{repo}/pulls                state, head, base, sort, direction, per_page, page
//	GET   /repos/{owner}/{repo}/pulls/{number}
//
// Every /repos/{owner}/{repo}/… route is also served at
// /repositories/{id}/…, the form GitHub uses in the link headers of
// repository-scoped lists. Owner and repository names match
// case-insensitively. Anything else, including a known path with another
// method or a trailing slash, answers 404 Not Found.
//
// As on GitHub, every pull request is also an issue: issues and pull requests
// of a repository share one number sequence, GET …/issues lists pull requests
// too (each carrying a "pull_request" object), GET …/issues/{n} answers for a
// pull request's number, and GET …/pulls/{n} answers 404 for a plain issue.
// A repository's open_issues_count counts open issues and open pull requests.
//
// # Paging
//
// per_page defaults to 30 and is capped at 100; page starts at 1. When a list
// spans several pages the response has a link header such as
//
//	link: <URL/repositories/1000001/issues?per_page=2&page=3>; rel="prev", <URL/repositories/1000001/issues?per_page=2&page=5>; rel="next", <URL/repositories/1000001/issues?per_page=2&page=7>; rel="last", <URL/repositories/1000001/issues?per_page=2&page=1>; rel="first"
//
// (URL being the emulator's): prev and first from page 2 on, next and last
// until the last page; no link header when everything fits one page. The
// link URLs keep the request's other query parameters in their order and put
// page last. /user/repos links stay on /user/repos.
//
// Default orders: /user/repos by full_name ascending; issues and pulls by
// created descending (newest first).
//
// # Errors
//
// Every error body is {"message":…,["errors":[…],]"documentation_url":…,
// "status":"<code>"}.
//
//   - 401: no Authorization header → "Requires authentication"; a scheme
//     other than Bearer, an empty token or valid(token) false → "Bad
//     credentials" with documentation_url https://docs.github.com/rest. (Real
//     GitHub also accepts "token <t>" and serves public data without
//     credentials; the emulator insists on Bearer so tests see what Valetkey
//     sends.)
//   - 404: {"message":"Not Found","documentation_url":"https://docs.github.com/rest/…#…","status":"404"}
//     with the endpoint's documentation URL.
//   - 400: "Problems parsing JSON", "Body should be a JSON object".
//   - 422: "Validation Failed" with errors [{"resource":"Issue","code":"missing_field","field":"title"}]
//     for a missing or empty title; "Invalid request.\n\nFor
//     'properties/<name>', <value> is not a …" for a wrong JSON type.
//   - 403 or 429 (from [Emulator.FailNext]): x-ratelimit-remaining 0,
//     x-ratelimit-used 5000, x-ratelimit-reset (now plus retry-after, or 60
//     seconds), retry-after when given. Without retry-after the body is the
//     primary-limit one ("API rate limit exceeded for user ID 1. …",
//     documentation_url …/rate-limits-for-the-rest-api); with it, the
//     secondary-limit one ("You have exceeded a secondary rate limit. …",
//     documentation_url …#about-secondary-rate-limits).
//
// Every response carries content-type application/json; charset=utf-8,
// x-github-api-version-selected, x-github-request-id and x-ratelimit-limit
// (5000), -remaining, -used, -reset, -resource ("core").
//
// The emulator is safe for concurrent use.
package github

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/testkit/emulate"
)

// ViewerLogin is the login of the authenticated user, whatever token is
// used. Issues created through the API are authored by this user.
const ViewerLogin = "octocat"

const (
	defaultPerPage = 30
	maxPerPage     = 100
	rateLimit      = 5000
	apiVersion     = "2022-11-28"
	timeLayout     = "2006-01-02T15:04:05Z"

	docsRoot       = "https://docs.github.com/rest"
	docGetUser     = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
	docUserRepos   = "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user"
	docGetRepo     = "https://docs.github.com/rest/repos/repos#get-a-repository"
	docListIssues  = "https://docs.github.com/rest/issues/issues#list-repository-issues"
	docGetIssue    = "https://docs.github.com/rest/issues/issues#get-an-issue"
	docCreateIssue = "https://docs.github.com/rest/issues/issues#create-an-issue"
	docUpdateIssue = "https://docs.github.com/rest/issues/issues#update-an-issue"
	docListPulls   = "https://docs.github.com/rest/pulls/pulls#list-pull-requests"
	docGetPull     = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
	docPrimaryRate = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	docSecondRate  = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)

// seedBase anchors the deterministic timestamps of seeded data.
var seedBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Emulator is an in-memory GitHub REST API on an httptest server.
type Emulator struct {
	// URL is the base URL of the emulator, e.g. "http://127.0.0.1:43567";
	// use it where a client would use https://api.github.com.
	URL string

	tb    testing.TB
	valid func(token string) bool
	srv   *httptest.Server
	// Gate counts requests, records presented tokens and injects failures
	// (Requests, FailNext, LastAuthorization, SeenTokens).
	emulate.Gate

	mu        sync.Mutex
	rateUsed  int
	rateReset time.Time

	users     map[string]*user // by lower-case login
	userSeq   int64
	repos     map[string]*repo // by lower-case "owner/name"
	reposByID map[int64]*repo
	repoSeq   int64
	issueSeq  int64
	pullSeq   int64
	labelSeq  int64
}

type user struct {
	login string
	id    int64
}

type repo struct {
	id      int64
	owner   *user
	name    string
	private bool
	created time.Time
	updated time.Time
	pushed  time.Time
	items   map[int]*item
	next    int // next issue/pull number
	labels  map[string]*label
}

type label struct {
	id    int64
	name  string
	color string
}

type item struct {
	number      int
	issueID     int64
	pullID      int64 // 0 for a plain issue
	title       string
	body        *string
	state       string
	stateReason *string
	user        *user
	labels      []*label
	assignees   []*user
	created     time.Time
	updated     time.Time
	closed      *time.Time
	// pull requests only
	headRef, baseRef, headSHA, baseSHA string
	draft                              bool
}

// New starts an emulator whose server is closed by t.Cleanup. A request is
// authorised only when it carries "Authorization: Bearer <token>" and
// valid(token) is true (a nil valid accepts every non-empty token); any other
// request answers GitHub's 401 body.
func New(t testing.TB, valid func(token string) bool) *Emulator {
	t.Helper()
	e := &Emulator{
		tb:        t,
		valid:     valid,
		users:     map[string]*user{},
		repos:     map[string]*repo{},
		reposByID: map[int64]*repo{},
		repoSeq:   1000000,
		issueSeq:  2000000,
		pullSeq:   3000000,
		labelSeq:  4000000,
	}
	e.userFor(ViewerLogin)
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	e.URL = e.srv.URL
	t.Cleanup(e.srv.Close)
	return e
}

// AddRepo creates owner/name (or, if it exists, sets its visibility).
// Repository ids are assigned in sequence from 1000001; the authenticated
// user can read every repository.
func (e *Emulator) AddRepo(owner, name string, private bool) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.repos[strings.ToLower(owner+"/"+name)]; r != nil {
		r.private = private
		return
	}
	e.repoSeq++
	at := seedBase.Add(time.Duration(e.repoSeq-1000000) * time.Hour)
	r := &repo{
		id: e.repoSeq, owner: e.userFor(owner), name: name, private: private,
		created: at, updated: at, pushed: at,
		items: map[int]*item{}, next: 1, labels: map[string]*label{},
	}
	e.repos[strings.ToLower(owner+"/"+name)] = r
	e.reposByID[r.id] = r
}

// SeedIssues adds n open issues to owner/repo, numbered on from the
// repository's sequence. Issue k (its number) is titled "Issue k", has body
// "Body of issue k", is authored by the repository owner and was created
// (and updated) at 2024-01-01T00:00:00Z plus k hours.
func (e *Emulator) SeedIssues(owner, repo string, n int) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.mustRepo(owner, repo)
	for i := 0; i < n; i++ {
		it := e.newItem(r, r.owner, seedBase.Add(time.Duration(r.next)*time.Hour))
		it.title = fmt.Sprintf("Issue %d", it.number)
		body := fmt.Sprintf("Body of issue %d", it.number)
		it.body = &body
	}
}

// SeedPulls adds n open pull requests to owner/repo, numbered on from the
// repository's (shared issue/pull) sequence. Pull request k is titled "Pull
// request k", merges head branch "feature-k" into "main", is authored by the
// repository owner and was created at 2024-01-01T00:00:00Z plus k hours.
func (e *Emulator) SeedPulls(owner, repo string, n int) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.mustRepo(owner, repo)
	for i := 0; i < n; i++ {
		it := e.newItem(r, r.owner, seedBase.Add(time.Duration(r.next)*time.Hour))
		e.pullSeq++
		it.pullID = e.pullSeq
		it.title = fmt.Sprintf("Pull request %d", it.number)
		body := fmt.Sprintf("Body of pull request %d", it.number)
		it.body = &body
		it.headRef = fmt.Sprintf("feature-%d", it.number)
		it.baseRef = "main"
		it.headSHA = fakeSHA(fmt.Sprintf("%s#%d:head", r.fullName(), it.number))
		it.baseSHA = fakeSHA(r.fullName() + ":main")
	}
}

// CloseIssue closes issue or pull request number of owner/repo (state
// "closed", state_reason "completed" for an issue, closed_at set). A missing
// number fails the test.
func (e *Emulator) CloseIssue(owner, repo string, number int) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.mustRepo(owner, repo)
	it := r.items[number]
	if it == nil {
		e.tb.Fatalf("github emulator: %s has no issue #%d", r.fullName(), number)
		return
	}
	setState(it, "closed", "")
}

// IssueCount reports how many plain issues (not pull requests, any state)
// owner/repo has; 0 for an unknown repository.
func (e *Emulator) IssueCount(owner, repo string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[strings.ToLower(owner+"/"+repo)]
	if r == nil {
		return 0
	}
	n := 0
	for _, it := range r.items {
		if it.pullID == 0 {
			n++
		}
	}
	return n
}

// The helpers below expect e.mu held.

func (e *Emulator) userFor(login string) *user {
	if u := e.users[strings.ToLower(login)]; u != nil {
		return u
	}
	e.userSeq++
	u := &user{login: login, id: e.userSeq}
	e.users[strings.ToLower(login)] = u
	return u
}

func (e *Emulator) mustRepo(owner, name string) *repo {
	r := e.repos[strings.ToLower(owner+"/"+name)]
	if r == nil {
		e.tb.Fatalf("github emulator: no repository %s/%s (call AddRepo first)", owner, name)
	}
	return r
}

func (e *Emulator) newItem(r *repo, author *user, at time.Time) *item {
	e.issueSeq++
	it := &item{number: r.next, issueID: e.issueSeq, state: "open", user: author, created: at, updated: at}
	r.items[it.number] = it
	r.next++
	return it
}

func (r *repo) fullName() string { return r.owner.login + "/" + r.name }

func setState(it *item, state, reason string) {
	if state == it.state {
		if reason != "" && state == "closed" {
			it.stateReason = &reason
		}
		return
	}
	t := time.Now().UTC().Truncate(time.Second)
	if !t.After(it.created) {
		t = it.created.Add(time.Second)
	}
	it.state = state
	it.updated = t
	switch state {
	case "closed":
		it.closed = &t
		if it.pullID == 0 {
			if reason == "" {
				reason = "completed"
			}
			it.stateReason = &reason
		}
	case "open":
		it.closed = nil
		if it.pullID == 0 {
			reopened := "reopened"
			it.stateReason = &reopened
		}
	}
}

func fakeSHA(seed string) string {
	sum := sha1.Sum([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// nodeID builds a legacy global node id, e.g. "MDU6SXNzdWUx" for Issue 1.
func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("0%d:%s%d", len(kind), kind, id)))
}

func ts(t time.Time) string { return t.UTC().Format(timeLayout) }

func tsPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := ts(*t)
	return &s
}

// ---------------------------------------------------------------------------
// JSON shapes

type simpleUserJSON struct {
	Login             string `json:"login"`
	ID                int64  `json:"id"`
	NodeID            string `json:"node_id"`
	AvatarURL         string `json:"avatar_url"`
	GravatarID        string `json:"gravatar_id"`
	URL               string `json:"url"`
	HTMLURL           string `json:"html_url"`
	FollowersURL      string `json:"followers_url"`
	FollowingURL      string `json:"following_url"`
	GistsURL          string `json:"gists_url"`
	StarredURL        string `json:"starred_url"`
	SubscriptionsURL  string `json:"subscriptions_url"`
	OrganizationsURL  string `json:"organizations_url"`
	ReposURL          string `json:"repos_url"`
	EventsURL         string `json:"events_url"`
	ReceivedEventsURL string `json:"received_events_url"`
	Type              string `json:"type"`
	UserViewType      string `json:"user_view_type"`
	SiteAdmin         bool   `json:"site_admin"`
}

type privateUserJSON struct {
	simpleUserJSON
	Name        *string `json:"name"`
	Company     *string `json:"company"`
	Blog        string  `json:"blog"`
	Location    *string `json:"location"`
	Email       *string `json:"email"`
	Bio         *string `json:"bio"`
	PublicRepos int     `json:"public_repos"`
	Followers   int     `json:"followers"`
	Following   int     `json:"following"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

type permissionsJSON struct {
	Admin    bool `json:"admin"`
	Maintain bool `json:"maintain"`
	Push     bool `json:"push"`
	Triage   bool `json:"triage"`
	Pull     bool `json:"pull"`
}

type repoJSON struct {
	ID                       int64           `json:"id"`
	NodeID                   string          `json:"node_id"`
	Name                     string          `json:"name"`
	FullName                 string          `json:"full_name"`
	Private                  bool            `json:"private"`
	Owner                    simpleUserJSON  `json:"owner"`
	HTMLURL                  string          `json:"html_url"`
	Description              *string         `json:"description"`
	Fork                     bool            `json:"fork"`
	URL                      string          `json:"url"`
	IssuesURL                string          `json:"issues_url"`
	PullsURL                 string          `json:"pulls_url"`
	LabelsURL                string          `json:"labels_url"`
	CreatedAt                string          `json:"created_at"`
	UpdatedAt                string          `json:"updated_at"`
	PushedAt                 string          `json:"pushed_at"`
	GitURL                   string          `json:"git_url"`
	SSHURL                   string          `json:"ssh_url"`
	CloneURL                 string          `json:"clone_url"`
	Homepage                 *string         `json:"homepage"`
	Size                     int             `json:"size"`
	StargazersCount          int             `json:"stargazers_count"`
	WatchersCount            int             `json:"watchers_count"`
	Language                 *string         `json:"language"`
	HasIssues                bool            `json:"has_issues"`
	HasProjects              bool            `json:"has_projects"`
	HasDownloads             bool            `json:"has_downloads"`
	HasWiki                  bool            `json:"has_wiki"`
	HasPages                 bool            `json:"has_pages"`
	HasDiscussions           bool            `json:"has_discussions"`
	ForksCount               int             `json:"forks_count"`
	MirrorURL                *string         `json:"mirror_url"`
	Archived                 bool            `json:"archived"`
	Disabled                 bool            `json:"disabled"`
	OpenIssuesCount          int             `json:"open_issues_count"`
	License                  any             `json:"license"`
	AllowForking             bool            `json:"allow_forking"`
	IsTemplate               bool            `json:"is_template"`
	WebCommitSignoffRequired bool            `json:"web_commit_signoff_required"`
	Topics                   []string        `json:"topics"`
	Visibility               string          `json:"visibility"`
	Forks                    int             `json:"forks"`
	OpenIssues               int             `json:"open_issues"`
	Watchers                 int             `json:"watchers"`
	DefaultBranch            string          `json:"default_branch"`
	Permissions              permissionsJSON `json:"permissions"`
}

type labelJSON struct {
	ID          int64   `json:"id"`
	NodeID      string  `json:"node_id"`
	URL         string  `json:"url"`
	Name        string  `json:"name"`
	Color       string  `json:"color"`
	Default     bool    `json:"default"`
	Description *string `json:"description"`
}

type issuePullRefJSON struct {
	URL      string  `json:"url"`
	HTMLURL  string  `json:"html_url"`
	DiffURL  string  `json:"diff_url"`
	PatchURL string  `json:"patch_url"`
	MergedAt *string `json:"merged_at"`
}

type issueJSON struct {
	URL                   string            `json:"url"`
	RepositoryURL         string            `json:"repository_url"`
	LabelsURL             string            `json:"labels_url"`
	CommentsURL           string            `json:"comments_url"`
	EventsURL             string            `json:"events_url"`
	HTMLURL               string            `json:"html_url"`
	ID                    int64             `json:"id"`
	NodeID                string            `json:"node_id"`
	Number                int               `json:"number"`
	Title                 string            `json:"title"`
	User                  simpleUserJSON    `json:"user"`
	Labels                []labelJSON       `json:"labels"`
	State                 string            `json:"state"`
	Locked                bool              `json:"locked"`
	Assignee              *simpleUserJSON   `json:"assignee"`
	Assignees             []simpleUserJSON  `json:"assignees"`
	Milestone             any               `json:"milestone"`
	Comments              int               `json:"comments"`
	CreatedAt             string            `json:"created_at"`
	UpdatedAt             string            `json:"updated_at"`
	ClosedAt              *string           `json:"closed_at"`
	AuthorAssociation     string            `json:"author_association"`
	ActiveLockReason      *string           `json:"active_lock_reason"`
	Draft                 *bool             `json:"draft,omitempty"`
	PullRequest           *issuePullRefJSON `json:"pull_request,omitempty"`
	Body                  *string           `json:"body"`
	TimelineURL           string            `json:"timeline_url"`
	PerformedViaGitHubApp any               `json:"performed_via_github_app"`
	StateReason           *string           `json:"state_reason"`
}

type branchJSON struct {
	Label string         `json:"label"`
	Ref   string         `json:"ref"`
	SHA   string         `json:"sha"`
	User  simpleUserJSON `json:"user"`
	Repo  repoJSON       `json:"repo"`
}

type hrefJSON struct {
	Href string `json:"href"`
}

type pullLinksJSON struct {
	Self           hrefJSON `json:"self"`
	HTML           hrefJSON `json:"html"`
	Issue          hrefJSON `json:"issue"`
	Comments       hrefJSON `json:"comments"`
	ReviewComments hrefJSON `json:"review_comments"`
	ReviewComment  hrefJSON `json:"review_comment"`
	Commits        hrefJSON `json:"commits"`
	Statuses       hrefJSON `json:"statuses"`
}

type pullJSON struct {
	URL                string           `json:"url"`
	ID                 int64            `json:"id"`
	NodeID             string           `json:"node_id"`
	HTMLURL            string           `json:"html_url"`
	DiffURL            string           `json:"diff_url"`
	PatchURL           string           `json:"patch_url"`
	IssueURL           string           `json:"issue_url"`
	CommitsURL         string           `json:"commits_url"`
	ReviewCommentsURL  string           `json:"review_comments_url"`
	ReviewCommentURL   string           `json:"review_comment_url"`
	CommentsURL        string           `json:"comments_url"`
	StatusesURL        string           `json:"statuses_url"`
	Number             int              `json:"number"`
	State              string           `json:"state"`
	Locked             bool             `json:"locked"`
	Title              string           `json:"title"`
	User               simpleUserJSON   `json:"user"`
	Body               *string          `json:"body"`
	Labels             []labelJSON      `json:"labels"`
	Milestone          any              `json:"milestone"`
	ActiveLockReason   *string          `json:"active_lock_reason"`
	CreatedAt          string           `json:"created_at"`
	UpdatedAt          string           `json:"updated_at"`
	ClosedAt           *string          `json:"closed_at"`
	MergedAt           *string          `json:"merged_at"`
	MergeCommitSHA     *string          `json:"merge_commit_sha"`
	Assignee           *simpleUserJSON  `json:"assignee"`
	Assignees          []simpleUserJSON `json:"assignees"`
	RequestedReviewers []simpleUserJSON `json:"requested_reviewers"`
	RequestedTeams     []any            `json:"requested_teams"`
	Head               branchJSON       `json:"head"`
	Base               branchJSON       `json:"base"`
	Links              pullLinksJSON    `json:"_links"`
	AuthorAssociation  string           `json:"author_association"`
	AutoMerge          any              `json:"auto_merge"`
	Draft              bool             `json:"draft"`
}

type pullDetailJSON struct {
	pullJSON
	Merged              bool            `json:"merged"`
	Mergeable           *bool           `json:"mergeable"`
	Rebaseable          *bool           `json:"rebaseable"`
	MergeableState      string          `json:"mergeable_state"`
	MergedBy            *simpleUserJSON `json:"merged_by"`
	Comments            int             `json:"comments"`
	ReviewComments      int             `json:"review_comments"`
	MaintainerCanModify bool            `json:"maintainer_can_modify"`
	Commits             int             `json:"commits"`
	Additions           int             `json:"additions"`
	Deletions           int             `json:"deletions"`
	ChangedFiles        int             `json:"changed_files"`
}

type validationErrorJSON struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
	Value    any    `json:"value,omitempty"`
}

type errorJSON struct {
	Message          string                `json:"message"`
	Errors           []validationErrorJSON `json:"errors,omitempty"`
	DocumentationURL string                `json:"documentation_url"`
	Status           string                `json:"status"`
}

// The renderers below expect e.mu held.

func (e *Emulator) userJSON(u *user) simpleUserJSON {
	api := e.URL + "/users/" + u.login
	return simpleUserJSON{
		Login: u.login, ID: u.id, NodeID: nodeID("User", u.id),
		AvatarURL:         fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.id),
		URL:               api,
		HTMLURL:           "https://github.com/" + u.login,
		FollowersURL:      api + "/followers",
		FollowingURL:      api + "/following{/other_user}",
		GistsURL:          api + "/gists{/gist_id}",
		StarredURL:        api + "/starred{/owner}{/repo}",
		SubscriptionsURL:  api + "/subscriptions",
		OrganizationsURL:  api + "/orgs",
		ReposURL:          api + "/repos",
		EventsURL:         api + "/events{/privacy}",
		ReceivedEventsURL: api + "/received_events",
		Type:              "User",
		UserViewType:      "public",
	}
}

func (e *Emulator) userPtr(u *user) *simpleUserJSON {
	j := e.userJSON(u)
	return &j
}

func (e *Emulator) repoJSON(r *repo) repoJSON {
	api := e.URL + "/repos/" + r.fullName()
	open := 0
	for _, it := range r.items {
		if it.state == "open" {
			open++
		}
	}
	visibility := "public"
	if r.private {
		visibility = "private"
	}
	owned := strings.EqualFold(r.owner.login, ViewerLogin)
	return repoJSON{
		ID: r.id, NodeID: nodeID("Repository", r.id), Name: r.name, FullName: r.fullName(), Private: r.private,
		Owner: e.userJSON(r.owner), HTMLURL: "https://github.com/" + r.fullName(), URL: api,
		IssuesURL: api + "/issues{/number}", PullsURL: api + "/pulls{/number}", LabelsURL: api + "/labels{/name}",
		CreatedAt: ts(r.created), UpdatedAt: ts(r.updated), PushedAt: ts(r.pushed),
		GitURL: "git://github.com/" + r.fullName() + ".git", SSHURL: "git@github.com:" + r.fullName() + ".git",
		CloneURL:  "https://github.com/" + r.fullName() + ".git",
		HasIssues: true, HasProjects: true, HasDownloads: true, HasWiki: true,
		OpenIssuesCount: open, OpenIssues: open, AllowForking: true, Topics: []string{},
		Visibility: visibility, DefaultBranch: "main",
		Permissions: permissionsJSON{Admin: owned, Maintain: owned, Push: true, Triage: true, Pull: true},
	}
}

func (e *Emulator) labelJSON(r *repo, l *label) labelJSON {
	return labelJSON{ID: l.id, NodeID: nodeID("Label", l.id), URL: e.URL + "/repos/" + r.fullName() + "/labels/" + url.PathEscape(l.name), Name: l.name, Color: l.color}
}

func (e *Emulator) labelsJSON(r *repo, ls []*label) []labelJSON {
	out := []labelJSON{}
	for _, l := range ls {
		out = append(out, e.labelJSON(r, l))
	}
	return out
}

func (e *Emulator) assigneesJSON(it *item) (*simpleUserJSON, []simpleUserJSON) {
	out := []simpleUserJSON{}
	for _, u := range it.assignees {
		out = append(out, e.userJSON(u))
	}
	if len(out) == 0 {
		return nil, out
	}
	return &out[0], out
}

func association(r *repo, u *user) string {
	if u == r.owner {
		return "OWNER"
	}
	return "CONTRIBUTOR"
}

func (e *Emulator) issueJSON(r *repo, it *item) issueJSON {
	api := fmt.Sprintf("%s/repos/%s/issues/%d", e.URL, r.fullName(), it.number)
	html := fmt.Sprintf("https://github.com/%s/issues/%d", r.fullName(), it.number)
	assignee, assignees := e.assigneesJSON(it)
	j := issueJSON{
		URL: api, RepositoryURL: e.URL + "/repos/" + r.fullName(),
		LabelsURL: api + "/labels{/name}", CommentsURL: api + "/comments", EventsURL: api + "/events",
		HTMLURL: html, ID: it.issueID, NodeID: nodeID("Issue", it.issueID), Number: it.number, Title: it.title,
		User: e.userJSON(it.user), Labels: e.labelsJSON(r, it.labels), State: it.state,
		Assignee: assignee, Assignees: assignees,
		CreatedAt: ts(it.created), UpdatedAt: ts(it.updated), ClosedAt: tsPtr(it.closed),
		AuthorAssociation: association(r, it.user), Body: it.body, TimelineURL: api + "/timeline",
		StateReason: it.stateReason,
	}
	if it.pullID != 0 {
		pull := fmt.Sprintf("%s/repos/%s/pulls/%d", e.URL, r.fullName(), it.number)
		phtml := fmt.Sprintf("https://github.com/%s/pull/%d", r.fullName(), it.number)
		j.HTMLURL = phtml
		draft := it.draft
		j.Draft = &draft
		j.PullRequest = &issuePullRefJSON{URL: pull, HTMLURL: phtml, DiffURL: phtml + ".diff", PatchURL: phtml + ".patch"}
	}
	return j
}

func (e *Emulator) pullJSON(r *repo, it *item) pullJSON {
	api := fmt.Sprintf("%s/repos/%s/pulls/%d", e.URL, r.fullName(), it.number)
	issue := fmt.Sprintf("%s/repos/%s/issues/%d", e.URL, r.fullName(), it.number)
	html := fmt.Sprintf("https://github.com/%s/pull/%d", r.fullName(), it.number)
	statuses := e.URL + "/repos/" + r.fullName() + "/statuses/" + it.headSHA
	assignee, assignees := e.assigneesJSON(it)
	rj := e.repoJSON(r)
	return pullJSON{
		URL: api, ID: it.pullID, NodeID: nodeID("PullRequest", it.pullID), HTMLURL: html,
		DiffURL: html + ".diff", PatchURL: html + ".patch", IssueURL: issue,
		CommitsURL: api + "/commits", ReviewCommentsURL: api + "/comments",
		ReviewCommentURL: e.URL + "/repos/" + r.fullName() + "/pulls/comments{/number}",
		CommentsURL:      issue + "/comments", StatusesURL: statuses,
		Number: it.number, State: it.state, Title: it.title, User: e.userJSON(it.user), Body: it.body,
		Labels: e.labelsJSON(r, it.labels), CreatedAt: ts(it.created), UpdatedAt: ts(it.updated),
		ClosedAt: tsPtr(it.closed), Assignee: assignee, Assignees: assignees,
		RequestedReviewers: []simpleUserJSON{}, RequestedTeams: []any{},
		Head: branchJSON{Label: r.owner.login + ":" + it.headRef, Ref: it.headRef, SHA: it.headSHA, User: e.userJSON(r.owner), Repo: rj},
		Base: branchJSON{Label: r.owner.login + ":" + it.baseRef, Ref: it.baseRef, SHA: it.baseSHA, User: e.userJSON(r.owner), Repo: rj},
		Links: pullLinksJSON{
			Self: hrefJSON{api}, HTML: hrefJSON{html}, Issue: hrefJSON{issue}, Comments: hrefJSON{issue + "/comments"},
			ReviewComments: hrefJSON{api + "/comments"}, ReviewComment: hrefJSON{e.URL + "/repos/" + r.fullName() + "/pulls/comments{/number}"},
			Commits: hrefJSON{api + "/commits"}, Statuses: hrefJSON{statuses},
		},
		AuthorAssociation: association(r, it.user), Draft: it.draft,
	}
}

// ---------------------------------------------------------------------------
// HTTP

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	scheme, token, failStatus, failRetryAfter := e.Admit(r)

	e.mu.Lock()
	t := time.Now()
	if e.rateReset.IsZero() || !t.Before(e.rateReset) {
		e.rateUsed, e.rateReset = 0, t.Add(time.Hour).Truncate(time.Second)
	}
	if failStatus == 0 {
		e.rateUsed = min(e.rateUsed+1, rateLimit)
	}
	used, reset := e.rateUsed, e.rateReset
	e.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	version := r.Header.Get("X-GitHub-Api-Version")
	if version != "2022-11-28" && version != "2026-03-10" {
		version = apiVersion
	}
	h.Set("X-GitHub-Api-Version-Selected", version)
	h.Set("X-GitHub-Request-Id", requestID())
	h.Set("X-RateLimit-Limit", strconv.Itoa(rateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rateLimit-used))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")

	if failStatus != 0 {
		writeForcedFailure(w, failStatus, failRetryAfter)
		return
	}
	if scheme == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication", docFor(r), nil)
		return
	}
	if !strings.EqualFold(scheme, "Bearer") || token == "" || (e.valid != nil && !e.valid(token)) {
		writeError(w, http.StatusUnauthorized, "Bad credentials", docsRoot, nil)
		return
	}
	e.route(w, r)
}

func requestID() string {
	var b [14]byte
	_, _ = rand.Read(b[:])
	x := strings.ToUpper(hex.EncodeToString(b[:]))
	return x[0:4] + ":" + x[4:8] + ":" + x[8:14] + ":" + x[14:20] + ":" + x[20:28]
}

// docFor picks the documentation URL of the endpoint a path names.
func docFor(r *http.Request) string {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(segs) > 0 && segs[0] == "repositories" && len(segs) >= 2 {
		segs = append([]string{"repos", "", ""}, segs[2:]...)
	}
	switch {
	case len(segs) == 1 && segs[0] == "user":
		return docGetUser
	case len(segs) == 2 && segs[0] == "user" && segs[1] == "repos":
		return docUserRepos
	case len(segs) == 3 && segs[0] == "repos":
		return docGetRepo
	case len(segs) == 4 && segs[0] == "repos" && segs[3] == "issues":
		if r.Method == http.MethodPost {
			return docCreateIssue
		}
		return docListIssues
	case len(segs) == 5 && segs[0] == "repos" && segs[3] == "issues":
		if r.Method == http.MethodPatch {
			return docUpdateIssue
		}
		return docGetIssue
	case len(segs) == 4 && segs[0] == "repos" && segs[3] == "pulls":
		return docListPulls
	case len(segs) == 5 && segs[0] == "repos" && segs[3] == "pulls":
		return docGetPull
	}
	return docsRoot
}

func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	get, post, patch := r.Method == http.MethodGet, r.Method == http.MethodPost, r.Method == http.MethodPatch
	notFound := func() { writeError(w, http.StatusNotFound, "Not Found", docFor(r), nil) }

	switch {
	case len(segs) == 1 && segs[0] == "user" && get:
		e.getViewer(w)
		return
	case len(segs) == 2 && segs[0] == "user" && segs[1] == "repos" && get:
		e.listUserRepos(w, r)
		return
	}

	// /repos/{owner}/{repo}/… or /repositories/{id}/…
	var rp *repo
	var rest []string
	e.mu.Lock()
	switch {
	case len(segs) >= 3 && segs[0] == "repos":
		rp = e.repos[strings.ToLower(segs[1]+"/"+segs[2])]
		rest = segs[3:]
	case len(segs) >= 2 && segs[0] == "repositories":
		if id, err := strconv.ParseInt(segs[1], 10, 64); err == nil {
			rp = e.reposByID[id]
		}
		rest = segs[2:]
	}
	e.mu.Unlock()
	if rp == nil {
		notFound()
		return
	}

	switch {
	case len(rest) == 0 && get:
		e.mu.Lock()
		body := e.repoJSON(rp)
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, body)
	case len(rest) == 1 && rest[0] == "issues" && get:
		e.listIssues(w, r, rp)
	case len(rest) == 1 && rest[0] == "issues" && post:
		e.createIssue(w, r, rp)
	case len(rest) == 2 && rest[0] == "issues" && (get || patch):
		n, err := strconv.Atoi(rest[1])
		if err != nil {
			notFound()
			return
		}
		if get {
			e.getIssue(w, r, rp, n)
		} else {
			e.updateIssue(w, r, rp, n)
		}
	case len(rest) == 1 && rest[0] == "pulls" && get:
		e.listPulls(w, r, rp)
	case len(rest) == 2 && rest[0] == "pulls" && get:
		n, err := strconv.Atoi(rest[1])
		if err != nil {
			notFound()
			return
		}
		e.getPull(w, r, rp, n)
	default:
		notFound()
	}
}

func (e *Emulator) getViewer(w http.ResponseWriter) {
	e.mu.Lock()
	u := e.userFor(ViewerLogin)
	public := 0
	for _, r := range e.repos {
		if r.owner == u && !r.private {
			public++
		}
	}
	body := privateUserJSON{simpleUserJSON: e.userJSON(u), PublicRepos: public, CreatedAt: ts(seedBase), UpdatedAt: ts(seedBase)}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// pageParams reads per_page and page the way GitHub does: per_page defaults
// to 30 and is capped at 100, page starts at 1; unusable values fall back to
// the defaults.
func pageParams(q url.Values) (perPage, page int) {
	perPage, page = defaultPerPage, 1
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, maxPerPage)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	return perPage, page
}

// paginate slices total items for page and sets the link header built on
// base (the list URL without query).
func paginate(w http.ResponseWriter, r *http.Request, base string, total, perPage, page int) (from, to int) {
	last := max((total+perPage-1)/perPage, 1)
	from = min((page-1)*perPage, total)
	to = min(from+perPage, total)
	if total > perPage {
		link := func(p int, rel string) string {
			return fmt.Sprintf("<%s?%s>; rel=%q", base, withPage(r.URL.RawQuery, p), rel)
		}
		var parts []string
		if page > 1 {
			parts = append(parts, link(min(page-1, last), "prev"))
		}
		if page < last {
			parts = append(parts, link(page+1, "next"), link(last, "last"))
		}
		if page > 1 {
			parts = append(parts, link(1, "first"))
		}
		if len(parts) > 0 {
			w.Header().Set("Link", strings.Join(parts, ", "))
		}
	}
	return from, to
}

// withPage keeps rawQuery's pairs except page, in order, and appends page=p.
func withPage(rawQuery string, p int) string {
	var parts []string
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == "page" {
			continue
		}
		parts = append(parts, kv)
	}
	parts = append(parts, "page="+strconv.Itoa(p))
	return strings.Join(parts, "&")
}

func (e *Emulator) listUserRepos(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perPage, page := pageParams(q)
	visibility := q.Get("visibility")
	typ := q.Get("type")
	affiliation := q.Get("affiliation")
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "full_name"
	}
	desc := sortBy != "full_name"
	switch q.Get("direction") {
	case "asc":
		desc = false
	case "desc":
		desc = true
	}

	e.mu.Lock()
	var list []*repo
	for _, rp := range e.repos {
		owned := strings.EqualFold(rp.owner.login, ViewerLogin)
		switch visibility {
		case "public":
			if rp.private {
				continue
			}
		case "private":
			if !rp.private {
				continue
			}
		}
		switch typ {
		case "owner":
			if !owned {
				continue
			}
		case "member":
			if owned {
				continue
			}
		case "public":
			if rp.private {
				continue
			}
		case "private":
			if !rp.private {
				continue
			}
		}
		if affiliation != "" {
			ok := false
			for _, a := range strings.Split(affiliation, ",") {
				switch strings.TrimSpace(a) {
				case "owner":
					ok = ok || owned
				case "collaborator", "organization_member":
					ok = ok || !owned
				}
			}
			if !ok {
				continue
			}
		}
		list = append(list, rp)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		var c int
		switch sortBy {
		case "created":
			c = a.created.Compare(b.created)
		case "updated":
			c = a.updated.Compare(b.updated)
		case "pushed":
			c = a.pushed.Compare(b.pushed)
		}
		if c == 0 {
			c = strings.Compare(strings.ToLower(a.fullName()), strings.ToLower(b.fullName()))
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
	from, to := paginate(w, r, e.URL+"/user/repos", len(list), perPage, page)
	body := []repoJSON{}
	for _, rp := range list[from:to] {
		body = append(body, e.repoJSON(rp))
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// sortItems orders issues or pulls by created or updated.
func sortItems(items []*item, sortBy string, desc bool) {
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		var c int
		if sortBy == "updated" || sortBy == "long-running" {
			c = a.updated.Compare(b.updated)
		} else {
			c = a.created.Compare(b.created)
		}
		if c == 0 {
			c = a.number - b.number
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func stateMatches(filter, state string) bool {
	switch filter {
	case "all":
		return true
	case "closed":
		return state == "closed"
	default:
		return state == "open"
	}
}

func hasLabels(it *item, want string) bool {
	if want == "" {
		return true
	}
	for _, name := range strings.Split(want, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, l := range it.labels {
			if strings.EqualFold(l.name, name) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (e *Emulator) listIssues(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	perPage, page := pageParams(q)
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "Validation Failed", docListIssues,
				[]validationErrorJSON{{Resource: "Issue", Field: "since", Code: "invalid", Value: v}})
			return
		}
		since = t
	}
	desc := q.Get("direction") != "asc"

	e.mu.Lock()
	var list []*item
	for _, it := range rp.items {
		if !stateMatches(q.Get("state"), it.state) || !hasLabels(it, q.Get("labels")) {
			continue
		}
		if c := q.Get("creator"); c != "" && !strings.EqualFold(c, it.user.login) {
			continue
		}
		if !since.IsZero() && it.updated.Before(since) {
			continue
		}
		list = append(list, it)
	}
	sortItems(list, q.Get("sort"), desc)
	from, to := paginate(w, r, fmt.Sprintf("%s/repositories/%d/issues", e.URL, rp.id), len(list), perPage, page)
	body := []issueJSON{}
	for _, it := range list[from:to] {
		body = append(body, e.issueJSON(rp, it))
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) getIssue(w http.ResponseWriter, r *http.Request, rp *repo, n int) {
	e.mu.Lock()
	it := rp.items[n]
	var body issueJSON
	if it != nil {
		body = e.issueJSON(rp, it)
	}
	e.mu.Unlock()
	if it == nil {
		writeError(w, http.StatusNotFound, "Not Found", docGetIssue, nil)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) listPulls(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	perPage, page := pageParams(q)
	sortBy := q.Get("sort")
	desc := sortBy == "" || sortBy == "created"
	switch q.Get("direction") {
	case "asc":
		desc = false
	case "desc":
		desc = true
	}
	e.mu.Lock()
	var list []*item
	for _, it := range rp.items {
		if it.pullID == 0 || !stateMatches(q.Get("state"), it.state) {
			continue
		}
		if b := q.Get("base"); b != "" && b != it.baseRef {
			continue
		}
		if h := q.Get("head"); h != "" {
			owner, ref, ok := strings.Cut(h, ":")
			if !ok || !strings.EqualFold(owner, rp.owner.login) || ref != it.headRef {
				continue
			}
		}
		list = append(list, it)
	}
	sortItems(list, sortBy, desc)
	from, to := paginate(w, r, fmt.Sprintf("%s/repositories/%d/pulls", e.URL, rp.id), len(list), perPage, page)
	body := []pullJSON{}
	for _, it := range list[from:to] {
		body = append(body, e.pullJSON(rp, it))
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) getPull(w http.ResponseWriter, r *http.Request, rp *repo, n int) {
	e.mu.Lock()
	it := rp.items[n]
	var body pullDetailJSON
	found := it != nil && it.pullID != 0
	if found {
		mergeable := it.state == "open"
		body = pullDetailJSON{
			pullJSON: e.pullJSON(rp, it), Mergeable: &mergeable, Rebaseable: &mergeable,
			MergeableState: "clean", MaintainerCanModify: false,
			Commits: 1, Additions: 10, Deletions: 2, ChangedFiles: 1,
		}
		if it.state != "open" {
			body.MergeableState = "unknown"
		}
	}
	e.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "Not Found", docGetPull, nil)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// readObject decodes a JSON object body into raw fields, answering 400 for
// bad JSON or a non-object.
func readObject(w http.ResponseWriter, r *http.Request, doc string) (map[string]json.RawMessage, bool) {
	raw, err := io.ReadAll(r.Body)
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", doc, nil)
		return nil, false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", doc, nil)
		return nil, false
	}
	if _, ok := v.(map[string]any); !ok {
		writeError(w, http.StatusBadRequest, "Body should be a JSON object", doc, nil)
		return nil, false
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	return fields, true
}

func invalidRequest(w http.ResponseWriter, doc, field string, raw json.RawMessage, want string) {
	writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', %s is not %s.", field, compact(raw), want), doc, nil)
}

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(bytes.TrimSpace(raw)) == "null" }

// stringOrInt reads a field that GitHub types as string or integer.
func stringOrInt(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err == nil {
		if _, err := n.Int64(); err == nil {
			return n.String(), true
		}
	}
	return "", false
}

// issueInput is a validated create/update body.
type issueInput struct {
	title, body   *string
	bodyNull      bool
	state, reason *string
	labels        []string
	labelsSet     bool
	assignees     []string
	assigneesSet  bool
}

func parseIssueInput(w http.ResponseWriter, fields map[string]json.RawMessage, doc string) (issueInput, bool) {
	var in issueInput
	if raw, ok := fields["title"]; ok && !isNull(raw) {
		s, ok := stringOrInt(raw)
		if !ok {
			invalidRequest(w, doc, "title", raw, "a string or integer")
			return in, false
		}
		in.title = &s
	}
	if raw, ok := fields["body"]; ok {
		if isNull(raw) {
			in.bodyNull = true
		} else {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				invalidRequest(w, doc, "body", raw, "a string")
				return in, false
			}
			in.body = &s
		}
	}
	if raw, ok := fields["state"]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || (s != "open" && s != "closed") {
			invalidRequest(w, doc, "state", raw, `one of ["open", "closed"]`)
			return in, false
		}
		in.state = &s
	}
	if raw, ok := fields["state_reason"]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || (s != "completed" && s != "not_planned" && s != "reopened" && s != "duplicate") {
			invalidRequest(w, doc, "state_reason", raw, `one of ["completed", "not_planned", "duplicate", "reopened", null]`)
			return in, false
		}
		in.reason = &s
	}
	if raw, ok := fields["labels"]; ok && !isNull(raw) {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			invalidRequest(w, doc, "labels", raw, "an array")
			return in, false
		}
		in.labelsSet = true
		for i, item := range items {
			if s, ok := stringOrInt(item); ok {
				in.labels = append(in.labels, s)
				continue
			}
			var obj struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(item, &obj); err != nil || obj.Name == "" {
				invalidRequest(w, doc, fmt.Sprintf("labels/%d", i), item, "a string or an object with a name")
				return in, false
			}
			in.labels = append(in.labels, obj.Name)
		}
	}
	if raw, ok := fields["assignees"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &in.assignees); err != nil {
			invalidRequest(w, doc, "assignees", raw, "an array of strings")
			return in, false
		}
		in.assigneesSet = true
	}
	if raw, ok := fields["assignee"]; ok && !isNull(raw) && !in.assigneesSet {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			invalidRequest(w, doc, "assignee", raw, "a string")
			return in, false
		}
		in.assignees, in.assigneesSet = []string{s}, true
	}
	return in, true
}

var labelColors = []string{"d73a4a", "a2eeef", "7057ff", "008672", "e4e669", "d876e3", "0075ca", "cfd3d7"}

// labelsFor resolves label names, creating unknown ones as GitHub does; the
// caller holds e.mu.
func (e *Emulator) labelsFor(rp *repo, names []string) []*label {
	var out []*label
	seen := map[string]bool{}
	for _, n := range names {
		key := strings.ToLower(n)
		if seen[key] {
			continue
		}
		seen[key] = true
		l := rp.labels[key]
		if l == nil {
			e.labelSeq++
			l = &label{id: e.labelSeq, name: n, color: labelColors[len(rp.labels)%len(labelColors)]}
			rp.labels[key] = l
		}
		out = append(out, l)
	}
	return out
}

func (e *Emulator) usersFor(logins []string) []*user {
	var out []*user
	for _, l := range logins {
		if l != "" {
			out = append(out, e.userFor(l))
		}
	}
	return out
}

func missingTitle(w http.ResponseWriter, doc string) {
	writeError(w, http.StatusUnprocessableEntity, "Validation Failed", doc,
		[]validationErrorJSON{{Resource: "Issue", Code: "missing_field", Field: "title"}})
}

func (e *Emulator) createIssue(w http.ResponseWriter, r *http.Request, rp *repo) {
	fields, ok := readObject(w, r, docCreateIssue)
	if !ok {
		return
	}
	in, ok := parseIssueInput(w, fields, docCreateIssue)
	if !ok {
		return
	}
	if in.title == nil || strings.TrimSpace(*in.title) == "" {
		missingTitle(w, docCreateIssue)
		return
	}
	e.mu.Lock()
	t := time.Now().UTC().Truncate(time.Second)
	it := e.newItem(rp, e.userFor(ViewerLogin), t)
	it.title = *in.title
	it.body = in.body
	it.labels = e.labelsFor(rp, in.labels)
	it.assignees = e.usersFor(in.assignees)
	rp.updated = t
	body := e.issueJSON(rp, it)
	e.mu.Unlock()
	w.Header().Set("Location", body.URL)
	writeJSON(w, http.StatusCreated, body)
}

func (e *Emulator) updateIssue(w http.ResponseWriter, r *http.Request, rp *repo, n int) {
	fields, ok := readObject(w, r, docUpdateIssue)
	if !ok {
		return
	}
	in, ok := parseIssueInput(w, fields, docUpdateIssue)
	if !ok {
		return
	}
	if raw, present := fields["title"]; present && (isNull(raw) || (in.title != nil && strings.TrimSpace(*in.title) == "")) {
		missingTitle(w, docUpdateIssue)
		return
	}
	e.mu.Lock()
	it := rp.items[n]
	if it == nil {
		e.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found", docUpdateIssue, nil)
		return
	}
	if in.title != nil {
		it.title = *in.title
	}
	if in.body != nil {
		it.body = in.body
	} else if in.bodyNull {
		it.body = nil
	}
	if in.labelsSet {
		it.labels = e.labelsFor(rp, in.labels)
	}
	if in.assigneesSet {
		it.assignees = e.usersFor(in.assignees)
	}
	reason := ""
	if in.reason != nil {
		reason = *in.reason
	}
	if in.state != nil {
		setState(it, *in.state, reason)
	} else if reason != "" && it.state == "closed" && it.pullID == 0 {
		it.stateReason = &reason
	}
	t := time.Now().UTC().Truncate(time.Second)
	if t.After(it.updated) {
		it.updated = t
	}
	body := e.issueJSON(rp, it)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// ---------------------------------------------------------------------------
// Writing

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func writeError(w http.ResponseWriter, status int, message, doc string, errs []validationErrorJSON) {
	writeJSON(w, status, errorJSON{Message: message, Errors: errs, DocumentationURL: doc, Status: strconv.Itoa(status)})
}

// writeForcedFailure answers a FailNext failure with the body GitHub uses for
// that status.
func writeForcedFailure(w http.ResponseWriter, status int, retryAfter string) {
	h := w.Header()
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	switch status {
	case http.StatusForbidden, http.StatusTooManyRequests:
		wait := 60 * time.Second
		if n, err := strconv.Atoi(retryAfter); err == nil && n >= 0 {
			wait = time.Duration(n) * time.Second
		}
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(rateLimit))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(wait).Unix(), 10))
		rid := h.Get("X-GitHub-Request-Id")
		if retryAfter == "" {
			writeError(w, status, fmt.Sprintf("API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID %s and timestamp %s UTC.", rid, time.Now().UTC().Format("2006-01-02 15:04:05")), docPrimaryRate, nil)
		} else {
			writeError(w, status, fmt.Sprintf("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID %s.", rid), docSecondRate, nil)
		}
	case http.StatusUnauthorized:
		writeError(w, status, "Bad credentials", docsRoot, nil)
	case http.StatusNotFound:
		writeError(w, status, "Not Found", docsRoot, nil)
	case http.StatusUnprocessableEntity:
		writeError(w, status, "Validation Failed", docsRoot, []validationErrorJSON{{Code: "unprocessable"}})
	case http.StatusInternalServerError, http.StatusBadGateway:
		writeError(w, status, "Server Error", docsRoot, nil)
	default:
		writeError(w, status, http.StatusText(status), docsRoot, nil)
	}
}
