package pipedream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID     = "pd-client-id"
	testClientSecret = "pd-client-secret"
	testProject      = "proj_abc123"
)

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("body %q is not a JSON object: %v", raw, err)
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func tokenRequest(t *testing.T, e *Emulator, body map[string]string) response {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/v1/oauth/token", strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func getToken(t *testing.T, e *Emulator) string {
	t.Helper()
	r := tokenRequest(t, e, map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret})
	if r.status != http.StatusOK {
		t.Fatalf("token: status %d body %v", r.status, r.body)
	}
	return r.body["access_token"].(string)
}

func readAccount(t *testing.T, e *Emulator, project, account, token, env string, includeCreds bool) response {
	t.Helper()
	u := e.URL + "/v1/connect/" + project + "/accounts/" + account
	if includeCreds {
		u += "?include_credentials=true"
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if env != "" {
		req.Header.Set("x-pd-environment", env)
	}
	return do(t, req)
}

func TestTokenEndpoint(t *testing.T) {
	form := func(v url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	jsonReq := func(s string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "", strings.NewReader(s))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	tests := []struct {
		name      string
		req       func() *http.Request
		reject    bool
		lifetime  time.Duration
		status    int
		errCode   string
		expiresIn float64
		scope     string
	}{
		{
			name: "json body",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			status:    200,
			expiresIn: 3600,
		},
		{
			name: "json body with scope",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret","scope":"connect:accounts:read"}`)
			},
			status:    200,
			expiresIn: 3600,
			scope:     "connect:accounts:read",
		},
		{
			name: "form body",
			req: func() *http.Request {
				return form(url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret}})
			},
			status:    200,
			expiresIn: 3600,
		},
		{
			name: "form body with basic auth",
			req: func() *http.Request {
				r := form(url.Values{"grant_type": {"client_credentials"}})
				r.SetBasicAuth(testClientID, testClientSecret)
				return r
			},
			status:    200,
			expiresIn: 3600,
		},
		{
			name: "custom lifetime",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			lifetime:  90 * time.Second,
			status:    200,
			expiresIn: 90,
		},
		{
			name: "sub-second lifetime reports one second",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			lifetime:  200 * time.Millisecond,
			status:    200,
			expiresIn: 1,
		},
		{
			name: "wrong secret",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"nope"}`)
			},
			status:  401,
			errCode: "invalid_client",
		},
		{
			name: "unknown client",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"other","client_secret":"pd-client-secret"}`)
			},
			status:  401,
			errCode: "invalid_client",
		},
		{
			name:    "no credentials",
			req:     func() *http.Request { return jsonReq(`{"grant_type":"client_credentials"}`) },
			status:  401,
			errCode: "invalid_client",
		},
		{
			name: "rejected client",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			reject:  true,
			status:  401,
			errCode: "invalid_client",
		},
		{
			name: "missing grant type",
			req: func() *http.Request {
				return jsonReq(`{"client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			status:  400,
			errCode: "invalid_request",
		},
		{
			name: "other grant type",
			req: func() *http.Request {
				return jsonReq(`{"grant_type":"password","client_id":"pd-client-id","client_secret":"pd-client-secret"}`)
			},
			status:  400,
			errCode: "unsupported_grant_type",
		},
		{
			name:    "malformed json",
			req:     func() *http.Request { return jsonReq(`{"grant_type":`) },
			status:  400,
			errCode: "invalid_request",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t, testClientID, testClientSecret)
			if tc.lifetime != 0 {
				e.SetTokenLifetime(tc.lifetime)
			}
			e.RejectClient(tc.reject)
			req := tc.req()
			req.URL, _ = url.Parse(e.URL + "/v1/oauth/token")
			before := time.Now().Unix()
			r := do(t, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %v", r.status, tc.status, r.body)
			}
			if got := e.TokenRequests(); got != 1 {
				t.Errorf("TokenRequests = %d, want 1", got)
			}
			if tc.status != 200 {
				if r.body["error"] != tc.errCode {
					t.Errorf("error = %v, want %s", r.body["error"], tc.errCode)
				}
				if s, _ := r.body["error_description"].(string); s == "" {
					t.Errorf("missing error_description: %v", r.body)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tok, _ := r.body["access_token"].(string); len(tok) < 32 {
				t.Errorf("access_token %q too short", tok)
			}
			if r.body["token_type"] != "Bearer" {
				t.Errorf("token_type = %v", r.body["token_type"])
			}
			if r.body["expires_in"] != tc.expiresIn {
				t.Errorf("expires_in = %v, want %v", r.body["expires_in"], tc.expiresIn)
			}
			if ca, _ := r.body["created_at"].(float64); int64(ca) < before || int64(ca) > time.Now().Unix() {
				t.Errorf("created_at = %v", r.body["created_at"])
			}
			if tc.scope != "" && r.body["scope"] != tc.scope {
				t.Errorf("scope = %v, want %s", r.body["scope"], tc.scope)
			}
			if tc.scope == "" {
				if _, ok := r.body["scope"]; ok {
					t.Errorf("unexpected scope in %v", r.body)
				}
			}
		})
	}
}

func TestTokensAreRandom(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	a, b := getToken(t, e), getToken(t, e)
	if a == b {
		t.Fatalf("two tokens are equal: %s", a)
	}
	if e.TokenRequests() != 2 {
		t.Errorf("TokenRequests = %d", e.TokenRequests())
	}
}

func TestRejectClientToggles(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	e.RejectClient(true)
	if r := tokenRequest(t, e, map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret}); r.status != 401 {
		t.Fatalf("status %d", r.status)
	}
	e.RejectClient(false)
	getToken(t, e)
}

func TestAccountRead(t *testing.T) {
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	byoa := map[string]any{
		"oauth_client_id":     "cid",
		"oauth_client_secret": "csecret",
		"oauth_access_token":  "source-access",
		"oauth_refresh_token": "source-refresh",
		"oauth_uid":           "uid-1",
	}
	accounts := []Account{
		{ID: "apn_byoa", Name: "octocat", ExternalID: "user-1", AppSlug: "github", AppName: "GitHub", Healthy: true, Credentials: byoa, ExpiresAt: &expires},
		{ID: "apn_keys", ExternalID: "user-1", AppSlug: "openai", Healthy: true, Credentials: map[string]any{"api_key": "sk-test"}},
		{ID: "apn_pdoauth", ExternalID: "user-2", AppSlug: "slack", AppName: "Slack", Healthy: true},
		{ID: "apn_dev", ExternalID: "user-3", AppSlug: "github", Environment: envDevelopment, Healthy: true, Credentials: map[string]any{"oauth_access_token": "dev-access"}},
		{ID: "apn_dead", ExternalID: "user-4", AppSlug: "github", Dead: true, Error: "refresh token revoked", Credentials: map[string]any{"oauth_access_token": "x"}},
	}
	tests := []struct {
		name         string
		project      string
		account      string
		token        string // "" = valid token, "-" = no header, other = literal
		env          string
		includeCreds bool
		status       int
		errMsg       string
		check        func(t *testing.T, body map[string]any)
	}{
		{
			name: "byoa with credentials", project: testProject, account: "apn_byoa", env: envProduction, includeCreds: true, status: 200,
			check: func(t *testing.T, b map[string]any) {
				want := map[string]any{"id": "apn_byoa", "name": "octocat", "external_id": "user-1", "healthy": true, "dead": false, "expires_at": "2030-01-02T03:04:05.000Z", "error": nil}
				for k, v := range want {
					if b[k] != v {
						t.Errorf("%s = %#v, want %#v", k, b[k], v)
					}
				}
				app := b["app"].(map[string]any)
				if app["name_slug"] != "github" || app["name"] != "GitHub" || app["auth_type"] != "oauth" || app["id"] == "" {
					t.Errorf("app = %v", app)
				}
				creds := b["credentials"].(map[string]any)
				for k, v := range byoa {
					if creds[k] != v {
						t.Errorf("credentials[%s] = %v, want %v", k, creds[k], v)
					}
				}
				for _, k := range []string{"created_at", "updated_at"} {
					if _, err := time.Parse(time.RFC3339, b[k].(string)); err != nil {
						t.Errorf("%s: %v", k, err)
					}
				}
				for _, k := range []string{"last_refreshed_at", "next_refresh_at"} {
					if v, ok := b[k]; !ok || v != nil {
						t.Errorf("%s = %v (present %v), want null", k, v, ok)
					}
				}
				if _, ok := b["data"]; ok {
					t.Errorf("account must not be wrapped in data")
				}
			},
		},
		{
			name: "without include_credentials", project: testProject, account: "apn_byoa", env: envProduction, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if _, ok := b["credentials"]; ok {
					t.Errorf("credentials present without include_credentials: %v", b)
				}
			},
		},
		{
			name: "key based app", project: testProject, account: "apn_keys", env: envProduction, includeCreds: true, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["credentials"].(map[string]any)["api_key"] != "sk-test" {
					t.Errorf("credentials = %v", b["credentials"])
				}
				if app := b["app"].(map[string]any); app["auth_type"] != "keys" || app["name"] != "openai" {
					t.Errorf("app = %v", app)
				}
				if b["name"] != nil || b["expires_at"] != nil {
					t.Errorf("name/expires_at should be null: %v", b)
				}
			},
		},
		{
			name: "pipedream default oauth omits credentials", project: testProject, account: "apn_pdoauth", env: envProduction, includeCreds: true, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if _, ok := b["credentials"]; ok {
					t.Errorf("credentials present for default-OAuth account: %v", b)
				}
				if b["app"].(map[string]any)["auth_type"] != "oauth" {
					t.Errorf("app = %v", b["app"])
				}
			},
		},
		{
			name: "missing environment header means production", project: testProject, account: "apn_byoa", includeCreds: true, status: 200,
		},
		{
			name: "development account with development header", project: testProject, account: "apn_dev", env: envDevelopment, includeCreds: true, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["credentials"].(map[string]any)["oauth_access_token"] != "dev-access" {
					t.Errorf("credentials = %v", b["credentials"])
				}
			},
		},
		{
			name: "development account invisible in production", project: testProject, account: "apn_dev", env: envProduction, status: 404, errMsg: "record not found",
		},
		{
			name: "development account invisible without header", project: testProject, account: "apn_dev", status: 404, errMsg: "record not found",
		},
		{
			name: "production account invisible in development", project: testProject, account: "apn_byoa", env: envDevelopment, status: 404, errMsg: "record not found",
		},
		{
			name: "dead account with error", project: testProject, account: "apn_dead", env: envProduction, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["dead"] != true || b["healthy"] != false || b["error"] != "refresh token revoked" {
					t.Errorf("body = %v", b)
				}
			},
		},
		{
			name: "unknown account", project: testProject, account: "apn_nope", env: envProduction, status: 404, errMsg: "record not found",
		},
		{
			name: "wrong project", project: "proj_other", account: "apn_byoa", env: envProduction, status: 404, errMsg: "record not found",
		},
		{
			name: "invalid environment", project: testProject, account: "apn_byoa", env: "staging", status: 400, errMsg: "invalid x-pd-environment header",
		},
		{
			name: "no authorization header", project: testProject, account: "apn_byoa", token: "-", env: envProduction, status: 401, errMsg: "invalid or expired access token",
		},
		{
			name: "unknown token", project: testProject, account: "apn_byoa", token: "not-a-token", env: envProduction, status: 401, errMsg: "invalid or expired access token",
		},
		{
			name: "client secret is not a token", project: testProject, account: "apn_byoa", token: testClientSecret, env: envProduction, status: 401, errMsg: "invalid or expired access token",
		},
	}
	e := New(t, testClientID, testClientSecret)
	for _, a := range accounts {
		e.AddAccount(testProject, a)
	}
	valid := getToken(t, e)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token
			switch tok {
			case "":
				tok = valid
			case "-":
				tok = ""
			}
			before := e.AccountRequests()
			r := readAccount(t, e, tc.project, tc.account, tok, tc.env, tc.includeCreds)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %v", r.status, tc.status, r.body)
			}
			if got := e.AccountRequests() - before; got != 1 {
				t.Errorf("AccountRequests grew by %d, want 1", got)
			}
			if got := e.LastEnvironment(); got != tc.env {
				t.Errorf("LastEnvironment = %q, want %q", got, tc.env)
			}
			if tc.errMsg != "" {
				if len(r.body) != 1 || r.body["error"] != tc.errMsg {
					t.Errorf("body = %v, want {\"error\":%q}", r.body, tc.errMsg)
				}
			}
			if tc.check != nil {
				tc.check(t, r.body)
			}
		})
	}
}

func TestIncludeCredentialsValues(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github", Credentials: map[string]any{"oauth_access_token": "a"}})
	tok := getToken(t, e)
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"include_credentials=true", true},
		{"include_credentials=1", true},
		{"include_credentials=TRUE", true},
		{"include_credentials=false", false},
		{"include_credentials=0", false},
		{"", false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.URL+"/v1/connect/"+testProject+"/accounts/apn_1?"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			r := do(t, req)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if _, got := r.body["credentials"]; got != tc.want {
				t.Errorf("credentials present = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github"})
	e.SetTokenLifetime(time.Second)
	short := getToken(t, e)
	e.SetTokenLifetime(time.Hour)
	long := getToken(t, e)

	if r := readAccount(t, e, testProject, "apn_1", short, "", false); r.status != 200 {
		t.Fatalf("fresh short-lived token: status %d", r.status)
	}
	time.Sleep(1100 * time.Millisecond)
	r := readAccount(t, e, testProject, "apn_1", short, "", false)
	if r.status != 401 || r.body["error"] != "invalid or expired access token" {
		t.Fatalf("expired token: status %d body %v", r.status, r.body)
	}
	if r := readAccount(t, e, testProject, "apn_1", long, "", false); r.status != 200 {
		t.Fatalf("token issued with the later lifetime: status %d", r.status)
	}
}

func TestSetCredentials(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	creds := map[string]any{"oauth_access_token": "v1"}
	e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github", Credentials: creds})
	creds["oauth_access_token"] = "mutated by caller" // AddAccount copies
	tok := getToken(t, e)
	first := readAccount(t, e, testProject, "apn_1", tok, "", true)
	if got := first.body["credentials"].(map[string]any)["oauth_access_token"]; got != "v1" {
		t.Fatalf("initial access token %v, want v1", got)
	}

	steps := []struct {
		name string
		set  map[string]any
		want any // nil: credentials absent
	}{
		{name: "refreshed", set: map[string]any{"oauth_access_token": "v2", "oauth_refresh_token": "r2"}, want: "v2"},
		{name: "refreshed again", set: map[string]any{"oauth_access_token": "v3"}, want: "v3"},
		{name: "now on pipedream oauth", set: nil, want: nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			time.Sleep(2 * time.Millisecond) // let updated_at move
			e.SetCredentials(testProject, "apn_1", s.set)
			r := readAccount(t, e, testProject, "apn_1", tok, "", true)
			creds, present := r.body["credentials"].(map[string]any)
			switch {
			case s.want == nil && present:
				t.Errorf("credentials present: %v", creds)
			case s.want != nil && (!present || creds["oauth_access_token"] != s.want):
				t.Errorf("credentials %v, want access token %v", creds, s.want)
			}
			if r.body["updated_at"] == first.body["updated_at"] {
				t.Errorf("updated_at did not move")
			}
			if r.body["created_at"] != first.body["created_at"] {
				t.Errorf("created_at moved")
			}
		})
	}
}

func TestFailAccountReads(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		status     int
		retryAfter string
		reads      int
		wantFailed int
	}{
		{name: "429 twice with Retry-After", n: 2, status: 429, retryAfter: "7", reads: 4, wantFailed: 2},
		{name: "503 once without Retry-After", n: 1, status: 503, reads: 3, wantFailed: 1},
		{name: "500 until reset", n: -1, status: 500, reads: 5, wantFailed: 5},
		{name: "n=0 fails nothing", n: 0, status: 429, retryAfter: "1", reads: 2, wantFailed: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t, testClientID, testClientSecret)
			e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github"})
			tok := getToken(t, e)
			e.FailAccountReads(tc.n, tc.status, tc.retryAfter)
			failed := 0
			for i := 0; i < tc.reads; i++ {
				r := readAccount(t, e, testProject, "apn_1", tok, envProduction, true)
				if r.status == 200 {
					if failed < tc.wantFailed {
						t.Fatalf("read %d succeeded before %d failures", i, tc.wantFailed)
					}
					continue
				}
				failed++
				if r.status != tc.status {
					t.Fatalf("read %d: status %d, want %d", i, r.status, tc.status)
				}
				if r.header.Get("Retry-After") != tc.retryAfter {
					t.Errorf("Retry-After = %q, want %q", r.header.Get("Retry-After"), tc.retryAfter)
				}
				if r.body["error"] != http.StatusText(tc.status) || len(r.body) != 1 {
					t.Errorf("body = %v", r.body)
				}
			}
			if failed != tc.wantFailed {
				t.Errorf("failed %d reads, want %d", failed, tc.wantFailed)
			}
			if e.AccountRequests() != int64(tc.reads) {
				t.Errorf("AccountRequests = %d, want %d", e.AccountRequests(), tc.reads)
			}
			if tc.n < 0 {
				e.FailAccountReads(0, 0, "")
				if r := readAccount(t, e, testProject, "apn_1", tok, envProduction, true); r.status != 200 {
					t.Errorf("after reset: status %d", r.status)
				}
			}
		})
	}
}

func TestForcedFailureBeforeAuth(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	e.FailAccountReads(1, 429, "3")
	r := readAccount(t, e, testProject, "apn_x", "bogus", envDevelopment, false)
	if r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if e.LastEnvironment() != envDevelopment {
		t.Errorf("LastEnvironment = %q", e.LastEnvironment())
	}
	if r := readAccount(t, e, testProject, "apn_x", "bogus", "", false); r.status != 401 {
		t.Errorf("after the forced failure: status %d, want 401", r.status)
	}
	if e.LastEnvironment() != "" {
		t.Errorf("LastEnvironment = %q, want empty", e.LastEnvironment())
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		wantErr bool
	}{
		{name: "token request honours context", path: "token", timeout: 50 * time.Millisecond, wantErr: true},
		{name: "account read honours context", path: "account", timeout: 50 * time.Millisecond, wantErr: true},
		{name: "token request waits out delay", path: "token", timeout: 5 * time.Second},
		{name: "account read waits out delay", path: "account", timeout: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t, testClientID, testClientSecret)
			e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github"})
			tok := getToken(t, e)
			delay := 300 * time.Millisecond
			if tc.wantErr {
				delay = 10 * time.Second // Cleanup must not wait for it
			}
			e.SetDelay(delay)
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			var req *http.Request
			if tc.path == "token" {
				req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/v1/oauth/token",
					strings.NewReader(`{"grant_type":"client_credentials","client_id":"pd-client-id","client_secret":"pd-client-secret"}`))
				req.Header.Set("Content-Type", "application/json")
			} else {
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/connect/"+testProject+"/accounts/apn_1", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			elapsed := time.Since(start)
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded despite %v delay", delay)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want deadline exceeded", err)
				}
				if elapsed > 2*time.Second {
					t.Errorf("took %v", elapsed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			if elapsed < delay {
				t.Errorf("answered after %v, before the %v delay", elapsed, delay)
			}
		})
	}
}

func TestRoutingAndMethods(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v1/oauth/token", 405},
		{http.MethodPost, "/v1/connect/" + testProject + "/accounts/apn_1", 405},
		{http.MethodGet, "/v1/connect/" + testProject + "/accounts", 404},
		{http.MethodGet, "/v2/whatever", 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.URL+tc.path, nil)
			r := do(t, req)
			if r.status != tc.status {
				t.Errorf("status %d, want %d", r.status, tc.status)
			}
			if _, ok := r.body["error"]; !ok {
				t.Errorf("body %v has no error", r.body)
			}
		})
	}
	if e.TokenRequests() != 0 || e.AccountRequests() != 0 {
		t.Errorf("counters moved: %d %d", e.TokenRequests(), e.AccountRequests())
	}
}

func TestConcurrentUse(t *testing.T) {
	e := New(t, testClientID, testClientSecret)
	e.AddAccount(testProject, Account{ID: "apn_1", AppSlug: "github", Credentials: map[string]any{"oauth_access_token": "a"}})
	// Helpers that call t.Fatal must stay on the test goroutine, so the
	// workers use plain net/http and report with t.Errorf.
	work := func() error {
		resp, err := http.Post(e.URL+"/v1/oauth/token", "application/x-www-form-urlencoded",
			strings.NewReader("grant_type=client_credentials&client_id=pd-client-id&client_secret=pd-client-secret"))
		if err != nil {
			return err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil {
			return err
		}
		e.SetCredentials(testProject, "apn_1", map[string]any{"oauth_access_token": "b"})
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/v1/connect/"+testProject+"/accounts/apn_1?include_credentials=true", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("x-pd-environment", envProduction)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		_ = e.LastEnvironment()
		return nil
	}
	var wg sync.WaitGroup
	const workers, rounds = 8, 10
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < rounds; j++ {
				if err := work(); err != nil {
					t.Errorf("worker: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e.TokenRequests() != workers*rounds || e.AccountRequests() != workers*rounds {
		t.Errorf("counters %d %d, want %d", e.TokenRequests(), e.AccountRequests(), workers*rounds)
	}
}
