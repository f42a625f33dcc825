// Package vault encrypts credentials at rest with a tink AEAD keyset, binding
// each ciphertext to its owner through associated data, and supports key
// rotation. It also defines Secret, the type that keeps values out of logs.
package vault

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

var jsonUnmarshal = json.Unmarshal

// ErrDecrypt is returned when a ciphertext cannot be opened: wrong key,
// tampered bytes, or associated data that does not match.
var ErrDecrypt = errors.New("vault: decryption failed")

// Vault encrypts and decrypts with the keyset kept in one file. It reloads the
// file when another process (valetkey keys rotate) has changed it.
type Vault struct {
	path string

	mu      sync.RWMutex
	handle  *keyset.Handle
	primary tink.AEAD
	modTime time.Time
	size    int64
	checked time.Time
}

// Open loads the keyset at path, creating it (mode 0600) when absent.
// created reports whether a new keyset was generated.
func Open(path string) (v *Vault, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if err != nil {
			return nil, false, fmt.Errorf("vault: new keyset: %w", err)
		}
		if err := writeKeyset(path, h); err != nil {
			return nil, false, err
		}
		created = true
	}
	v = &Vault{path: path}
	if err := v.reload(); err != nil {
		return nil, false, err
	}
	return v, created, nil
}

func (v *Vault) reload() error {
	st, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	data, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("vault: read keyset: %w", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(data)))
	if err != nil {
		return fmt.Errorf("vault: parse keyset %s: %w", v.path, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return fmt.Errorf("vault: aead: %w", err)
	}
	v.mu.Lock()
	v.handle, v.primary, v.modTime, v.size, v.checked = h, a, st.ModTime(), st.Size(), time.Now()
	v.mu.Unlock()
	return nil
}

// maybeReload re-reads the keyset file when it changed on disk. It stats the
// file at most once a second, so a rotation by another process is picked up
// quickly without a cost per call.
func (v *Vault) maybeReload(force bool) {
	v.mu.RLock()
	fresh := time.Since(v.checked) < time.Second
	mod, size := v.modTime, v.size
	v.mu.RUnlock()
	if fresh && !force {
		return
	}
	st, err := os.Stat(v.path)
	if err != nil {
		return
	}
	if st.ModTime().Equal(mod) && st.Size() == size {
		v.mu.Lock()
		v.checked = time.Now()
		v.mu.Unlock()
		return
	}
	_ = v.reload()
}

func (v *Vault) aead() tink.AEAD {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.primary
}

// Encrypt seals plaintext with the primary key, bound to ad.
func (v *Vault) Encrypt(plaintext, ad []byte) ([]byte, error) {
	v.maybeReload(false)
	ct, err := v.aead().Encrypt(plaintext, ad)
	if err != nil {
		return nil, fmt.Errorf("vault: encrypt: %w", err)
	}
	return ct, nil
}

// Decrypt opens a ciphertext made by Encrypt with the same ad. When the key is
// unknown it re-reads the keyset file once, in case another process rotated.
func (v *Vault) Decrypt(ciphertext, ad []byte) ([]byte, error) {
	pt, err := v.aead().Decrypt(ciphertext, ad)
	if err == nil {
		return pt, nil
	}
	v.maybeReload(true)
	pt, err = v.aead().Decrypt(ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// PrimaryKeyID is the id of the key new ciphertexts are sealed with.
func (v *Vault) PrimaryKeyID() uint32 {
	v.maybeReload(false)
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.handle.KeysetInfo().GetPrimaryKeyId()
}

// KeyIDs lists every key in the keyset.
func (v *Vault) KeyIDs() []uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var ids []uint32
	for _, k := range v.handle.KeysetInfo().GetKeyInfo() {
		ids = append(ids, k.GetKeyId())
	}
	return ids
}

// KeyIDOf returns the id of the key that sealed ciphertext (tink's prefix).
func KeyIDOf(ciphertext []byte) uint32 {
	if len(ciphertext) < 5 || ciphertext[0] != 1 {
		return 0
	}
	return binary.BigEndian.Uint32(ciphertext[1:5])
}

// Rotate adds a new AES-256-GCM key to the keyset file and makes it primary.
// Old keys stay, so existing ciphertexts still open. It returns the new key id.
func (v *Vault) Rotate() (uint32, error) {
	return v.editKeyset(func(m *keyset.Manager) (uint32, error) {
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return 0, err
		}
		return id, m.SetPrimary(id)
	})
}

// Prune deletes every non-primary key that inUse does not report as used.
func (v *Vault) Prune(inUse func(keyID uint32) bool) ([]uint32, error) {
	var removed []uint32
	_, err := v.editKeyset(func(m *keyset.Manager) (uint32, error) {
		h, err := m.Handle()
		if err != nil {
			return 0, err
		}
		info := h.KeysetInfo()
		for _, k := range info.GetKeyInfo() {
			id := k.GetKeyId()
			if id == info.GetPrimaryKeyId() || inUse(id) {
				continue
			}
			if err := m.Delete(id); err != nil {
				return 0, err
			}
			removed = append(removed, id)
		}
		return 0, nil
	})
	return removed, err
}

func (v *Vault) editKeyset(edit func(*keyset.Manager) (uint32, error)) (uint32, error) {
	if err := v.reload(); err != nil {
		return 0, err
	}
	v.mu.RLock()
	m := keyset.NewManagerFromHandle(v.handle)
	v.mu.RUnlock()
	id, err := edit(m)
	if err != nil {
		return 0, fmt.Errorf("vault: edit keyset: %w", err)
	}
	h, err := m.Handle()
	if err != nil {
		return 0, fmt.Errorf("vault: edit keyset: %w", err)
	}
	if err := writeKeyset(v.path, h); err != nil {
		return 0, err
	}
	return id, v.reload()
}

// writeKeyset writes atomically (temp file + rename) with mode 0600.
func writeKeyset(path string, h *keyset.Handle) error {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("vault: encode keyset: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyset-*")
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("vault: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("vault: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

// AD is the associated data that binds a ciphertext to what it belongs to:
// its kind of record, organization and record id. A ciphertext copied to
// another record does not open.
func AD(kind, orgID, id string) []byte {
	return []byte("valetkey/" + kind + "/v1|" + orgID + "|" + id)
}

// CredentialAD binds a credential ciphertext to its organization and id.
func CredentialAD(orgID, credentialID string) []byte { return AD("credential", orgID, credentialID) }
