// Package composio emulates the two Composio v3 REST endpoints that Valetkey
// calls to read connected accounts: "list connected accounts" and "get
// connected account details by ID". It runs on an httptest server, validates
// the project API key, implements the documented filters and cursor
// pagination, and adds knobs a test needs (forced failures, counters, the
// last list query).
//
// # What Composio publishes, and what this emulator does
//
// Sources checked (stored copies, looked up while writing this package):
//
//   - https://docs.composio.dev/reference/api-reference/connected-accounts/getConnectedAccounts.md
//     and https://docs.composio.dev/reference/v3/api-reference/connected-accounts/getConnectedAccounts.md
//     (the OpenAPI-generated reference: query parameters, the 200 schema,
//     the 400/401/404/422/500 error schema)
//   - https://docs.composio.dev/reference/v3/api-reference/connected-accounts/getConnectedAccountsByNanoid.md
//     and https://docs.composio.dev/api-reference/connected-accounts/get-connected-accounts-by-nanoid
//   - https://docs.composio.dev/reference/errors (the error object)
//   - https://docs.composio.dev/reference/v3/rate-limits.md and
//     https://docs.composio.dev/reference/rate-limits.md (429, Retry-After,
//     X-RateLimit headers)
//   - https://docs.composio.dev/docs/changelog/2026/04/22 ("Credential
//     Redaction for Composio-Managed Auth Configs and Connections") and
//     https://docs.composio.dev/docs/troubleshooting/authentication
//     ("Credentials showing as REDACTED")
//   - https://docs.composio.dev/docs/auth-configuration/connected-accounts
//   - github.com/ComposioHQ/composio-base-py (Stainless, generated from the
//     OpenAPI spec): src/composio_client/_client.py (x-api-key auth header,
//     Querystring(array_format="comma")),
//     src/composio_client/types/connected_account_list_params.py,
//     connected_account_list_response.py, connected_account_retrieve_response.py
//   - github.com/ComposioHQ/composio: ts/packages/core/src/types/connectedAccounts.types.ts,
//     ts/packages/core/src/utils/transformers/connectedAccounts.ts (the SDK
//     reads auth_config.auth_scheme, data, next_cursor, total_pages)
//   - github.com/tryAGI/Composio (AutoSDK, generated from the same spec):
//     Composio.ConnectedAccountsClient.GetConnectedAccounts.g.cs (array
//     query parameters with explode=true; order_by default created_at,
//     order_direction default desc)
//   - github.com/rowboatlabs/rowboat issue #896 and public client code
//     quoting live error bodies, e.g.
//     {"error":{"message":"Invalid API key: ak_**0000","code":801,"slug":"APIKey_InvalidAPIKey","status":401,"request_id":"…","suggested_fix":"Please check you are using a valid API key."}}
//     and {"error":{"message":"No authentication provided","code":906,"slug":"Auth_NoAuthProvided","status":401,"request_id":"…","suggested_fix":""}}.
//
// Authentication: header x-api-key: <project API key> (ak_…). The spec also
// allows x-user-api-key, which the emulator does not model. A missing key
// answers 401 Auth_NoAuthProvided (code 906); a wrong key answers 401
// APIKey_InvalidAPIKey (code 801) with the key masked in the message
// ("ak_**" + its last four characters), as Composio does.
//
// List, GET {base}/api/v3/connected_accounts (also served under /api/v3.1,
// the current version, whose shapes are the same):
//
//   - Array filters toolkit_slugs, statuses, user_ids, auth_config_ids,
//     connected_account_ids. The spec declares them as arrays with
//     explode=true (repeated keys: toolkit_slugs=a&toolkit_slugs=b), while
//     the official Stainless Python client sends them comma-separated
//     (toolkit_slugs=a,b). The emulator accepts both, and a mix. Values of
//     one filter are OR'ed, different filters AND'ed. Toolkit slugs match
//     case-insensitively, everything else exactly.
//   - cursor (string; an opaque token taken from next_cursor), limit
//     (number), order_by (created_at|updated_at, default created_at),
//     order_direction (asc|desc, default desc). account_type and other
//     parameters are accepted and ignored (every emulated account is
//     PRIVATE). Composio does not publish the default page size; the
//     emulator uses 20. A limit that is not a whole number ≥ 1, an unknown
//     cursor, order_by or order_direction answers 400 with the error
//     envelope, slug ConnectedAccount_BadRequest, code 600 (the slug and code
//     Composio uses for bad connected-account requests; the exact validation
//     error Composio gives for these is not published).
//   - 200 body: {"items":[…],"next_cursor":"…"|null,"total_pages":N,
//     "current_page":N,"total_items":N}. next_cursor is null on the last
//     page. total_pages is ceil(total_items/limit) (0 when nothing
//     matches); current_page is 1-based.
//   - One item: {"toolkit":{"slug":…},"auth_config":{"id":"ac_…",
//     "auth_scheme":"OAUTH2","is_composio_managed":bool,"is_disabled":false},
//     "id":"ca_…","authScheme":"OAUTH2","word_id":null,"alias":null,
//     "user_id":…,"status":"ACTIVE","experimental":{"account_type":"PRIVATE"},
//     "created_at":…,"updated_at":…,"state":{"authScheme":"OAUTH2",
//     "val":{"status":"ACTIVE","access_token":…,…}},"data":{…},
//     "status_reason":null,"is_disabled":false}. Statuses are INITIALIZING,
//     INITIATED, ACTIVE, FAILED, EXPIRED, INACTIVE; state.val always carries
//     a status equal to the account's. The top-level authScheme duplicates
//     state.authScheme (kept by Composio for backward compatibility); user_id
//     and data are marked deprecated but still returned; data mirrors
//     state.val here. is_disabled is true exactly when the status is
//     INACTIVE (Composio's disable endpoint sets both). Timestamps are
//     ISO 8601 UTC with milliseconds, from a logical clock that ticks one
//     second per change so that ordering is deterministic.
//
// Get, GET {base}/api/v3/connected_accounts/{nanoid}: the account object
// itself, not wrapped, with the list item's fields plus "params" (deprecated
// "initialization data"; the emulator mirrors state.val there too). The list
// item has no params field. An unknown ID answers 404
// {"error":{"message":"Connected account not found","code":601,
// "slug":"ConnectedAccount_NotFound","status":404,"request_id":"…",
// "suggested_fix":"…"}}. The envelope is the published one; the slug is the
// one Composio clients and fakes look for; code 601 and the message are the
// emulator's guess (not published).
//
// Secrets: since 2026-04-22 connections on Composio-managed auth configs
// (auth_config.is_composio_managed: true) always come back with
// access_token, refresh_token and header/query-parameter values replaced by
// the literal string "REDACTED"; projects with "Mask Connected Account
// Secrets" (mask_secret_keys_in_connected_account) on redact customer-owned
// ones too. For Account.ComposioManaged the emulator replaces these
// state.val (and data/params) fields with "REDACTED": access_token,
// refresh_token, id_token, api_key, generic_api_key, token, bearer_token,
// client_secret, password, oauth_token, oauth_token_secret, private_key,
// registration_access_token. Other fields (expires_in, token_type, scope,
// subdomain, …) are returned as set. The project-wide mask flag is not
// modelled: other accounts return their values unmasked.
//
// Errors use the published envelope {"error":{"message":…,"code":…,
// "slug":…,"status":…,"request_id":…,"suggested_fix":…}} — except 429,
// whose published body is flat: {"message":"Rate limit exceeded. Limit: 2000
// requests per 1 minute"}. Forced failures ([Emulator.FailRequests]) with a
// status other than 429 use the envelope with code 10000+status and slug
// "HTTP_" + the status text without spaces (e.g. 10503 HTTP_ServiceUnavailable);
// this generalises the one such body seen live (10401 HTTP_Unauthorized).
// Every response carries X-RateLimit (2000), X-RateLimit-Remaining and
// X-RateLimit-Window-Size (60s), the current documented Hobby plan values;
// Retry-After is set on forced failures when asked for. Unknown paths answer
// 404 (10404 HTTP_NotFound), other methods than GET on the two paths 405
// (10405 HTTP_MethodNotAllowed).
package composio

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Emulator constants that Composio does not publish, or publishes per plan.
const (
	defaultLimit    = 20
	rateLimitTotal  = 2000
	rateLimitWindow = "60s"
	redacted        = "REDACTED"
	timeLayout      = "2006-01-02T15:04:05.000Z07:00"
	cursorPrefix    = "ca-offset:"
)

// Connected-account statuses Composio returns.
const (
	statusActive   = "ACTIVE"
	statusInactive = "INACTIVE"
)

// secretFields are the state.val keys replaced by "REDACTED" for accounts on
// Composio-managed auth configs.
var secretFields = map[string]bool{
	"access_token":              true,
	"refresh_token":             true,
	"id_token":                  true,
	"api_key":                   true,
	"generic_api_key":           true,
	"token":                     true,
	"bearer_token":              true,
	"client_secret":             true,
	"password":                  true,
	"oauth_token":               true,
	"oauth_token_secret":        true,
	"private_key":               true,
	"registration_access_token": true,
}

// Account is a connected account held by the emulator.
type Account struct {
	// ID is the connected account's nanoid, "ca_…". When empty AddAccount
	// makes one up.
	ID string
	// UserID is the user the account belongs to (user_id). When empty it is
	// "default", Composio's default user ID.
	UserID string
	// Status is the connection status: ACTIVE (the default when empty),
	// INITIALIZING, INITIATED, FAILED, EXPIRED or INACTIVE. It is returned as
	// status and as state.val.status.
	Status string
	// ToolkitSlug is the toolkit's slug (toolkit.slug), e.g. "github".
	ToolkitSlug string
	// AuthConfigID is the auth config's ID (auth_config.id), "ac_…". When
	// empty AddAccount makes one up.
	AuthConfigID string
	// ComposioManaged is auth_config.is_composio_managed. When true the
	// credentials in state.val (and data/params) come back as "REDACTED",
	// as Composio does for connections on its own OAuth apps.
	ComposioManaged bool
	// AuthScheme is the auth scheme: OAUTH2 (the default when empty),
	// OAUTH1, API_KEY, BASIC, BEARER_TOKEN, … It is returned as
	// state.authScheme, authScheme and auth_config.auth_scheme.
	AuthScheme string
	// Val is state.val: access_token, refresh_token, expires_in, api_key, …
	// It is copied; its "status" key, if any, is overridden by Status.
	Val map[string]any
}

// Emulator is a running Composio API emulator. All methods are safe for
// concurrent use.
type Emulator struct {
	// URL is the base URL to use in place of https://backend.composio.dev;
	// the endpoints are under URL + "/api/v3".
	URL string

	t        testing.TB
	apiKey   string
	requests atomic.Int64

	mu         sync.Mutex
	accounts   map[string]*storedAccount
	clock      time.Time // logical clock: each change moves it one second
	lastQuery  url.Values
	failLeft   int // >0: that many more failures; <0: fail until reset
	failStatus int
	failRetry  string
}

type storedAccount struct {
	Account
	createdAt, updatedAt time.Time
}

// New starts an emulator that accepts one project API key (sent as
// x-api-key). The server is closed by t.Cleanup.
func New(t testing.TB, apiKey string) *Emulator {
	t.Helper()
	if apiKey == "" {
		t.Fatal("composio: New: empty API key")
	}
	e := &Emulator{
		t:        t,
		apiKey:   apiKey,
		accounts: map[string]*storedAccount{},
		clock:    time.Now().UTC().Truncate(time.Second),
	}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	e.URL = srv.URL
	t.Cleanup(srv.Close)
	return e
}

// AddAccount adds a connected account, replacing any account with the same
// ID (its created_at is then kept). Empty fields get the defaults documented
// on [Account]. The Val map is copied deeply.
func (e *Emulator) AddAccount(a Account) {
	if a.ID == "" {
		a.ID = "ca_" + randomID()
	}
	if a.AuthConfigID == "" {
		a.AuthConfigID = "ac_" + randomID()
	}
	if a.UserID == "" {
		a.UserID = "default"
	}
	if a.Status == "" {
		a.Status = statusActive
	}
	if a.AuthScheme == "" {
		a.AuthScheme = "OAUTH2"
	}
	a.Val = copyMap(a.Val)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.tick()
	created := now
	if old := e.accounts[a.ID]; old != nil {
		created = old.createdAt
	}
	e.accounts[a.ID] = &storedAccount{Account: a, createdAt: created, updatedAt: now}
}

// SetStatus changes an account's status (status, state.val.status and
// is_disabled), as when Composio marks a connection EXPIRED or a user
// disables it (INACTIVE). updated_at moves on.
func (e *Emulator) SetStatus(id, status string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.accounts[id]
	if a == nil {
		e.t.Errorf("composio: SetStatus: no account %s", id)
		return
	}
	a.Status = status
	a.updatedAt = e.tick()
}

// SetVal replaces an account's state.val, as when Composio has refreshed its
// token. The map is copied deeply; its "status" key, if any, is overridden by
// the account's status. updated_at moves on.
func (e *Emulator) SetVal(id string, val map[string]any) {
	val = copyMap(val)
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.accounts[id]
	if a == nil {
		e.t.Errorf("composio: SetVal: no account %s", id)
		return
	}
	a.Val = val
	a.updatedAt = e.tick()
}

// FailRequests makes the next n requests, to any path, answer status with
// Composio's error body: the flat {"message":"Rate limit exceeded. …"} for
// 429, the {"error":{…}} envelope otherwise. A Retry-After header carrying
// retryAfter is added when retryAfter is not empty. n < 0 fails every request
// until FailRequests(0, …) resets it. Forced failures happen before the API
// key is checked; they still count in Requests and, for list requests, in
// LastQuery.
func (e *Emulator) FailRequests(n int, status int, retryAfter string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failLeft = n
	e.failStatus = status
	e.failRetry = retryAfter
}

// Requests is the number of requests received, to any path, whatever their
// outcome.
func (e *Emulator) Requests() int64 { return e.requests.Load() }

// LastQuery is a copy of the query parameters of the last list request
// (GET …/connected_accounts) received, whatever its outcome; nil before the
// first one.
func (e *Emulator) LastQuery() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastQuery == nil {
		return nil
	}
	return cloneValues(e.lastQuery)
}

// tick advances the logical clock and returns the new time. Callers hold
// e.mu.
func (e *Emulator) tick() time.Time {
	e.clock = e.clock.Add(time.Second)
	return e.clock
}

// route splits a request path into the endpoint it names: list (id == ""),
// get (id != ""), or none (ok false).
func route(path string) (id string, ok bool) {
	rest, found := strings.CutPrefix(path, "/api/")
	if !found {
		return "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || (parts[0] != "v3" && parts[0] != "v3.1") || parts[1] != "connected_accounts" {
		return "", false
	}
	switch {
	case len(parts) == 2, len(parts) == 3 && parts[2] == "":
		return "", true
	case len(parts) == 3:
		return parts[2], true
	}
	return "", false
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	id, known := route(r.URL.Path)
	isList := known && id == "" && r.Method == http.MethodGet

	e.mu.Lock()
	if isList {
		e.lastQuery = cloneValues(r.URL.Query())
	}
	fail, failStatus, failRetry := false, 0, ""
	if e.failLeft != 0 {
		fail, failStatus, failRetry = true, e.failStatus, e.failRetry
		if e.failLeft > 0 {
			e.failLeft--
		}
	}
	e.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit", strconv.Itoa(rateLimitTotal))
	h.Set("X-RateLimit-Window-Size", rateLimitWindow)
	remaining := max(0, rateLimitTotal-e.requests.Load())
	if fail && failStatus == http.StatusTooManyRequests {
		remaining = 0
	}
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(remaining, 10))

	if fail {
		if failRetry != "" {
			h.Set("Retry-After", failRetry)
		}
		if failStatus == http.StatusTooManyRequests {
			writeJSON(w, failStatus, map[string]any{
				"message": "Rate limit exceeded. Limit: " + strconv.Itoa(rateLimitTotal) + " requests per 1 minute",
			})
			return
		}
		writeHTTPError(w, failStatus)
		return
	}

	key := r.Header.Get("x-api-key")
	switch {
	case key == "":
		writeError(w, http.StatusUnauthorized, 906, "Auth_NoAuthProvided", "No authentication provided", "")
		return
	case subtle.ConstantTimeCompare([]byte(key), []byte(e.apiKey)) != 1:
		writeError(w, http.StatusUnauthorized, 801, "APIKey_InvalidAPIKey", "Invalid API key: "+maskKey(key),
			"Please check you are using a valid API key.")
		return
	}

	switch {
	case !known:
		writeHTTPError(w, http.StatusNotFound)
	case r.Method != http.MethodGet:
		h.Set("Allow", http.MethodGet)
		writeHTTPError(w, http.StatusMethodNotAllowed)
	case id == "":
		e.handleList(w, r.URL.Query())
	default:
		e.handleGet(w, id)
	}
}

// listParams are the parsed query parameters of a list request.
type listParams struct {
	toolkits, statuses, users, authConfigs, ids []string
	offset, limit                               int
	byUpdated, ascending                        bool
}

func parseList(q url.Values) (listParams, string) {
	p := listParams{
		toolkits:    multi(q, "toolkit_slugs"),
		statuses:    multi(q, "statuses"),
		users:       multi(q, "user_ids"),
		authConfigs: multi(q, "auth_config_ids"),
		ids:         multi(q, "connected_account_ids"),
		limit:       defaultLimit,
	}
	for i, s := range p.toolkits {
		p.toolkits[i] = strings.ToLower(s)
	}
	if s := q.Get("limit"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 1 || f != math.Trunc(f) || f > math.MaxInt32 {
			return p, "Invalid limit: must be a whole number greater than 0"
		}
		p.limit = int(f)
	}
	if s := q.Get("cursor"); s != "" {
		off, ok := decodeCursor(s)
		if !ok {
			return p, "Invalid cursor"
		}
		p.offset = off
	}
	switch q.Get("order_by") {
	case "", "created_at":
	case "updated_at":
		p.byUpdated = true
	default:
		return p, "Invalid order_by: expected created_at or updated_at"
	}
	switch q.Get("order_direction") {
	case "", "desc":
	case "asc":
		p.ascending = true
	default:
		return p, "Invalid order_direction: expected asc or desc"
	}
	return p, ""
}

func (p listParams) match(a *storedAccount) bool {
	in := func(filter []string, v string) bool { return len(filter) == 0 || slices.Contains(filter, v) }
	return in(p.toolkits, strings.ToLower(a.ToolkitSlug)) &&
		in(p.statuses, a.Status) &&
		in(p.users, a.UserID) &&
		in(p.authConfigs, a.AuthConfigID) &&
		in(p.ids, a.ID)
}

func (e *Emulator) handleList(w http.ResponseWriter, q url.Values) {
	p, msg := parseList(q)
	if msg != "" {
		writeError(w, http.StatusBadRequest, 600, "ConnectedAccount_BadRequest", msg, "")
		return
	}
	e.mu.Lock()
	var matched []*storedAccount
	for _, a := range e.accounts {
		if p.match(a) {
			matched = append(matched, a)
		}
	}
	slices.SortFunc(matched, func(a, b *storedAccount) int {
		ta, tb := a.createdAt, b.createdAt
		if p.byUpdated {
			ta, tb = a.updatedAt, b.updatedAt
		}
		c := ta.Compare(tb)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if !p.ascending {
			c = -c
		}
		return c
	})
	total := len(matched)
	start := min(p.offset, total)
	end := min(start+p.limit, total)
	items := make([]itemJSON, 0, end-start)
	for _, a := range matched[start:end] {
		items = append(items, render(a))
	}
	e.mu.Unlock()

	var next *string
	if end < total {
		c := encodeCursor(end)
		next = &c
	}
	writeJSON(w, http.StatusOK, listJSON{
		Items:       items,
		NextCursor:  next,
		TotalPages:  (total + p.limit - 1) / p.limit,
		CurrentPage: p.offset/p.limit + 1,
		TotalItems:  total,
	})
}

func (e *Emulator) handleGet(w http.ResponseWriter, id string) {
	e.mu.Lock()
	a := e.accounts[id]
	var body singleJSON
	if a != nil {
		body.itemJSON = render(a)
		body.Params = body.Data
	}
	e.mu.Unlock()
	if a == nil {
		writeError(w, http.StatusNotFound, 601, "ConnectedAccount_NotFound", "Connected account not found",
			"Check the connected account ID, and that the API key belongs to the project that owns it.")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// JSON shapes.

type listJSON struct {
	Items       []itemJSON `json:"items"`
	NextCursor  *string    `json:"next_cursor"`
	TotalPages  int        `json:"total_pages"`
	CurrentPage int        `json:"current_page"`
	TotalItems  int        `json:"total_items"`
}

type itemJSON struct {
	Toolkit      toolkitJSON      `json:"toolkit"`
	AuthConfig   authConfigJSON   `json:"auth_config"`
	ID           string           `json:"id"`
	AuthScheme   string           `json:"authScheme"`
	WordID       *string          `json:"word_id"`
	Alias        *string          `json:"alias"`
	UserID       string           `json:"user_id"`
	Status       string           `json:"status"`
	Experimental experimentalJSON `json:"experimental"`
	CreatedAt    string           `json:"created_at"`
	UpdatedAt    string           `json:"updated_at"`
	State        stateJSON        `json:"state"`
	Data         map[string]any   `json:"data"`
	StatusReason *string          `json:"status_reason"`
	IsDisabled   bool             `json:"is_disabled"`
}

// singleJSON is the get-by-ID body: a list item plus the deprecated params.
type singleJSON struct {
	itemJSON
	Params map[string]any `json:"params"`
}

type toolkitJSON struct {
	Slug string `json:"slug"`
}

type authConfigJSON struct {
	ID                string `json:"id"`
	AuthScheme        string `json:"auth_scheme"`
	IsComposioManaged bool   `json:"is_composio_managed"`
	IsDisabled        bool   `json:"is_disabled"`
}

type experimentalJSON struct {
	AccountType string `json:"account_type"`
}

type stateJSON struct {
	AuthScheme string         `json:"authScheme"`
	Val        map[string]any `json:"val"`
}

// render builds an account's JSON item. Callers hold e.mu.
func render(a *storedAccount) itemJSON {
	val := copyMap(a.Val)
	if val == nil {
		val = map[string]any{}
	}
	if a.ComposioManaged {
		for k := range val {
			if secretFields[strings.ToLower(k)] {
				val[k] = redacted
			}
		}
	}
	val["status"] = a.Status
	return itemJSON{
		Toolkit: toolkitJSON{Slug: a.ToolkitSlug},
		AuthConfig: authConfigJSON{
			ID:                a.AuthConfigID,
			AuthScheme:        a.AuthScheme,
			IsComposioManaged: a.ComposioManaged,
		},
		ID:           a.ID,
		AuthScheme:   a.AuthScheme,
		UserID:       a.UserID,
		Status:       a.Status,
		Experimental: experimentalJSON{AccountType: "PRIVATE"},
		CreatedAt:    a.createdAt.Format(timeLayout),
		UpdatedAt:    a.updatedAt.Format(timeLayout),
		State:        stateJSON{AuthScheme: a.AuthScheme, Val: val},
		Data:         copyMap(val),
		IsDisabled:   a.Status == statusInactive,
	}
}

// Errors.

type errorJSON struct {
	Error errorBodyJSON `json:"error"`
}

type errorBodyJSON struct {
	Message      string `json:"message"`
	Code         int    `json:"code"`
	Slug         string `json:"slug"`
	Status       int    `json:"status"`
	RequestID    string `json:"request_id"`
	SuggestedFix string `json:"suggested_fix"`
}

func writeError(w http.ResponseWriter, status, code int, slug, message, fix string) {
	writeJSON(w, status, errorJSON{Error: errorBodyJSON{
		Message:      message,
		Code:         code,
		Slug:         slug,
		Status:       status,
		RequestID:    uuid.NewString(),
		SuggestedFix: fix,
	}})
}

// writeHTTPError answers a generic HTTP error: code 10000+status, slug
// "HTTP_" + the status text without spaces.
func writeHTTPError(w http.ResponseWriter, status int) {
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	slug := "HTTP_" + strings.NewReplacer(" ", "", "-", "", "'", "").Replace(text)
	writeError(w, status, 10000+status, slug, text, "")
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	raw, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// Helpers.

// multi returns the values of an array query parameter sent either as
// repeated keys or comma-separated (or both), without empty entries.
func multi(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// maskKey masks an API key the way Composio echoes it: "ak_**" + the last
// four characters.
func maskKey(key string) string {
	prefix := ""
	if i := strings.Index(key, "_"); i >= 0 && i < 8 {
		prefix = key[:i+1]
	}
	last := key
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	return prefix + "**" + last
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns a 12-character nanoid-like string.
func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, s := range v {
		out[k] = slices.Clone(s)
	}
	return out
}

// copyMap copies a JSON-like map deeply (nested maps and slices); nil stays
// nil.
func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	case []string:
		return slices.Clone(x)
	default:
		return v
	}
}
