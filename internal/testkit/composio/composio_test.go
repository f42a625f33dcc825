package composio

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

const testKey = "ak_test_project_key_1234"

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func get(t *testing.T, rawURL, key string) response {
	t.Helper()
	return do(t, http.MethodGet, rawURL, key)
}

func do(t *testing.T, method, rawURL, key string) response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, rawURL, raw, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body, raw: string(raw)}
}

func listURL(e *Emulator, q string) string {
	u := e.URL + "/api/v3/connected_accounts"
	if q != "" {
		u += "?" + q
	}
	return u
}

func itemIDs(t *testing.T, r response) []string {
	t.Helper()
	items, ok := r.body["items"].([]any)
	if !ok {
		t.Fatalf("no items array in %s", r.raw)
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func errorObj(t *testing.T, r response) map[string]any {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.raw)
	}
	return e
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestAuthentication(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_one", ToolkitSlug: "github"})
	tests := []struct {
		name    string
		path    string
		key     string
		status  int
		code    float64
		slug    string
		message string
	}{
		{"list without key", "/api/v3/connected_accounts", "", 401, 906, "Auth_NoAuthProvided", "No authentication provided"},
		{"list with wrong key", "/api/v3/connected_accounts", "ak_wrongwrong9876", 401, 801, "APIKey_InvalidAPIKey", "Invalid API key: ak_**9876"},
		{"get without key", "/api/v3/connected_accounts/ca_one", "", 401, 906, "Auth_NoAuthProvided", "No authentication provided"},
		{"get with wrong key", "/api/v3/connected_accounts/ca_one", "ak_nope0000", 401, 801, "APIKey_InvalidAPIKey", "Invalid API key: ak_**0000"},
		{"unknown path with wrong key", "/api/v3/tools", "ak_nope0000", 401, 801, "APIKey_InvalidAPIKey", "Invalid API key: ak_**0000"},
		{"list with key", "/api/v3/connected_accounts", testKey, 200, 0, "", ""},
		{"get with key", "/api/v3/connected_accounts/ca_one", testKey, 200, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, e.URL+tc.path, tc.key)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.raw)
			}
			if tc.status == 200 {
				return
			}
			eo := errorObj(t, r)
			if eo["code"] != tc.code || eo["slug"] != tc.slug || eo["message"] != tc.message || eo["status"] != float64(tc.status) {
				t.Errorf("error = %v", eo)
			}
			if id, _ := eo["request_id"].(string); id == "" {
				t.Errorf("no request_id in %v", eo)
			}
			if _, ok := eo["suggested_fix"].(string); !ok {
				t.Errorf("no suggested_fix in %v", eo)
			}
			if tc.key != "" && strings.Contains(r.raw, tc.key) {
				t.Errorf("body echoes the full key: %s", r.raw)
			}
		})
	}
}

func TestListItemShape(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{
		ID:           "ca_gh1",
		UserID:       "user-1",
		ToolkitSlug:  "github",
		AuthConfigID: "ac_gh",
		Val: map[string]any{
			"access_token":  "gho_secret",
			"refresh_token": "ghr_secret",
			"expires_in":    3600,
			"token_type":    "bearer",
			"scope":         "repo",
		},
	})
	r := get(t, listURL(e, ""), testKey)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	wantTop := []string{"current_page", "items", "next_cursor", "total_items", "total_pages"}
	if got := keys(r.body); !reflect.DeepEqual(got, wantTop) {
		t.Errorf("top-level keys %v, want %v", got, wantTop)
	}
	if r.body["next_cursor"] != nil || r.body["total_pages"] != 1.0 || r.body["current_page"] != 1.0 || r.body["total_items"] != 1.0 {
		t.Errorf("page fields: %s", r.raw)
	}
	item := r.body["items"].([]any)[0].(map[string]any)
	wantItem := []string{"alias", "authScheme", "auth_config", "created_at", "data", "experimental", "id", "is_disabled",
		"state", "status", "status_reason", "toolkit", "updated_at", "user_id", "word_id"}
	if got := keys(item); !reflect.DeepEqual(got, wantItem) {
		t.Errorf("item keys %v, want %v", got, wantItem)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"id", item["id"], "ca_gh1"},
		{"user_id", item["user_id"], "user-1"},
		{"status", item["status"], "ACTIVE"},
		{"authScheme", item["authScheme"], "OAUTH2"},
		{"word_id", item["word_id"], nil},
		{"alias", item["alias"], nil},
		{"status_reason", item["status_reason"], nil},
		{"is_disabled", item["is_disabled"], false},
		{"toolkit", item["toolkit"], map[string]any{"slug": "github"}},
		{"auth_config", item["auth_config"], map[string]any{"id": "ac_gh", "auth_scheme": "OAUTH2", "is_composio_managed": false, "is_disabled": false}},
		{"experimental", item["experimental"], map[string]any{"account_type": "PRIVATE"}},
		{"state", item["state"], map[string]any{"authScheme": "OAUTH2", "val": map[string]any{
			"status": "ACTIVE", "access_token": "gho_secret", "refresh_token": "ghr_secret",
			"expires_in": 3600.0, "token_type": "bearer", "scope": "repo",
		}}},
		{"data", item["data"], item["state"].(map[string]any)["val"]},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	for _, f := range []string{"created_at", "updated_at"} {
		s, _ := item[f].(string)
		if len(s) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s = %q, want ISO 8601 UTC with milliseconds", f, s)
		}
	}
	if _, ok := item["params"]; ok {
		t.Error("list item has params")
	}
}

func TestGetAccount(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_k1", UserID: "u1", ToolkitSlug: "openai", AuthConfigID: "ac_k", AuthScheme: "API_KEY",
		Val: map[string]any{"api_key": "sk-secret"}})
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"v3", "/api/v3/connected_accounts/ca_k1", 200},
		{"v3.1", "/api/v3.1/connected_accounts/ca_k1", 200},
		{"unknown", "/api/v3/connected_accounts/ca_missing", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, e.URL+tc.path, testKey)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status == 404 {
				eo := errorObj(t, r)
				if eo["slug"] != "ConnectedAccount_NotFound" || eo["status"] != 404.0 || eo["message"] == "" {
					t.Errorf("error %v", eo)
				}
				return
			}
			if _, ok := r.body["items"]; ok {
				t.Fatal("single account is wrapped in a list")
			}
			wantVal := map[string]any{"api_key": "sk-secret", "status": "ACTIVE"}
			if r.body["id"] != "ca_k1" || r.body["authScheme"] != "API_KEY" ||
				!reflect.DeepEqual(r.body["state"], map[string]any{"authScheme": "API_KEY", "val": wantVal}) ||
				!reflect.DeepEqual(r.body["params"], wantVal) || !reflect.DeepEqual(r.body["data"], wantVal) {
				t.Errorf("body %s", r.raw)
			}
			ac := r.body["auth_config"].(map[string]any)
			if ac["auth_scheme"] != "API_KEY" || ac["id"] != "ac_k" {
				t.Errorf("auth_config %v", ac)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	val := map[string]any{
		"access_token":  "ya29.real",
		"refresh_token": "1//real",
		"id_token":      "eyJreal",
		"api_key":       "key-real",
		"expires_in":    3599,
		"token_type":    "Bearer",
		"scope":         "email",
		"subdomain":     "acme",
	}
	tests := []struct {
		name    string
		managed bool
		want    map[string]any
	}{
		{"composio managed", true, map[string]any{
			"access_token": "REDACTED", "refresh_token": "REDACTED", "id_token": "REDACTED", "api_key": "REDACTED",
			"expires_in": 3599.0, "token_type": "Bearer", "scope": "email", "subdomain": "acme", "status": "ACTIVE",
		}},
		{"customer owned", false, map[string]any{
			"access_token": "ya29.real", "refresh_token": "1//real", "id_token": "eyJreal", "api_key": "key-real",
			"expires_in": 3599.0, "token_type": "Bearer", "scope": "email", "subdomain": "acme", "status": "ACTIVE",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t, testKey)
			e.AddAccount(Account{ID: "ca_x", ToolkitSlug: "gmail", ComposioManaged: tc.managed, Val: val})
			one := get(t, e.URL+"/api/v3/connected_accounts/ca_x", testKey)
			list := get(t, listURL(e, ""), testKey)
			item := list.body["items"].([]any)[0].(map[string]any)
			for name, obj := range map[string]map[string]any{"get": one.body, "list": item} {
				if got := obj["state"].(map[string]any)["val"]; !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s state.val = %v, want %v", name, got, tc.want)
				}
				if !reflect.DeepEqual(obj["data"], tc.want) {
					t.Errorf("%s data = %v", name, obj["data"])
				}
				if obj["auth_config"].(map[string]any)["is_composio_managed"] != tc.managed {
					t.Errorf("%s is_composio_managed = %v", name, obj["auth_config"])
				}
			}
			if !reflect.DeepEqual(one.body["params"], tc.want) {
				t.Errorf("params = %v", one.body["params"])
			}
			if tc.managed && strings.Contains(one.raw+list.raw, "real") {
				t.Errorf("secret leaked: %s %s", one.raw, list.raw)
			}
		})
	}
	// The caller's map is never modified.
	if val["access_token"] != "ya29.real" {
		t.Error("AddAccount modified the caller's map")
	}
}

func TestListFilters(t *testing.T) {
	e := New(t, testKey)
	for _, a := range []Account{
		{ID: "ca_1", UserID: "alice", ToolkitSlug: "github", AuthConfigID: "ac_gh"},
		{ID: "ca_2", UserID: "alice", ToolkitSlug: "gmail", AuthConfigID: "ac_gm", Status: "EXPIRED"},
		{ID: "ca_3", UserID: "bob", ToolkitSlug: "github", AuthConfigID: "ac_gh2", Status: "INITIATED"},
		{ID: "ca_4", UserID: "bob", ToolkitSlug: "slack", AuthConfigID: "ac_sl", Status: "FAILED"},
		{ID: "ca_5", UserID: "carol", ToolkitSlug: "GitHub", AuthConfigID: "ac_gh", Status: "INACTIVE"},
	} {
		e.AddAccount(a)
	}
	tests := []struct {
		name  string
		query string
		want  []string // in default order: created_at desc
	}{
		{"none", "", []string{"ca_5", "ca_4", "ca_3", "ca_2", "ca_1"}},
		{"toolkit", "toolkit_slugs=github", []string{"ca_5", "ca_3", "ca_1"}},
		{"toolkit case-insensitive", "toolkit_slugs=GITHUB", []string{"ca_5", "ca_3", "ca_1"}},
		{"toolkits repeated", "toolkit_slugs=gmail&toolkit_slugs=slack", []string{"ca_4", "ca_2"}},
		{"toolkits comma", "toolkit_slugs=gmail,slack", []string{"ca_4", "ca_2"}},
		{"toolkits comma encoded", "toolkit_slugs=gmail%2Cslack", []string{"ca_4", "ca_2"}},
		{"users", "user_ids=bob", []string{"ca_4", "ca_3"}},
		{"users mixed", "user_ids=bob&user_ids=carol,nobody", []string{"ca_5", "ca_4", "ca_3"}},
		{"auth configs", "auth_config_ids=ac_gh", []string{"ca_5", "ca_1"}},
		{"statuses", "statuses=ACTIVE,EXPIRED", []string{"ca_2", "ca_1"}},
		{"status inactive", "statuses=INACTIVE", []string{"ca_5"}},
		{"connected account ids", "connected_account_ids=ca_1,ca_4", []string{"ca_4", "ca_1"}},
		{"and across filters", "toolkit_slugs=github&user_ids=bob&statuses=INITIATED", []string{"ca_3"}},
		{"no match", "toolkit_slugs=github&statuses=FAILED", []string{}},
		{"unknown parameters ignored", "account_type=ALL&foo=bar", []string{"ca_5", "ca_4", "ca_3", "ca_2", "ca_1"}},
		{"empty values ignored", "toolkit_slugs=&user_ids=,", []string{"ca_5", "ca_4", "ca_3", "ca_2", "ca_1"}},
		{"ascending", "order_direction=asc", []string{"ca_1", "ca_2", "ca_3", "ca_4", "ca_5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, listURL(e, tc.query), testKey)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if got := itemIDs(t, r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
			if r.body["total_items"] != float64(len(tc.want)) {
				t.Errorf("total_items %v, want %d", r.body["total_items"], len(tc.want))
			}
			wantQ, _ := url.ParseQuery(tc.query)
			if tc.query == "" {
				wantQ = url.Values{}
			}
			if got := e.LastQuery(); !reflect.DeepEqual(got, wantQ) {
				t.Errorf("LastQuery %v, want %v", got, wantQ)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	e := New(t, testKey)
	var all []string
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("ca_%d", i)
		e.AddAccount(Account{ID: id, ToolkitSlug: "github"})
		all = append([]string{id}, all...) // newest first
	}
	tests := []struct {
		name      string
		query     string
		wantPages [][]string
		wantTotal float64
	}{
		{"limit 2", "limit=2", [][]string{{"ca_5", "ca_4"}, {"ca_3", "ca_2"}, {"ca_1"}}, 3},
		{"limit 5", "limit=5", [][]string{all}, 1},
		{"limit larger than total", "limit=50", [][]string{all}, 1},
		{"default limit", "", [][]string{all}, 1},
		{"limit as float", "limit=3.0", [][]string{{"ca_5", "ca_4", "ca_3"}, {"ca_2", "ca_1"}}, 2},
		{"limit 2 with filter", "limit=2&toolkit_slugs=github&order_direction=asc", [][]string{{"ca_1", "ca_2"}, {"ca_3", "ca_4"}, {"ca_5"}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			query := tc.query
			for page, want := range tc.wantPages {
				r := get(t, listURL(e, query), testKey)
				if r.status != 200 {
					t.Fatalf("page %d: status %d: %s", page+1, r.status, r.raw)
				}
				if got := itemIDs(t, r); !reflect.DeepEqual(got, want) {
					t.Fatalf("page %d: ids %v, want %v", page+1, got, want)
				}
				if r.body["current_page"] != float64(page+1) || r.body["total_pages"] != tc.wantTotal || r.body["total_items"] != 5.0 {
					t.Errorf("page %d: %v/%v/%v", page+1, r.body["current_page"], r.body["total_pages"], r.body["total_items"])
				}
				next := r.body["next_cursor"]
				last := page == len(tc.wantPages)-1
				if last {
					if next != nil {
						t.Errorf("last page: next_cursor %v, want null", next)
					}
					break
				}
				c, ok := next.(string)
				if !ok || c == "" {
					t.Fatalf("page %d: next_cursor %v", page+1, next)
				}
				q, _ := url.ParseQuery(tc.query)
				q.Set("cursor", c)
				query = q.Encode()
			}
		})
	}

	t.Run("empty result", func(t *testing.T) {
		r := get(t, listURL(e, "toolkit_slugs=none"), testKey)
		if r.body["total_pages"] != 0.0 || r.body["total_items"] != 0.0 || r.body["next_cursor"] != nil || len(itemIDs(t, r)) != 0 {
			t.Errorf("body %s", r.raw)
		}
		if !strings.Contains(r.raw, `"items":[]`) {
			t.Errorf("items is not an empty array: %s", r.raw)
		}
	})
}

func TestOrderByUpdated(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_a", ToolkitSlug: "github"})
	e.AddAccount(Account{ID: "ca_b", ToolkitSlug: "github"})
	e.AddAccount(Account{ID: "ca_c", ToolkitSlug: "github"})
	e.SetStatus("ca_a", "EXPIRED")
	tests := []struct {
		query string
		want  []string
	}{
		{"order_by=created_at", []string{"ca_c", "ca_b", "ca_a"}},
		{"order_by=updated_at", []string{"ca_a", "ca_c", "ca_b"}},
		{"order_by=updated_at&order_direction=asc", []string{"ca_b", "ca_c", "ca_a"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if got := itemIDs(t, get(t, listURL(e, tc.query), testKey)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBadListParameters(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_1", ToolkitSlug: "github"})
	for _, q := range []string{
		"limit=abc", "limit=0", "limit=-1", "limit=1.5",
		"cursor=not-a-cursor", "cursor=" + encodeCursor(-1), "cursor=" + encodeCursor(2)[:3],
		"order_by=name", "order_direction=up",
	} {
		t.Run(q, func(t *testing.T) {
			r := get(t, listURL(e, q), testKey)
			if r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			eo := errorObj(t, r)
			if eo["slug"] != "ConnectedAccount_BadRequest" || eo["code"] != 600.0 || eo["status"] != 400.0 {
				t.Errorf("error %v", eo)
			}
		})
	}
}

func TestSetStatusAndVal(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_s", ToolkitSlug: "notion", Val: map[string]any{"access_token": "old"}})
	fetch := func() map[string]any { return get(t, e.URL+"/api/v3/connected_accounts/ca_s", testKey).body }
	before := fetch()

	tests := []struct {
		name         string
		change       func()
		wantStatus   string
		wantDisabled bool
		wantToken    any
	}{
		{"expire", func() { e.SetStatus("ca_s", "EXPIRED") }, "EXPIRED", false, "old"},
		{"disable", func() { e.SetStatus("ca_s", "INACTIVE") }, "INACTIVE", true, "old"},
		{"re-enable", func() { e.SetStatus("ca_s", "ACTIVE") }, "ACTIVE", false, "old"},
		{"new token", func() { e.SetVal("ca_s", map[string]any{"access_token": "new", "status": "FAILED"}) }, "ACTIVE", false, "new"},
		{"empty val", func() { e.SetVal("ca_s", nil) }, "ACTIVE", false, nil},
	}
	prevUpdated := before["updated_at"].(string)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			b := fetch()
			val := b["state"].(map[string]any)["val"].(map[string]any)
			if b["status"] != tc.wantStatus || val["status"] != tc.wantStatus || b["is_disabled"] != tc.wantDisabled || val["access_token"] != tc.wantToken {
				t.Errorf("status %v val %v is_disabled %v", b["status"], val, b["is_disabled"])
			}
			if u := b["updated_at"].(string); u <= prevUpdated {
				t.Errorf("updated_at %s did not move on from %s", u, prevUpdated)
			} else {
				prevUpdated = u
			}
			if b["created_at"] != before["created_at"] {
				t.Errorf("created_at changed: %v -> %v", before["created_at"], b["created_at"])
			}
		})
	}
}

func TestAddAccountDefaultsAndReplace(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ToolkitSlug: "github"})
	r := get(t, listURL(e, ""), testKey)
	item := r.body["items"].([]any)[0].(map[string]any)
	id, _ := item["id"].(string)
	ac := item["auth_config"].(map[string]any)
	if !strings.HasPrefix(id, "ca_") || len(id) != 15 || !strings.HasPrefix(ac["id"].(string), "ac_") ||
		item["user_id"] != "default" || item["status"] != "ACTIVE" || item["authScheme"] != "OAUTH2" {
		t.Errorf("defaults: %s", r.raw)
	}

	// Replacing keeps created_at and changes the rest.
	e.AddAccount(Account{ID: id, ToolkitSlug: "gitlab", Status: "EXPIRED"})
	b := get(t, e.URL+"/api/v3/connected_accounts/"+id, testKey).body
	if b["created_at"] != item["created_at"] || b["status"] != "EXPIRED" || b["toolkit"].(map[string]any)["slug"] != "gitlab" {
		t.Errorf("replace: %v", b)
	}
	if n := get(t, listURL(e, ""), testKey).body["total_items"]; n != 1.0 {
		t.Errorf("total_items %v after replace", n)
	}
}

func TestFailRequests(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		status     int
		retryAfter string
		calls      int
		wantStatus []int
	}{
		{"429 twice with Retry-After", 2, 429, "7", 3, []int{429, 429, 200}},
		{"503 once without Retry-After", 1, 503, "", 2, []int{503, 200}},
		{"500 until reset", -1, 500, "", 4, []int{500, 500, 500, 500}},
		{"none", 0, 429, "1", 1, []int{200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(t, testKey)
			e.AddAccount(Account{ID: "ca_1", ToolkitSlug: "github"})
			e.FailRequests(tc.n, tc.status, tc.retryAfter)
			paths := []string{"/api/v3/connected_accounts", "/api/v3/connected_accounts/ca_1"}
			for i := range tc.calls {
				r := get(t, e.URL+paths[i%2], testKey)
				if r.status != tc.wantStatus[i] {
					t.Fatalf("call %d: status %d, want %d (%s)", i+1, r.status, tc.wantStatus[i], r.raw)
				}
				if r.status == 200 {
					if ra := r.header.Get("Retry-After"); ra != "" {
						t.Errorf("call %d: Retry-After %q on success", i+1, ra)
					}
					continue
				}
				if got := r.header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("call %d: Retry-After %q, want %q", i+1, got, tc.retryAfter)
				}
				if r.status == 429 {
					want := map[string]any{"message": "Rate limit exceeded. Limit: 2000 requests per 1 minute"}
					if !reflect.DeepEqual(r.body, want) {
						t.Errorf("429 body %s", r.raw)
					}
					if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit") != "2000" || r.header.Get("X-RateLimit-Window-Size") != "60s" {
						t.Errorf("rate-limit headers %v", r.header)
					}
					continue
				}
				eo := errorObj(t, r)
				if eo["status"] != float64(tc.status) || eo["code"] != float64(10000+tc.status) || !strings.HasPrefix(eo["slug"].(string), "HTTP_") {
					t.Errorf("error %v", eo)
				}
			}
			if got := e.Requests(); got != int64(tc.calls) {
				t.Errorf("Requests %d, want %d", got, tc.calls)
			}
			e.FailRequests(0, 0, "")
			if r := get(t, listURL(e, ""), testKey); r.status != 200 {
				t.Errorf("after reset: status %d", r.status)
			}
		})
	}

	t.Run("before the key check", func(t *testing.T) {
		e := New(t, testKey)
		e.FailRequests(1, 503, "")
		if r := get(t, listURL(e, "user_ids=x"), ""); r.status != 503 {
			t.Errorf("status %d, want 503", r.status)
		}
		if q := e.LastQuery(); q.Get("user_ids") != "x" {
			t.Errorf("LastQuery %v", q)
		}
		if r := get(t, listURL(e, ""), ""); r.status != 401 {
			t.Errorf("status %d, want 401", r.status)
		}
	})
}

func TestRoutingAndCounters(t *testing.T) {
	e := New(t, testKey)
	e.AddAccount(Account{ID: "ca_1", ToolkitSlug: "github"})
	if e.LastQuery() != nil {
		t.Error("LastQuery before any list request is not nil")
	}
	tests := []struct {
		name   string
		method string
		path   string
		status int
		slug   string
	}{
		{"list v3", "GET", "/api/v3/connected_accounts?limit=1", 200, ""},
		{"list trailing slash", "GET", "/api/v3/connected_accounts/", 200, ""},
		{"list v3.1", "GET", "/api/v3.1/connected_accounts?user_ids=u", 200, ""},
		{"unknown path", "GET", "/api/v3/auth_configs", 404, "HTTP_NotFound"},
		{"unknown version", "GET", "/api/v2/connected_accounts", 404, "HTTP_NotFound"},
		{"too deep", "GET", "/api/v3/connected_accounts/ca_1/status", 404, "HTTP_NotFound"},
		{"delete", "DELETE", "/api/v3/connected_accounts/ca_1", 405, "HTTP_MethodNotAllowed"},
		{"post list", "POST", "/api/v3/connected_accounts", 405, "HTTP_MethodNotAllowed"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, e.URL+tc.path, testKey)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.slug != "" {
				if eo := errorObj(t, r); eo["slug"] != tc.slug {
					t.Errorf("slug %v, want %s", eo["slug"], tc.slug)
				}
			}
			if got := e.Requests(); got != int64(i+1) {
				t.Errorf("Requests %d, want %d", got, i+1)
			}
			if r.header.Get("X-RateLimit") == "" || r.header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("no rate-limit headers: %v", r.header)
			}
		})
	}
	// The last list request was the v3.1 one; the later non-list requests
	// (including the POST to the list path) do not change LastQuery.
	if got := e.LastQuery(); !reflect.DeepEqual(got, url.Values{"user_ids": {"u"}}) {
		t.Errorf("LastQuery %v", got)
	}
	// LastQuery is a copy.
	e.LastQuery().Set("user_ids", "changed")
	if got := e.LastQuery().Get("user_ids"); got != "u" {
		t.Errorf("LastQuery was modified through a returned copy: %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := New(t, testKey)
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("ca_w%d", w)
			e.AddAccount(Account{ID: id, ToolkitSlug: "github", Val: map[string]any{"access_token": "t"}})
			for i := range 10 {
				e.SetStatus(id, []string{"ACTIVE", "EXPIRED"}[i%2])
				e.SetVal(id, map[string]any{"access_token": fmt.Sprint(i)})
				if i%3 == 0 {
					e.FailRequests(1, 429, "1")
				}
				req, _ := http.NewRequest(http.MethodGet, listURL(e, "limit=3&toolkit_slugs=github"), nil)
				req.Header.Set("x-api-key", testKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				_ = e.LastQuery()
			}
		}()
	}
	wg.Wait()
	if got := e.Requests(); got != workers*10 {
		t.Errorf("Requests %d, want %d", got, workers*10)
	}
	e.FailRequests(0, 0, "")
	var ids []string
	q := "limit=3"
	for {
		r := get(t, listURL(e, q), testKey)
		ids = append(ids, itemIDs(t, r)...)
		c, ok := r.body["next_cursor"].(string)
		if !ok {
			break
		}
		q = "limit=3&cursor=" + url.QueryEscape(c)
	}
	slices.Sort(ids)
	if len(ids) != workers || len(slices.Compact(slices.Clone(ids))) != workers {
		t.Errorf("paged ids %v, want %d distinct", ids, workers)
	}
}
