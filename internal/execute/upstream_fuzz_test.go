package execute

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valetkey/valetkey/internal/apperr"
)

// FuzzUpstreamError maps arbitrary provider failures (status, Retry-After,
// X-Ratelimit-Remaining/Reset, Link, body): a rate limit always becomes a
// 429 with a positive Retry-After that is never shorter than the
// provider's (no wrapping); anything else a 502 with a short, valid UTF-8
// message; and reading the Link header's next cursor never panics.
func FuzzUpstreamError(f *testing.F) {
	for _, s := range []struct {
		status                        int
		retry, remaining, reset, link string
		body                          string
	}{
		{429, "30", "", "", "", `{"message": "slow down"}`},
		{429, "0", "", "", "", ``},
		{429, "18446744074", "", "", "", ``},
		{429, "", "", "", "", ``},
		{403, "", "0", "1893456000", "", `{"message": "API rate limit exceeded"}`},
		{401, "", "", "", "", `{"error": "invalid_token", "error_description": "expired"}`},
		{500, "", "", "", "", `{"detail": "` + strings.Repeat("é", 200) + `"}`},
		{404, "", "", "", `<https://api.example.com/items?page=2&cursor=abc>; rel="next", <https://api.example.com/items?page=9>; rel="last"`, `not json`},
		{200, "", "", "", `<>; rel="next"`, ``},
	} {
		f.Add(s.status, s.retry, s.remaining, s.reset, s.link, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, retry, remaining, reset, link string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		h := http.Header{}
		for k, v := range map[string]string{"Retry-After": retry, "X-Ratelimit-Remaining": remaining, "X-Ratelimit-Reset": reset, "Link": link} {
			if v = strings.Trim(v, " \t"); v != "" { // as the HTTP parser hands them on
				h.Set(k, v)
			}
		}
		_ = linkCursor(h.Get("Link"), "cursor")
		_ = linkCursor(h.Get("Link"), "")
		err := upstreamError(&upstream{status: status, header: h, body: body})
		if status < 400 {
			if err != nil {
				t.Fatalf("status %d mapped to %v", status, err)
			}
			return
		}
		e, ok := apperr.As(err)
		if !ok {
			t.Fatalf("status %d mapped to %T %v", status, err, err)
		}
		if status == http.StatusTooManyRequests || (status == http.StatusForbidden && h.Get("X-Ratelimit-Remaining") == "0") {
			if e.Kind != apperr.KindTooManyRequests || e.RetryAfter < time.Second {
				t.Fatalf("rate limit (Retry-After %q) mapped to %v with Retry-After %v", retry, e.Kind, e.RetryAfter)
			}
			if n, err := strconv.Atoi(h.Get("Retry-After")); err == nil && n > 0 && e.RetryAfter < time.Duration(min(n, math.MaxInt32))*time.Second {
				t.Fatalf("Retry-After %q became %v", retry, e.RetryAfter)
			}
			return
		}
		if e.Kind != apperr.KindBadGateway || len(e.Msg) > 400 || !utf8.ValidString(e.Msg) {
			t.Fatalf("status %d mapped to %v %q", status, e.Kind, e.Msg)
		}
	})
}
