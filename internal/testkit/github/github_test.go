package github

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const goodToken = "gho_good"

func newEmulator(t *testing.T) *Emulator {
	t.Helper()
	return New(t, func(tok string) bool { return tok == goodToken || tok == "ghu_other" })
}

type response struct {
	status int
	header http.Header
	raw    string
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.raw), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.raw, err)
	}
	return m
}

func (r response) array(t *testing.T) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal([]byte(r.raw), &a); err != nil {
		t.Fatalf("body %q is not a JSON array: %v", r.raw, err)
	}
	return a
}

func call(t *testing.T, method, url, auth, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
}

func get(t *testing.T, e *Emulator, path string) response {
	t.Helper()
	return call(t, http.MethodGet, e.URL+path, "Bearer "+goodToken, "")
}

func send(t *testing.T, e *Emulator, method, path, body string) response {
	t.Helper()
	return call(t, method, e.URL+path, "Bearer "+goodToken, body)
}

// checkError asserts GitHub's error body.
func checkError(t *testing.T, r response, status int, message, docPrefix string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
	m := r.object(t)
	if msg, _ := m["message"].(string); !strings.HasPrefix(msg, message) {
		t.Errorf("message = %q, want prefix %q", msg, message)
	}
	if doc, _ := m["documentation_url"].(string); !strings.HasPrefix(doc, docPrefix) {
		t.Errorf("documentation_url = %q, want prefix %q", doc, docPrefix)
	}
	if m["status"] != strconv.Itoa(status) {
		t.Errorf("status field = %v, want %q", m["status"], strconv.Itoa(status))
	}
	return m
}

var linkRE = regexp.MustCompile(`<([^>]+)>; rel="([a-z]+)"`)

func parseLink(h string) map[string]string {
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(h, -1) {
		out[m[2]] = m[1]
	}
	return out
}

func TestAuth(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("octocat", "hello", false)
	cases := []struct {
		name       string
		auth       string
		status     int
		message    string
		wantScheme string
	}{
		{"no header", "", 401, "Requires authentication", ""},
		{"token scheme", "token " + goodToken, 401, "Bad credentials", "token"},
		{"unknown token", "Bearer gho_bad", 401, "Bad credentials", "Bearer"},
		{"empty bearer", "Bearer ", 401, "Bad credentials", "Bearer"},
		{"valid", "Bearer " + goodToken, 200, "", "Bearer"},
		{"other valid", "Bearer ghu_other", 200, "", "Bearer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, http.MethodGet, e.URL+"/repos/octocat/hello", tc.auth, "")
			if tc.status == 401 {
				doc := docsRoot
				if tc.auth == "" {
					doc = docGetRepo
				}
				m := checkError(t, r, 401, tc.message, doc)
				if m["documentation_url"] != doc {
					t.Errorf("documentation_url = %v, want %s", m["documentation_url"], doc)
				}
			} else if r.status != tc.status {
				t.Fatalf("status = %d (%s)", r.status, r.raw)
			}
			if got := e.LastAuthorization(); got != tc.wantScheme {
				t.Errorf("LastAuthorization = %q, want %q", got, tc.wantScheme)
			}
		})
	}
	want := []string{goodToken, "gho_bad", "ghu_other"}
	if got := e.SeenTokens(); !reflect.DeepEqual(got, want) {
		t.Errorf("SeenTokens = %v, want %v", got, want)
	}
	if e.Requests() != int64(len(cases)) {
		t.Errorf("Requests = %d", e.Requests())
	}
}

func TestViewerAndHeaders(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo(ViewerLogin, "pub", false)
	e.AddRepo(ViewerLogin, "priv", true)
	r := get(t, e, "/user")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	m := r.object(t)
	if m["login"] != ViewerLogin || m["id"] != float64(1) || m["type"] != "User" || m["public_repos"] != float64(1) || m["node_id"] != "MDQ6VXNlcjE=" {
		t.Errorf("user = %s", r.raw)
	}
	for h, want := range map[string]string{
		"Content-Type":                  "application/json; charset=utf-8",
		"X-Ratelimit-Limit":             "5000",
		"X-Ratelimit-Resource":          "core",
		"X-Ratelimit-Used":              "1",
		"X-Ratelimit-Remaining":         "4999",
		"X-Github-Api-Version-Selected": "2022-11-28",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset < time.Now().Unix() {
		t.Errorf("X-RateLimit-Reset = %q", r.header.Get("X-RateLimit-Reset"))
	}
	if !regexp.MustCompile(`^[0-9A-F]{4}:[0-9A-F]{4}:[0-9A-F]{6}:[0-9A-F]{6}:[0-9A-F]{8}$`).MatchString(r.header.Get("X-GitHub-Request-Id")) {
		t.Errorf("X-GitHub-Request-Id = %q", r.header.Get("X-GitHub-Request-Id"))
	}
	if r := get(t, e, "/user"); r.header.Get("X-RateLimit-Remaining") != "4998" {
		t.Errorf("remaining did not count down: %q", r.header.Get("X-RateLimit-Remaining"))
	}
}

func TestUserReposPaging(t *testing.T) {
	cases := []struct {
		name      string
		repos     int
		query     string
		wantPages int
		firstLen  int
	}{
		{"default per_page 30", 65, "", 3, 30},
		{"per_page 25 and extra params", 60, "visibility=all&per_page=25", 3, 25},
		{"capped at 100", 120, "per_page=500", 2, 100},
		{"one page, no link", 5, "", 1, 5},
		{"empty", 0, "", 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmulator(t)
			for i := 0; i < tc.repos; i++ {
				e.AddRepo(ViewerLogin, fmt.Sprintf("repo-%03d", i), i%2 == 1)
			}
			next := e.URL + "/user/repos"
			if tc.query != "" {
				next += "?" + tc.query
			}
			var names []string
			pages := 0
			for next != "" {
				r := call(t, http.MethodGet, next, "Bearer "+goodToken, "")
				if r.status != 200 {
					t.Fatalf("status %d %s", r.status, r.raw)
				}
				list := r.array(t)
				if pages == 0 && len(list) != tc.firstLen {
					t.Errorf("first page has %d repos, want %d", len(list), tc.firstLen)
				}
				for _, rp := range list {
					names = append(names, rp["full_name"].(string))
				}
				pages++
				link := r.header.Get("Link")
				if tc.wantPages == 1 && link != "" {
					t.Errorf("single page has a link header: %s", link)
				}
				next = parseLink(link)["next"]
			}
			if pages != tc.wantPages || len(names) != tc.repos {
				t.Errorf("pages = %d, repos = %d; want %d, %d", pages, len(names), tc.wantPages, tc.repos)
			}
			for i := 1; i < len(names); i++ {
				if names[i-1] >= names[i] {
					t.Errorf("not sorted by full_name: %s before %s", names[i-1], names[i])
				}
			}
		})
	}
}

func TestLinkHeaderFormat(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("octo-org", "Spoon-Knife", false)
	e.SeedIssues("octo-org", "Spoon-Knife", 13)
	base := e.URL + "/repositories/1000001/issues"
	cases := []struct {
		query string
		want  string
	}{
		{"per_page=2", fmt.Sprintf(`<%[1]s?per_page=2&page=2>; rel="next", <%[1]s?per_page=2&page=7>; rel="last"`, base)},
		{"per_page=2&page=4", fmt.Sprintf(`<%[1]s?per_page=2&page=3>; rel="prev", <%[1]s?per_page=2&page=5>; rel="next", <%[1]s?per_page=2&page=7>; rel="last", <%[1]s?per_page=2&page=1>; rel="first"`, base)},
		{"page=7&per_page=2", fmt.Sprintf(`<%[1]s?per_page=2&page=6>; rel="prev", <%[1]s?per_page=2&page=1>; rel="first"`, base)},
		{"state=all&per_page=5&page=1", fmt.Sprintf(`<%[1]s?state=all&per_page=5&page=2>; rel="next", <%[1]s?state=all&per_page=5&page=3>; rel="last"`, base)},
		{"per_page=20", ""},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := get(t, e, "/repos/octo-org/Spoon-Knife/issues?"+tc.query)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if got := r.header.Get("Link"); got != tc.want {
				t.Errorf("Link =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
	// Beyond the last page: an empty array.
	if r := get(t, e, "/repos/octo-org/Spoon-Knife/issues?per_page=2&page=9"); r.raw != "[]" {
		t.Errorf("beyond last page = %s", r.raw)
	}
}

func TestRepoAndIssues(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", true)
	e.SeedIssues("acme", "widgets", 5) // #1-#5
	e.SeedPulls("acme", "widgets", 3)  // #6-#8
	e.CloseIssue("acme", "widgets", 2)

	r := get(t, e, "/repos/ACME/Widgets")
	if r.status != 200 {
		t.Fatalf("repo: %d %s", r.status, r.raw)
	}
	repo := r.object(t)
	if repo["full_name"] != "acme/widgets" || repo["private"] != true || repo["visibility"] != "private" ||
		repo["id"] != float64(1000001) || repo["open_issues_count"] != float64(7) || repo["default_branch"] != "main" ||
		repo["html_url"] != "https://github.com/acme/widgets" || repo["url"] != e.URL+"/repos/acme/widgets" {
		t.Errorf("repo = %s", r.raw)
	}
	if owner := repo["owner"].(map[string]any); owner["login"] != "acme" || owner["type"] != "User" {
		t.Errorf("owner = %v", owner)
	}
	if id, _ := base64.StdEncoding.DecodeString(repo["node_id"].(string)); string(id) != "010:Repository1000001" {
		t.Errorf("node_id decodes to %q", id)
	}

	cases := []struct {
		query string
		want  []float64
	}{
		{"", []float64{8, 7, 6, 5, 4, 3, 1}}, // open, newest first, pull requests included
		{"state=closed", []float64{2}},
		{"state=all&direction=asc", []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"state=all&per_page=3&page=3", []float64{2, 1}},
		{"creator=nobody", []float64{}},
	}
	for _, tc := range cases {
		t.Run("issues?"+tc.query, func(t *testing.T) {
			r := get(t, e, "/repos/acme/widgets/issues?"+tc.query)
			got := []float64{}
			for _, it := range r.array(t) {
				got = append(got, it["number"].(float64))
				_, isPull := it["pull_request"]
				if isPull != (it["number"].(float64) >= 6) {
					t.Errorf("#%v pull_request presence = %v", it["number"], isPull)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("numbers = %v, want %v", got, tc.want)
			}
		})
	}

	r = get(t, e, "/repos/acme/widgets/issues/2")
	is := r.object(t)
	if is["state"] != "closed" || is["state_reason"] != "completed" || is["closed_at"] == nil || is["title"] != "Issue 2" ||
		is["body"] != "Body of issue 2" || is["html_url"] != "https://github.com/acme/widgets/issues/2" ||
		is["user"].(map[string]any)["login"] != "acme" || is["author_association"] != "OWNER" ||
		is["created_at"] != "2024-01-01T02:00:00Z" {
		t.Errorf("issue 2 = %s", r.raw)
	}
	if _, ok := is["pull_request"]; ok {
		t.Error("plain issue has pull_request")
	}
	r = get(t, e, "/repos/acme/widgets/issues/7")
	if pr := r.object(t)["pull_request"].(map[string]any); pr["url"] != e.URL+"/repos/acme/widgets/pulls/7" || pr["html_url"] != "https://github.com/acme/widgets/pull/7" {
		t.Errorf("issue view of a pull = %s", r.raw)
	}
}

func TestPulls(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", false)
	e.SeedIssues("acme", "widgets", 2) // #1-#2
	e.SeedPulls("acme", "widgets", 4)  // #3-#6
	e.CloseIssue("acme", "widgets", 4)

	cases := []struct {
		query string
		want  []float64
	}{
		{"", []float64{6, 5, 3}},
		{"state=all", []float64{6, 5, 4, 3}},
		{"state=closed", []float64{4}},
		{"state=all&sort=updated", []float64{3, 5, 6, 4}}, // asc by default for non-created sorts
		{"head=acme:feature-5", []float64{5}},
		{"base=develop", []float64{}},
	}
	for _, tc := range cases {
		t.Run("pulls?"+tc.query, func(t *testing.T) {
			got := []float64{}
			for _, p := range get(t, e, "/repos/acme/widgets/pulls?"+tc.query).array(t) {
				got = append(got, p["number"].(float64))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("numbers = %v, want %v", got, tc.want)
			}
		})
	}

	r := get(t, e, "/repos/acme/widgets/pulls/5")
	if r.status != 200 {
		t.Fatalf("pull: %d %s", r.status, r.raw)
	}
	p := r.object(t)
	head := p["head"].(map[string]any)
	if p["title"] != "Pull request 5" || p["state"] != "open" || p["merged"] != false || p["mergeable"] != true ||
		head["ref"] != "feature-5" || head["label"] != "acme:feature-5" || len(head["sha"].(string)) != 40 ||
		p["base"].(map[string]any)["ref"] != "main" || p["html_url"] != "https://github.com/acme/widgets/pull/5" ||
		p["issue_url"] != e.URL+"/repos/acme/widgets/issues/5" || p["draft"] != false {
		t.Errorf("pull = %s", r.raw)
	}
	if p["id"] == get(t, e, "/repos/acme/widgets/issues/5").object(t)["id"] {
		t.Error("pull request id equals its issue id")
	}
	links := parseLink(get(t, e, "/repos/acme/widgets/pulls?state=all&per_page=1").header.Get("Link"))
	if links["next"] != e.URL+"/repositories/1000001/pulls?state=all&per_page=1&page=2" {
		t.Errorf("pulls link = %v", links)
	}
	// The link target is served.
	if r := call(t, http.MethodGet, links["last"], "Bearer "+goodToken, ""); r.status != 200 || len(r.array(t)) != 1 {
		t.Errorf("following last: %d %s", r.status, r.raw)
	}
}

func TestNotFound(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", false)
	e.SeedIssues("acme", "widgets", 1)
	cases := []struct {
		method, path, doc string
	}{
		{"GET", "/repos/acme/nope", docGetRepo},
		{"GET", "/repos/acme/nope/issues", docListIssues},
		{"GET", "/repos/acme/widgets/issues/99", docGetIssue},
		{"GET", "/repos/acme/widgets/issues/abc", docGetIssue},
		{"GET", "/repos/acme/widgets/pulls/1", docGetPull}, // a plain issue is not a pull request
		{"GET", "/repos/acme/widgets/", docsRoot},          // trailing slash
		{"DELETE", "/repos/acme/widgets", docGetRepo},
		{"GET", "/repositories/42/issues", docListIssues},
		{"GET", "/nope", docsRoot},
		{"PATCH", "/repos/acme/widgets/issues/99", docUpdateIssue},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			body := ""
			if tc.method == "PATCH" {
				body = `{"title":"x"}`
			}
			m := checkError(t, send(t, e, tc.method, tc.path, body), 404, "Not Found", tc.doc)
			if m["documentation_url"] != tc.doc {
				t.Errorf("documentation_url = %v, want %s", m["documentation_url"], tc.doc)
			}
		})
	}
}

func TestCreateIssue(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", false)
	e.SeedIssues("acme", "widgets", 2)
	e.SeedPulls("acme", "widgets", 1)

	r := send(t, e, "POST", "/repos/acme/widgets/issues", `{"title":"Found a bug","body":"It breaks.","labels":["bug",{"name":"urgent"}],"assignees":["hubot"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	is := r.object(t)
	if is["number"] != float64(4) || is["title"] != "Found a bug" || is["body"] != "It breaks." || is["state"] != "open" ||
		is["user"].(map[string]any)["login"] != ViewerLogin || is["assignee"].(map[string]any)["login"] != "hubot" {
		t.Errorf("created = %s", r.raw)
	}
	var labels []string
	for _, l := range is["labels"].([]any) {
		lm := l.(map[string]any)
		labels = append(labels, lm["name"].(string))
		if len(lm["color"].(string)) != 6 {
			t.Errorf("label color = %v", lm["color"])
		}
	}
	if !reflect.DeepEqual(labels, []string{"bug", "urgent"}) {
		t.Errorf("labels = %v", labels)
	}
	if loc := r.header.Get("Location"); loc != e.URL+"/repos/acme/widgets/issues/4" {
		t.Errorf("Location = %q", loc)
	}
	if e.IssueCount("acme", "widgets") != 3 {
		t.Errorf("IssueCount = %d", e.IssueCount("acme", "widgets"))
	}
	// The new issue is listed, newest first, and filterable by label.
	if list := get(t, e, "/repos/acme/widgets/issues?labels=bug,URGENT").array(t); len(list) != 1 || list[0]["number"] != float64(4) {
		t.Errorf("labels filter = %v", list)
	}
	// Integer titles are accepted, as GitHub types title as string|integer.
	if r := send(t, e, "POST", "/repos/acme/widgets/issues", `{"title":42}`); r.status != 201 || r.object(t)["title"] != "42" {
		t.Errorf("integer title: %d %s", r.status, r.raw)
	}

	bad := []struct {
		name, body string
		status     int
		message    string
		errors     []any
	}{
		{"missing title", `{"body":"x"}`, 422, "Validation Failed", []any{map[string]any{"resource": "Issue", "code": "missing_field", "field": "title"}}},
		{"empty title", `{"title":"  "}`, 422, "Validation Failed", []any{map[string]any{"resource": "Issue", "code": "missing_field", "field": "title"}}},
		{"title wrong type", `{"title":["a"]}`, 422, "Invalid request.\n\nFor 'properties/title', [\"a\"] is not a string or integer.", nil},
		{"labels wrong type", `{"title":"t","labels":"bug"}`, 422, "Invalid request.\n\nFor 'properties/labels', \"bug\" is not an array.", nil},
		{"bad json", `{"title":`, 400, "Problems parsing JSON", nil},
		{"not an object", `["title"]`, 400, "Body should be a JSON object", nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			m := checkError(t, send(t, e, "POST", "/repos/acme/widgets/issues", tc.body), tc.status, tc.message, docCreateIssue)
			if tc.errors != nil && !reflect.DeepEqual(m["errors"], tc.errors) {
				t.Errorf("errors = %v, want %v", m["errors"], tc.errors)
			}
			if tc.errors == nil {
				if _, ok := m["errors"]; ok {
					t.Errorf("unexpected errors: %v", m["errors"])
				}
			}
		})
	}
	if e.IssueCount("acme", "widgets") != 4 {
		t.Errorf("failed creates changed the store: IssueCount = %d", e.IssueCount("acme", "widgets"))
	}
}

func TestUpdateIssue(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", false)
	e.SeedIssues("acme", "widgets", 1)
	steps := []struct {
		body       string
		state      string
		reason     any
		title      string
		wantClosed bool
	}{
		{`{"state":"closed","state_reason":"not_planned"}`, "closed", "not_planned", "Issue 1", true},
		{`{"state":"open"}`, "open", "reopened", "Issue 1", false},
		{`{"title":"Renamed","labels":["x"]}`, "open", "reopened", "Renamed", false},
	}
	for i, s := range steps {
		r := send(t, e, "PATCH", "/repos/acme/widgets/issues/1", s.body)
		if r.status != 200 {
			t.Fatalf("step %d: %d %s", i, r.status, r.raw)
		}
		m := r.object(t)
		if m["state"] != s.state || m["state_reason"] != s.reason || m["title"] != s.title || (m["closed_at"] != nil) != s.wantClosed {
			t.Errorf("step %d: %s", i, r.raw)
		}
	}
	checkError(t, send(t, e, "PATCH", "/repos/acme/widgets/issues/1", `{"state":"done"}`), 422, "Invalid request.", docUpdateIssue)
	checkError(t, send(t, e, "PATCH", "/repos/acme/widgets/issues/1", `{"title":""}`), 422, "Validation Failed", docUpdateIssue)
}

func TestFailNext(t *testing.T) {
	cases := []struct {
		name       string
		n          int
		status     int
		retryAfter string
		message    string
		doc        string
	}{
		{"primary 403", 1, 403, "", "API rate limit exceeded for user ID 1.", docPrimaryRate},
		{"primary 429", 2, 429, "", "API rate limit exceeded", docPrimaryRate},
		{"secondary 429", 1, 429, "30", "You have exceeded a secondary rate limit.", docSecondRate},
		{"secondary 403", 1, 403, "5", "You have exceeded a secondary rate limit.", docSecondRate},
		{"server error", 2, 500, "", "Server Error", docsRoot},
		{"unavailable", 1, 503, "7", "Service Unavailable", docsRoot},
		{"bad credentials", 1, 401, "", "Bad credentials", docsRoot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmulator(t)
			e.AddRepo("acme", "widgets", false)
			e.FailNext(tc.n, tc.status, tc.retryAfter)
			for i := 0; i < tc.n; i++ {
				before := time.Now().Unix()
				r := get(t, e, "/repos/acme/widgets")
				checkError(t, r, tc.status, tc.message, tc.doc)
				if got := r.header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("retry-after = %q, want %q", got, tc.retryAfter)
				}
				if tc.status == 403 || tc.status == 429 {
					if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Used") != "5000" {
						t.Errorf("rate headers = %v", r.header)
					}
					wait := int64(60)
					if tc.retryAfter != "" {
						wait, _ = strconv.ParseInt(tc.retryAfter, 10, 64)
					}
					reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
					if reset < before+wait || reset > time.Now().Unix()+wait {
						t.Errorf("x-ratelimit-reset = %d, want about now+%d", reset, wait)
					}
				}
			}
			if r := get(t, e, "/repos/acme/widgets"); r.status != 200 {
				t.Errorf("after failures: %d %s", r.status, r.raw)
			}
			if e.Requests() != int64(tc.n+1) {
				t.Errorf("Requests = %d", e.Requests())
			}
		})
	}
}

func TestFailNextRecordsTokens(t *testing.T) {
	e := newEmulator(t)
	e.FailNext(1, 429, "1")
	r := call(t, http.MethodGet, e.URL+"/user", "Bearer from-vault", "")
	if r.status != 429 {
		t.Fatalf("status %d", r.status)
	}
	if got := e.SeenTokens(); !reflect.DeepEqual(got, []string{"from-vault"}) {
		t.Errorf("SeenTokens = %v", got)
	}
	if e.LastAuthorization() != "Bearer" {
		t.Errorf("LastAuthorization = %q", e.LastAuthorization())
	}
}

func TestUserReposFilters(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo(ViewerLogin, "b-public", false)
	e.AddRepo(ViewerLogin, "a-private", true)
	e.AddRepo("someorg", "shared", false)
	e.AddRepo(ViewerLogin, "a-private", false) // re-adding flips visibility
	e.AddRepo(ViewerLogin, "c-secret", true)
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{"octocat/a-private", "octocat/b-public", "octocat/c-secret", "someorg/shared"}},
		{"visibility=private", []string{"octocat/c-secret"}},
		{"type=owner", []string{"octocat/a-private", "octocat/b-public", "octocat/c-secret"}},
		{"affiliation=collaborator,organization_member", []string{"someorg/shared"}},
		{"sort=created", []string{"octocat/c-secret", "someorg/shared", "octocat/a-private", "octocat/b-public"}},
		{"sort=full_name&direction=desc", []string{"someorg/shared", "octocat/c-secret", "octocat/b-public", "octocat/a-private"}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			for _, r := range get(t, e, "/user/repos?"+tc.query).array(t) {
				got = append(got, r["full_name"].(string))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("repos = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEmulator(t)
	e.AddRepo("acme", "widgets", false)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/repos/acme/widgets/issues", strings.NewReader(fmt.Sprintf(`{"title":"t%d","labels":["l"]}`, i)))
			req.Header.Set("Authorization", "Bearer "+goodToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				t.Errorf("status %d", resp.StatusCode)
			}
			_ = e.IssueCount("acme", "widgets")
			_ = e.SeenTokens()
		}(i)
	}
	wg.Wait()
	if e.IssueCount("acme", "widgets") != 20 || e.Requests() != 20 {
		t.Errorf("IssueCount = %d, Requests = %d", e.IssueCount("acme", "widgets"), e.Requests())
	}
	numbers := map[float64]bool{}
	for _, it := range get(t, e, "/repos/acme/widgets/issues?per_page=100").array(t) {
		numbers[it["number"].(float64)] = true
	}
	if len(numbers) != 20 {
		t.Errorf("distinct numbers = %d", len(numbers))
	}
}
