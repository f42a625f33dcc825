package api_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
)

// quickRetry retries failed jobs after 100ms (River's real backoff spans a day).
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

type received struct {
	body    []byte
	headers http.Header
}

func TestWebhooksSignedAndRetried(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.RetryPolicy = quickRetry{} })
	var mu sync.Mutex
	var got []received
	failures := 2
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, received{body: b, headers: r.Header.Clone()})
		if failures > 0 {
			failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	wantLocs(t, s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": "not a url", "events": []string{"sync.done"}}), "body.url", "body.events.0")
	r := s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"source_connection.created"}})
	wantStatus(t, r, 200)
	hook := r.Map(t)
	secret := hook["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret = %q", secret)
	}
	var list []map[string]any
	s.Do(t, s.Key, "GET", "/webhooks", nil).JSON(t, &list)
	if len(list) != 1 || list[0]["secret"] != nil {
		t.Fatalf("list shows the secret or misses the hook: %v", list)
	}

	// An event: a connection is created with a token that must not appear in the payload.
	r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Hooked Asana", "short_name": "asana",
		"auth_fields": map[string]any{"access_token": "LEAKCANARYHookTokenQ7Z9"}})
	wantStatus(t, r, 200)
	connID := r.Map(t)["id"].(string)

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d attempts, want 3 (2 failures, then success)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, g := range got[:3] {
		if err := wh.Verify(g.body, g.headers); err != nil {
			t.Fatalf("attempt %d: signature does not verify with the standard-webhooks library: %v", i, err)
		}
		if strings.Contains(string(g.body), "LEAKCANARY") || strings.Contains(string(g.body), secret) {
			t.Fatalf("secret in payload: %s", g.body)
		}
	}
	if got[0].headers.Get("webhook-id") != got[2].headers.Get("webhook-id") || !strings.Contains(string(got[0].body), connID) ||
		!strings.Contains(string(got[0].body), `"type":"source_connection.created"`) {
		t.Fatalf("payload = %s", got[0].body)
	}
	// A tampered body fails verification (the check can fail).
	if wh.Verify(append([]byte(nil), append(got[2].body, ' ')...), got[2].headers) == nil {
		t.Fatal("a tampered payload verified")
	}
	var deliveries []map[string]any
	s.Do(t, s.Key, "GET", "/webhooks/"+hook["id"].(string)+"/deliveries", nil).JSON(t, &deliveries)
	if len(deliveries) != 1 || deliveries[0]["status"] != "delivered" || deliveries[0]["attempts"] != float64(3) {
		t.Fatalf("deliveries = %v", deliveries)
	}
	wantStatus(t, s.Do(t, s.Key, "DELETE", "/webhooks/"+hook["id"].(string), nil), 204)
	wantStatus(t, s.Do(t, s.NewOrgKey(t, "other"), "GET", "/webhooks/"+hook["id"].(string)+"/deliveries", nil), 404)
}

// TestWebhooksRefusePrivateTargets: by default a subscription cannot make
// Valetkey connect to loopback or private addresses.
func TestWebhooksRefusePrivateTargets(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.AllowPrivateTargets, c.RetryPolicy = false, quickRetry{} })
	hit := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hit <- struct{}{} }))
	defer recv.Close()
	// A literal internal address is refused at once.
	wantLocs(t, s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": recv.URL, "events": []string{"source_connection.created"}}), "body.url")
	wantLocs(t, s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": "http://localhost:1/", "events": []string{"sync.failed"}}), "body.url")
	// A name that resolves to one passes creation and is refused when a delivery connects.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if addrs, err := net.LookupHost(host); err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		t.Skipf("this machine's name %q does not resolve to loopback (%v %v); the delivery-time check needs such a name", host, addrs, err)
	}
	target := strings.Replace(recv.URL, "127.0.0.1", host, 1)
	r := s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": target, "events": []string{"source_connection.created"}})
	wantStatus(t, r, 200)
	hook := r.Map(t)["id"].(string)
	wantStatus(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "SSRF Probe", "short_name": "asana",
		"auth_fields": map[string]any{"access_token": "x"}}), 200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ds []map[string]any
		s.Do(t, s.Key, "GET", "/webhooks/"+hook+"/deliveries", nil).JSON(t, &ds)
		if len(ds) == 1 && ds[0]["attempts"].(float64) >= 2 {
			if !strings.Contains(ds[0]["last_error"].(string), "non-public address") {
				t.Fatalf("last_error = %v", ds[0]["last_error"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries = %v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-hit:
		t.Fatal("a loopback receiver was reached")
	default:
	}
}
