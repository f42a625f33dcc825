package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/hubspot"
	"github.com/valetkey/valetkey/internal/testkit/oauthserver"
)

const (
	// loadRate is the fixed rate of the mixed load, all kinds together. At
	// this rate a 2-CPU machine that also runs the rest of `go test ./...`
	// keeps up with a wide margin (the /token route alone serves several
	// thousand req/s here, see BENCHMARKS.md).
	loadRate = 150
	// loadDuration is the measured load, as issue #9 asks; VALETKEY_LOAD_DURATION
	// (a Go duration) overrides it for a quicker local run.
	loadDuration = 60 * time.Second
	// loadWarmup runs the same mix first, so pools, prepared statements and
	// keep-alive connections exist before the baseline, and River's leader
	// has started its maintenance services (a dozen goroutines that start
	// one by one over the first ≈ 5 s).
	loadWarmup = 10 * time.Second
	// loadMaxInFlight bounds the requests outstanding at once; a slot that
	// comes due while that many are outstanding is counted as missed.
	loadMaxInFlight = 256
	// loadGoroutineSlack is how many more goroutines than the baseline the
	// process may hold once the load has ended: a few helpers start lazily
	// (database/sql's connection cleaner, a pgx background reader). A leak
	// of one goroutine per request is thousands.
	loadGoroutineSlack = 5
	// loadHeapSlack is how much more heap (after GC) than the baseline the
	// process may hold. What legitimately grows is bounded and small: the
	// fosite server's in-memory token store (a few refreshes), River's
	// state, prepared-statement caches, the test's own latency samples
	// (≈ 70 KiB); measured, it is under 2 MiB on either backend. 16 MiB
	// over the 9,000 requests of a 60 s run is under 2 KiB per request: a
	// retained request, response or connection buffer (bufio's alone are
	// 4 KiB) fails the check.
	loadHeapSlack = 16 << 20
	// loadTokenLifespan makes the OAuth connections' access tokens due for
	// refresh (HubSpot's margin is 5 minutes) about every 15 s, so reads,
	// executes and syncs race rotations: fosite revokes the old access token
	// at each refresh, and an execute or sync page holding it must recover.
	loadTokenLifespan = 5*time.Minute + 15*time.Second
	loadOAuthConns    = 4
	loadAPIKeyConns   = 4
)

// The kinds of request in the mix.
const (
	kindRead    = "read"    // GET /source-connections/{id}/token
	kindExecute = "execute" // POST /source-connections/{id}/execute
	kindCreate  = "create"  // POST /source-connections (API key)
	kindDelete  = "delete"  // DELETE /source-connections/{id} of one created earlier
	kindRun     = "run"     // POST /source-connections/{id}/run
)

var loadKinds = []string{kindRead, kindExecute, kindCreate, kindDelete, kindRun}

// loadMix is the pattern of 20 slots the load repeats: 55 % reads, 20 %
// executes, 10 % creates, 5 % deletes (half the created connections are
// deleted again, so the table grows by 5 % of the slots), 10 % runs. The
// two runs of a pattern go to the same connection one slot apart, so the
// second usually finds the first's job still queued.
var loadMix = [20]string{
	kindRead, kindExecute, kindRead, kindCreate, kindRead, kindRead, kindExecute, kindRead, kindDelete, kindRead,
	kindRead, kindExecute, kindRead, kindCreate, kindRead, kindRun, kindRun, kindExecute, kindRead, kindRead,
}

// loadReport is one backend's figures for BENCHMARKS.md.
type loadReport struct {
	backend       string
	duration      time.Duration
	phase         *loadPhase
	before, after memSnapshot
	connections   int
	jobs          int
	refreshes     int64
}

// TestMixedLoad is issue #9's acceptance point: a mixed load (token reads,
// creates and deletes, executes, sync runs) at a fixed rate for 60 s on
// loopback, with no error, and no growth in goroutines or heap once it has
// ended. The server, the OAuth authorization server, the HubSpot emulator
// and the load generator share this process, so the goroutine count and heap
// are measured for all of them: the baseline is taken after a warm-up with
// the generator idle and every idle keep-alive connection closed, and the
// same is done after the load.
func TestMixedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the mixed load runs for a minute")
	}
	d := loadDuration
	if v := os.Getenv("VALETKEY_LOAD_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("VALETKEY_LOAD_DURATION=%q: want a positive Go duration", v)
		}
	}
	var reports []loadReport
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			env := newLoadEnv(t, testkit.DatabaseURLs()[name](t))
			r := env.mixedLoad(t, http.DefaultTransport.(*http.Transport).Clone(), d)
			r.backend = name
			reports = append(reports, r)
		})
	}
	if out := os.Getenv("VALETKEY_BENCH_REPORT"); out != "" && !t.Failed() && len(reports) > 0 {
		writeSection(t, out, "load", "TestMixedLoad", loadReportBody(reports))
	}
}

// TestMixedLoadCatchesLeaks proves the checks of TestMixedLoad can fail: a
// short load whose every request leaks one blocked goroutine and 256 KiB
// of heap must be reported on both counts. The leak is in the client's
// transport, which is in the same process as the server: the checks count
// the whole process, so a leak on either side is the same to them.
func TestMixedLoadCatchesLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a server and runs a short load")
	}
	env := newLoadEnv(t, testkit.SQLiteURL(t))
	leaky := &leakyTransport{base: http.DefaultTransport.(*http.Transport).Clone(), release: make(chan struct{})}
	defer leaky.free()
	l := env.newLoader(leaky)
	l.phase(t, loadRate, time.Second)
	env.waitJobsIdle(t)
	before := l.baseline()
	leaky.on.Store(true)
	p := l.phase(t, loadRate, 2*time.Second)
	leaky.on.Store(false)
	env.waitJobsIdle(t)
	after, problems := l.settled(before, 2*time.Second)
	t.Logf("with a leak per request (%d requests): goroutines %d → %d, heap in use %.1f → %.1f MiB; reported: %q",
		p.sent(), before.goroutines, after.goroutines, mib(before.heapInuse), mib(after.heapInuse), problems)
	var gor, heap bool
	for _, p := range problems {
		gor = gor || strings.HasPrefix(p, "goroutines")
		heap = heap || strings.HasPrefix(p, "heap")
	}
	if !gor || !heap {
		t.Fatalf("the leak checks missed a leak of one goroutine and 256 KiB per request: %q", problems)
	}
}

// leakyTransport leaks, while on, one goroutine and 256 KiB per request
// until free.
type leakyTransport struct {
	base    *http.Transport
	on      atomic.Bool
	release chan struct{}

	mu   sync.Mutex
	kept [][]byte
}

func (l *leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if l.on.Load() {
		go func() { <-l.release }()
		b := make([]byte, 256<<10)
		b[0] = 1
		l.mu.Lock()
		l.kept = append(l.kept, b)
		l.mu.Unlock()
	}
	return l.base.RoundTrip(r)
}

func (l *leakyTransport) CloseIdleConnections() { l.base.CloseIdleConnections() }

func (l *leakyTransport) free() {
	close(l.release)
	l.mu.Lock()
	l.kept = nil
	l.mu.Unlock()
}

// loadEnv is a Valetkey server whose HubSpot source authorizes through the
// fosite server and calls the HubSpot emulator, with OAuth and API-key
// connections to read, execute and sync, and a collection for the
// connections the load creates.
type loadEnv struct {
	s     *testkit.Server
	as    *oauthserver.Server
	hs    *hubspot.Emulator
	orgID string
	// fixed are the connections reads, executes and runs use: the OAuth
	// ones first, then the API-key ones.
	fixed                   []string
	loadColl, loadCollRID   string
	created, deleted, setup atomic.Int64
}

func newLoadEnv(t *testing.T, dbURL string) *loadEnv {
	t.Helper()
	e := &loadEnv{}
	e.as = oauthserver.New(t, oauthserver.Options{ClientAuth: "header", Scopes: []string{"read"}, AccessTokenLifespan: loadTokenLifespan})
	e.hs = hubspot.New(t, func(tok string) bool { return strings.HasPrefix(tok, "pat-load-") || e.as.AccessTokenActive(tok) })
	e.hs.Seed("contacts", 40)
	e.hs.Seed("companies", 5)
	e.hs.Seed("deals", 5)
	dir := t.TempDir()
	writeHubSpotDef(t, dir, e.as, e.hs.URL)
	e.s = testkit.NewServer(t, dbURL, testkitQuiet, func(c *config.Config) { c.CatalogDir = dir })
	e.as.SetRedirectURIs(e.s.URL + "/oauth/callback")
	if r := e.s.Do(t, e.s.Key, "PUT", "/oauth-apps/hubspot", map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret"}); r.Status != 200 {
		t.Fatalf("register OAuth app: %d %s", r.Status, r.Body)
	}
	browser := testkit.NoRedirectClient()
	for i := range loadOAuthConns {
		r := e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": fmt.Sprintf("Load OAuth %d", i), "short_name": "hubspot"})
		if r.Status != 200 {
			t.Fatalf("create OAuth connection: %d %s", r.Status, r.Body)
		}
		c := r.Map(t)
		e.orgID = c["organization_id"].(string)
		resp, err := browser.Get(c["auth"].(map[string]any)["auth_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp, err = browser.Get(e.as.Consent(t, browser, resp.Header.Get("Location"), true).String()); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if st := e.s.Do(t, e.s.Key, "GET", "/source-connections/"+c["id"].(string), nil).Map(t)["status"]; resp.StatusCode >= 400 || st != "active" {
			t.Fatalf("OAuth callback answered %d; connection %v", resp.StatusCode, st)
		}
		e.fixed = append(e.fixed, c["id"].(string))
	}
	for i := range loadAPIKeyConns {
		r := e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": fmt.Sprintf("Load key %d", i), "short_name": "hubspot",
			"auth_fields": map[string]any{"api_key": fmt.Sprintf("pat-load-fixed-%d", i)}})
		if r.Status != 200 {
			t.Fatalf("create API-key connection: %d %s", r.Status, r.Body)
		}
		e.fixed = append(e.fixed, r.Map(t)["id"].(string))
	}
	r := e.s.Do(t, e.s.Key, "POST", "/collections", map[string]any{"name": "Load"})
	if r.Status != 200 {
		t.Fatalf("create collection: %d %s", r.Status, r.Body)
	}
	c := r.Map(t)
	e.loadColl, e.loadCollRID = c["id"].(string), c["readable_id"].(string)
	return e
}

// writeHubSpotDef writes the built-in HubSpot definition with its OAuth
// endpoints on the fosite server and its API on the emulator.
func writeHubSpotDef(t *testing.T, dir string, as *oauthserver.Server, apiBase string) {
	t.Helper()
	var out []string
	for _, line := range strings.Split(mustRead(t, filepath.Join("..", "catalog", "sources", "hubspot.yaml")), "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		switch key {
		case "authorize_url":
			line = indent + "authorize_url: " + as.AuthorizeURL()
		case "token_url":
			line = indent + "token_url: " + as.TokenURL()
		case "revoke_url":
			line = indent + `revoke_url: ""`
		case "scopes":
			line = indent + "scopes: [read]"
		case "client_auth":
			line = indent + "client_auth: header"
		case "base_url":
			line = indent + "base_url: " + apiBase
		}
		out = append(out, line)
	}
	if err := os.WriteFile(filepath.Join(dir, "hubspot.yaml"), []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mixedLoad warms up, takes the baseline, runs the load for d, waits for
// the syncs it started, and checks errors, goroutines, heap, and that the
// database holds what the answers said.
func (e *loadEnv) mixedLoad(t *testing.T, tr http.RoundTripper, d time.Duration) loadReport {
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(e.s.Logs.String()), "\n")
			t.Logf("the server's last warnings and errors:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	l := e.newLoader(tr)
	warm := l.phase(t, loadRate, loadWarmup)
	e.waitJobsIdle(t)
	if n := warm.errorCount(); n > 0 {
		t.Fatalf("warm-up: %d errors: %s", n, warm.errorSample())
	}
	before := l.baseline()

	refreshes := e.as.TokenRequests("refresh_token")
	p := l.phase(t, loadRate, d)
	refreshes = e.as.TokenRequests("refresh_token") - refreshes
	e.waitJobsIdle(t)
	after, problems := l.settled(before, 10*time.Second)

	summary := fmt.Sprintf("mixed load %d req/s × %s: %d sent, %d missed slots, %d errors; %s; %d token refreshes; goroutines %d → %d; heap in use %.1f → %.1f MiB, live %.1f → %.1f MiB",
		loadRate, d, p.sent(), p.missed, p.errorCount(), p.kindSummary(), refreshes, before.goroutines, after.goroutines,
		mib(before.heapInuse), mib(after.heapInuse), mib(before.heapAlloc), mib(after.heapAlloc))
	t.Log(summary)
	if n := p.errorCount(); n > 0 {
		t.Errorf("%d requests failed: %s", n, p.errorSample())
	}
	if p.missed > 0 {
		// Not an error (no speed assertion): the machine could not keep
		// loadMaxInFlight requests enough; the figures say so.
		t.Logf("note: %d slots were missed with %d requests in flight", p.missed, loadMaxInFlight)
	}
	for _, pr := range problems {
		t.Errorf("after the load: %s", pr)
	}
	if after.goroutines > before.goroutines {
		t.Logf("goroutines grown since the baseline, by stack:\n%s", profileGrowth(before.stacks, after.stacks))
	}

	// The database holds what the answers said.
	ctx := context.Background()
	conns, err := e.s.App.Store.ListConnections(ctx, e.orgID, store.ConnectionFilter{CollectionID: e.loadColl, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if want := e.created.Load() - e.deleted.Load(); int64(len(conns)) != want {
		t.Errorf("the load collection holds %d connections; %d created − %d deleted = %d", len(conns), e.created.Load(), e.deleted.Load(), want)
	}
	jobs := 0
	for _, id := range e.fixed {
		js, err := e.s.App.Store.ListSyncJobs(ctx, e.orgID, id, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range js {
			if j.Status != store.JobCompleted {
				t.Errorf("job %s of %s ended %s: %s (%s)", j.ID, id, j.Status, j.Error, j.ErrorCategory)
			}
		}
		jobs += len(js)
		c, err := e.s.App.Store.GetConnection(ctx, e.orgID, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != store.StatusActive {
			t.Errorf("connection %s is %s after the load", id, c.Status)
		}
	}
	if started := warm.byKind[kindRun].accepted + p.byKind[kindRun].accepted; int64(jobs) != started {
		t.Errorf("%d jobs stored for %d runs accepted", jobs, started)
	}
	return loadReport{duration: d, phase: p, before: before, after: after, connections: len(conns), jobs: jobs, refreshes: refreshes}
}

// waitJobsIdle waits (bounded) until no sync job is queued or running.
func (e *loadEnv) waitJobsIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		active := 0
		for _, st := range []string{store.JobCreated, store.JobPending, store.JobRunning, store.JobCancelling} {
			n, err := e.s.App.Store.CountSyncJobs(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			active += n
		}
		if active == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sync jobs still active 60 s after the load", active)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loader sends the mix to the server from its own client.
type loader struct {
	env    *loadEnv
	client *http.Client
	tr     interface{ CloseIdleConnections() }
	slot   atomic.Int64 // across phases, so the mix and targets continue

	mu   sync.Mutex
	pool []string // created connections not deleted yet, oldest first
}

func (e *loadEnv) newLoader(tr http.RoundTripper) *loader {
	if t, ok := tr.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = loadMaxInFlight
	}
	return &loader{env: e, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr: tr.(interface{ CloseIdleConnections() })}
}

// loadPhase is what one run of the scheduler saw.
type loadPhase struct {
	missed int64
	mu     sync.Mutex
	byKind map[string]*kindStats
}

type kindStats struct {
	latencies []time.Duration
	statuses  map[int]int64
	accepted  int64 // runs answered 200 (a job was created)
	conflicts int64 // runs answered 409: one already pending or running
	errors    []string
}

func (p *loadPhase) sent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, k := range p.byKind {
		n += int64(len(k.latencies))
	}
	return n
}

func (p *loadPhase) errorCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.byKind {
		n += len(k.errors)
	}
	return n
}

// errorSample lists up to five failures of each kind.
func (p *loadPhase) errorSample() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, kind := range loadKinds {
		errs := p.byKind[kind].errors
		out = append(out, errs[:min(5, len(errs))]...)
	}
	return strings.Join(out, "; ")
}

func (p *loadPhase) kindSummary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, kind := range loadKinds {
		k := p.byKind[kind]
		if len(k.latencies) == 0 {
			out = append(out, kind+" 0")
			continue
		}
		s := fmt.Sprintf("%s %d (p50 %.1f ms, p99 %.1f ms", kind, len(k.latencies), ms(percentile(k.latencies, 0.50)), ms(percentile(k.latencies, 0.99)))
		if kind == kindRun {
			s += fmt.Sprintf(", %d started, %d already running", k.accepted, k.conflicts)
		}
		out = append(out, s+")")
	}
	return strings.Join(out, ", ")
}

// phase issues slots at rate per second for d on a schedule (open loop: a
// slot does not wait for earlier answers), at most loadMaxInFlight at once,
// then waits for every answer.
func (l *loader) phase(t *testing.T, rate int, d time.Duration) *loadPhase {
	t.Helper()
	p := &loadPhase{byKind: map[string]*kindStats{}}
	for _, k := range loadKinds {
		p.byKind[k] = &kindStats{statuses: map[int]int64{}}
	}
	total := int(d.Seconds() * float64(rate))
	sem := make(chan struct{}, loadMaxInFlight)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	for next := 0; next < total; {
		<-tick.C
		// Every slot whose time has come, including any a late tick skipped.
		due := min(total, int(time.Since(start)*time.Duration(rate)/time.Second)+1)
		for ; next < due; next++ {
			select {
			case sem <- struct{}{}:
			default:
				p.missed++
				continue
			}
			wg.Add(1)
			go func(slot int64) {
				defer wg.Done()
				defer func() { <-sem }()
				l.do(p, slot)
			}(l.slot.Add(1) - 1)
		}
	}
	wg.Wait()
	return p
}

// do sends the request of one slot and records its answer.
func (l *loader) do(p *loadPhase, slot int64) {
	e := l.env
	kind := loadMix[slot%int64(len(loadMix))]
	target := e.fixed[(slot/int64(len(loadMix))+slot)%int64(len(e.fixed))]
	if kind == kindRun {
		target = e.fixed[(slot/int64(len(loadMix)))%int64(len(e.fixed))]
	}
	var victim string
	if kind == kindDelete {
		l.mu.Lock()
		if len(l.pool) > 0 {
			victim, l.pool = l.pool[0], l.pool[1:]
		}
		l.mu.Unlock()
		if victim == "" {
			kind = kindRead // nothing created yet
		}
	}
	var method, path string
	var body any
	switch kind {
	case kindRead:
		method, path = "GET", "/source-connections/"+target+"/token"
	case kindExecute:
		method, path = "POST", "/source-connections/"+target+"/execute"
		body = map[string]any{"entity": "contacts", "action": "list", "params": map[string]any{"limit": 10}}
		if slot%int64(len(loadMix)) > 10 { // half the executes
			body = map[string]any{"entity": "deals", "action": "get", "params": map[string]any{"id": "3"}}
		}
	case kindCreate:
		method, path = "POST", "/source-connections"
		body = map[string]any{"name": fmt.Sprintf("Load %d", slot), "short_name": "hubspot", "collection": e.loadCollRID,
			"auth_fields": map[string]any{"api_key": fmt.Sprintf("pat-load-%d", slot)}}
	case kindDelete:
		method, path = "DELETE", "/source-connections/"+victim
	case kindRun:
		method, path = "POST", "/source-connections/"+target+"/run"
	}
	status, answer, lat, err := l.send(method, path, body)

	// Which answers are right: 200 for every kind, and for a run also 409
	// "already pending or running" — the mix asks for runs faster than a
	// sync of the same connection ends, and refusing a second concurrent
	// run is the documented contract (a partial unique index holds it).
	// Anything else, including a 429 from the rate limiter (the default
	// limit is far above loadRate), is an error.
	var failure string
	switch {
	case err != nil:
		failure = fmt.Sprintf("%s %s: %v", method, path, err)
	case status == 200:
	case kind == kindRun && status == 409 && bytes.Contains(answer, []byte("already pending or running")):
	default:
		failure = fmt.Sprintf("%s %s: %d %s", method, path, status, truncate(answer, 300))
	}
	if failure == "" {
		switch kind {
		case kindCreate:
			var c struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(answer, &c) != nil || c.ID == "" {
				failure = fmt.Sprintf("create answered 200 without an id: %s", truncate(answer, 300))
				break
			}
			e.created.Add(1)
			l.mu.Lock()
			// Of every four created connections, two are deleted later.
			if slot%(2*int64(len(loadMix))) < int64(len(loadMix)) {
				l.pool = append(l.pool, c.ID)
			}
			l.mu.Unlock()
		case kindDelete:
			e.deleted.Add(1)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.byKind[kind]
	k.latencies = append(k.latencies, lat)
	k.statuses[status]++
	if failure != "" {
		k.errors = append(k.errors, failure)
		return
	}
	if kind == kindRun {
		if status == 200 {
			k.accepted++
		} else {
			k.conflicts++
		}
	}
}

func (l *loader) send(method, path string, body any) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.env.s.URL+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-API-Key", l.env.s.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, time.Since(t0), err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, answer, time.Since(t0), err
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// memSnapshot is the process's goroutines (with their stacks) and heap
// after GC.
type memSnapshot struct {
	goroutines           int
	heapInuse, heapAlloc uint64
	stacks               map[string]int
}

// snapshot closes idle keep-alive connections (the load client's, and the
// default transport's, which the server uses to call the emulator and the
// authorization server and the setup used to call the server: a pool of
// idle connections is a cache, not growth), collects garbage and reads the
// figures.
func (l *loader) snapshot() memSnapshot {
	l.tr.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{goroutines: runtime.NumGoroutine(), heapInuse: m.HeapInuse, heapAlloc: m.HeapAlloc, stacks: goroutineProfile()}
}

// baseline is the state with the generator idle: of six looks over a
// second, the one with the fewest goroutines (a helper that happens to be
// running must not raise the baseline).
func (l *loader) baseline() memSnapshot {
	b := l.snapshot()
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		if s := l.snapshot(); s.goroutines <= b.goroutines {
			b = s
		}
	}
	return b
}

// settled looks again and again, up to wait, until the process is back to
// the baseline's goroutines (those serving a closed connection exit when
// they notice the close; periodic helpers come and go) and within the heap
// bounds. It returns the look with the fewest goroutines, with the heap of
// the last look, and whatever is still beyond the bounds.
func (l *loader) settled(before memSnapshot, wait time.Duration) (memSnapshot, []string) {
	deadline := time.Now().Add(wait)
	best := l.snapshot()
	for best.goroutines > before.goroutines || len(growth(before, best)) > 0 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
		s := l.snapshot()
		if s.goroutines <= best.goroutines {
			best.goroutines, best.stacks = s.goroutines, s.stacks
		}
		best.heapInuse, best.heapAlloc = s.heapInuse, s.heapAlloc
	}
	return best, growth(before, best)
}

// growth compares after with before against the bounds.
func growth(before, after memSnapshot) []string {
	var out []string
	if after.goroutines > before.goroutines+loadGoroutineSlack {
		out = append(out, fmt.Sprintf("goroutines: %d after the load, %d before (allowed +%d)", after.goroutines, before.goroutines, loadGoroutineSlack))
	}
	if after.heapInuse > heapBound(before.heapInuse) {
		out = append(out, fmt.Sprintf("heap in use: %.1f MiB after the load, %.1f MiB before (allowed %.1f MiB)", mib(after.heapInuse), mib(before.heapInuse), mib(heapBound(before.heapInuse))))
	}
	if after.heapAlloc > heapBound(before.heapAlloc) {
		out = append(out, fmt.Sprintf("heap live: %.1f MiB after the load, %.1f MiB before (allowed %.1f MiB)", mib(after.heapAlloc), mib(before.heapAlloc), mib(heapBound(before.heapAlloc))))
	}
	return out
}

// heapBound is the most heap allowed after the load.
func heapBound(base uint64) uint64 { return base + loadHeapSlack }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// goroutineProfile counts goroutines by stack (function names only).
func goroutineProfile() map[string]int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	out := map[string]int{}
	n := 0
	var frames []string
	flush := func() {
		if n > 0 {
			out[strings.Join(frames, " ← ")] += n
		}
		n, frames = 0, nil
	}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		var count int
		if _, err := fmt.Sscanf(line, "%d @", &count); err == nil {
			flush()
			n = count
			continue
		}
		if f := strings.Fields(line); n > 0 && len(f) >= 3 && f[0] == "#" {
			fn, _, _ := strings.Cut(f[2], "+0x")
			frames = append(frames, fn)
		}
	}
	flush()
	return out
}

// profileGrowth lists the stacks with more goroutines in after than before.
func profileGrowth(before, after map[string]int) string {
	type row struct {
		stack string
		n     int
	}
	var rows []row
	for s, n := range after {
		if d := n - before[s]; d > 0 {
			rows = append(rows, row{s, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	var out []string
	for _, r := range rows[:min(10, len(rows))] {
		out = append(out, fmt.Sprintf("+%d %s", r.n, r.stack))
	}
	return strings.Join(out, "\n")
}

// loadReportBody is the generated section: per backend, each kind's
// answers and latency, then the process before and after.
func loadReportBody(reports []loadReport) string {
	var b strings.Builder
	r0 := reports[0]
	fmt.Fprintf(&b, "Open loop at a fixed %d req/s for %s after a %s warm-up (mix per 20 requests: 11 token reads, 4 executes, 2 creates, 1 delete, 2 runs of one connection; "+
		"%d OAuth connections whose tokens are refreshed about every 15 s, %d API-key ones), server, fosite, HubSpot emulator and client in one process. "+
		"The baseline is the same process before the load, measured with the client idle and idle connections closed.\n\n",
		loadRate, r0.duration, loadWarmup, loadOAuthConns, loadAPIKeyConns)
	b.WriteString("| backend | kind | requests | answers | errors | p50 | p99 |\n|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		for _, kind := range loadKinds {
			k := r.phase.byKind[kind]
			if len(k.latencies) == 0 {
				continue
			}
			var codes []string
			for _, c := range slices.Sorted(maps.Keys(k.statuses)) {
				codes = append(codes, fmt.Sprintf("%d×%d", k.statuses[c], c))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %.2f ms | %.2f ms |\n", r.backend, kind, len(k.latencies), strings.Join(codes, ", "),
				len(k.errors), ms(percentile(k.latencies, 0.50)), ms(percentile(k.latencies, 0.99)))
		}
	}
	b.WriteString("\n| backend | missed slots | goroutines before → after | heap in use before → after | live heap before → after | token refreshes | connections stored | sync jobs (all completed) |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %d | %d → %d | %.1f → %.1f MiB | %.1f → %.1f MiB | %d | %d | %d |\n", r.backend, r.phase.missed,
			r.before.goroutines, r.after.goroutines, mib(r.before.heapInuse), mib(r.after.heapInuse), mib(r.before.heapAlloc), mib(r.after.heapAlloc), r.refreshes, r.connections, r.jobs)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
