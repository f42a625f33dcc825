package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/vault"
)

var payload = []byte(`{"f":{"access_token":"ya29.a0AfH6SMBx-benchmark-access-token-of-a-realistic-length-0123456789","refresh_token":"1//0gbenchmark-refresh-token-0123456789"},"tt":"Bearer"}`)

func newVault(b testing.TB) *vault.Vault {
	v, _, err := vault.Open(filepath.Join(b.TempDir(), "k.json"))
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// benchAESGCM is the baseline for the vault: the standard library's
// AES-256-GCM on the same payload, with no keyset around it.
func benchAESGCM(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	nonce := make([]byte, g.NonceSize())
	ad := vault.CredentialAD("org", "cred")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rand.Read(nonce)
		_ = g.Seal(nil, nonce, payload, ad)
	}
}

// benchAESGCMOpen is the decrypt baseline: the standard library's open.
func benchAESGCMOpen(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	nonce := make([]byte, g.NonceSize())
	ad := vault.CredentialAD("org", "cred")
	ct := g.Seal(nil, nonce, payload, ad)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Open(nil, nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncrypt(b *testing.B) {
	v := newVault(b)
	ad := vault.CredentialAD("org", "cred")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Encrypt(payload, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecrypt(b *testing.B) {
	v := newVault(b)
	ad := vault.CredentialAD("org", "cred")
	ct, _ := v.Encrypt(payload, ad)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Decrypt(ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAESGCMBaseline(b *testing.B) { benchAESGCM(b) }
func BenchmarkVaultEncrypt(b *testing.B)   { benchEncrypt(b) }
func BenchmarkVaultDecrypt(b *testing.B)   { benchDecrypt(b) }

// fixture is a server with one connection whose token the benchmarks read.
type fixture struct {
	srv    *testkit.Server
	orgID  string
	connID string
}

func newFixture(b testing.TB, dbURL string) fixture {
	s := testkit.NewServer(b, dbURL, testkitQuiet)
	r := s.Do(b, s.Key, "POST", "/source-connections", map[string]any{"name": "Bench Conn", "short_name": "asana",
		"auth_fields": map[string]any{"access_token": "bench-access", "refresh_token": "bench-refresh"}})
	if r.Status != 200 {
		b.Fatalf("create: %d %s", r.Status, r.Body)
	}
	m := r.Map(b)
	return fixture{srv: s, orgID: m["organization_id"].(string), connID: m["id"].(string)}
}

// benchStoreRow is the baseline for a credential read: the same row fetched
// from the store, not decrypted.
func benchStoreRow(f fixture) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := f.srv.App.Store.GetCredentialForConnection(ctx, f.orgID, f.connID); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchCredentialRead fetches and decrypts the credential.
func benchCredentialRead(f fixture) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		sealer := credential.Sealer{C: f.srv.App.Vault}
		b.ReportAllocs()
		for b.Loop() {
			c, err := f.srv.App.Store.GetCredentialForConnection(ctx, f.orgID, f.connID)
			if err != nil {
				b.Fatal(err)
			}
			p, err := sealer.Open(c)
			if err != nil || p.Fields["access_token"].Reveal() != "bench-access" {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCredentialRead(b *testing.B) {
	for name, newURL := range testkit.DatabaseURLs() {
		b.Run(name, func(b *testing.B) { benchCredentialRead(newFixture(b, newURL(b)))(b) })
	}
}

func BenchmarkStoreRowBaseline(b *testing.B) {
	for name, newURL := range testkit.DatabaseURLs() {
		b.Run(name, func(b *testing.B) { benchStoreRow(newFixture(b, newURL(b)))(b) })
	}
}

// httpLoad sends GETs to url from parallel keep-alive clients.
func httpLoad(url string, header http.Header) func(b *testing.B) {
	return httpLoadBody("GET", url, header, "")
}

// httpLoadBody sends method with body to url from parallel keep-alive clients.
func httpLoadBody(method, url string, header http.Header, body string) func(b *testing.B) {
	return func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, url, rd)
				req.Header = header.Clone()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
}

// bareServer is the baseline HTTP handler: a constant JSON body.
func bareServer(b testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"bench-access","token_type":"Bearer","expires_at":null}`))
	}))
	b.Cleanup(s.Close)
	return s
}

func BenchmarkBareHandler(b *testing.B) { httpLoad(bareServer(b).URL, http.Header{})(b) }

func BenchmarkTokenRoute(b *testing.B) {
	f := newFixture(b, testkit.SQLiteURL(b))
	httpLoad(f.srv.URL+"/source-connections/"+f.connID+"/token", http.Header{"X-Api-Key": {f.srv.Key}})(b)
}

// pair is one figure and its baseline.
type pair struct {
	name, baselineName string
	run, baseline      func(*testing.B)
	throughput         bool // compare ops/s (higher is better) rather than ns/op
}

// TestWriteBenchmarkReport runs every pair in one process, prints the
// ratios, and writes them into the file named by VALETKEY_BENCH_REPORT
// (BENCHMARKS.md) between the generated-section markers.
func TestWriteBenchmarkReport(t *testing.T) {
	out := os.Getenv("VALETKEY_BENCH_REPORT")
	if out == "" {
		t.Skip("set VALETKEY_BENCH_REPORT=BENCHMARKS.md to run the benchmark report")
	}
	var pairs []pair
	pairs = append(pairs,
		pair{name: "vault encrypt (tink AES-256-GCM)", baselineName: "crypto/cipher AES-256-GCM seal", run: benchEncrypt, baseline: benchAESGCM},
		pair{name: "vault decrypt (tink AES-256-GCM)", baselineName: "crypto/cipher AES-256-GCM open", run: benchDecrypt, baseline: benchAESGCMOpen},
	)
	for name, newURL := range testkit.DatabaseURLs() {
		if name == "postgres" && os.Getenv(testkit.PostgresEnv) == "" {
			continue
		}
		f := newFixture(t, newURL(t))
		pairs = append(pairs, pair{name: "credential read, store + decrypt (" + name + ")", baselineName: "same row read, no decrypt (" + name + ")",
			run: benchCredentialRead(f), baseline: benchStoreRow(f)})
	}
	f := newFixture(t, testkit.SQLiteURL(t))
	pairs = append(pairs, pair{name: "GET /source-connections/{id}/token (sqlite, 4×GOMAXPROCS clients)", baselineName: "bare Go handler returning a constant",
		run: httpLoad(f.srv.URL+"/source-connections/"+f.connID+"/token", http.Header{"X-Api-Key": {f.srv.Key}}), baseline: httpLoad(bareServer(t).URL, http.Header{}), throughput: true})

	pairs = append(pairs, executePair(t))

	var rows []string
	for _, p := range pairs {
		base := testing.Benchmark(p.baseline)
		got := testing.Benchmark(p.run)
		var row string
		if p.throughput {
			gotRPS := 1e9 / float64(got.NsPerOp())
			baseRPS := 1e9 / float64(base.NsPerOp())
			row = fmt.Sprintf("| %s | %.0f req/s | %s: %.0f req/s | %.1f%% of baseline |", p.name, gotRPS, p.baselineName, baseRPS, 100*gotRPS/baseRPS)
		} else {
			row = fmt.Sprintf("| %s | %d ns/op, %d allocs/op | %s: %d ns/op | %.2f× baseline time |", p.name, got.NsPerOp(), got.AllocsPerOp(),
				p.baselineName, base.NsPerOp(), float64(got.NsPerOp())/float64(base.NsPerOp()))
		}
		t.Log(row)
		rows = append(rows, row)
	}
	// Latency at a fixed 500 req/s (open loop: requests start on a schedule, whatever the answers).
	tok := fixedRate(t, f.srv.URL+"/source-connections/"+f.connID+"/token", http.Header{"X-Api-Key": {f.srv.Key}}, 500, 5*time.Second)
	bare := fixedRate(t, bareServer(t).URL, http.Header{}, 500, 5*time.Second)
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		row := fmt.Sprintf("| GET /source-connections/{id}/token %s latency at a fixed 500 req/s (sqlite) | %.2f ms | bare Go handler at 500 req/s: %.2f ms | %.1f× baseline |",
			q.name, ms(percentile(tok, q.p)), ms(percentile(bare, q.p)), float64(percentile(tok, q.p))/float64(percentile(bare, q.p)))
		if q.name == "p99" {
			row = strings.TrimSuffix(row, " |") + fmt.Sprintf(" (goal p99 < 5 ms: %s) |", verdict(percentile(tok, q.p) < 5*time.Millisecond))
		}
		t.Log(row)
		rows = append(rows, row)
	}
	writeSection(t, out, "foundation", "TestWriteBenchmarkReport", "| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
}

// fixedRate sends GETs to url at rate per second for d, each on its own
// schedule (open loop), and returns every request's latency.
func fixedRate(t *testing.T, url string, header http.Header, rate int, d time.Duration) []time.Duration {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	n := rate * int(d/time.Second)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	begin := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", url, nil)
			req.Header = header.Clone()
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = time.Since(t0)
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed", f, n)
	}
	return lat
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// writeSection writes a section regenerated by a test in this package.
func writeSection(t *testing.T, out, name, test, body string) {
	WriteSection(t, out, name, "./internal/bench/", test, body)
}

// testkitQuiet keeps request logs out of the measurement, and sets what
// the production defaults set for the path measured: the API key cache.
// (The per-key rate limit stays off: it would cap the load at its own rate.)
func testkitQuiet(c *config.Config) {
	c.LogLevel = "warn"
	c.APIKeyCacheTTL = config.Defaults().APIKeyCacheTTL
}
