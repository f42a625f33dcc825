package tenant

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/vault"
)

// countingStore counts key lookups that reach the database.
type countingStore struct {
	Store
	lookups atomic.Int64
}

func (c *countingStore) APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	c.lookups.Add(1)
	return c.Store.APIKeyByHash(ctx, hash)
}

// TestKeyCache: two replicas on one database, each caching keys for a
// minute. Repeated requests skip the lookup; a revocation is seen at once by
// the replica that made it and by the other one when its entry expires;
// unknown keys are never cached; the cache stays bounded.
func TestKeyCache(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "keys.db")) // not testkit: it imports this package
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{t: time.Now()}
	replicas := make([]*Service, 2)
	stores := make([]*countingStore, 2)
	for i := range replicas {
		stores[i] = &countingStore{Store: st}
		replicas[i] = New(stores[i])
		replicas[i].CacheKeys(time.Minute, 3)
		replicas[i].cache.now = clock.Now
	}
	a, b := replicas[0], replicas[1]
	key, _, err := a.Bootstrap(ctx, vault.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	authOK := func(s *Service, k string) Principal {
		t.Helper()
		p, err := s.Authenticate(ctx, k)
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		return p
	}
	authFails := func(s *Service, k, why string) {
		t.Helper()
		if _, err := s.Authenticate(ctx, k); err == nil {
			t.Fatalf("%s: key accepted", why)
		} else if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindUnauthorized {
			t.Fatalf("%s: %v, want unauthorized", why, err)
		}
	}

	p := authOK(a, key.Reveal())
	for range 10 {
		if got := authOK(a, key.Reveal()); got != p {
			t.Fatalf("cached principal %+v, want %+v", got, p)
		}
	}
	if n := stores[0].lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for 11 requests, want 1", n)
	}
	authOK(b, key.Reveal())

	// Unknown keys always reach the database.
	for range 3 {
		authFails(a, "vk_not_a_key_0123456789", "unknown key")
	}
	if n := stores[0].lookups.Load(); n != 4 {
		t.Fatalf("%d lookups after 3 unknown keys, want 4", n)
	}

	// Revoked on replica a: a refuses at once, b until its entry expires.
	if err := a.RevokeAPIKey(ctx, p.OrganizationID, p.APIKeyID); err != nil {
		t.Fatal(err)
	}
	authFails(a, key.Reveal(), "revoked here")
	authOK(b, key.Reveal())
	clock.Advance(time.Minute)
	authFails(b, key.Reveal(), "revoked elsewhere, entry expired")

	// Bounded: more keys than max never make the map grow past it.
	for i := range 10 {
		_, k, err := a.CreateAPIKey(ctx, p.OrganizationID, "k", vault.Secret{})
		if err != nil {
			t.Fatal(err)
		}
		authOK(a, k.Reveal())
		if n := len(a.cache.m); n > 3 {
			t.Fatalf("after %d keys the cache holds %d entries, max 3", i+1, n)
		}
	}

	// Off: every request looks up.
	a.CacheKeys(0, 0)
	before := stores[0].lookups.Load()
	_, k, _ := a.CreateAPIKey(ctx, p.OrganizationID, "k", vault.Secret{})
	authOK(a, k.Reveal())
	authOK(a, k.Reveal())
	if n := stores[0].lookups.Load() - before; n != 2 {
		t.Fatalf("cache off: %d lookups for 2 requests", n)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
