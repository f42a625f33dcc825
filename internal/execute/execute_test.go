package execute

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// fixedConns serves one connection to a source at base with a fixed token.
type fixedConns struct{ src *catalog.Source }

func (f fixedConns) Conn(context.Context, string, string) (store.SourceConnection, error) {
	return store.SourceConnection{ShortName: f.src.ShortName}, nil
}
func (f fixedConns) Source(string) (*catalog.Source, error) { return f.src, nil }
func (f fixedConns) FreshFor(context.Context, store.SourceConnection, refresh.GetOptions) (refresh.Fresh, error) {
	return refresh.Fresh{Payload: credential.Payload{Fields: map[string]vault.Secret{"access_token": vault.NewSecret("tok-secret-123")}}}, nil
}

func sourceAt(t *testing.T, base, injection string) *catalog.Source {
	t.Helper()
	s, err := catalog.Parse([]byte(`short_name: t
name: T
auth: [{type: api_key, fields: [{name: api_key}]}]
api:
  base_url: ` + base + `
  auth_injection: ` + injection + `
  entities:
    things:
      actions:
        list: {method: GET, path: /things, records: $.data}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestResponseCapTimeoutAndInjection(t *testing.T) {
	var gotAuth, gotQuery string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotQuery = r.Header.Get("X-Api-Token"), r.URL.Query().Get("key")
		switch strings.TrimSuffix(r.URL.Path, "/things") {
		case "/big":
			_, _ = w.Write([]byte(`{"data":"` + strings.Repeat("x", 2<<20) + `"}`))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		default:
			_, _ = w.Write([]byte(`{"data":[1,2]}`))
		}
	}))
	defer up.Close()
	ctx := context.Background()

	e := New(fixedConns{sourceAt(t, up.URL, "header:X-Api-Token")}, Options{MaxBody: 1 << 20, Timeout: 200 * time.Millisecond})
	r, err := e.Execute(ctx, "o", "c", Request{Entity: "things", Action: "list"})
	if err != nil || gotAuth != "tok-secret-123" {
		t.Fatalf("header injection: %v, %q", err, gotAuth)
	}
	if list, ok := r.Result.([]any); !ok || len(list) != 2 {
		t.Fatalf("result = %v", r.Result)
	}
	e = New(fixedConns{sourceAt(t, up.URL+"/big", "query:key")}, Options{MaxBody: 1 << 20, Timeout: 200 * time.Millisecond})
	_, err = e.Execute(ctx, "o", "c", Request{Entity: "things", Action: "list"})
	if ae, ok := apperr.As(err); !ok || ae.Kind != apperr.KindBadGateway || !strings.Contains(ae.Msg, "larger than") || gotQuery != "tok-secret-123" {
		t.Fatalf("cap: %v (query %q)", err, gotQuery)
	}
	e = New(fixedConns{sourceAt(t, up.URL+"/slow", "bearer")}, Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err = e.Execute(ctx, "o", "c", Request{Entity: "things", Action: "list"})
	if ae, ok := apperr.As(err); !ok || ae.Kind != apperr.KindBadGateway || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "tok-secret-123") {
		t.Fatal("token in an error")
	}
}
