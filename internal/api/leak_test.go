package api_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valetkey/valetkey/internal/testkit"
)

// TestSecretsNeverLeak injects distinctive values through every write route
// and error path, reads everything back, and then looks for the values in the
// captured logs, every response body but /token's, and the database files.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "leak.db")
	s := testkit.NewServer(t, "sqlite:"+dbPath)

	secret := func(name string) string { return "LEAKCANARY" + name + "Q7Z9" }
	var canaries []string
	mark := func(name string) string {
		v := secret(name)
		canaries = append(canaries, v)
		return v
	}

	wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Leak Test", "readable_id": "leak"}), 200)

	// Successful writes, every shape.
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Seeds Shape", "short_name": "asana", "collection": "leak",
		"auth_fields": map[string]any{"access_token": mark("SeedsAccess"), "refresh_token": mark("SeedsRefresh")}})
	wantStatus(t, r, 200)
	seedsID := r.Map(t)["id"].(string)
	r = s.Do(t, s.Key, "POST", "/source-connections/", map[string]any{"name": "SDK Shape", "short_name": "github", "readable_collection_id": "leak",
		"authentication": map[string]any{"access_token": mark("SDKAccess"), "refresh_token": mark("SDKRefresh"), "expires_in": 60}})
	wantStatus(t, r, 200)
	sdkID := r.Map(t)["id"].(string)
	r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Key Shape", "short_name": "stripe", "readable_collection_id": "leak",
		"authentication": map[string]any{"credentials": map[string]any{"api_key": "sk_test_" + mark("StripeKey")}}})
	wantStatus(t, r, 200)
	stripeID := r.Map(t)["id"].(string)
	wantStatus(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+seedsID, map[string]any{
		"auth_fields": map[string]any{"access_token": mark("PatchAccess"), "refresh_token": mark("PatchRefresh")}}), 200)
	wantStatus(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+sdkID, map[string]any{
		"authentication": map[string]any{"access_token": mark("PatchSDKAccess")}}), 200)

	// Failing writes that carry secrets.
	failing := []struct {
		name   string
		method string
		path   string
		body   any
		header http.Header
	}{
		{"pattern mismatch", "POST", "/source-connections", map[string]any{"name": "Bad Key", "short_name": "stripe", "auth_fields": map[string]any{"api_key": mark("BadPattern")}}, nil},
		{"unknown field", "POST", "/source-connections", map[string]any{"name": "Extra Field", "short_name": "asana", "auth_fields": map[string]any{"access_token": mark("ExtraAccess"), "client_secret": mark("ExtraField")}}, nil},
		{"unknown top-level", "POST", "/source-connections", map[string]any{"name": "Extra Top", "short_name": "asana", "token": mark("TopLevel")}, nil},
		{"access-only refresh", "POST", "/source-connections", map[string]any{"name": "Slack Refresh", "short_name": "slack", "auth_fields": map[string]any{"access_token": mark("SlackAccess"), "refresh_token": mark("SlackRefresh")}}, nil},
		{"unknown source", "POST", "/source-connections", map[string]any{"name": "Nope Source", "short_name": "nope", "auth_fields": map[string]any{"access_token": mark("NoSource")}}, nil},
		{"unknown collection", "POST", "/source-connections", map[string]any{"name": "Nope Coll", "short_name": "asana", "collection": "nope", "auth_fields": map[string]any{"access_token": mark("NoColl")}}, nil},
		{"bad name", "POST", "/source-connections", map[string]any{"name": "x", "short_name": "asana", "authentication": map[string]any{"access_token": mark("BadName")}}, nil},
		{"wrong type in authentication", "POST", "/source-connections", map[string]any{"name": "Wrong Type", "short_name": "asana", "authentication": map[string]any{"access_token": []string{mark("WrongType")}}}, nil},
		{"bad expires_at", "POST", "/source-connections", map[string]any{"name": "Bad Expiry", "short_name": "asana", "authentication": map[string]any{"access_token": "x", "expires_at": mark("Expiry")}}, nil},
		{"malformed json", "POST", "/source-connections", `{"name": "Malformed", "auth_fields": {"access_token": "` + mark("Malformed") + `"`, nil},
		{"wrong content type", "POST", "/source-connections", `access_token=` + mark("FormBody"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
		{"oversized", "POST", "/source-connections", `{"name":"Big One","short_name":"asana","auth_fields":{"access_token":"` + mark("Oversized") + strings.Repeat("z", 1<<20) + `"}}`, nil},
		{"patch bad creds", "PATCH", "/source-connections/" + sdkID, map[string]any{"auth_fields": map[string]any{"password": mark("PatchBad")}}, nil},
		{"other org patch", "PATCH", "/source-connections/" + sdkID, map[string]any{"auth_fields": map[string]any{"access_token": mark("OtherOrg")}}, http.Header{"X-Api-Key": {s.NewOrgKey(t, "other")}}},
		{"bad api key", "GET", "/source-connections", nil, http.Header{"X-Api-Key": {mark("PresentedKey")}}},
		{"bad bearer", "GET", "/source-connections", nil, http.Header{"Authorization": {"Bearer " + mark("PresentedBearer")}}},
	}
	for _, f := range failing {
		key := s.Key
		if f.header.Get("X-Api-Key") != "" || f.header.Get("Authorization") != "" {
			key = ""
		}
		r := s.DoWith(t, key, f.method, f.path, f.body, f.header)
		if r.Status < 400 {
			t.Fatalf("%s: status %d, want an error", f.name, r.Status)
		}
	}

	// Every read route.
	for _, path := range []string{"/source-connections", "/source-connections/" + seedsID, "/source-connections/" + sdkID,
		"/source-connections/" + stripeID, "/collections", "/collections/leak", "/sources", "/sources/asana", "/openapi.json", "/metrics", "/healthz", "/readyz"} {
		wantStatus(t, s.Do(t, s.Key, "GET", path, nil), 200)
	}
	// The token route does return secrets, to their owner: it must work, and
	// only its body (not logs) may hold them.
	tok := s.Do(t, s.Key, "GET", "/source-connections/"+seedsID+"/token?include_refresh_token=true", nil)
	if !bytes.Contains(tok.Body, []byte(secret("PatchAccess"))) || !bytes.Contains(tok.Body, []byte(secret("PatchRefresh"))) {
		t.Fatalf("token route did not return the current tokens: %s", tok.Body)
	}
	wantStatus(t, s.Do(t, s.Key, "DELETE", "/source-connections/"+stripeID, nil), 200)

	s.App.Close() // flush the WAL into the database file
	var files [][]byte
	matches, _ := filepath.Glob(dbPath + "*")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if len(files) == 0 {
		t.Fatal("no database file to scan")
	}
	logs, bodies := s.Logs.String(), s.Bodies.String()
	if !strings.Contains(logs, `"route":"/source-connections"`) {
		t.Fatalf("captured logs look empty: %q", logs[:min(200, len(logs))])
	}
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("%s found in logs", c)
		}
		if strings.Contains(bodies, c) {
			t.Errorf("%s found in a response body", c)
		}
		for _, f := range files {
			if bytes.Contains(f, []byte(c)) {
				t.Errorf("%s found in clear in the database files", c)
			}
		}
	}
}
