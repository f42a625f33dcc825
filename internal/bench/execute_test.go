package bench

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
)

// upstreamBody is what the fast local upstream answers: a page of records.
const upstreamBody = `{"results":[{"id":"1","properties":{"email":"a@example.com"}},{"id":"2","properties":{"email":"b@example.com"}}],"paging":{"next":{"after":"3"}}}`

// executePair measures execute through Valetkey (auth, credential read,
// decrypt, request building, extraction) against httputil.ReverseProxy to
// the same upstream, both over loopback HTTP.
func executePair(t *testing.T) pair {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer bench-upstream-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(upstreamBody))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	def := `short_name: benchsrc
name: Bench Source
auth:
  - type: api_key
    fields:
      - {name: api_key, secret: true}
api:
  base_url: ` + up.URL + `
  auth_injection: bearer
  entities:
    contacts:
      actions:
        list:
          method: GET
          path: /crm/v3/objects/contacts
          params: {limit: {in: query}, after: {in: query, from: cursor}}
          records: $.results
          cursor: $.paging.next.after
`
	if err := os.WriteFile(filepath.Join(dir, "benchsrc.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testkit.NewServer(t, testkit.SQLiteURL(t), testkitQuiet, func(c *config.Config) { c.CatalogDir = dir })
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Bench Exec", "short_name": "benchsrc",
		"auth_fields": map[string]any{"api_key": "bench-upstream-token"}})
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	target, _ := url.Parse(up.URL)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(proxy.Close)
	return pair{
		name:         "execute contacts.list through Valetkey (sqlite)",
		baselineName: "httputil.ReverseProxy to the same upstream",
		run: httpLoadBody("POST", s.URL+"/source-connections/"+id+"/execute", http.Header{"X-Api-Key": {s.Key}, "Content-Type": {"application/json"}},
			`{"entity":"contacts","action":"list","params":{"limit":2}}`),
		baseline:   httpLoad(proxy.URL+"/crm/v3/objects/contacts?limit=2", http.Header{"Authorization": {"Bearer bench-upstream-token"}}),
		throughput: true,
	}
}
