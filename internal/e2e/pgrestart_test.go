package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/hubspot"
)

// failFast bounds every answer, including those while the database is down:
// generous for a loaded machine, far below the minutes a request would wait
// on an unreachable database without a connect timeout.
const failFast = 3 * time.Second

// outcome is one request of the load.
type outcome struct {
	op         string // token, list, create
	proc       int
	start, end time.Time
	status     int
	retryAfter string
	ctype      string
	body       []byte
	err        error
	conn       string // token: the connection read
	name       string // create: the connection's name
}

// loadGen sends requests at a fixed rate from goroutines (one per request,
// so a slow answer never slows the rate) and keeps every outcome.
type loadGen struct {
	c      *cluster
	client *http.Client
	ids    []string // connections to read
	// operator and widget are each replica's operator and scoped tokens
	// (a token names the replica that issued it).
	operator, widget []string
	secret           func(name string) string
	mu               sync.Mutex
	out              []outcome
	wg               sync.WaitGroup
	once             sync.Once
	stop             chan struct{}
	done             chan struct{}
}

func (l *loadGen) run(every time.Duration) {
	defer close(l.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		l.wg.Add(1)
		go func(i int) {
			defer l.wg.Done()
			o := l.one(i)
			l.mu.Lock()
			l.out = append(l.out, o)
			l.mu.Unlock()
		}(i)
	}
}

// one sends request i. In ten: four token reads, two lists and two creates
// with the API key (authenticated through the database), one list of
// workspaces with an operator token and one of the widget's connections
// with a scoped token (both verified without the database once the
// replica knows the signing key). Each replica gets ten in turn.
func (l *loadGen) one(i int) outcome {
	pi := i / 10 % len(l.c.procs)
	base := l.c.procs[pi].URL
	o := outcome{proc: pi}
	method, url, body, auth := "GET", "", "", apiKey
	switch k := i % 10; {
	case k < 4:
		o.op, o.conn = "token", l.ids[(i/10*4+k)%len(l.ids)]
		url = base + "/source-connections/" + o.conn + "/token"
	case k < 6:
		o.op, url = "list", base+"/source-connections?limit=20"
	case k < 8:
		o.op, o.name = "create", fmt.Sprintf("load-%d", i)
		method, url = "POST", base+"/source-connections"
		body = fmt.Sprintf(`{"name":%q,"short_name":"stripe","authentication":{"credentials":{"api_key":%q}}}`, o.name, l.secret(o.name))
	case k == 8:
		o.op, url, auth = "operator", base+"/api/v1/workspaces", l.operator[pi]
	default:
		o.op, url, auth = "widget", base+"/api/v1/embedded/widget/connections", l.widget[pi]
	}
	o.start = time.Now()
	o.status, o.retryAfter, o.ctype, o.body, o.err = send(l.client, auth, method, url, body)
	o.end = time.Now()
	return o
}

// halt stops the load and waits for every request in flight.
func (l *loadGen) halt() []outcome {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]outcome(nil), l.out...)
}

// send makes one request with an API key (X-API-Key) or a bearer token and
// returns the answer whole.
func send(c *http.Client, auth, method, url, body string) (status int, retryAfter, ctype string, b []byte, err error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if strings.HasPrefix(auth, "vk_") {
		req.Header.Set("X-API-Key", auth)
	} else {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", nil, err
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), b, err
}

// outage is one stop and start of the database.
type outage struct {
	mode             string
	down, up         time.Time // Stop returned; Start was called
	back             time.Time // Start returned
	recovered        time.Time // every replica served a read again
	readyzDown       []int
	slowestWhileDown time.Duration
}

// TestPostgresRestartUnderLoad stops a private Postgres server twice while two
// valetkey processes serve token reads, lists and creates (API key) and
// embedded-API reads (operator and widget tokens) at a fixed rate:
// once as an operator's restart (pg_ctl -m fast) and once as a crash
// (-m immediate). While it is down every answer comes within failFast and is
// a 503 with Retry-After and {"detail": "..."}, naming no database detail;
// /readyz says not ready. Once it is back, the processes serve again by
// themselves, and their job queue and refresh sweeper work. Afterwards every
// credential row decrypts to exactly what was injected or issued, every
// acknowledged create is stored, every read answered 200 was audited, and no
// connection needs re-authorization.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Postgres server and valetkey processes")
	}
	pg := testkit.StartPostgres(t)
	hs := hubspot.New(t, nil)
	hs.Seed("contacts", 40)
	c := newCluster(t, pg.URL, 0, map[string]string{
		"VALETKEY_REFRESH_SWEEP_INTERVAL": "1s", "VALETKEY_JOB_POLL_INTERVAL": "100ms", "VALETKEY_SCHEDULE_TICK": "500ms",
		"VALETKEY_RATE_LIMIT": "0",
	})
	def, err := os.ReadFile(filepath.Join("..", "catalog", "sources", "hubspot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.env["VALETKEY_CATALOG_DIR"], "hubspot.yaml"),
		[]byte(strings.Replace(string(def), "base_url: https://api.hubapi.com", "base_url: "+hs.URL, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c.procs = append(c.procs, start(t, c.env))
	}

	// Connections: OAuth ones through the browser flow (each read once, so
	// its first, short-lived token is refreshed before the load) and API-key
	// ones with injected values.
	secrets := map[string]string{} // connection name → injected api_key
	var secretsMu sync.Mutex
	secret := func(name string) string {
		secretsMu.Lock()
		defer secretsMu.Unlock()
		s, ok := secrets[name]
		if !ok {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			s = "sk_live_" + hex.EncodeToString(b)
			secrets[name] = s
		}
		return s
	}
	var ids, oauthIDs []string
	for i := 0; i < 3; i++ {
		id := c.connect(t)
		oauthIDs = append(oauthIDs, id)
		if st, m := call(t, http.DefaultClient, apiKey, "GET", c.procs[0].URL+"/source-connections/"+id+"/token", ""); st != 200 {
			t.Fatalf("first read of %s: %d %v", id, st, m)
		}
	}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("stripe-%d", i)
		st, m := call(t, http.DefaultClient, apiKey, "POST", c.procs[0].URL+"/source-connections",
			fmt.Sprintf(`{"name":%q,"short_name":"stripe","authentication":{"credentials":{"api_key":%q}}}`, name, secret(name)))
		if st != 200 {
			t.Fatalf("create %s: %d %v", name, st, m)
		}
		ids = append(ids, m["id"].(string))
	}
	st, hsConn := call(t, http.DefaultClient, apiKey, "POST", c.procs[0].URL+"/source-connections",
		`{"name":"HubSpot","short_name":"hubspot","authentication":{"access_token":"hs-token"}}`)
	if st != 200 {
		t.Fatalf("create hubspot: %d %v", st, hsConn)
	}
	ids = append(ids, oauthIDs...)
	operator, widget := embeddedTokens(t, c)
	refreshesBefore := c.as.TokenRequests("refresh_token")

	l := &loadGen{c: c, ids: ids, secret: secret, operator: operator, widget: widget, stop: make(chan struct{}), done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	go l.run(25 * time.Millisecond) // 40 requests a second
	t.Cleanup(func() { l.halt() })  // when the test stops early
	probe := &http.Client{Timeout: 30 * time.Second}

	var outages []*outage
	for _, mode := range []string{"fast", "immediate"} {
		time.Sleep(1500 * time.Millisecond)
		o := &outage{mode: mode}
		pg.StopMode(mode)
		o.down = time.Now()
		for _, p := range c.procs {
			began := time.Now()
			resp, err := probe.Get(p.URL + "/readyz")
			if err != nil {
				t.Fatalf("/readyz while down: %v", err)
			}
			resp.Body.Close()
			o.readyzDown = append(o.readyzDown, resp.StatusCode)
			if took := time.Since(began); took > failFast {
				t.Errorf("/readyz while down took %v", took)
			}
		}
		time.Sleep(3 * time.Second)
		o.up = time.Now()
		pg.Start()
		o.back = time.Now()
		// Every replica serves again by itself: ready, and a read succeeds.
		deadline := o.back.Add(30 * time.Second)
		for pi := 0; pi < len(c.procs); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica %d did not recover within 30s of the database being back:\n%s", mode, pi, c.procs[pi].logs.String())
			}
			resp, err := probe.Get(c.procs[pi].URL + "/readyz")
			ready := err == nil && resp.StatusCode == 200
			if err == nil {
				resp.Body.Close()
			}
			if st, _, _, _, _ := send(probe, apiKey, "GET", c.procs[pi].URL+"/source-connections/"+ids[0]+"/token", ""); ready && st == 200 {
				pi++
				continue
			}
			time.Sleep(50 * time.Millisecond)
		}
		o.recovered = time.Now()
		outages = append(outages, o)
	}
	time.Sleep(2 * time.Second) // steady again
	results := l.halt()

	// Every answer, in every phase.
	counts := map[string]int{}
	okReads := map[string]int{} // connection → 200 token reads
	for _, r := range results {
		took := r.end.Sub(r.start)
		if r.err != nil {
			t.Errorf("%s on replica %d at %s: %v", r.op, r.proc, r.start.Format("15:04:05.000"), r.err)
			continue
		}
		if took > failFast {
			t.Errorf("%s on replica %d took %v (answer %d)", r.op, r.proc, took, r.status)
		}
		counts[fmt.Sprintf("%s %d", r.op, r.status)]++
		switch r.status {
		case 200:
			if r.op == "token" {
				okReads[r.conn]++
			}
		case 503:
			checkUnavailable(t, r, pg.URL, secrets)
		default:
			t.Errorf("%s on replica %d answered %d: %s", r.op, r.proc, r.status, r.body)
		}
	}
	t.Logf("%d requests: %v", len(results), counts)

	for _, o := range outages {
		var during, okDuring, after, failedAfter int
		var lastFailure time.Time
		for _, r := range results {
			if r.err != nil {
				continue
			}
			if r.status != 200 && r.start.After(o.down) && r.end.Before(o.recovered.Add(time.Second)) && r.end.After(lastFailure) {
				lastFailure = r.end
			}
			switch {
			case r.start.After(o.down) && r.end.Before(o.up):
				during++
				if r.end.Sub(r.start) > o.slowestWhileDown {
					o.slowestWhileDown = r.end.Sub(r.start)
				}
				if r.status != 503 {
					okDuring++
				}
			case r.start.After(o.recovered) && r.start.Before(o.recovered.Add(1500*time.Millisecond)):
				after++
				if r.status != 200 {
					failedAfter++
					t.Logf("%s: %s on replica %d %v after recovery: %d %s", o.mode, r.op, r.proc, r.start.Sub(o.recovered), r.status, r.body)
				}
			}
		}
		t.Logf("%s stop: %d requests while down, slowest %v; readyz %v; database back %v after Start, replicas serving %v later (last failed answer %v after the database was back); %d requests in the next 1.5s, %d failed",
			o.mode, during, o.slowestWhileDown.Round(time.Millisecond), o.readyzDown, o.back.Sub(o.up).Round(time.Millisecond),
			o.recovered.Sub(o.back).Round(time.Millisecond), sinceOrZero(lastFailure, o.back), after, failedAfter)
		if during < 40 {
			t.Errorf("%s: only %d requests ran while the database was down", o.mode, during)
		}
		if okDuring > 0 {
			t.Errorf("%s: %d requests while the database was down were not answered 503", o.mode, okDuring)
		}
		for i, st := range o.readyzDown {
			if st != http.StatusServiceUnavailable {
				t.Errorf("%s: /readyz of replica %d answered %d while the database was down", o.mode, i, st)
			}
		}
		if after < 20 || failedAfter > 0 {
			t.Errorf("%s: after recovery %d of %d requests failed", o.mode, failedAfter, after)
		}
	}
	for i, p := range c.procs {
		select {
		case <-p.done:
			t.Fatalf("replica %d exited:\n%s", i, p.logs.String())
		default:
		}
		if strings.Contains(p.logs.String(), "panic") {
			t.Errorf("replica %d logged a panic:\n%s", i, p.logs.String())
		}
	}
	if n := c.as.TokenRequests("refresh_token") - refreshesBefore; n != 0 {
		t.Errorf("%d refreshes during the load; no token was due", n)
	}

	// Background work resumed: the job queue runs a sync, and the sweeper
	// refreshes a token that becomes due, with no request asking for it.
	p := c.procs[1]
	st, job := call(t, http.DefaultClient, apiKey, "POST", p.URL+"/source-connections/"+hsConn["id"].(string)+"/run", "")
	if st != 200 {
		t.Fatalf("run after the outages: %d %v", st, job)
	}
	before := c.as.TokenRequests("refresh_token")
	swept := c.connect(t)
	deadline := time.Now().Add(30 * time.Second)
	for c.as.TokenRequests("refresh_token") == before {
		if time.Now().After(deadline) {
			t.Fatal("the refresh sweeper did not refresh a due token after the outages")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var j map[string]any
	for deadline = time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, j = call(t, http.DefaultClient, apiKey, "GET", p.URL+"/source-connections/"+hsConn["id"].(string)+"/jobs/"+job["id"].(string), "")
		if j["status"] == "completed" || j["status"] == "failed" || time.Now().After(deadline) {
			break
		}
	}
	if j["status"] != "completed" || j["entities_inserted"] != float64(40) {
		t.Fatalf("sync after the outages: %v", j)
	}
	for _, p := range c.procs {
		p.kill()
	}

	// Every credential row, read directly and decrypted.
	oauthIDs = append(oauthIDs, swept)
	acked := map[string]bool{}
	for _, r := range results {
		if r.op == "create" && r.status == 200 {
			acked[r.name] = true
		}
	}
	checked := checkEveryCredential(t, c, pg.URL, secrets, acked, oauthIDs, okReads)
	t.Logf("decrypted %d credential rows (%d creates acknowledged during the load)", checked, len(acked))
}

// embeddedTokens creates an embedded-API application with the CLI and gets,
// from each replica, an operator token and a widget token for one end user.
func embeddedTokens(t *testing.T, c *cluster) (operator, widget []string) {
	t.Helper()
	cmd := exec.Command(binary(t), "app", "create", "--org", "default", "--json")
	cmd.Env = os.Environ()
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err != nil || json.Unmarshal(out, &app) != nil {
		t.Fatalf("app create: %v", err)
	}
	creds, _ := json.Marshal(app)
	for _, p := range c.procs {
		st, tok := call(t, http.DefaultClient, apiKey, "POST", p.URL+"/api/v1/account/applications/token", string(creds))
		if st != 200 {
			t.Fatalf("operator token: %d %v", st, tok)
		}
		op := tok["access_token"].(string)
		st, _, _, b, err := send(http.DefaultClient, op, "POST", p.URL+"/api/v1/embedded/widget_token",
			`{"externalUserId":"user_1","allowedOrigin":"https://app.example.com"}`)
		var wt struct{ Token string }
		if err != nil || st != 200 || json.Unmarshal(b, &wt) != nil {
			t.Fatalf("widget token: %d %s %v", st, b, err)
		}
		inner, err := base64.StdEncoding.DecodeString(wt.Token)
		var w struct{ Token string }
		if err != nil || json.Unmarshal(inner, &w) != nil || w.Token == "" {
			t.Fatalf("widget token: %s", inner)
		}
		operator, widget = append(operator, op), append(widget, w.Token)
	}
	return operator, widget
}

func sinceOrZero(t, from time.Time) time.Duration {
	if t.Before(from) {
		return 0
	}
	return t.Sub(from).Round(time.Millisecond)
}

// checkUnavailable checks a 503: Retry-After in seconds, the JSON error shape
// and nothing about the database or any secret in the body.
func checkUnavailable(t *testing.T, r outcome, dbURL string, secrets map[string]string) {
	t.Helper()
	if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 1 {
		t.Errorf("%s 503 without a Retry-After in seconds (%q): %s", r.op, r.retryAfter, r.body)
	}
	if !strings.HasPrefix(r.ctype, "application/json") {
		t.Errorf("%s 503 with Content-Type %q", r.op, r.ctype)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || len(m) != 1 {
		t.Errorf("%s 503 body is not {\"detail\": ...}: %s", r.op, r.body)
	} else if d, ok := m["detail"].(string); !ok || d == "" {
		t.Errorf("%s 503 body is not {\"detail\": \"message\"}: %s", r.op, r.body)
	}
	body := strings.ToLower(string(r.body))
	_, port, _ := strings.Cut(strings.TrimPrefix(dbURL, "postgres://postgres@"), ":")
	port, _, _ = strings.Cut(port, "/")
	for _, bad := range []string{strings.ToLower(dbURL), port, "postgres", "sqlstate", "127.0.0.1", "dial", "refused", "pgx", "store:"} {
		if strings.Contains(body, bad) {
			t.Errorf("%s 503 body names %q: %s", r.op, bad, r.body)
		}
	}
	for _, s := range secrets {
		if strings.Contains(string(r.body), s) {
			t.Errorf("%s 503 body holds a secret", r.op)
		}
	}
}

// checkEveryCredential opens the store and keyset directly and decrypts
// every credential row: API-key rows hold exactly the value injected for
// their connection's name (every acknowledged create is there, once),
// OAuth rows the tokens the authorization server issued and still honours;
// no connection needs re-authorization; every read answered 200 was audited.
func checkEveryCredential(t *testing.T, c *cluster, dbURL string, secrets map[string]string, acked map[string]bool,
	oauthIDs []string, okReads map[string]int) int {
	t.Helper()
	ctx := context.Background()
	st, sealer := openCluster(t, c, dbURL)
	orgs, err := st.ListOrganizations(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations: %v %v", orgs, err)
	}
	org := orgs[0].ID
	conns, err := st.ListConnections(ctx, org, store.ConnectionFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.SourceConnection{}
	names := map[string]int{}
	for _, sc := range conns {
		byID[sc.ID] = sc
		names[sc.Name]++
		if sc.Status != store.StatusActive {
			t.Errorf("connection %s (%s) is %s after the outages", sc.Name, sc.ID, sc.Status)
		}
	}
	rows, err := st.DB().QueryContext(ctx, `SELECT id FROM credentials ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var credIDs []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		credIDs = append(credIDs, id)
	}
	rows.Close()
	isOAuth := map[string]bool{}
	for _, id := range oauthIDs {
		isOAuth[id] = true
	}
	seen := map[string]bool{}
	for _, id := range credIDs {
		cred, err := st.GetCredential(ctx, id)
		if err != nil {
			t.Fatalf("credential %s: %v", id, err)
		}
		sc, ok := byID[cred.SourceConnectionID]
		if !ok {
			t.Errorf("credential %s belongs to no connection (%q)", id, cred.SourceConnectionID)
			continue
		}
		seen[sc.ID] = true
		p, err := sealer.Open(cred)
		if err != nil {
			t.Errorf("credential of %s does not decrypt: %v", sc.Name, err)
			continue
		}
		switch {
		case sc.ShortName == "stripe":
			if want, ok := secrets[sc.Name]; !ok || p.Fields["api_key"].Reveal() != want {
				t.Errorf("credential of %s does not hold the api_key injected for it", sc.Name)
			}
		case isOAuth[sc.ID]:
			if !c.as.AccessTokenActive(p.Fields["access_token"].Reveal()) || !c.as.RefreshTokenActive(p.Fields["refresh_token"].Reveal()) {
				t.Errorf("credential of %s does not hold the tokens the authorization server issued last", sc.Name)
			}
		case sc.ShortName == "hubspot":
			if p.Fields["access_token"].Reveal() != "hs-token" {
				t.Errorf("credential of %s changed", sc.Name)
			}
		default:
			t.Errorf("unexpected connection %s (%s)", sc.Name, sc.ShortName)
		}
	}
	for _, sc := range conns {
		if !seen[sc.ID] {
			t.Errorf("connection %s has no credential", sc.Name)
		}
	}
	var missing []string
	for name := range acked {
		if names[name] != 1 {
			missing = append(missing, fmt.Sprintf("%s (%d stored)", name, names[name]))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("creates answered 200 but not stored exactly once: %v", missing)
	}
	for name := range secrets {
		if names[name] > 1 {
			t.Errorf("%d connections named %s", names[name], name)
		}
	}
	// Audit group commit: each 200 read waited for its event to commit.
	events, err := st.ListAudit(ctx, org, store.AuditFilter{Action: "credential.read", Limit: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int{}
	for _, e := range events {
		audited[e.TargetID]++
	}
	for id, n := range okReads {
		if audited[id] < n {
			t.Errorf("connection %s: %d reads answered 200, %d audited", id, n, audited[id])
		}
	}
	return len(credIDs)
}
