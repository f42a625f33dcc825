package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
)

// TestTracesNameRoutesAndHoldNoSecrets: with VALETKEY_TRACES=stdout each
// request is a server span named by method and route; one-time codes in
// paths, OAuth callback parameters and token values never reach a span.
func TestTracesNameRoutesAndHoldNoSecrets(t *testing.T) {
	spans := &testkit.SyncBuffer{}
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t), func(c *config.Config) { c.Traces, c.TraceWriter = "stdout", spans })
	s := e.S
	id := e.Connect(t) // auth URL with its one-time code, callback with code and state
	first := e.Token(t, id)
	e.Clock.Advance(2 * time.Hour) // the next read refreshes: an outgoing call to the token endpoint
	tok := e.Token(t, id)
	if tok["access_token"] == first["access_token"] {
		t.Fatal("the second read did not refresh")
	}
	for _, u := range []string{"/oauth/callback?state=MARKEDSTATE123&code=MARKEDCODE456", "/connect/oauth/MARKEDONETIMECODE"} {
		resp, err := http.Get(s.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := s.App.Tracing.Shutdown(context.Background()); err != nil { // flush
		t.Fatal(err)
	}
	out := spans.String()
	for _, name := range []string{`"Name":"GET /source-connections/{id}/token"`, `"Name":"GET /oauth/callback"`, `"Name":"GET /connect/oauth/{code}"`,
		`"Name":"POST /source-connections"`,
		// outgoing: the code exchange and the refresh, named by host only
		`"Name":"HTTP POST ` + strings.TrimPrefix(e.AS.URL, "http://") + `"`} {
		if !strings.Contains(out, name) {
			t.Errorf("no span %s in:\n%.2000s", name, out)
		}
	}
	if n := strings.Count(out, `"SpanKind":3`); n < 2 { // client spans: exchange + refresh
		t.Errorf("%d client spans, want the code exchange and the refresh", n)
	}
	// the token endpoint's path never reaches a span
	if tokenPath := strings.TrimPrefix(e.AS.TokenURL(), e.AS.URL); strings.Contains(out, tokenPath) {
		t.Errorf("a span holds the outgoing path %q", tokenPath)
	}
	for _, secret := range []string{"MARKEDSTATE123", "MARKEDCODE456", "MARKEDONETIMECODE", first["access_token"].(string), first["refresh_token"].(string),
		tok["access_token"].(string), tok["refresh_token"].(string)} {
		if strings.Contains(out, secret) {
			t.Errorf("a span holds %q", secret)
		}
	}
}
