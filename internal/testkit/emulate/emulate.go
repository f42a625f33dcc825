// Package emulate holds what every service emulator in testkit shares:
// counting requests, remembering which credentials were presented (never
// exposing them otherwise), and injecting failures.
package emulate

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Gate records callers and injects faults. Emulators embed it, which gives
// them Requests, FailNext, LastAuthorization and SeenTokens.
type Gate struct {
	requests atomic.Int64

	mu             sync.Mutex
	lastScheme     string
	seenTokens     []string
	seenSet        map[string]bool
	failN          int
	failStatus     int
	failRetryAfter string
}

// Requests reports how many HTTP requests the emulator has received,
// whatever their outcome.
func (g *Gate) Requests() int64 { return g.requests.Load() }

// FailNext makes the next n requests (whatever their path or credentials)
// answer status with the service's error body; retryAfter, when not empty,
// is sent as the Retry-After header.
func (g *Gate) FailNext(n int, status int, retryAfter string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failN, g.failStatus, g.failRetryAfter = n, status, retryAfter
}

// LastAuthorization reports the authorization scheme of the most recent
// request ("Bearer", "token", "Basic", …), or "" when it carried no
// Authorization header. It never reports the credential itself.
func (g *Gate) LastAuthorization() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastScheme
}

// SeenTokens lists the distinct credentials presented in Authorization
// headers (the part after the scheme), in the order first seen.
func (g *Gate) SeenTokens() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seenTokens...)
}

// Admit counts a request and records its credential. It returns the
// authorization scheme and credential, and the failure to inject, if one
// is due (status 0 when none).
func (g *Gate) Admit(r *http.Request) (scheme, token string, failStatus int, retryAfter string) {
	g.requests.Add(1)
	scheme, token = SplitAuthorization(r.Header.Get("Authorization"))
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastScheme = scheme
	if token != "" {
		if g.seenSet == nil {
			g.seenSet = map[string]bool{}
		}
		if !g.seenSet[token] {
			g.seenSet[token] = true
			g.seenTokens = append(g.seenTokens, token)
		}
	}
	if g.failN > 0 {
		g.failN--
		return scheme, token, g.failStatus, g.failRetryAfter
	}
	return scheme, token, 0, ""
}

// SplitAuthorization splits an Authorization header into scheme and credential.
func SplitAuthorization(v string) (scheme, credential string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", ""
	}
	scheme, credential, _ = strings.Cut(v, " ")
	return scheme, strings.TrimSpace(credential)
}
