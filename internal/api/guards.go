package api

// guards.go: request limits applied before handlers (rate limits per
// caller, UTF-8 bodies).

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/valetkey/valetkey/internal/api/shared"
	emb "github.com/valetkey/valetkey/internal/embedded"
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

// maxCheckedBody is how much of a JSON body utf8Bodies reads (the API's
// body limit; larger bodies are refused by the handlers with 413).
const maxCheckedBody = 1 << 20

// utf8Bodies refuses JSON request bodies that are not valid UTF-8 with a
// 400, before a decoder silently replaces the bad bytes.
func utf8Bodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		// Hand on what was read and, for an over-limit body, the rest unread.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		next.ServeHTTP(w, r)
	})
}
