package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/app"
	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// SyncBuffer is a goroutine-safe buffer that collects log output.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is a whole Valetkey (real store, vault, catalog, HTTP stack) behind
// an httptest server.
type Server struct {
	*httptest.Server
	App *app.App
	Key string // the default organization's bootstrap API key
	// Logs collects every log line (debug level) and the bootstrap output.
	Logs *SyncBuffer
	// Bodies collects every response body the Client methods saw, for leak scans.
	Bodies *SyncBuffer
}

// NewServer starts a server on the given database URL with a fresh data dir.
func NewServer(t testing.TB, databaseURL string, mutate ...func(*config.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{
		Addr: "127.0.0.1:0", DataDir: dir, DatabaseURL: databaseURL, KeysetFile: filepath.Join(dir, "keyset.json"),
		BootstrapAPIKey: "vk_test_bootstrap_" + strings.Repeat("k", 40), LogLevel: "debug", LogFormat: "json",
		JobPollInterval: 50 * time.Millisecond, AllowPrivateTargets: true, // receivers are httptest servers
	}
	for _, m := range mutate {
		m(&cfg)
	}
	logs := &SyncBuffer{}
	log, err := app.NewLogger(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Bootstrap(context.Background(), logs); err != nil {
		t.Fatal(err)
	}
	s := &Server{Server: httptest.NewServer(a.Handler()), App: a, Key: cfg.BootstrapAPIKey, Logs: logs, Bodies: &SyncBuffer{}}
	a.SetPublicURL(s.URL)
	if err := a.StartWorkers(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		a.Close()
	})
	return s
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// Map decodes the body as an object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request with the given API key (none when empty). body may be
// nil, a []byte or string sent as is, or any value encoded as JSON.
func (s *Server) Do(t testing.TB, key, method, path string, body any) Response {
	t.Helper()
	return s.DoWith(t, key, method, path, body, nil)
}

// DoWith is Do with extra headers.
func (s *Server) DoWith(t testing.TB, key, method, path string, body any, header http.Header) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, "/token") && !strings.Contains(path, "/token?") {
		_, _ = s.Bodies.Write(append(b, '\n'))
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// NewOrgKey creates another organization and returns its API key.
func (s *Server) NewOrgKey(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	o, err := s.App.Tenants.CreateOrganization(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := s.App.Tenants.CreateAPIKey(ctx, o.ID, "test", vault.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	return key.Reveal()
}

// SetStatus forces a connection of the default organization into a status
// (e.g. needs_reauth) directly in the store, as a failed refresh would.
func (s *Server) SetStatus(t testing.TB, connectionID, status string) {
	t.Helper()
	o, err := s.App.Tenants.Organization(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Store.UpdateConnection(t.Context(), o.ID, connectionID, func(c *store.SourceConnection) (*store.Credential, error) {
		c.Status = status
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}
