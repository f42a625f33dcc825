package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

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
	tok := e.Token(t, id)
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
		`"Name":"POST /source-connections"`} {
		if !strings.Contains(out, name) {
			t.Errorf("no span %s in:\n%.2000s", name, out)
		}
	}
	for _, secret := range []string{"MARKEDSTATE123", "MARKEDCODE456", "MARKEDONETIMECODE", tok["access_token"].(string), tok["refresh_token"].(string)} {
		if strings.Contains(out, secret) {
			t.Errorf("a span holds %q", secret)
		}
	}
}
