package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/testkit/hubspot"
)

// TestSyncResumesAfterRestart kills a valetkey process mid-sync; after a
// restart the job is picked up again and finishes with every record once.
func TestSyncResumesAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts valetkey processes")
	}
	const n = 600
	hs := hubspot.New(t, nil)
	hs.Seed("contacts", n)
	dataDir := t.TempDir()
	catalogDir := t.TempDir()
	def, err := os.ReadFile(filepath.Join("..", "catalog", "sources", "hubspot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(catalogDir, "hubspot.yaml"), []byte(strings.Replace(string(def), "base_url: https://api.hubapi.com", "base_url: "+hs.URL, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VALETKEY_DATA_DIR": dataDir, "VALETKEY_CATALOG_DIR": catalogDir, "VALETKEY_BOOTSTRAP_API_KEY": apiKey,
		"VALETKEY_REFRESH_SWEEP_INTERVAL": "0", "VALETKEY_JOB_POLL_INTERVAL": "50ms", "VALETKEY_JOB_RESCUE_AFTER": "2s",
		"VALETKEY_SCHEDULE_TICK": "200ms"}
	p := start(t, env)
	st, conn := call(t, http.DefaultClient, apiKey, "POST", p.URL+"/source-connections",
		`{"name":"Restart HubSpot","short_name":"hubspot","authentication":{"access_token":"tok"}}`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, conn)
	}
	id := conn["id"].(string)
	// Slow the sync down (each page waits a 1 s Retry-After), then kill
	// the process after its first pages are stored.
	hs.FailNext(1000, 429, "1")
	go func() {
		time.Sleep(300 * time.Millisecond)
		hs.FailNext(0, 0, "")
		for i := 0; i < 50; i++ { // every other page is rate limited
			hs.FailNext(1, 429, "1")
			time.Sleep(150 * time.Millisecond)
		}
	}()
	st, job := call(t, http.DefaultClient, apiKey, "POST", p.URL+"/source-connections/"+id+"/run", "")
	if st != 200 {
		t.Fatalf("run: %d %v", st, job)
	}
	jobID := job["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, j := call(t, http.DefaultClient, apiKey, "GET", p.URL+"/source-connections/"+id+"/jobs/"+jobID, "")
		if ins, _ := j["entities_inserted"].(float64); ins >= 100 && ins < n {
			break
		}
		if j["status"] == "completed" || time.Now().After(deadline) {
			t.Fatalf("could not catch the job mid-run: %v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()

	p = start(t, env)
	// The restarted process's scheduler tick finds the job's heartbeat older
	// than VALETKEY_JOB_RESCUE_AFTER and queues it again; it then resumes.
	deadline = time.Now().Add(60 * time.Second)
	var j map[string]any
	for {
		_, j = call(t, http.DefaultClient, apiKey, "GET", p.URL+"/source-connections/"+id+"/jobs/"+jobID, "")
		if j["status"] == "completed" || j["status"] == "failed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if j["status"] != "completed" || j["entities_inserted"] != float64(n) {
		t.Fatalf("after restart: %v", j)
	}
	p.kill()
	s, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "valetkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.GetConnection(context.Background(), conn["organization_id"].(string), id)
	if got, _ := s.CountRecords(context.Background(), c.OrganizationID, c.CollectionID); got != n {
		t.Fatalf("%d records stored, want %d (no duplicates, none lost)", got, n)
	}
}
