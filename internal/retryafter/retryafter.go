// Package retryafter reads an HTTP Retry-After value: whole seconds or an
// HTTP date, as a wait that never wraps.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxSeconds caps a delay or lifetime a provider gives in seconds (100
// years): beyond it, the conversion to time.Duration would wrap (1e10 s
// became 0.3 s).
const MaxSeconds = int64(100 * 365 * 24 * time.Hour / time.Second)

// Parse returns the wait v asks for, and whether v said anything usable:
// seconds (capped at MaxSeconds), or the time until an HTTP date (0 once
// it has passed). Anything else is (0, false).
func Parse(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, MaxSeconds)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// FromHeader is the wait h's Retry-After asks for (0 when none or unusable).
func FromHeader(h http.Header) time.Duration {
	d, _ := Parse(h.Get("Retry-After"))
	return d
}
