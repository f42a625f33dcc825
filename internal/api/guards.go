package api

// guards.go: request limits applied before handlers (rate limits per
// caller, UTF-8 text without NUL in paths, queries and bodies).

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/web"
)

// rateLimiter gives each caller (API key, application, or end-user
// workspace) a token bucket; a request over it answers 429 with
// Retry-After. Limits are per replica.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	sweepAt time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept (it is full again by then).
const idleAfter = 10 * time.Minute

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

// callerKey names who is asking, or "" for an unauthenticated request.
func callerKey(r *http.Request) string {
	if p, ok := shared.PrincipalFrom(r.Context()); ok {
		return p.Actor() // the same bucket whichever dialect the key is used with
	}
	if c, ok := shared.CallerFrom(r.Context()).(emb.Caller); ok {
		if c.Scoped() {
			return "ws:" + c.WorkspaceID
		}
		return c.Subject
	}
	return ""
}

// wait reserves one request for key and returns how long the caller must
// wait first (0: go ahead).
func (l *rateLimiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.sweepAt) {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleAfter {
				delete(l.buckets, k)
			}
		}
		l.sweepAt = now.Add(idleAfter)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// middleware runs after authentication (it needs to know the caller).
func (l *rateLimiter) middleware(next http.Handler) http.Handler {
	if l == nil || l.limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key := callerKey(r); key != "" {
			if d := l.wait(key, time.Now()); d > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
				shared.WriteDetail(w, http.StatusTooManyRequests, "Rate limit exceeded: retry later")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// maxCheckedBody is how much of a JSON body textInput reads (the API's
// body limit; larger bodies are refused by the handlers with 413).
const maxCheckedBody = 1 << 20

// textInput refuses, before any handler, request text that a decoder would
// silently change or a database could not store (Postgres text takes
// neither NUL nor invalid UTF-8; SQLite would, so both backends answer
// alike): a path that is not valid UTF-8 or holds a NUL names nothing
// (404); such a query parameter is a 422 naming it; a JSON body that is
// not valid UTF-8 is a 400, one with a \u0000 in a string a 422 naming
// the field.
func textInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !plainText(r.URL.Path) {
			shared.WriteDetail(w, http.StatusNotFound, "Not Found")
			return
		}
		q := apiQuery(r)
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			bad := !plainText(k)
			for _, v := range q[k] {
				bad = bad || !plainText(v)
			}
			if bad {
				shared.WriteFieldErrors(w, apperr.Field("value_error", "Query parameter must be UTF-8 text without NUL characters", "query", k))
				return
			}
		}
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength > maxCheckedBody {
			next.ServeHTTP(w, r)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxCheckedBody+1))
		if err != nil {
			shared.WriteDetail(w, http.StatusBadRequest, "Could not read the request body")
			return
		}
		if len(b) <= maxCheckedBody && !utf8.Valid(b) {
			shared.WriteDetail(w, http.StatusBadRequest, "Request body is not valid UTF-8")
			return
		}
		if len(b) <= maxCheckedBody && nulEscape(b) {
			shared.WriteFieldErrors(w, apperr.Field("value_error", "Field must not contain a NUL character (\\u0000)", nulLoc(b)...))
			return
		}
		// Hand on what was read and, for an over-limit body, the rest unread.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		next.ServeHTTP(w, r)
	})
}

// apiQuery is the query textInput checks: none on the browser pages, the
// OAuth callback and the widget, which store no query value and whose
// provider or host page may add parameters of its own.
func apiQuery(r *http.Request) url.Values {
	if r.URL.Path == connection.CallbackPath || r.URL.Path == web.WidgetPath {
		return nil
	}
	return r.URL.Query()
}

// plainText reports whether s is valid UTF-8 without NUL characters.
func plainText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// nulEscape reports whether JSON text b holds a \u0000 escape: one not
// itself preceded by an escaping backslash.
func nulEscape(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		k, n := i+j, 0
		for p := k; p >= 0 && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = k + 1
	}
}

// nulLoc is the location of the first string (key or value) of JSON text b
// that holds a NUL: ["body", keys and indexes...], or ["body"].
func nulLoc(b []byte) []any {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) == nil {
		if loc := nulIn(v, []any{"body"}); loc != nil {
			return loc
		}
	}
	return []any{"body"}
}

func nulIn(v any, loc []any) []any {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return loc
		}
	case []any:
		for i, e := range x {
			if l := nulIn(e, append(loc[:len(loc):len(loc)], i)); l != nil {
				return l
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			at := append(loc[:len(loc):len(loc)], k)
			if strings.IndexByte(k, 0) >= 0 {
				return at
			}
			if l := nulIn(x[k], at); l != nil {
				return l
			}
		}
	}
	return nil
}
