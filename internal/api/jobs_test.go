package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
)

// waitJob polls a job until it ends (bounded) and returns it.
func waitJob(t *testing.T, s *testkit.Server, connID, jobID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := s.Do(t, s.Key, "GET", "/source-connections/"+connID+"/jobs/"+jobID, nil).Map(t)
		switch j["status"] {
		case "completed", "failed", "cancelled":
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %v", jobID, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runJob(t *testing.T, s *testkit.Server, connID string, body any) map[string]any {
	t.Helper()
	r := s.Do(t, s.Key, "POST", "/source-connections/"+connID+"/run", body)
	wantStatus(t, r, 200)
	return r.Map(t)
}

func counts(j map[string]any) [4]int {
	return [4]int{int(j["entities_inserted"].(float64)), int(j["entities_updated"].(float64)), int(j["entities_kept"].(float64)), int(j["entities_deleted"].(float64))}
}

func TestSyncJobsIntoCollections(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) { testSyncJobs(t, newExecEnvOn(t, newURL(t))) })
	}
}

func testSyncJobs(t *testing.T, e *execEnv) {
	e.hs.Seed("contacts", 130)
	e.hs.Seed("companies", 5)
	e.hs.Seed("deals", 3)
	id := e.connect(t, "hubspot")
	s := e.s

	j := runJob(t, s, id, nil)
	if j["status"] != "pending" || j["source_connection_id"] != id {
		t.Fatalf("run = %v", j)
	}
	done := waitJob(t, s, id, j["id"].(string))
	if done["status"] != "completed" || counts(done) != [4]int{138, 0, 0, 0} || done["duration_seconds"] == nil {
		t.Fatalf("first sync = %v", done)
	}
	c := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)
	sync := c["sync"].(map[string]any)
	if sync["total_runs"] != float64(1) || sync["successful_runs"] != float64(1) || sync["last_job"].(map[string]any)["id"] != j["id"] {
		t.Fatalf("sync summary = %v", sync)
	}
	rid := c["readable_collection_id"].(string)
	r := s.Do(t, s.Key, "GET", "/collections/"+rid+"/search?query="+url.QueryEscape("contact42@example.com"), nil)
	wantStatus(t, r, 200)
	hits := r.Map(t)["results"].([]any)
	if len(hits) == 0 || hits[0].(map[string]any)["upstream_id"] != "42" || hits[0].(map[string]any)["entity_type"] != "contacts" {
		t.Fatalf("search = %s", r.Body)
	}
	wantLocs(t, s.Do(t, s.Key, "GET", "/collections/"+rid+"/search", nil), "query.query")

	// Second run: one changed, one gone, the rest kept.
	e.hs.Put("contacts", "7", map[string]string{"firstname": "Changed"})
	e.hs.Delete("deals", "2")
	done = waitJob(t, s, id, runJob(t, s, id, nil)["id"].(string))
	if counts(done) != [4]int{0, 1, 136, 1} {
		t.Fatalf("second sync counts (ins, upd, kept, del) = %v", counts(done))
	}
	if r := s.Do(t, s.Key, "GET", "/collections/"+rid+"/search?query=Changed", nil).Map(t); len(r["results"].([]any)) != 1 {
		t.Fatalf("updated record not searchable: %v", r)
	}

	// A slow upstream (rate limited) keeps a job running: a second run is
	// 409, and cancel stops it between pages.
	e.hs.FailNext(1000, 429, "1")
	j = runJob(t, s, id, nil)
	wantDetail(t, s.Do(t, s.Key, "POST", "/source-connections/"+id+"/run", nil), 409,
		"A sync job is already pending or running for source connection '"+id+"'")
	r = s.Do(t, s.Key, "POST", "/source-connections/"+id+"/jobs/"+j["id"].(string)+"/cancel", nil)
	wantStatus(t, r, 200)
	if st := r.Map(t)["status"]; st != "cancelling" {
		t.Fatalf("cancel answered %v", st)
	}
	if done := waitJob(t, s, id, j["id"].(string)); done["status"] != "cancelled" {
		t.Fatalf("cancelled job = %v", done)
	}
	e.hs.FailNext(0, 0, "")
	var list []map[string]any
	s.Do(t, s.Key, "GET", "/source-connections/"+id+"/jobs", nil).JSON(t, &list)
	if len(list) != 3 || list[0]["id"] != j["id"] {
		t.Fatalf("jobs = %d", len(list))
	}
	wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/jobs/01900000-0000-7000-8000-000000000000", nil), 404)
}

func TestSyncTokenOverride(t *testing.T) {
	e := newExecEnv(t)
	e.hs.Seed("contacts", 250)
	id := e.connect(t, "hubspot")
	s := e.s
	orgID := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["organization_id"].(string)
	before, _ := s.App.Store.GetCredentialForConnection(context.Background(), orgID, id)
	stored := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil).Map(t)["access_token"].(string)

	const override = "LEAKCANARYOverrideTokenQ7Z9"
	e.mu.Lock()
	e.extra[override] = true
	e.mu.Unlock()
	done := waitJob(t, s, id, runJob(t, s, id, map[string]any{"access_token": override})["id"].(string))
	if done["status"] != "completed" || counts(done)[0] != 250 {
		t.Fatalf("override sync = %v", done)
	}
	seen := strings.Join(e.hs.SeenTokens(), " ")
	if !strings.Contains(seen, override) || strings.Contains(seen, stored) {
		t.Fatalf("tokens that reached HubSpot: override %v, stored %v", strings.Contains(seen, override), strings.Contains(seen, stored))
	}
	after, _ := s.App.Store.GetCredentialForConnection(context.Background(), orgID, id)
	if !bytes.Equal(before.Ciphertext, after.Ciphertext) {
		t.Fatal("the stored credential changed")
	}

	// An override that expires mid-run fails the job with the auth category.
	const short = "LEAKCANARYShortOverrideQ7Z9"
	e.mu.Lock()
	e.extra[short] = true
	e.mu.Unlock()
	j := runJob(t, s, id, map[string]any{"access_token": short})
	go func() {
		// Expire it once the first page has been read.
		for e.hs.Requests() == 0 || !strings.Contains(strings.Join(e.hs.SeenTokens(), " "), short) {
			time.Sleep(time.Millisecond)
		}
		e.mu.Lock()
		delete(e.extra, short)
		e.mu.Unlock()
	}()
	done = waitJob(t, s, id, j["id"].(string))
	if done["status"] != "failed" || done["error_category"] != "auth" || !strings.Contains(done["error"].(string), "provided access token was rejected") {
		t.Fatalf("expired override = %v", done)
	}
	if after, _ := s.App.Store.GetCredentialForConnection(context.Background(), orgID, id); !bytes.Equal(before.Ciphertext, after.Ciphertext) {
		t.Fatal("the stored credential changed after a failed override run")
	}
	if st := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"]; st != "active" {
		t.Fatalf("connection status after override failure = %v", st)
	}

	// API-key sources cannot take an override.
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Stripe Key", "short_name": "stripe",
		"auth_fields": map[string]any{"api_key": "sk_test_abc"}})
	wantStatus(t, r, 200)
	wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections/"+r.Map(t)["id"].(string)+"/run", map[string]any{"access_token": "x"}), "body.access_token")

	// The override is nowhere in the database afterwards, in clear, job or queue tables.
	if got, _ := s.App.Store.GetSyncJob(context.Background(), orgID, done["id"].(string)); len(got.Ciphertext) != 0 {
		t.Fatal("the sealed override outlived its job")
	}
	s.App.Close()
	files, _ := filepath.Glob(strings.TrimPrefix(s.App.Config.DatabaseURL, "sqlite:") + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, c := range []string{override, short} {
			if bytes.Contains(b, []byte(c)) {
				t.Errorf("%s found in %s", c, f)
			}
		}
	}
	if strings.Contains(s.Logs.String(), override) || strings.Contains(s.Bodies.String(), override) {
		t.Error("override in logs or bodies")
	}
}

func TestSyncRunWithBrokenRefreshToken(t *testing.T) {
	e := newExecEnv(t)
	s := e.s
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	hook := s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": recv.URL, "events": []string{"source_connection.needs_reauth"}}).Map(t)["id"].(string)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Stale HubSpot", "short_name": "hubspot",
		"authentication": map[string]any{"access_token": "old", "refresh_token": "not-a-real-refresh-token", "expires_at": past}})
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	r = s.Do(t, s.Key, "POST", "/source-connections/"+id+"/run", nil)
	wantStatus(t, r, 400)
	if d := r.Map(t)["detail"].(string); !strings.HasPrefix(d, "Token refresh failed: invalid_grant") {
		t.Fatalf("detail = %q", d)
	}
	if st := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"]; st != "needs_reauth" {
		t.Fatalf("status = %v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ds []map[string]any
		s.Do(t, s.Key, "GET", "/webhooks/"+hook+"/deliveries", nil).JSON(t, &ds)
		if len(ds) == 1 && ds[0]["event"] == "source_connection.needs_reauth" && ds[0]["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("needs_reauth deliveries = %v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyncImmediatelyAndRefreshAll(t *testing.T) {
	e := newExecEnv(t)
	e.hs.Seed("companies", 4)
	s := e.s
	e.mu.Lock()
	e.extra["injected-hubspot-token"] = true
	e.mu.Unlock()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	hook := s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": recv.URL, "events": []string{"sync.completed", "sync.failed"}}).Map(t)["id"].(string)
	wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "CRM", "readable_id": "crm"}), 200)
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "HubSpot Now", "short_name": "hubspot", "readable_collection_id": "crm",
		"authentication": map[string]any{"access_token": "injected-hubspot-token"}, "sync_immediately": true})
	wantStatus(t, r, 200)
	c := r.Map(t)
	last := c["sync"].(map[string]any)["last_job"].(map[string]any)
	if done := waitJob(t, s, c["id"].(string), last["id"].(string)); done["status"] != "completed" || counts(done)[0] != 4 {
		t.Fatalf("sync_immediately job = %v", done)
	}
	r = s.Do(t, s.Key, "POST", "/collections/crm/refresh_all", nil)
	wantStatus(t, r, 200)
	var started []map[string]any
	r.JSON(t, &started)
	if len(started) != 1 {
		t.Fatalf("refresh_all started %d", len(started))
	}
	if done := waitJob(t, s, c["id"].(string), started[0]["id"].(string)); counts(done) != [4]int{0, 0, 4, 0} {
		t.Fatalf("refresh_all job = %v", done)
	}
	wantStatus(t, s.Do(t, s.Key, "POST", "/collections/nope/refresh_all", nil), 404)
	// Both runs produced a sync.completed delivery.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ds []map[string]any
		s.Do(t, s.Key, "GET", "/webhooks/"+hook+"/deliveries", nil).JSON(t, &ds)
		delivered := 0
		for _, d := range ds {
			if d["event"] == "sync.completed" && d["status"] == "delivered" {
				delivered++
			}
		}
		if delivered == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCronScheduleFiresOnceAcrossReplicas: two replicas on one database
// tick often; a schedule matching every minute starts exactly one run per
// minute.
func TestCronScheduleFiresOnceAcrossReplicas(t *testing.T) {
	clock := &testkit.Clock{}
	ticking := func(c *config.Config) { c.Clock, c.ScheduleTick = clock.Now, 50*time.Millisecond }
	e := newExecEnvOn(t, testkit.SQLiteURL(t), ticking)
	e.hs.Seed("companies", 2)
	e.mu.Lock()
	e.extra["scheduled-token"] = true
	e.mu.Unlock()
	s := e.s
	// Two more replicas on the same database and keyset, all ticking every
	// 50ms on a shared test clock.
	replicas := []*testkit.Server{s}
	for i := 0; i < 2; i++ {
		replicas = append(replicas, testkit.NewServer(t, s.App.Config.DatabaseURL, ticking, func(c *config.Config) {
			c.KeysetFile, c.CatalogDir = s.App.Config.KeysetFile, s.App.Config.CatalogDir
		}))
	}
	wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Bad Cron", "short_name": "hubspot",
		"authentication": map[string]any{"access_token": "scheduled-token"}, "schedule": map[string]any{"cron": "every minute"}}), "body.schedule.cron")
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Scheduled", "short_name": "hubspot",
		"authentication": map[string]any{"access_token": "scheduled-token"}, "schedule": map[string]any{"cron": "* * * * *"}})
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	jobsFor := func() int {
		var list []map[string]any
		s.Do(t, s.Key, "GET", "/source-connections/"+id+"/jobs", nil).JSON(t, &list)
		return len(list)
	}
	waitJobs := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for jobsFor() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d jobs, want %d", jobsFor(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Ticks also run by hand on every replica; still one run per minute.
	for _, rep := range replicas {
		if _, err := rep.App.Jobs.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitJobs(1)
	time.Sleep(500 * time.Millisecond) // ~10 more ticks per replica within the same minute
	if n := jobsFor(); n != 1 {
		t.Fatalf("%d runs in one minute across replicas, want 1", n)
	}
	clock.Advance(time.Minute)
	waitJobs(2)
	time.Sleep(500 * time.Millisecond)
	if n := jobsFor(); n != 2 {
		t.Fatalf("%d runs after two minutes, want 2", n)
	}
}

// TestIncrementalSync: a definition with an incremental param gets the
// highest value seen last time; force_full_sync ignores it; only full runs
// delete what they did not see.
func TestIncrementalSync(t *testing.T) {
	var mu sync.Mutex
	items := map[string]string{"a": "2026-01-01T00:00:00Z", "b": "2026-01-02T00:00:00Z", "c": "2026-01-03T00:00:00Z"}
	var sinces []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		since := r.URL.Query().Get("updated_since")
		sinces = append(sinces, since)
		var out []map[string]any
		for id, at := range items {
			if since == "" || at >= since {
				out = append(out, map[string]any{"id": id, "title": "Item " + id, "updated_at": at})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": out})
	}))
	defer up.Close()
	dir := t.TempDir()
	def := `short_name: incsrc
name: Incremental Source
auth: [{type: api_key, fields: [{name: api_key}]}]
api:
  base_url: ` + up.URL + `
  entities:
    items:
      actions:
        list:
          method: GET
          path: /items
          params: {updated_since: {in: query}}
          records: $.items
          incremental: {param: updated_since, field: $.updated_at}
`
	if err := os.WriteFile(filepath.Join(dir, "incsrc.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.CatalogDir = dir })
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Incremental", "short_name": "incsrc", "auth_fields": map[string]any{"api_key": "k"}})
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	run := func(q string) [4]int {
		r := s.Do(t, s.Key, "POST", "/source-connections/"+id+"/run"+q, nil)
		wantStatus(t, r, 200)
		return counts(waitJob(t, s, id, r.Map(t)["id"].(string)))
	}
	if got := run(""); got != [4]int{3, 0, 0, 0} {
		t.Fatalf("first (full) run = %v", got)
	}
	mu.Lock()
	items["b"] = "2026-02-01T00:00:00Z" // changed
	items["d"] = "2026-02-02T00:00:00Z" // new
	delete(items, "a")                  // gone
	mu.Unlock()
	// Incremental: asks since the highest value seen (c's), sees b, c (boundary) and d; deletes nothing.
	if got := run(""); got != [4]int{1, 1, 1, 0} {
		t.Fatalf("incremental run (ins, upd, kept, del) = %v", got)
	}
	// Forced full: no since, and a is known gone.
	if got := run("?force_full_sync=true"); got != [4]int{0, 0, 3, 1} {
		t.Fatalf("forced full run = %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sinces) != 3 || sinces[0] != "" || sinces[1] != "2026-01-03T00:00:00Z" || sinces[2] != "" {
		t.Fatalf("since params = %q", sinces)
	}
}
