package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/vault"
)

// sweepN is how many credentials one measurement refreshes.
const sweepN = 300

// TestWriteRefreshReport measures the proactive sweep (tokens refreshed per
// second against the local fosite authorization server) on SQLite and
// Postgres, next to a baseline: the same number of refresh requests sent
// straight to the authorization server with the same concurrency, no
// Valetkey in between.
func TestWriteRefreshReport(t *testing.T) {
	out := os.Getenv("VALETKEY_BENCH_REPORT")
	if out == "" {
		t.Skip("set VALETKEY_BENCH_REPORT=BENCHMARKS.md to run the benchmark report")
	}
	var rows []string
	for _, name := range []string{"sqlite", "postgres"} {
		if name == "postgres" && os.Getenv(testkit.PostgresEnv) == "" {
			continue
		}
		url := testkit.DatabaseURLs()[name](t)
		e := testkit.NewOAuthEnv(t, url, testkitQuiet)
		ids := make([]string, 2*sweepN)
		for i := range ids {
			if i == sweepN {
				e.Clock.Advance(2 * time.Minute) // the second half expires later
			}
			ids[i] = e.Connect(t)
		}
		// Baseline: refresh the second half's tokens directly.
		var rts []vault.Secret
		for _, id := range ids[sweepN:] {
			rts = append(rts, vault.NewSecret(e.Token(t, id)["refresh_token"].(string)))
		}
		ep := oauth.Endpoint{TokenURL: e.AS.TokenURL(), ClientAuth: "header"}
		client := oauth.Client{ID: "valetkey-client", Secret: vault.NewSecret("valetkey-secret")}
		const concurrency = 8
		baseStart := time.Now()
		var wg sync.WaitGroup
		work := make(chan vault.Secret)
		var failed int
		var mu sync.Mutex
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rt := range work {
					if _, err := oauth.Refresh(context.Background(), http.DefaultClient, ep, client, rt); err != nil {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}
			}()
		}
		for _, rt := range rts {
			work <- rt
		}
		close(work)
		wg.Wait()
		baseTook := time.Since(baseStart)
		if failed > 0 {
			t.Fatalf("%d baseline refreshes failed", failed)
		}

		// Valetkey: every connection comes due; one sweep pass takes the
		// sweepN that expire first, which are the first half (connected
		// first), whose tokens the baseline did not touch.
		e.Clock.Advance(53 * time.Minute)
		sweepStart := time.Now()
		res, err := e.S.App.Refresh.Sweep(context.Background(), refresh.SweepOptions{Window: 10 * time.Minute, Batch: sweepN, Concurrency: concurrency})
		took := time.Since(sweepStart)
		if err != nil || res.Refreshed != sweepN || res.Failed != 0 {
			t.Fatalf("sweep = %+v, %v", res, err)
		}
		got := float64(res.Refreshed) / took.Seconds()
		base := float64(sweepN) / baseTook.Seconds()
		row := fmt.Sprintf("| proactive sweep, %d due credentials, concurrency %d (%s) | %.0f tokens/s | direct refresh requests to the same server: %.0f tokens/s | %.1f%% of baseline |",
			sweepN, concurrency, name, got, base, 100*got/base)
		t.Log(row)
		rows = append(rows, row)
	}
	writeSection(t, out, "refresh", "TestWriteRefreshReport", "| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
}
