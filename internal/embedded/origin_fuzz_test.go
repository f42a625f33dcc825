package embedded

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzIsOrigin: whatever the input, a value IsOrigin accepts is safe to put
// into a CSP frame-ancestors directive and a postMessage targetOrigin: an
// http(s) scheme, a host, nothing that could end or extend the directive.
func FuzzIsOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "http://localhost:8080", "https://a.example; script-src *", "https://a.example/path",
		"https://user@a.example", "https://a.example?x", "javascript:alert(1)", "https://[::1]:443", "https://a.example#f", " https://a.example", "https://a.example,https://b.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsOrigin(s) {
			return
		}
		if strings.ContainsAny(s, " \t\r\n;,'\"\\") || strings.Count(s, "://") != 1 {
			t.Fatalf("accepted %q", s)
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			t.Fatalf("accepted %q (%+v, %v)", s, u, err)
		}
	})
}
