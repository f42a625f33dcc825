package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"5abc", 0, false},
		{"18446744074", time.Duration(MaxSeconds) * time.Second, true}, // would wrap to 0.3 s
		{"9999999999999999999", 0, false},                              // not an int64
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true},                     // passed
	} {
		got, ok := Parse(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
	if got, ok := Parse(future); !ok || got < 59*time.Minute || got > time.Hour {
		t.Errorf("Parse(an hour from now) = %v, %v", got, ok)
	}
}

// FuzzParse: a Retry-After in seconds is never turned into a shorter wait
// (no wrapping), a wait is never negative, and nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "0", "5", "120", "-1", "18446744074", "9999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "5abc", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, _ := Parse(v)
		if got < 0 {
			t.Fatalf("Retry-After %q became %v", v, got)
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 && got < time.Duration(min(n, MaxSeconds))*time.Second {
			t.Fatalf("Retry-After %q became %v", v, got)
		}
	})
}
