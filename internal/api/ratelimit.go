package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

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
		return "key:" + p.APIKeyID
	}
	if c, ok := shared.CallerFrom(r.Context()).(emb.Caller); ok {
		if c.Scoped() {
			return "ws:" + c.WorkspaceID
		}
		return "sub:" + c.Subject
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
