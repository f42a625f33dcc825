package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/vault"
)

// sweepN is how many credentials one measurement refreshes.
const sweepN = 300

// storedConnections is the figure: the sweep runs with this many
// connections stored, all but the measured ones expiring hours later.
const storedConnections = 100_000

// refreshRounds is how many times each figure is measured (the report
// gives the median; baseline and sweep alternate), after one round that
// warms up (connection pools, prepared statements) and is not counted.
const refreshRounds = 3

// TestWriteRefreshReport measures the proactive sweep (tokens refreshed per
// second against the local fosite authorization server) on SQLite and
// Postgres with 100,000 connections stored, next to a baseline: the same
// number of refresh requests sent straight to the authorization server with
// the same concurrency, no Valetkey in between.
func TestWriteRefreshReport(t *testing.T) {
	out := os.Getenv("VALETKEY_BENCH_REPORT")
	if out == "" {
		t.Skip("set VALETKEY_BENCH_REPORT=BENCHMARKS.md to run the benchmark report")
	}
	concurrency := config.Defaults().SweepConcurrency
	var rows []string
	for _, name := range []string{"sqlite", "postgres"} {
		if name == "postgres" && os.Getenv(testkit.PostgresEnv) == "" {
			continue
		}
		// A subtest, so that one backend's server is gone before the next is measured.
		t.Run(name, func(t *testing.T) { rows = append(rows, measureSweep(t, name, concurrency)) })
	}
	if t.Failed() {
		return
	}
	writeSection(t, out, "refresh", "TestWriteRefreshReport", "| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
}

// measureSweep sets up one backend with storedConnections and returns the
// report's row.
func measureSweep(t *testing.T, name string, concurrency int) string {
	t.Helper()
	url := testkit.DatabaseURLs()[name](t)
	e := testkit.NewOAuthEnv(t, url, testkitQuiet)
	// The first half is swept; the second half's grants are the
	// baseline's, refreshed directly (so Valetkey must leave them alone).
	ids := make([]string, 2*sweepN)
	for i := range ids {
		ids[i] = e.Connect(t)
	}
	var rts []vault.Secret
	for _, id := range ids[sweepN:] {
		rts = append(rts, vault.NewSecret(e.Token(t, id)["refresh_token"].(string)))
		e.S.SetStatus(t, id, "needs_reauth")
	}
	// The rest of the stored connections, not due in any round: they
	// expire from 6 h to a day and a half later, one every second.
	seedStart := time.Now()
	seedCopies(t, e.S.App.Store, ids[0], storedConnections-len(ids), func(i int) time.Time {
		return e.Clock.Now().Add(6*time.Hour + time.Duration(i)*time.Second)
	})
	var stored int
	if err := e.S.App.Store.DB().QueryRow("SELECT COUNT(*) FROM source_connections").Scan(&stored); err != nil || stored != storedConnections {
		t.Fatalf("%d connections stored (%v), want %d", stored, err, storedConnections)
	}
	t.Logf("%s: %d connections stored (%d copies in %v)", name, stored, storedConnections-len(ids), time.Since(seedStart).Round(time.Millisecond))

	var sweeps, bases []float64
	for round := range 1 + refreshRounds {
		base := directRefreshes(t, e, rts, concurrency)
		// Every swept token comes due (they expire an hour after their
		// last refresh); the pass takes exactly those.
		e.Clock.Advance(55 * time.Minute)
		start := time.Now()
		res, err := e.S.App.Refresh.Sweep(context.Background(), refresh.SweepOptions{Window: config.Defaults().SweepWindow, Concurrency: concurrency})
		took := time.Since(start)
		if err != nil || res.Candidates != sweepN || res.Refreshed != sweepN || res.Failed != 0 {
			t.Fatalf("sweep = %+v, %v", res, err)
		}
		if round > 0 {
			bases, sweeps = append(bases, base), append(sweeps, float64(res.Refreshed)/took.Seconds())
		}
	}
	got, base := medianOf(sweeps), medianOf(bases)
	t.Logf("%s: sweeps %.0f tokens/s, baselines %.0f tokens/s", name, sweeps, bases)
	row := fmt.Sprintf("| proactive sweep, %d due of %d stored connections, concurrency %d (%s, median of %d) | %.0f tokens/s | direct refresh requests to the same server: %.0f tokens/s | %.1f%% of baseline (goal ≥ 1,000 tokens/s: %s) |",
		sweepN, storedConnections, concurrency, name, refreshRounds, got, base, 100*got/base, verdict(got >= 1000))
	t.Log(row)
	return row
}

// directRefreshes refreshes the grants' tokens straight at the
// authorization server with the given concurrency, keeps the rotated refresh
// tokens in rts, and returns tokens per second.
func directRefreshes(t *testing.T, e *testkit.OAuthEnv, rts []vault.Secret, concurrency int) float64 {
	t.Helper()
	ep := oauth.Endpoint{TokenURL: e.AS.TokenURL(), ClientAuth: "header"}
	client := oauth.Client{ID: "valetkey-client", Secret: vault.NewSecret("valetkey-secret")}
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	var failed atomic.Int64
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tok, err := oauth.Refresh(context.Background(), http.DefaultClient, ep, client, rts[i])
				if err != nil {
					failed.Add(1)
					continue
				}
				rts[i] = tok.RefreshToken
			}
		}()
	}
	for i := range rts {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d baseline refreshes failed", n)
	}
	return float64(len(rts)) / took.Seconds()
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
