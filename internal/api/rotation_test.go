package api_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/vault"
)

// TestKeyRotationWhileServing rotates the keyset and re-encrypts every
// credential from a second set of components (as `valetkey keys rotate` in
// another process would) while clients keep reading tokens from the server.
func TestKeyRotationWhileServing(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			dbURL := newURL(t)
			s := testkit.NewServer(t, dbURL)
			const n = 120
			ids := make([]string, n)
			for i := range ids {
				r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": fmt.Sprintf("Conn %03d", i), "short_name": "asana",
					"auth_fields": map[string]any{"access_token": fmt.Sprintf("token-%03d", i)}})
				wantStatus(t, r, 200)
				ids[i] = r.Map(t)["id"].(string)
			}
			before, err := s.App.Store.CountSealedByKey(t.Context())
			if err != nil || len(before) != 1 {
				t.Fatalf("before: %v, %v", before, err)
			}

			// The operator's process: its own vault instance and pool.
			opVault, _, err := vault.Open(s.App.Config.KeysetFile)
			if err != nil {
				t.Fatal(err)
			}
			opStore, err := sqlstore.Open(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer opStore.Close()

			stop := make(chan struct{})
			var reads, failures atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; ; i = (i + 7) % n {
						select {
						case <-stop:
							return
						default:
						}
						r := s.Do(t, s.Key, "GET", "/source-connections/"+ids[i]+"/token", nil)
						if r.Status != 200 || r.Map(t)["access_token"] != fmt.Sprintf("token-%03d", i) {
							failures.Add(1)
						}
						reads.Add(1)
					}
				}(w)
			}
			for reads.Load() < 20 { // readers are running before the rotation starts
				runtime.Gosched()
			}
			newKey, err := opVault.Rotate()
			if err != nil {
				t.Fatal(err)
			}
			readsBefore := reads.Load()
			res, err := credential.Reencrypt(t.Context(), opStore, opVault, 10)
			readsDuring := reads.Load() - readsBefore
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if failures.Load() != 0 {
				t.Fatalf("%d of %d reads failed during rotation", failures.Load(), reads.Load())
			}
			if res.Reencrypted+res.Raced != n || res.Scanned < n {
				t.Fatalf("rotation result %+v, want %d re-encrypted", res, n)
			}
			after, err := s.App.Store.CountSealedByKey(t.Context())
			if err != nil || after[newKey] != n || len(after) != 1 {
				t.Fatalf("after rotation: %v, %v (new key %d)", after, err, newKey)
			}
			t.Logf("%d reads, %d during re-encryption, none failed", reads.Load(), readsDuring)
			// Every token still decrypts to its own value after the rotation.
			for i, id := range ids {
				if r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil); r.Map(t)["access_token"] != fmt.Sprintf("token-%03d", i) {
					t.Fatalf("token %d after rotation: %s", i, r.Body)
				}
			}
		})
	}
}

// TestCiphertextMovedToAnotherRowFailsToDecrypt copies one credential's
// ciphertext onto another connection's row: the associated data (org and
// credential id) no longer matches, so it must not open.
func TestCiphertextMovedToAnotherRowFailsToDecrypt(t *testing.T) {
	s := sqliteServer(t)
	var ids []string
	for _, tok := range []string{"victim-token", "attacker-token"} {
		r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Conn " + tok, "short_name": "asana",
			"auth_fields": map[string]any{"access_token": tok}})
		wantStatus(t, r, 200)
		ids = append(ids, r.Map(t)["id"].(string))
	}
	orgID := s.Do(t, s.Key, "GET", "/source-connections/"+ids[0], nil).Map(t)["organization_id"].(string)
	victim, err := s.App.Store.GetCredentialForConnection(t.Context(), orgID, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := s.App.Store.GetCredentialForConnection(t.Context(), orgID, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Store.DB().Exec(`UPDATE credentials SET ciphertext = ? WHERE id = ?`, victim.Ciphertext, attacker.ID); err != nil {
		t.Fatal(err)
	}
	moved, err := s.App.Store.GetCredentialForConnection(t.Context(), orgID, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (credential.Sealer{C: s.App.Vault}).Open(moved); err == nil {
		t.Fatal("a ciphertext moved to another row decrypted")
	}
	r := s.Do(t, s.Key, "GET", "/source-connections/"+ids[1]+"/token", nil)
	wantDetail(t, r, 500, "Internal server error")
	// The untouched row still works.
	if r := s.Do(t, s.Key, "GET", "/source-connections/"+ids[0]+"/token", nil); r.Map(t)["access_token"] != "victim-token" {
		t.Fatalf("victim token = %s", r.Body)
	}
}
