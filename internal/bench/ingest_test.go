package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/hubspot"
	"github.com/valetkey/valetkey/internal/vault"
)

const ingestN = 20000

// TestWriteIngestReport measures a full sync (records/s into the
// collection store) on SQLite and Postgres, next to the baseline of paging
// through the same emulator with plain net/http and storing nothing.
func TestWriteIngestReport(t *testing.T) {
	out := os.Getenv("VALETKEY_BENCH_REPORT")
	if out == "" {
		t.Skip("set VALETKEY_BENCH_REPORT=BENCHMARKS.md to run the benchmark report")
	}
	var rows []string
	for _, name := range []string{"sqlite", "postgres"} {
		if name == "postgres" && os.Getenv(testkit.PostgresEnv) == "" {
			continue
		}
		hs := hubspot.New(t, nil)
		hs.Seed("contacts", ingestN)

		// Baseline: page through with net/http, decode, store nothing.
		start := time.Now()
		after, n := "", 0
		for {
			u := hs.URL + "/crm/v3/objects/contacts?limit=100"
			if after != "" {
				u += "&after=" + after
			}
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Authorization", "Bearer x")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Results []json.RawMessage `json:"results"`
				Paging  *struct {
					Next struct {
						After string `json:"after"`
					} `json:"next"`
				} `json:"paging"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			n += len(page.Results)
			if page.Paging == nil {
				break
			}
			after = page.Paging.Next.After
		}
		base := float64(n) / time.Since(start).Seconds()

		dir := t.TempDir()
		def := strings.Replace(mustRead(t, filepath.Join("..", "catalog", "sources", "hubspot.yaml")), "base_url: https://api.hubapi.com", "base_url: "+hs.URL, 1)
		if err := os.WriteFile(filepath.Join(dir, "hubspot.yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
		s := testkit.NewServer(t, testkit.DatabaseURLs()[name](t), testkitQuiet, func(c *config.Config) { c.CatalogDir = dir })
		r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Ingest HubSpot", "short_name": "hubspot",
			"authentication": map[string]any{"access_token": "x"}})
		if r.Status != 200 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		m := r.Map(t)
		start = time.Now()
		j, err := s.App.Jobs.Run(context.Background(), m["organization_id"].(string), m["id"].(string), false, vault.Secret{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, _ := s.App.Store.GetSyncJob(context.Background(), j.OrganizationID, j.ID)
			if !got.Active() {
				if got.Inserted != ingestN {
					t.Fatalf("ingest job = %+v", got)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := float64(ingestN) / time.Since(start).Seconds()
		row := fmt.Sprintf("| full sync of %d HubSpot contacts, pages of 100 (%s) | %.0f records/s | paging the same emulator with net/http, storing nothing: %.0f records/s | %.1f%% of baseline |",
			ingestN, name, got, base, 100*got/base)
		t.Log(row)
		rows = append(rows, row)
	}
	writeSection(t, out, "ingest", "TestWriteIngestReport", "| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
