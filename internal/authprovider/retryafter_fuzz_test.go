package authprovider

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: a provider's Retry-After in seconds is never turned
// into a shorter wait (no wrapping), and nothing panics.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "5", "120", "-1", "18446744074", "9999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "5abc", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		v = strings.Trim(v, " \t") // as the HTTP parser hands it on
		got := parseRetryAfter(v)
		if n, err := strconv.Atoi(v); err == nil && n > 0 && got < time.Duration(min(n, math.MaxInt32))*time.Second {
			t.Fatalf("Retry-After %q became %v", v, got)
		}
	})
}
