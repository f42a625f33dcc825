package tenant

import (
	"sync"
	"time"
)

// keyCache remembers, for a short time, which organization a recently
// presented API key belongs to, so a busy client's every request does not
// look its key up again. Only successful lookups are kept (an unknown key
// always reaches the database). A key revoked through this replica leaves
// the cache at once; one revoked through another replica is still accepted
// here until its entry expires, at most ttl later.
type keyCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.RWMutex
	m  map[[32]byte]cachedKey
}

type cachedKey struct {
	p     Principal
	until time.Time
}

func newKeyCache(ttl time.Duration, max int, now func() time.Time) *keyCache {
	return &keyCache{ttl: ttl, max: max, now: now, m: make(map[[32]byte]cachedKey)}
}

func (c *keyCache) get(h [32]byte) (Principal, bool) {
	if c == nil {
		return Principal{}, false
	}
	c.mu.RLock()
	e, ok := c.m[h]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *keyCache) put(h [32]byte, p Principal) {
	if c == nil {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max { // bounded: drop what expired, or everything
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[h] = cachedKey{p: p, until: now.Add(c.ttl)}
}

// forget drops every entry of the key with this id.
func (c *keyCache) forget(keyID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.APIKeyID == keyID {
			delete(c.m, k)
		}
	}
}
