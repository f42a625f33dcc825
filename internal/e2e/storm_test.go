package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/bench"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/oauthserver"
	"github.com/valetkey/valetkey/internal/vault"
)

const apiKey = "vk_e2e_bootstrap_key_0123456789abcdefghij"

// cluster is an authorization server and valetkey processes sharing one
// database and keyset.
type cluster struct {
	as      *oauthserver.Server
	env     map[string]string
	dataDir string
	dbURL   string
	procs   []*proc
	browser *http.Client
}

func newCluster(t *testing.T, dbURL string, replicas int, extra map[string]string) *cluster {
	t.Helper()
	as := oauthserver.New(t, oauthserver.Options{ClientAuth: "header", Scopes: []string{"read"}})
	catalogDir := testkit.WriteCatalogDir(t, testkit.OAuthSource{ShortName: "testoauth", AuthorizeURL: as.AuthorizeURL(),
		TokenURL: as.TokenURL(), RevokeURL: as.RevokeURL(), PKCE: true, Scopes: []string{"read"}})
	dataDir := t.TempDir()
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(dataDir, "valetkey.db")
	}
	c := &cluster{as: as, dataDir: dataDir, dbURL: dbURL,
		browser: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	c.env = map[string]string{
		"VALETKEY_DATA_DIR": dataDir, "VALETKEY_DATABASE_URL": dbURL, "VALETKEY_CATALOG_DIR": catalogDir,
		"VALETKEY_BOOTSTRAP_API_KEY": apiKey, "VALETKEY_REFRESH_SWEEP_INTERVAL": "0",
	}
	for k, v := range extra {
		c.env[k] = v
	}
	for i := 0; i < replicas; i++ {
		c.procs = append(c.procs, start(t, c.env)) // one at a time: the first bootstraps
	}
	return c
}

// connect registers the app and runs the browser flow on the first replica.
// The token it gets is due at once (3 s lifespan, 5 min margin); the
// server's next tokens live an hour.
func (c *cluster) connect(t *testing.T) string {
	t.Helper()
	p := c.procs[0]
	c.as.SetRedirectURIs(p.URL + "/oauth/callback")
	if st, _ := call(t, http.DefaultClient, apiKey, "PUT", p.URL+"/oauth-apps/testoauth",
		`{"client_id":"valetkey-client","client_secret":"valetkey-secret"}`); st != 200 {
		t.Fatalf("put app: %d", st)
	}
	c.as.SetAccessTokenLifespan(3 * time.Second)
	st, conn := call(t, http.DefaultClient, apiKey, "POST", p.URL+"/source-connections", `{"name":"Storm Conn","short_name":"testoauth"}`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, conn)
	}
	resp, err := c.browser.Get(conn["auth"].(map[string]any)["auth_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := c.as.Consent(t, c.browser, resp.Header.Get("Location"), true)
	resp, err = c.browser.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	c.as.SetAccessTokenLifespan(time.Hour)
	return conn["id"].(string)
}

// storm sends n concurrent token reads spread over every replica.
func (c *cluster) storm(t *testing.T, id string, n int) (map[string]int, time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	tokens := map[string]int{}
	var wg sync.WaitGroup
	startAt := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := c.procs[i%len(c.procs)]
			st, m := call(t, client, apiKey, "GET", p.URL+"/source-connections/"+id+"/token", "")
			mu.Lock()
			defer mu.Unlock()
			if st != 200 {
				tokens[fmt.Sprintf("status %d: %v", st, m["detail"])]++
				return
			}
			tokens[m["access_token"].(string)]++
		}(i)
	}
	wg.Wait()
	return tokens, time.Since(startAt)
}

func TestRefreshStormAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts valetkey processes")
	}
	var rows []string
	for _, name := range []string{"sqlite", "postgres"} {
		newURL := map[string]func(testing.TB) string{"sqlite": func(testing.TB) string { return "" }, "postgres": testkit.PostgresURL}[name]
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, newURL(t), 3, nil)
			id := c.connect(t)
			// Baseline: the same 1000 callers once the token is fresh (no refresh).
			before := c.as.TokenRequests("refresh_token")
			tokens, took := c.storm(t, id, 1000)
			refreshes := c.as.TokenRequests("refresh_token") - before
			_, warm := c.storm(t, id, 1000)
			t.Logf("%s: 1000 callers on 3 processes: %d upstream refresh(es), all served in %v (fresh token: %v)", name, refreshes, took, warm)
			rows = append(rows, fmt.Sprintf("| refresh storm: 1000 concurrent callers on 3 processes, one expired credential (%s) | %d upstream refresh, all served in %d ms | the same 1000 callers, token fresh: %d ms | %.2f× baseline time |",
				name, refreshes, took.Milliseconds(), warm.Milliseconds(), took.Seconds()/warm.Seconds()))
			if refreshes != 1 {
				t.Errorf("the authorization server saw %d refresh requests, want exactly 1", refreshes)
			}
			if len(tokens) != 1 {
				t.Fatalf("callers got %d different answers: %v", len(tokens), tokens)
			}
			for tok, n := range tokens {
				if n != 1000 || !c.as.AccessTokenActive(tok) {
					t.Fatalf("token %q served %d times, active %v", tok, n, c.as.AccessTokenActive(tok))
				}
			}
		})
	}
	if out := os.Getenv(bench.ReportEnv); out != "" && !t.Failed() {
		bench.WriteSection(t, out, "storm", "./internal/e2e/", "TestRefreshStormAcrossReplicas",
			"| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
	}
}

func TestCrashMidRefreshLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts valetkey processes")
	}
	for name, newURL := range map[string]func(testing.TB) string{"sqlite": func(testing.TB) string { return "" }, "postgres": testkit.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, newURL(t), 1, map[string]string{"VALETKEY_REFRESH_LEASE_TTL": "2s"})
			id := c.connect(t)

			// The refresh hangs at the provider; the process is killed while
			// its request is in flight.
			c.as.SetTokenDelay(30 * time.Second)
			go func() {
				client := &http.Client{Timeout: 40 * time.Second}
				req, _ := http.NewRequest("GET", c.procs[0].URL+"/source-connections/"+id+"/token", nil)
				req.Header.Set("X-API-Key", apiKey)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			deadline := time.Now().Add(20 * time.Second)
			for c.as.TokenRequests("refresh_token") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the refresh never reached the provider")
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.procs[0].kill()
			c.as.SetTokenDelay(0)

			// Restarted, the connection works, or needs re-authorization with
			// its credential kept: nothing is lost or blank.
			p := start(t, c.env)
			st, tok := call(t, http.DefaultClient, apiKey, "GET", p.URL+"/source-connections/"+id+"/token", "")
			_, conn := call(t, http.DefaultClient, apiKey, "GET", p.URL+"/source-connections/"+id, "")
			t.Logf("%s after restart: /token %d, status %v", name, st, conn["status"])
			switch {
			case st == 200 && conn["status"] == "active":
				if !c.as.AccessTokenActive(tok["access_token"].(string)) {
					t.Fatal("token after restart does not work")
				}
			case st == 400 && conn["status"] == "needs_reauth":
			default:
				t.Fatalf("after restart: /token %d %v, status %v", st, tok, conn["status"])
			}
			p.kill()
			assertCredentialIntact(t, c, id)
		})
	}
}

// assertCredentialIntact opens the database and keyset directly and checks
// the connection's credential decrypts to a non-blank access and refresh token.
func assertCredentialIntact(t *testing.T, c *cluster, id string) {
	t.Helper()
	st, sealer := openCluster(t, c, c.dbURL)
	orgs, _ := st.ListOrganizations(context.Background())
	cred, err := st.GetCredentialForConnection(context.Background(), orgs[0].ID, id)
	if err != nil {
		t.Fatalf("credential lost: %v", err)
	}
	p, err := sealer.Open(cred)
	if err != nil {
		t.Fatalf("credential does not decrypt: %v", err)
	}
	if strings.TrimSpace(p.Fields["access_token"].Reveal()) == "" || strings.TrimSpace(p.Fields["refresh_token"].Reveal()) == "" {
		t.Fatal("credential is blank")
	}
}

// openCluster opens the cluster's database (at dbURL) and keyset directly,
// as an operator inspecting what the processes stored; closed at cleanup.
func openCluster(t *testing.T, c *cluster, dbURL string) (*sqlstore.Store, credential.Sealer) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	v, _, err := vault.Open(filepath.Join(c.dataDir, "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	return st, credential.Sealer{C: v}
}
