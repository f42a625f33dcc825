package refresh

import (
	"errors"
	"sync"
	"time"
)

// ErrProviderDown marks a refresh that was not tried because its token
// endpoint kept failing moments ago (the endpoint's breaker is open).
var ErrProviderDown = errors.New("token endpoint is down")

// breaker stops refreshes against a token endpoint that is clearly down.
// After threshold refreshes in a row against one token URL failed for a
// transient reason (timeout, network error, 429, 5xx), the URL is open for
// cooldown (or the provider's Retry-After, if longer): refreshes against it
// fail at once, without a lease or a request. Once the cooldown is over,
// requests go through again; the next failure reopens the URL, the next
// answer from the provider (a token, or a refusal: the endpoint is up)
// closes it.
type breaker struct {
	threshold int // <= 0: never opens
	cooldown  time.Duration

	mu   sync.Mutex
	urls map[string]*circuit
}

type circuit struct {
	failures  int       // transient failures in a row
	openUntil time.Time // zero while closed
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, urls: map[string]*circuit{}}
}

// openFor reports how much longer url stays open (0: requests may go).
func (b *breaker) openFor(url string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.urls[url]
	if c == nil || !now.Before(c.openUntil) {
		return 0
	}
	return c.openUntil.Sub(now)
}

// failed records a refresh that failed for a transient reason; hint is the
// provider's Retry-After, if it sent one.
func (b *breaker) failed(url string, now time.Time, hint time.Duration) {
	if b.threshold <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.urls[url]
	if c == nil {
		c = &circuit{}
		b.urls[url] = c
	}
	c.failures++
	if c.failures >= b.threshold {
		c.openUntil = now.Add(max(b.cooldown, hint))
	}
}

// answered records that the provider answered (the endpoint is up).
func (b *breaker) answered(url string) {
	b.mu.Lock()
	delete(b.urls, url)
	b.mu.Unlock()
}
