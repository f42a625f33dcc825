package refresh_test

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
)

const (
	// faultConnections is how many due credentials a faulty sweep meets:
	// far more than any bound below, so a leak per candidate shows.
	faultConnections = 240
	sweepConcurrency = 4
	// requestTimeout stands for VALETKEY_REFRESH_REQUEST_TIMEOUT (10s by
	// default) so that the slow provider, which really takes 10s, is a
	// timeout here too without the test waiting 10s per wave.
	requestTimeout = 2 * time.Second
	// breakerThreshold and breakerCooldown are the engine's defaults.
	breakerThreshold = 5
	breakerCooldown  = 30 * time.Second
	// goroutinesPerRefresh is what one refresh in flight may hold: the
	// sweep's worker, the HTTP client connection's read and write loops,
	// the in-process authorization server's connection and its
	// background reader, and one spare.
	goroutinesPerRefresh = 6
	// goroutineSlack covers the caller's /token request (its client and
	// server connections), the sampler, idle keep-alive connections and
	// the server's own background work.
	goroutineSlack = 40
)

// faultTransport is the refresh engine's transport: it counts token
// requests, and while refused is set it dials a closed port, so requests
// fail with a real "connection refused".
type faultTransport struct {
	base    *http.Transport
	sent    atomic.Int64
	refused atomic.Bool
}

func newFaultTransport(t *testing.T) *faultTransport {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	f := &faultTransport{}
	var d net.Dialer
	f.base = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f.refused.Load() {
			addr = closed
		}
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(f.base.CloseIdleConnections)
	return f
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.sent.Add(1)
	if f.refused.Load() {
		f.base.CloseIdleConnections() // a provider that is down has no open connections either
	}
	return f.base.RoundTrip(r)
}

// faultEnv is an OAuth environment whose refresh engine talks through a
// faultTransport, with many connections.
type faultEnv struct {
	*testkit.OAuthEnv
	tr    *faultTransport
	orgID string
	ids   []string
}

func newFaultEnv(t *testing.T, dbURL string, n int, mutate func(*config.Config)) *faultEnv {
	tr := newFaultTransport(t)
	e := testkit.NewOAuthEnv(t, dbURL, func(c *config.Config) {
		c.LogLevel = "warn"
		c.RefreshRequestTimeout = requestTimeout
		c.Refresh.HTTPClient = &http.Client{Transport: tr}
		if mutate != nil {
			mutate(c)
		}
	})
	f := &faultEnv{OAuthEnv: e, tr: tr}
	for range n {
		f.ids = append(f.ids, e.Connect(t))
	}
	f.orgID = e.S.Do(t, e.S.Key, "GET", "/source-connections/"+f.ids[0], nil).Map(t)["organization_id"].(string)
	return f
}

// stored is what a connection's credential holds.
type stored struct {
	version               int64
	access, refresh, stat string
}

func (f *faultEnv) snapshot(t *testing.T) map[string]stored {
	t.Helper()
	ctx := context.Background()
	sealer := credential.Sealer{C: f.S.App.Vault}
	out := map[string]stored{}
	for _, id := range f.ids {
		c, err := f.S.App.Store.GetCredentialForConnection(ctx, f.orgID, id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := sealer.Open(c)
		if err != nil {
			t.Fatalf("credential of %s does not decrypt: %v", id, err)
		}
		conn, err := f.S.App.Store.GetConnection(ctx, f.orgID, id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = stored{version: c.Version, access: p.Fields["access_token"].Reveal(), refresh: p.Fields["refresh_token"].Reveal(), stat: conn.Status}
	}
	return out
}

// peakGoroutines samples runtime.NumGoroutine until stop is closed.
func peakGoroutines(stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		peak := 0
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, runtime.NumGoroutine())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestSweepDuringProviderFault: while the token endpoint is slow (10 s),
// refuses connections, or answers 503 or 429, a sweep over many due
// credentials keeps its goroutines bounded and stops sending requests once
// the provider is clearly down; a caller of /token for a due connection gets
// 503 with Retry-After within about one request timeout; nothing is marked
// needs_reauth and every credential still decrypts to its old tokens; once
// the fault clears, the next sweep refreshes every one.
func TestSweepDuringProviderFault(t *testing.T) {
	faults := []struct {
		name       string
		start, end func(f *faultEnv)
	}{
		{"slow 10s", func(f *faultEnv) { f.AS.SetTokenDelay(10 * time.Second) }, func(f *faultEnv) { f.AS.SetTokenDelay(0) }},
		{"connection refused", func(f *faultEnv) { f.tr.refused.Store(true) }, func(f *faultEnv) { f.tr.refused.Store(false) }},
		{"503", func(f *faultEnv) { f.AS.FailTokenRequests(-1, 503, `{"error":"temporarily_unavailable"}`) },
			func(f *faultEnv) { f.AS.FailTokenRequests(0, 0, "") }},
		{"429", func(f *faultEnv) { f.AS.FailTokenRequests(-1, 429, `{"error":"slow_down"}`) },
			func(f *faultEnv) { f.AS.FailTokenRequests(0, 0, "") }},
	}
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			f := newFaultEnv(t, newURL(t), faultConnections, nil)
			ctx := context.Background()
			opts := refresh.SweepOptions{Window: 10 * time.Minute, Concurrency: sweepConcurrency}
			caller := f.ids[len(f.ids)-1] // expires last: the sweep reaches it last, if at all
			for _, fault := range faults {
				t.Run(fault.name, func(t *testing.T) {
					f.Clock.Advance(55 * time.Minute) // every token now expires within the window
					before := f.snapshot(t)
					runtime.GC()
					baseline := runtime.NumGoroutine()
					sentBefore := f.tr.sent.Load()

					fault.start(f)
					stopSampling := make(chan struct{})
					peak := peakGoroutines(stopSampling)
					type result struct {
						res refresh.SweepResult
						err error
					}
					swept := make(chan result, 1)
					go func() {
						res, err := f.S.App.Refresh.Sweep(ctx, opts)
						swept <- result{res, err}
					}()
					// A caller asks for a due token while the sweep meets the fault.
					for f.tr.sent.Load() == sentBefore {
						time.Sleep(time.Millisecond)
					}
					began := time.Now()
					r := f.S.Do(t, f.S.Key, "GET", "/source-connections/"+caller+"/token", nil)
					waited := time.Since(began)
					sw := <-swept
					close(stopSampling)
					maxG := <-peak
					sent := f.tr.sent.Load() - sentBefore
					t.Logf("sweep %+v, %v; %d requests sent; goroutines: baseline %d, peak %d; caller: %d after %v (Retry-After %q)",
						sw.res, sw.err, sent, baseline, maxG, r.Status, waited.Round(time.Millisecond), r.Header.Get("Retry-After"))

					if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
						t.Errorf("caller during the fault: %d, Retry-After %q; want 503 with Retry-After", r.Status, r.Header.Get("Retry-After"))
					}
					// Retries of a 10 s provider would take Attempts × requestTimeout.
					if waited >= 2*requestTimeout {
						t.Errorf("caller waited %v, want about one request timeout (%v)", waited, requestTimeout)
					}
					if limit := baseline + goroutinesPerRefresh*sweepConcurrency + goroutineSlack; maxG > limit {
						t.Errorf("goroutines peaked at %d (baseline %d): above %d, not bounded by the concurrency", maxG, baseline, limit)
					}
					if sw.err != nil || sw.res.Candidates != faultConnections || sw.res.Refreshed != 0 || sw.res.Deferred == 0 {
						t.Errorf("sweep during the fault = %+v, %v", sw.res, sw.err)
					}
					// The sweep stops once the provider is clearly down: at most
					// the refreshes in flight when the breaker opened, and the
					// caller's, reach it (each up to 3 attempts).
					if limit := int64(3 * (breakerThreshold + sweepConcurrency + 1)); sent > limit {
						t.Errorf("%d token requests sent for %d candidates, want at most %d", sent, faultConnections, limit)
					}
					// With the provider known to be down, a caller gets 503 at
					// once, told to come back after the cooldown, and nothing
					// is sent.
					sentNow := f.tr.sent.Load()
					r = f.S.Do(t, f.S.Key, "GET", "/source-connections/"+f.ids[0]+"/token", nil)
					if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != http.StatusServiceUnavailable || ra < 1 || ra > int(breakerCooldown.Seconds()) ||
						f.tr.sent.Load() != sentNow {
						t.Errorf("caller once the provider is known down: %d, Retry-After %q, %d requests sent", r.Status, r.Header.Get("Retry-After"), f.tr.sent.Load()-sentNow)
					}
					fault.end(f)
					after := f.snapshot(t)
					for _, id := range f.ids {
						if after[id] != before[id] {
							t.Fatalf("connection %s changed during a transient fault: status %q, version %d → %d, tokens kept %v",
								id, after[id].stat, before[id].version, after[id].version,
								after[id].access == before[id].access && after[id].refresh == before[id].refresh)
						}
						if after[id].stat != store.StatusActive {
							t.Fatalf("connection %s is %q after a transient fault", id, after[id].stat)
						}
					}

					// The fault clears; once the breaker's cooldown is over the
					// next sweep refreshes every credential.
					f.Clock.Advance(breakerCooldown)
					res, err := f.S.App.Refresh.Sweep(ctx, opts)
					if err != nil || res.Candidates != faultConnections || res.Refreshed != faultConnections || res.Failed != 0 || res.Deferred != 0 {
						t.Fatalf("sweep after the fault = %+v, %v", res, err)
					}
					for id, s := range f.snapshot(t) {
						if s.version != before[id].version+1 || !f.AS.AccessTokenActive(s.access) || !f.AS.RefreshTokenActive(s.refresh) {
							t.Fatalf("connection %s after the fault: version %d → %d, tokens active %v/%v", id, before[id].version, s.version,
								f.AS.AccessTokenActive(s.access), f.AS.RefreshTokenActive(s.refresh))
						}
					}
				})
			}
		})
	}
}

// TestSweepStopsWhenCancelled: cancelling a sweep (shutdown) starts no
// refresh and no retry, and Sweep returns once the requests already sent
// are answered, their results stored: no rotated token is lost.
func TestSweepStopsWhenCancelled(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			f := newFaultEnv(t, newURL(t), 3*sweepConcurrency, func(c *config.Config) {
				// Long backoffs, a budget that allows them: the sweep is
				// cancelled while its refreshes wait to retry.
				c.Refresh.Backoff = 4 * time.Second
				c.Refresh.RefreshBudget = 20 * time.Second
			})
			f.Clock.Advance(55 * time.Minute)
			before := f.snapshot(t)
			opts := refresh.SweepOptions{Window: 10 * time.Minute, Concurrency: sweepConcurrency}

			t.Run("waiting to retry", func(t *testing.T) {
				f.AS.FailTokenRequests(-1, 503, `{"error":"temporarily_unavailable"}`)
				defer f.AS.FailTokenRequests(0, 0, "")
				ctx, cancel := context.WithCancel(context.Background())
				sentBefore := f.tr.sent.Load()
				done := make(chan error, 1)
				go func() {
					_, err := f.S.App.Refresh.Sweep(ctx, opts)
					done <- err
				}()
				for f.tr.sent.Load()-sentBefore < sweepConcurrency {
					time.Sleep(time.Millisecond)
				}
				cancel()
				if err := <-done; err != context.Canceled {
					t.Fatalf("cancelled sweep returned %v", err)
				}
				if sent := f.tr.sent.Load() - sentBefore; sent != sweepConcurrency {
					t.Fatalf("%d requests sent, want %d: the cancelled sweep started or retried refreshes", sent, sweepConcurrency)
				}
				for id, s := range f.snapshot(t) {
					if s != before[id] {
						t.Fatalf("connection %s changed", id)
					}
				}
			})
			t.Run("requests in flight", func(t *testing.T) {
				f.AS.SetTokenDelay(300 * time.Millisecond)
				defer f.AS.SetTokenDelay(0)
				ctx, cancel := context.WithCancel(context.Background())
				sentBefore, arrivedBefore := f.tr.sent.Load(), f.AS.TokenRequests("refresh_token")
				done := make(chan error, 1)
				go func() {
					_, err := f.S.App.Refresh.Sweep(ctx, opts)
					done <- err
				}()
				for f.AS.TokenRequests("refresh_token") == arrivedBefore {
					time.Sleep(time.Millisecond)
				}
				cancel()
				if err := <-done; err != context.Canceled {
					t.Fatalf("cancelled sweep returned %v", err)
				}
				sent := f.tr.sent.Load() - sentBefore
				refreshed := 0
				for id, s := range f.snapshot(t) {
					if s.stat != store.StatusActive || !f.AS.RefreshTokenActive(s.refresh) {
						t.Fatalf("connection %s: status %q, stored refresh token active %v: a rotation was lost", id, s.stat, f.AS.RefreshTokenActive(s.refresh))
					}
					if s.version != before[id].version {
						refreshed++
					}
				}
				if sent == 0 || sent > sweepConcurrency || int64(refreshed) != sent {
					t.Fatalf("%d requests in flight at the cancel, %d refreshes stored", sent, refreshed)
				}
			})
		})
	}
}
