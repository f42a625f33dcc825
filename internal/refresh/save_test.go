package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
)

// flakyStore is the real store, except that SaveRefreshed cannot reach the
// database for its first failures calls (as during a database restart).
type flakyStore struct {
	refresh.Store
	failures int64
	calls    atomic.Int64
}

func (f *flakyStore) SaveRefreshed(ctx context.Context, c store.Credential, version int64, owner string, ev store.AuditEvent) (bool, error) {
	if f.calls.Add(1) <= f.failures {
		return false, fmt.Errorf("save refreshed credential: %w", store.ErrUnavailable)
	}
	return f.Store.SaveRefreshed(ctx, c, version, owner, ev)
}

// TestRotatedTokenSurvivesABriefDatabaseOutage: the provider has rotated the
// refresh token when the database goes away; the engine keeps the new
// tokens and stores them once it is back, within its lease. An outage
// longer than the lease is a 503 with Retry-After and leaves the stored
// credential as it was.
func TestRotatedTokenSurvivesABriefDatabaseOutage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int64
		leaseTTL time.Duration
		stored   bool
	}{
		{"outage shorter than the lease", 4, 10 * time.Second, true},
		{"outage longer than the lease", 1 << 40, 600 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
			id := e.Connect(t)
			orgs, _ := e.S.App.Store.ListOrganizations(context.Background())
			orgID := orgs[0].ID
			before, _ := e.S.App.Store.GetCredentialForConnection(context.Background(), orgID, id)

			fs := &flakyStore{Store: e.S.App.Store, failures: tc.failures}
			eng := refresh.New(fs, e.S.App.Catalog, refresh.ClientFunc(func(ctx context.Context, orgID, shortName string) (oauth.Client, error) {
				reg, err := e.S.App.Apps.For(ctx, orgID, shortName)
				return reg.Client, err
			}), e.S.App.Vault, slog.New(slog.DiscardHandler), refresh.Options{Now: e.Clock.Now, LeaseTTL: tc.leaseTTL, RequestTimeout: 2 * time.Second})
			e.Clock.Advance(2 * time.Hour) // due
			refreshes := e.AS.TokenRequests("refresh_token")

			f, err := eng.Get(context.Background(), orgID, id, refresh.GetOptions{})
			if got := e.AS.TokenRequests("refresh_token") - refreshes; got != 1 {
				t.Fatalf("%d refresh requests, want 1", got)
			}
			after, gerr := e.S.App.Store.GetCredentialForConnection(context.Background(), orgID, id)
			if gerr != nil {
				t.Fatal(gerr)
			}
			p, oerr := credential.Sealer{C: e.S.App.Vault}.Open(after)
			if oerr != nil {
				t.Fatalf("stored credential does not decrypt: %v", oerr)
			}
			if tc.stored {
				if err != nil || !f.Refreshed {
					t.Fatalf("get = %+v, %v; want the refreshed token", f.Refreshed, err)
				}
				if after.Version != before.Version+1 || p.Fields["refresh_token"].Reveal() != f.Payload.Fields["refresh_token"].Reveal() ||
					!e.AS.AccessTokenActive(p.Fields["access_token"].Reveal()) {
					t.Fatalf("the rotated tokens were not stored (version %d → %d)", before.Version, after.Version)
				}
				if n := fs.calls.Load(); n != tc.failures+1 {
					t.Fatalf("%d save attempts, want %d", n, tc.failures+1)
				}
				return
			}
			var ae *apperr.Error
			if !errors.Is(err, store.ErrUnavailable) && !(errors.As(err, &ae) && ae.Kind == apperr.KindUnavailable) {
				t.Fatalf("get = %v, want the database outage", err)
			}
			if after.Version != before.Version || string(after.Ciphertext) != string(before.Ciphertext) {
				t.Fatal("the stored credential changed although nothing could be saved")
			}
			if fs.calls.Load() < 2 {
				t.Fatalf("%d save attempts: no retry", fs.calls.Load())
			}
		})
	}
}
