// Package storetest is the conformance suite every store.Store backend must
// pass; each backend's tests call RunTests.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/store"
)

// RunTests runs the suite; newStore returns an empty, migrated store.
func RunTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Organizations", testOrganizations},
		{"APIKeys", testAPIKeys},
		{"Collections", testCollections},
		{"ConnectionsAndCredentials", testConnections},
		{"UpdateConnectionIsAtomic", testUpdateAtomic},
		{"ConcurrentUpdatesSerialise", testConcurrentUpdates},
		{"CrossOrganizationIsNotFound", testCrossOrg},
		{"ReplaceCiphertextIsCompareAndSwap", testReplaceCiphertext},
		{"DeleteCollectionCascades", testDeleteCollection},
		{"Audit", testAudit},
		{"LeaseAndFencedRefresh", testLease},
		{"RefreshCandidates", testRefreshCandidates},
		{"OAuthApps", testOAuthApps},
		{"OAuthSessionsAreSingleUse", testOAuthSessions},
		{"AuthProviders", testAuthProviders},
		{"EmbeddedObjects", testEmbedded},
		{"SyncJobsAndRecords", testSync},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

var ctx = context.Background()

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func mustOrg(t *testing.T, s store.Store, name string) store.Organization {
	t.Helper()
	o := store.Organization{ID: newID(), Name: name, CreatedAt: now()}
	if err := s.CreateOrganization(ctx, o); err != nil {
		t.Fatalf("create org: %v", err)
	}
	return o
}

func mustCollection(t *testing.T, s store.Store, orgID, rid string) store.Collection {
	t.Helper()
	c := store.Collection{ID: newID(), OrganizationID: orgID, Name: "Collection " + rid, ReadableID: rid, CreatedAt: now(), ModifiedAt: now()}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatalf("create collection: %v", err)
	}
	return c
}

func newConnection(orgID, collID string) store.SourceConnection {
	return store.SourceConnection{
		ID: newID(), OrganizationID: orgID, CollectionID: collID, Name: "My Asana", ShortName: "asana",
		Status: store.StatusActive, AuthMethod: "oauth_token", Config: json.RawMessage(`{"a":1}`), CreatedAt: now(), ModifiedAt: now(),
	}
}

func newCredential(orgID, connID string, ct string) *store.Credential {
	exp := now().Add(time.Hour)
	return &store.Credential{ID: newID(), OrganizationID: orgID, SourceConnectionID: connID, Kind: "oauth2",
		Ciphertext: []byte(ct), KeyID: 42, Version: 1, ExpiresAt: &exp, CreatedAt: now(), UpdatedAt: now()}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func testOrganizations(t *testing.T, s store.Store) {
	if n, err := s.CountOrganizations(ctx); err != nil || n != 0 {
		t.Fatalf("count on empty store = %d, %v", n, err)
	}
	o := mustOrg(t, s, "acme")
	for _, key := range []string{o.ID, "acme"} {
		got, err := s.GetOrganization(ctx, key)
		if err != nil || got != o {
			t.Fatalf("get %q = %+v, %v; want %+v", key, got, err, o)
		}
	}
	wantErr(t, s.CreateOrganization(ctx, store.Organization{ID: newID(), Name: "acme", CreatedAt: now()}), store.ErrAlreadyExists)
	_, err := s.GetOrganization(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	mustOrg(t, s, "globex")
	list, err := s.ListOrganizations(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %v, %v", list, err)
	}
	b := store.Branding{DisplayName: "Acme Inc", AccentColor: "#0a7cff", LogoURL: "https://acme.example/logo.svg"}
	if err := s.SetBranding(ctx, o.ID, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetOrganization(ctx, o.ID); err != nil || got.Branding != b {
		t.Fatalf("branding = %+v, %v; want %+v", got.Branding, err, b)
	}
	if got, _ := s.GetOrganization(ctx, "globex"); got.Branding != (store.Branding{}) {
		t.Fatalf("another organization's branding changed: %+v", got.Branding)
	}
	wantErr(t, s.SetBranding(ctx, "nope", b), store.ErrNotFound)
}

func testAPIKeys(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	k := store.APIKey{ID: newID(), OrganizationID: o.ID, Name: "ci", Prefix: "vk_abcd", Hash: []byte("hash-1"), CreatedAt: now()}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateAPIKey(ctx, store.APIKey{ID: newID(), OrganizationID: o.ID, Hash: []byte("hash-1"), CreatedAt: now()}), store.ErrAlreadyExists)
	got, err := s.APIKeyByHash(ctx, []byte("hash-1"))
	if err != nil || got.ID != k.ID || !bytes.Equal(got.Hash, k.Hash) || got.RevokedAt != nil {
		t.Fatalf("by hash = %+v, %v", got, err)
	}
	if err := s.TouchAPIKey(ctx, k.ID, now()); err != nil {
		t.Fatal(err)
	}
	other := mustOrg(t, s, "globex")
	wantErr(t, s.RevokeAPIKey(ctx, other.ID, k.ID, now()), store.ErrNotFound)
	if err := s.RevokeAPIKey(ctx, o.ID, k.ID, now()); err != nil {
		t.Fatal(err)
	}
	_, err = s.APIKeyByHash(ctx, []byte("hash-1"))
	wantErr(t, err, store.ErrNotFound)
	list, err := s.ListAPIKeys(ctx, o.ID)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil || list[0].LastUsedAt == nil {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func testCollections(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "docs-abc123")
	got, err := s.GetCollection(ctx, o.ID, "docs-abc123")
	if err != nil || got != c {
		t.Fatalf("get = %+v, %v; want %+v", got, err, c)
	}
	if got, err := s.GetCollectionByID(ctx, o.ID, c.ID); err != nil || got != c {
		t.Fatalf("get by id = %+v, %v", got, err)
	}
	wantErr(t, s.CreateCollection(ctx, store.Collection{ID: newID(), OrganizationID: o.ID, Name: "x", ReadableID: "docs-abc123", CreatedAt: now(), ModifiedAt: now()}), store.ErrAlreadyExists)
	// The same readable id in another organization is fine.
	other := mustOrg(t, s, "globex")
	mustCollection(t, s, other.ID, "docs-abc123")
	for i := 0; i < 3; i++ {
		mustCollection(t, s, o.ID, fmt.Sprintf("more-%d", i))
	}
	page, err := s.ListCollections(ctx, o.ID, 1, 2)
	if err != nil || len(page) != 2 || page[0].ReadableID != "more-0" {
		t.Fatalf("page = %+v, %v", page, err)
	}
}

func testConnections(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c1 := mustCollection(t, s, o.ID, "one")
	c2 := mustCollection(t, s, o.ID, "two")
	conn := newConnection(o.ID, c1.ID)
	cred := newCredential(o.ID, conn.ID, "sealed-bytes")
	if err := s.CreateConnection(ctx, conn, cred); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnection(ctx, o.ID, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CollectionRID != "one" || got.Name != conn.Name || string(got.Config) == "" || got.Schedule != nil || !got.CreatedAt.Equal(conn.CreatedAt) {
		t.Fatalf("get = %+v", got)
	}
	var cfg map[string]any
	if err := json.Unmarshal(got.Config, &cfg); err != nil || cfg["a"] != float64(1) {
		t.Fatalf("config = %s", got.Config)
	}
	gc, err := s.GetCredentialForConnection(ctx, o.ID, conn.ID)
	if err != nil || string(gc.Ciphertext) != "sealed-bytes" || gc.KeyID != 42 || gc.Version != 1 || gc.ExpiresAt == nil || !gc.ExpiresAt.Equal(*cred.ExpiresAt) {
		t.Fatalf("credential = %+v, %v", gc, err)
	}
	conn2 := newConnection(o.ID, c2.ID)
	conn2.Schedule = json.RawMessage(`{"cron":"0 * * * *"}`)
	if err := s.CreateConnection(ctx, conn2, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListConnections(ctx, o.ID, store.ConnectionFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("list = %d, %v", len(all), err)
	}
	only2, err := s.ListConnections(ctx, o.ID, store.ConnectionFilter{CollectionID: c2.ID})
	if err != nil || len(only2) != 1 || only2[0].ID != conn2.ID || string(only2[0].Schedule) == "" {
		t.Fatalf("filtered = %+v, %v", only2, err)
	}
	if page, _ := s.ListConnections(ctx, o.ID, store.ConnectionFilter{Skip: 1, Limit: 1}); len(page) != 1 || page[0].ID != conn2.ID {
		t.Fatalf("page = %+v", page)
	}
	// A second credential for the same connection is refused.
	wantErr(t, s.CreateConnection(ctx, newConnection(o.ID, c1.ID), newCredential(o.ID, conn.ID, "x")), store.ErrAlreadyExists)
	if err := s.DeleteConnection(ctx, o.ID, conn.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetConnection(ctx, o.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetCredentialForConnection(ctx, o.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteConnection(ctx, o.ID, conn.ID), store.ErrNotFound)
}

func testUpdateAtomic(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	if err := s.CreateConnection(ctx, conn, newCredential(o.ID, conn.ID, "v1")); err != nil {
		t.Fatal(err)
	}
	// An update whose function fails changes nothing.
	boom := errors.New("boom")
	_, err := s.UpdateConnection(ctx, o.ID, conn.ID, func(sc *store.SourceConnection) (*store.Credential, error) {
		sc.Name = "changed"
		return nil, boom
	})
	wantErr(t, err, boom)
	if got, _ := s.GetConnection(ctx, o.ID, conn.ID); got.Name != conn.Name {
		t.Fatalf("failed update leaked: %q", got.Name)
	}
	// A successful one replaces the credential and the fields together.
	upd, err := s.UpdateConnection(ctx, o.ID, conn.ID, func(sc *store.SourceConnection) (*store.Credential, error) {
		sc.Name, sc.Status = "renamed", store.StatusNeedsReauth
		return newCredential(o.ID, conn.ID, "v2"), nil
	})
	if err != nil || upd.Name != "renamed" {
		t.Fatalf("update = %+v, %v", upd, err)
	}
	got, _ := s.GetConnection(ctx, o.ID, conn.ID)
	cred, _ := s.GetCredentialForConnection(ctx, o.ID, conn.ID)
	if got.Name != "renamed" || got.Status != store.StatusNeedsReauth || string(cred.Ciphertext) != "v2" {
		t.Fatalf("after update: %+v %q", got, cred.Ciphertext)
	}
}

func testConcurrentUpdates(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	conn.Description = ""
	if err := s.CreateConnection(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateConnection(ctx, o.ID, conn.ID, func(sc *store.SourceConnection) (*store.Credential, error) {
				sc.Description += "x"
				return nil, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	got, _ := s.GetConnection(ctx, o.ID, conn.ID)
	if len(got.Description) != n {
		t.Fatalf("lost updates: description has %d of %d marks", len(got.Description), n)
	}
}

func testCrossOrg(t *testing.T, s store.Store) {
	a := mustOrg(t, s, "acme")
	b := mustOrg(t, s, "globex")
	ca := mustCollection(t, s, a.ID, "one")
	conn := newConnection(a.ID, ca.ID)
	if err := s.CreateConnection(ctx, conn, newCredential(a.ID, conn.ID, "x")); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetConnection(ctx, b.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetCredentialForConnection(ctx, b.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetCollection(ctx, b.ID, "one")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UpdateConnection(ctx, b.ID, conn.ID, func(*store.SourceConnection) (*store.Credential, error) { return nil, nil })
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteConnection(ctx, b.ID, conn.ID), store.ErrNotFound)
	wantErr(t, s.DeleteCollection(ctx, b.ID, ca.ID), store.ErrNotFound)
	if list, _ := s.ListConnections(ctx, b.ID, store.ConnectionFilter{}); len(list) != 0 {
		t.Fatalf("other org sees %d connections", len(list))
	}
	if _, err := s.GetConnection(ctx, a.ID, conn.ID); err != nil {
		t.Fatalf("owner lost access: %v", err)
	}
}

func testReplaceCiphertext(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	var ids []string
	for i := 0; i < 5; i++ {
		conn := newConnection(o.ID, c.ID)
		cred := newCredential(o.ID, conn.ID, fmt.Sprintf("ct-%d", i))
		if err := s.CreateConnection(ctx, conn, cred); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cred.ID)
	}
	var seen []store.SealedRow
	after := ""
	for {
		page, err := s.ListSealed(ctx, store.TableCredentials, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		seen = append(seen, page...)
		after = page[len(page)-1].ID
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d credentials, want 5", len(seen))
	}
	first := seen[0]
	ok, err := s.ReplaceSealed(ctx, store.TableCredentials, first.ID, []byte("not-the-current"), []byte("new"), 7)
	if err != nil || ok {
		t.Fatalf("stale swap = %v, %v; want refused", ok, err)
	}
	ok, err = s.ReplaceSealed(ctx, store.TableCredentials, first.ID, first.Ciphertext, []byte("new"), 7)
	if err != nil || !ok {
		t.Fatalf("swap = %v, %v", ok, err)
	}
	if _, err := s.ListSealed(ctx, "organizations", "", 1); err == nil {
		t.Fatal("ListSealed accepted a table without ciphertexts")
	}
	counts, err := s.CountSealedByKey(ctx)
	if err != nil || counts[7] != 1 || counts[42] != 4 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
	got, _ := s.GetCredential(ctx, first.ID)
	if string(got.Ciphertext) != "new" || got.Version != 1 {
		t.Fatalf("after swap = %q v%d", got.Ciphertext, got.Version)
	}
}

func testDeleteCollection(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	if err := s.CreateConnection(ctx, conn, newCredential(o.ID, conn.ID, "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCollection(ctx, o.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetConnection(ctx, o.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetCredentialForConnection(ctx, o.ID, conn.ID)
	wantErr(t, err, store.ErrNotFound)
}

func testAudit(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	for i := 0; i < 3; i++ {
		e := store.AuditEvent{ID: newID(), OrganizationID: o.ID, Actor: "apikey:1", Action: "credential.read",
			TargetType: "source_connection", TargetID: fmt.Sprint(i), RemoteAddr: "127.0.0.1", CreatedAt: now().Add(time.Duration(i) * time.Second)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListAudit(ctx, o.ID, store.AuditFilter{Limit: 2})
	if err != nil || len(list) != 2 || list[0].TargetID != "2" {
		t.Fatalf("audit = %+v, %v", list, err)
	}
	if one, _ := s.ListAudit(ctx, o.ID, store.AuditFilter{TargetID: "1"}); len(one) != 1 || one[0].TargetID != "1" {
		t.Fatalf("filtered by target = %+v", one)
	}
	if none, _ := s.ListAudit(ctx, o.ID, store.AuditFilter{Action: "credential.delete"}); len(none) != 0 {
		t.Fatalf("filtered by action = %+v", none)
	}
	if recent, _ := s.ListAudit(ctx, o.ID, store.AuditFilter{Since: now().Add(1500 * time.Millisecond)}); len(recent) != 1 {
		t.Fatalf("filtered by time = %+v", recent)
	}
	// Concurrent appends (group-committed) are each stored once.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- s.AppendAudit(ctx, store.AuditEvent{ID: newID(), OrganizationID: o.ID, Actor: "apikey:c", Action: "credential.read",
				TargetType: "source_connection", TargetID: fmt.Sprint("c", i), CreatedAt: now().Add(-time.Hour)})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if many, _ := s.ListAudit(ctx, o.ID, store.AuditFilter{Actor: "apikey:c", Limit: 1000}); len(many) != 100 {
		t.Fatalf("%d concurrent events stored, want 100", len(many))
	}
	if n, err := s.PruneAudit(ctx, now().Add(-30*time.Minute)); err != nil || n != 100 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	// Retention removes what is older than the cut, in every organization.
	other := mustOrg(t, s, "globex")
	if err := s.AppendAudit(ctx, store.AuditEvent{ID: newID(), OrganizationID: other.ID, Actor: "apikey:2", Action: "credential.read",
		TargetType: "source_connection", TargetID: "x", CreatedAt: now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneAudit(ctx, now().Add(1500*time.Millisecond)); err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	if left, _ := s.ListAudit(ctx, o.ID, store.AuditFilter{}); len(left) != 1 || left[0].TargetID != "2" {
		t.Fatalf("after prune = %+v", left)
	}
}

func testLease(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	cred := newCredential(o.ID, conn.ID, "v1")
	cred.Refreshable = true
	if err := s.CreateConnection(ctx, conn, cred); err != nil {
		t.Fatal(err)
	}
	t0 := now()
	if _, ok, err := s.TryLease(ctx, cred.ID, 2, "a", t0, t0.Add(time.Minute)); err != nil || ok {
		t.Fatalf("lease at a stale version = %v, %v", ok, err)
	}
	if leased, ok, err := s.TryLease(ctx, cred.ID, 1, "a", t0, t0.Add(time.Minute)); err != nil || !ok ||
		leased.ID != cred.ID || leased.Version != 1 || string(leased.Ciphertext) != string(cred.Ciphertext) || !leased.Refreshable {
		t.Fatalf("lease = %v, %v; row %+v", ok, err, leased)
	}
	if _, ok, _ := s.TryLease(ctx, cred.ID, 1, "b", t0, t0.Add(time.Minute)); ok {
		t.Fatal("a second owner took a live lease")
	}
	// A lapsed lease can be taken over.
	if _, ok, _ := s.TryLease(ctx, cred.ID, 1, "b", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); !ok {
		t.Fatal("lapsed lease not taken over")
	}
	// The old owner, resuming, cannot write: the fence holds.
	upd := *cred
	upd.Ciphertext, upd.UpdatedAt = []byte("from-a"), now()
	event := func(id string) store.AuditEvent {
		return store.AuditEvent{ID: id, OrganizationID: o.ID, Actor: "system:refresh", Action: "credential.refresh",
			TargetType: "source_connection", TargetID: conn.ID, CreatedAt: now()}
	}
	if ok, err := s.SaveRefreshed(ctx, upd, 1, "a", event("refresh-a")); err != nil || ok {
		t.Fatalf("fenced-out save = %v, %v", ok, err)
	}
	upd.Ciphertext = []byte("from-b")
	exp := now().Add(time.Hour)
	upd.ExpiresAt, upd.Refreshable = &exp, true
	if ok, err := s.SaveRefreshed(ctx, upd, 1, "b", event("refresh-b")); err != nil || !ok {
		t.Fatalf("save = %v, %v", ok, err)
	}
	got, _ := s.GetCredential(ctx, cred.ID)
	if string(got.Ciphertext) != "from-b" || got.Version != 2 || !got.ExpiresAt.Equal(exp) || !got.Refreshable {
		t.Fatalf("after save = %+v", got)
	}
	// The lease was released with the save; version 1 is gone.
	if ok, _ := s.SaveRefreshed(ctx, upd, 1, "b", event("refresh-b2")); ok {
		t.Fatal("saved twice at the same version")
	}
	// The stored save, and only it, is on record.
	if evs, err := s.ListAudit(ctx, o.ID, store.AuditFilter{Action: "credential.refresh"}); err != nil || len(evs) != 1 || evs[0].ID != "refresh-b" {
		t.Fatalf("refresh audit events = %+v, %v; want the one stored save's", evs, err)
	}
	if _, ok, _ := s.TryLease(ctx, cred.ID, 2, "c", now(), now().Add(time.Minute)); !ok {
		t.Fatal("lease not released by save")
	}
	if err := s.ReleaseLease(ctx, cred.ID, "c"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TryLease(ctx, cred.ID, 2, "d", now(), now().Add(time.Minute)); !ok {
		t.Fatal("lease not released")
	}
	if err := s.MarkNeedsReauth(ctx, o.ID, conn.ID, cred.ID, "d", now()); err != nil {
		t.Fatal(err)
	}
	gc, _ := s.GetConnection(ctx, o.ID, conn.ID)
	kept, _ := s.GetCredential(ctx, cred.ID)
	if gc.Status != store.StatusNeedsReauth || string(kept.Ciphertext) != "from-b" {
		t.Fatalf("needs_reauth: status %s, credential %q", gc.Status, kept.Ciphertext)
	}
	if _, ok, _ := s.TryLease(ctx, cred.ID, 2, "e", now(), now().Add(time.Minute)); !ok {
		t.Fatal("MarkNeedsReauth kept the lease")
	}
}

func testRefreshCandidates(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	base := now()
	mk := func(expIn time.Duration, refreshable bool, status string) string {
		conn := newConnection(o.ID, c.ID)
		conn.Status = status
		cred := newCredential(o.ID, conn.ID, "x")
		exp := base.Add(expIn)
		cred.ExpiresAt, cred.Refreshable = &exp, refreshable
		if err := s.CreateConnection(ctx, conn, cred); err != nil {
			t.Fatal(err)
		}
		return cred.ID
	}
	soon := mk(2*time.Minute, true, store.StatusActive)
	sooner := mk(time.Minute, true, store.StatusActive)
	mk(time.Hour, true, store.StatusActive)                // not yet
	mk(time.Minute, false, store.StatusActive)             // nothing to refresh with
	mk(time.Minute, true, store.StatusNeedsReauth)         // broken
	leased := mk(30*time.Second, true, store.StatusActive) // someone is on it
	if _, ok, _ := s.TryLease(ctx, leased, 1, "x", base, base.Add(time.Minute)); !ok {
		t.Fatal("lease")
	}
	got, err := s.ListRefreshCandidates(ctx, base.Add(10*time.Minute), base, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].CredentialID != sooner || got[1].CredentialID != soon {
		t.Fatalf("candidates = %+v", got)
	}
}

func testOAuthApps(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	a := store.OAuthApp{ID: newID(), OrganizationID: o.ID, ShortName: "notion", ClientID: "cid", Ciphertext: []byte("sealed"), KeyID: 3,
		Scopes: []string{"read"}, RedirectURLAllowlist: []string{"https://app.example.com/cb"}, CreatedAt: now(), UpdatedAt: now()}
	got, err := s.PutOAuthApp(ctx, a)
	if err != nil || got.ClientID != "cid" || len(got.Scopes) != 1 || got.RedirectURLAllowlist[0] != "https://app.example.com/cb" {
		t.Fatalf("put = %+v, %v", got, err)
	}
	a.ClientID, a.Scopes, a.UpdatedAt = "cid2", nil, now()
	if got, err = s.PutOAuthApp(ctx, a); err != nil || got.ClientID != "cid2" || len(got.Scopes) != 0 || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("replace = %+v, %v", got, err)
	}
	other := mustOrg(t, s, "globex")
	_, err = s.GetOAuthApp(ctx, other.ID, "notion")
	wantErr(t, err, store.ErrNotFound)
	list, _ := s.ListOAuthApps(ctx, o.ID)
	if len(list) != 1 {
		t.Fatalf("list = %d", len(list))
	}
	wantErr(t, s.DeleteOAuthApp(ctx, other.ID, "notion"), store.ErrNotFound)
	if err := s.DeleteOAuthApp(ctx, o.ID, "notion"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetOAuthApp(ctx, o.ID, "notion")
	wantErr(t, err, store.ErrNotFound)
}

func testOAuthSessions(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	sess := store.OAuthSession{ID: newID(), OrganizationID: o.ID, ShortName: "notion", CodeHash: []byte("code-h"), StateHash: []byte("state-h"),
		Ciphertext: []byte("sealed"), KeyID: 1, RedirectURL: "https://app.example.com/cb", CreatedAt: now(), ExpiresAt: now().Add(10 * time.Minute)}
	if err := s.CreateOAuthSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.UseSessionCode(ctx, []byte("code-h"), now())
	if err != nil || got.ID != sess.ID || got.CodeUsedAt == nil {
		t.Fatalf("use code = %+v, %v", got, err)
	}
	_, err = s.UseSessionCode(ctx, []byte("code-h"), now())
	wantErr(t, err, store.ErrNotFound)
	// Expired state is refused; an unexpired one works once.
	_, err = s.UseSessionState(ctx, []byte("state-h"), now().Add(11*time.Minute))
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.UseSessionState(ctx, []byte("state-h"), now()); err != nil {
		t.Fatal(err)
	}
	_, err = s.UseSessionState(ctx, []byte("state-h"), now())
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseSessionState(ctx, []byte("unknown"), now())
	wantErr(t, err, store.ErrNotFound)
}

func testAuthProviders(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	a := store.AuthProvider{ID: newID(), OrganizationID: o.ID, Name: "My Pipedream", ReadableID: "my-pipedream", ShortName: "pipedream",
		MaskedClientID: "abcd****", Ciphertext: []byte("sealed"), KeyID: 4, CreatedAt: now(), ModifiedAt: now()}
	if err := s.CreateAuthProvider(ctx, a); err != nil {
		t.Fatal(err)
	}
	dup := a
	dup.ID = newID()
	wantErr(t, s.CreateAuthProvider(ctx, dup), store.ErrAlreadyExists)
	got, err := s.GetAuthProvider(ctx, o.ID, "my-pipedream")
	if err != nil || got.ID != a.ID || string(got.Ciphertext) != "sealed" || got.KeyID != 4 {
		t.Fatalf("get = %+v, %v", got, err)
	}
	other := mustOrg(t, s, "globex")
	_, err = s.GetAuthProvider(ctx, other.ID, "my-pipedream")
	wantErr(t, err, store.ErrNotFound)
	a.Name, a.Ciphertext, a.ModifiedAt = "Renamed", []byte("sealed-2"), now()
	if err := s.UpdateAuthProvider(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAuthProviderByID(ctx, o.ID, a.ID); got.Name != "Renamed" || string(got.Ciphertext) != "sealed-2" {
		t.Fatalf("after update = %+v", got)
	}
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	conn.AuthProviderID, conn.AuthProviderConfig = a.ID, json.RawMessage(`{"project_id":"proj_x"}`)
	if err := s.CreateConnection(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	gc, _ := s.GetConnection(ctx, o.ID, conn.ID)
	if gc.AuthProviderID != a.ID || gc.AuthProviderRID != "my-pipedream" || string(gc.AuthProviderConfig) == "" {
		t.Fatalf("connection provider = %q %q %s", gc.AuthProviderID, gc.AuthProviderRID, gc.AuthProviderConfig)
	}
	wantErr(t, s.DeleteAuthProvider(ctx, o.ID, a.ID), store.ErrConflict)
	if err := s.DeleteConnection(ctx, o.ID, conn.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteAuthProvider(ctx, other.ID, a.ID), store.ErrNotFound)
	if err := s.DeleteAuthProvider(ctx, o.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListAuthProviders(ctx, o.ID)
	if len(list) != 0 {
		t.Fatalf("list after delete = %d", len(list))
	}
}

func testEmbedded(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	other := mustOrg(t, s, "globex")
	app := store.Application{ID: newID(), OrganizationID: o.ID, Name: "backend", ClientID: "vkc_abc", SecretHash: []byte("h"), CreatedAt: now()}
	if err := s.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ApplicationByClientID(ctx, "vkc_abc"); err != nil || got.ID != app.ID {
		t.Fatalf("app = %+v, %v", got, err)
	}
	// Concurrent first uses create one workspace.
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.EnsureWorkspace(ctx, o.ID, "user-1", newID(), now())
			if err != nil {
				t.Error(err)
				return
			}
			ids <- w.ID
		}()
	}
	wg.Wait()
	close(ids)
	first := ""
	for id := range ids {
		if first == "" {
			first = id
		} else if id != first {
			t.Fatal("EnsureWorkspace created two workspaces for one user")
		}
	}
	if _, err := s.GetWorkspace(ctx, other.ID, first); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cross-org workspace = %v", err)
	}
	w2, _ := s.EnsureWorkspace(ctx, other.ID, "user-1", newID(), now())
	if w2.ID == first {
		t.Fatal("organizations share a workspace")
	}
	sec := store.OAuthSecret{ID: newID(), OrganizationID: o.ID, WorkspaceID: first, ShortName: "hubspot", Ciphertext: []byte("x"), KeyID: 1,
		CreatedAt: now(), ExpiresAt: now().Add(15 * time.Minute)}
	if err := s.CreateOAuthSecret(ctx, sec); err != nil {
		t.Fatal(err)
	}
	_, err := s.UseOAuthSecret(ctx, other.ID, first, "hubspot", sec.ID, now())
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseOAuthSecret(ctx, o.ID, first, "hubspot", sec.ID, now().Add(16*time.Minute))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseOAuthSecret(ctx, o.ID, first, "github", sec.ID, now())
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseOAuthSecret(ctx, o.ID, w2.ID, "hubspot", sec.ID, now())
	wantErr(t, err, store.ErrNotFound)
	if got, err := s.UseOAuthSecret(ctx, o.ID, first, "hubspot", sec.ID, now()); err != nil || got.WorkspaceID != first || got.UsedAt == nil {
		t.Fatalf("use (after refused misuses) = %+v, %v", got, err)
	}
	_, err = s.UseOAuthSecret(ctx, o.ID, first, "hubspot", sec.ID, now())
	wantErr(t, err, store.ErrNotFound)
	k := store.SigningKey{ID: "kid-1", Ciphertext: []byte("sealed"), KeyID: 1, PublicKey: []byte("pub"), CreatedAt: now()}
	if err := s.CreateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireSigningKey(ctx, "kid-1", now()); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.ListSigningKeys(ctx)
	if len(keys) != 1 || keys[0].RetiredAt == nil {
		t.Fatalf("keys = %+v", keys)
	}
}

func testSync(t *testing.T, s store.Store) {
	o := mustOrg(t, s, "acme")
	c := mustCollection(t, s, o.ID, "one")
	conn := newConnection(o.ID, c.ID)
	if err := s.CreateConnection(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	job := store.SyncJob{ID: newID(), OrganizationID: o.ID, SourceConnectionID: conn.ID, Status: store.JobPending, Ciphertext: []byte("sealed"), KeyID: 2, CreatedAt: now()}
	if err := s.CreateSyncJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	second := job
	second.ID = newID()
	wantErr(t, s.CreateSyncJob(ctx, second), store.ErrConflict)
	done, err := s.UpdateSyncJob(ctx, o.ID, job.ID, func(j *store.SyncJob) error {
		at := now()
		j.Status, j.Inserted, j.Ciphertext, j.CompletedAt = store.JobCompleted, 3, nil, &at
		return nil
	})
	if err != nil || done.Status != store.JobCompleted || done.Ciphertext != nil {
		t.Fatalf("update = %+v, %v", done, err)
	}
	if got, _ := s.GetSyncJob(ctx, o.ID, job.ID); len(got.Ciphertext) != 0 || got.Inserted != 3 {
		t.Fatalf("after update = %+v", got)
	}
	if err := s.CreateSyncJob(ctx, second); err != nil {
		t.Fatalf("a new job after the first ended: %v", err)
	}
	_, _ = s.UpdateSyncJob(ctx, o.ID, second.ID, func(j *store.SyncJob) error { j.Status = store.JobFailed; return nil })
	st, err := s.SyncJobStats(ctx, o.ID, conn.ID)
	if err != nil || st.Total != 2 || st.Successful != 1 || st.Failed != 1 || st.Last == nil {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	other := mustOrg(t, s, "globex")
	_, err = s.GetSyncJob(ctx, other.ID, job.ID)
	wantErr(t, err, store.ErrNotFound)

	rec := func(id, title, body string) store.Record {
		return store.Record{OrganizationID: o.ID, CollectionID: c.ID, SourceConnectionID: conn.ID, Source: "hubspot", EntityType: "contacts",
			UpstreamID: id, Title: title, Body: body, ContentHash: title + body, UpdatedAt: now()}
	}
	ins, upd, kept, err := s.UpsertRecords(ctx, []store.Record{rec("1", "Ada Lovelace", "analytical engine notes"), rec("2", "Grace Hopper", "compiler pioneer")}, "job-1")
	if err != nil || ins != 2 || upd != 0 || kept != 0 {
		t.Fatalf("first upsert = %d %d %d, %v", ins, upd, kept, err)
	}
	ins, upd, kept, err = s.UpsertRecords(ctx, []store.Record{rec("1", "Ada Lovelace", "analytical engine notes"), rec("2", "Grace Hopper", "COBOL and compilers")}, "job-2")
	if err != nil || ins != 0 || upd != 1 || kept != 1 {
		t.Fatalf("second upsert = %d %d %d, %v", ins, upd, kept, err)
	}
	hits, err := s.SearchRecords(ctx, o.ID, c.ID, "compilers", 10)
	if err != nil || len(hits) != 1 || hits[0].UpstreamID != "2" || hits[0].Snippet == "" {
		t.Fatalf("search = %+v, %v", hits, err)
	}
	if hits, _ := s.SearchRecords(ctx, o.ID, c.ID, "ada", 10); len(hits) != 1 || hits[0].Title != "Ada Lovelace" {
		t.Fatalf("search title = %+v", hits)
	}
	if hits, _ := s.SearchRecords(ctx, other.ID, c.ID, "compilers", 10); len(hits) != 0 {
		t.Fatal("search crossed organizations")
	}
	if hits, err := s.SearchRecords(ctx, o.ID, c.ID, `" OR * NEAR(`, 10); err != nil || len(hits) != 0 {
		t.Fatalf("hostile query = %v, %v", hits, err)
	}
	if _, _, _, err := s.UpsertRecords(ctx, []store.Record{rec("1", "Ada Lovelace", "analytical engine notes")}, "job-3"); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteUnseenRecords(ctx, conn.ID, "contacts", "job-3")
	if err != nil || n != 1 {
		t.Fatalf("delete unseen = %d, %v", n, err)
	}
	if hits, _ := s.SearchRecords(ctx, o.ID, c.ID, "compilers", 10); len(hits) != 0 {
		t.Fatal("deleted record still found")
	}
	if n, _ := s.CountRecords(ctx, o.ID, c.ID); n != 1 {
		t.Fatalf("count = %d", n)
	}
}
