package tenant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/vault"
)

func TestNewKeyFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		k := tenant.NewKey().Reveal()
		if !strings.HasPrefix(k, tenant.KeyPrefix) || len(k) != len(tenant.KeyPrefix)+43 {
			t.Fatalf("key %q: wrong shape", k)
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
	}
}

func TestBootstrapAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, testkit.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := tenant.New(st)

	key, created, err := svc.Bootstrap(ctx, vault.Secret{})
	if err != nil || !created || key.IsZero() {
		t.Fatalf("bootstrap = %v, %v", created, err)
	}
	if _, again, err := svc.Bootstrap(ctx, vault.Secret{}); err != nil || again {
		t.Fatalf("second bootstrap = %v, %v", again, err)
	}
	p, err := svc.Authenticate(ctx, key.Reveal())
	if err != nil || p.OrganizationID == "" || p.APIKeyID == "" {
		t.Fatalf("authenticate = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "vk_nope", key.Reveal() + "x", key.Reveal()[:len(key.Reveal())-1]} {
		_, err := svc.Authenticate(ctx, bad)
		if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindUnauthorized {
			t.Errorf("authenticate(%q) = %v, want unauthorized", bad, err)
		}
	}
	keys, _ := svc.ListAPIKeys(ctx, p.OrganizationID)
	if len(keys) != 1 || string(keys[0].Hash) == key.Reveal() || strings.Contains(string(keys[0].Hash), key.Reveal()) {
		t.Fatal("key stored in clear")
	}
	if _, _, err := svc.CreateAPIKey(ctx, p.OrganizationID, "short", vault.NewSecret("too-short")); err == nil {
		t.Fatal("short given key accepted")
	}
}

func TestBootstrapUsesGivenKey(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, testkit.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := tenant.New(st)
	given := vault.NewSecret("vk_given_by_automation_0123456789abcdef")
	key, created, err := svc.Bootstrap(ctx, given)
	if err != nil || !created || key.Reveal() != given.Reveal() {
		t.Fatalf("bootstrap = %v, %v", created, err)
	}
	if _, err := svc.Authenticate(ctx, given.Reveal()); err != nil {
		t.Fatal(err)
	}
}
