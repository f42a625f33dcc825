// Package credential seals credential payloads into store rows with the
// vault, opens them again, and re-encrypts every row after a key rotation.
package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Payload is the secret content of a credential.
type Payload struct {
	// Fields holds the secret values by name: access_token, refresh_token,
	// api_key, username, password, ...
	Fields    map[string]vault.Secret
	TokenType string
	Scope     string
	// ClientID and ClientSecret are a one-connection OAuth client (bring your
	// own client at connection time), used instead of the organization's app
	// to refresh and revoke.
	ClientID     string
	ClientSecret vault.Secret
}

// Names lists the field names in order.
func (p Payload) Names() []string {
	out := make([]string, 0, len(p.Fields))
	for k := range p.Fields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wire is the plaintext layout inside the ciphertext.
type wire struct {
	Fields       map[string]string `json:"f"`
	TokenType    string            `json:"tt,omitempty"`
	Scope        string            `json:"sc,omitempty"`
	ClientID     string            `json:"ci,omitempty"`
	ClientSecret string            `json:"cs,omitempty"`
}

// Cipher is the part of the vault the sealer uses.
type Cipher interface {
	Encrypt(plaintext, ad []byte) ([]byte, error)
	Decrypt(ciphertext, ad []byte) ([]byte, error)
}

// Sealer encrypts payloads bound to their credential's identity.
type Sealer struct{ C Cipher }

// Seal encrypts p for the credential (orgID, credID); it returns the
// ciphertext and the id of the key that sealed it.
func (s Sealer) Seal(orgID, credID string, p Payload) ([]byte, uint32, error) {
	return s.SealAD(vault.CredentialAD(orgID, credID), p)
}

// SealAD encrypts p bound to the given associated data.
func (s Sealer) SealAD(ad []byte, p Payload) ([]byte, uint32, error) {
	w := wire{Fields: make(map[string]string, len(p.Fields)), TokenType: p.TokenType, Scope: p.Scope,
		ClientID: p.ClientID, ClientSecret: p.ClientSecret.Reveal()}
	for k, v := range p.Fields {
		w.Fields[k] = v.Reveal()
	}
	pt, err := json.Marshal(w)
	if err != nil {
		return nil, 0, fmt.Errorf("credential: encode: %w", err)
	}
	ct, err := s.C.Encrypt(pt, ad)
	clear(pt)
	if err != nil {
		return nil, 0, err
	}
	return ct, vault.KeyIDOf(ct), nil
}

// Open decrypts a stored credential.
func (s Sealer) Open(c store.Credential) (Payload, error) {
	p, err := s.OpenAD(c.Ciphertext, vault.CredentialAD(c.OrganizationID, c.ID))
	if err != nil {
		return Payload{}, fmt.Errorf("credential %s: %w", c.ID, err)
	}
	return p, nil
}

// OpenAD decrypts a payload sealed with SealAD.
func (s Sealer) OpenAD(ciphertext, ad []byte) (Payload, error) {
	pt, err := s.C.Decrypt(ciphertext, ad)
	if err != nil {
		return Payload{}, err
	}
	defer clear(pt)
	var w wire
	if err := json.Unmarshal(pt, &w); err != nil {
		return Payload{}, errors.New("decode: payload is corrupt")
	}
	p := Payload{Fields: make(map[string]vault.Secret, len(w.Fields)), TokenType: w.TokenType, Scope: w.Scope,
		ClientID: w.ClientID, ClientSecret: vault.NewSecret(w.ClientSecret)}
	for k, v := range w.Fields {
		p.Fields[k] = vault.NewSecret(v)
	}
	return p, nil
}

// ADFor is the associated data of a row of one of the sealed tables.
func ADFor(table, orgID, id string) []byte {
	switch table {
	case store.TableOAuthApps:
		return vault.AD("oauth_app", orgID, id)
	case store.TableOAuthSessions:
		return vault.AD("oauth_session", orgID, id)
	case store.TableAuthProviders:
		return vault.AD("auth_provider", orgID, id)
	case store.TableSigningKeys:
		return vault.AD("signing_key", orgID, id)
	case store.TableOAuthSecrets:
		return vault.AD("oauth_secret", orgID, id)
	case store.TableSyncJobs:
		return vault.AD("sync_job", orgID, id)
	case store.TableWebhooks:
		return vault.AD("webhook", orgID, id)
	default:
		return vault.CredentialAD(orgID, id)
	}
}

// RotationStore is what re-encryption needs from storage.
type RotationStore interface {
	ListSealed(ctx context.Context, table, afterID string, limit int) ([]store.SealedRow, error)
	ReplaceSealed(ctx context.Context, table, id string, old, new []byte, keyID uint32) (bool, error)
}

// RotationResult counts what Reencrypt did.
type RotationResult struct {
	Scanned     int `json:"scanned"`
	Reencrypted int `json:"reencrypted"`
	// Raced counts rows changed by someone else between read and write; they
	// were written by a current writer, with the current primary key.
	Raced int `json:"raced"`
}

// Reencrypt seals every ciphertext (credentials, OAuth app secrets, pending
// OAuth sessions) not yet under the primary key again with it, in batches.
// Each row is swapped only if unchanged since it was read, so it never
// overwrites a concurrent update (a token refresh), and readers keep working
// throughout: both the old and the new ciphertext open.
//
// A row that raced is read again in a further pass (at most maxPasses), since
// its writer may not have loaded the new primary key yet.
func Reencrypt(ctx context.Context, st RotationStore, v *vault.Vault, batch int) (RotationResult, error) {
	var total RotationResult
	for pass := 0; pass < maxPasses; pass++ {
		var res RotationResult
		for _, table := range store.SealedTables {
			r, err := reencryptTable(ctx, st, v, table, batch)
			res.Scanned += r.Scanned
			res.Reencrypted += r.Reencrypted
			res.Raced += r.Raced
			if err != nil {
				return total, err
			}
		}
		total.Scanned += res.Scanned
		total.Reencrypted += res.Reencrypted
		total.Raced += res.Raced
		if res.Raced == 0 {
			return total, nil
		}
	}
	return total, nil
}

const maxPasses = 5

func reencryptTable(ctx context.Context, st RotationStore, v *vault.Vault, table string, batch int) (RotationResult, error) {
	var res RotationResult
	primary := v.PrimaryKeyID()
	after := ""
	for {
		page, err := st.ListSealed(ctx, table, after, batch)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		for _, c := range page {
			res.Scanned++
			after = c.ID
			if vault.KeyIDOf(c.Ciphertext) == primary {
				continue
			}
			ad := ADFor(table, c.OrganizationID, c.ID)
			pt, err := v.Decrypt(c.Ciphertext, ad)
			if err != nil {
				return res, fmt.Errorf("%s %s: %w", table, c.ID, err)
			}
			ct, err := v.Encrypt(pt, ad)
			clear(pt)
			if err != nil {
				return res, err
			}
			ok, err := st.ReplaceSealed(ctx, table, c.ID, c.Ciphertext, ct, vault.KeyIDOf(ct))
			if err != nil {
				return res, err
			}
			if ok {
				res.Reencrypted++
			} else {
				res.Raced++
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
}
