// Package jwtauth issues and verifies Valetkey's JWTs (operator tokens and
// workspace-scoped end-user tokens) with Ed25519 keys whose private halves
// are sealed in the vault, publishes the public keys as a JWKS, and rotates
// them.
package jwtauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Token types (the typ claim).
const (
	TypeOperator = "io.valetkey.auth.operator_v1"
	TypeEmbedded = "io.valetkey.auth.embedded_v1"
	// Audience is the aud of every token Valetkey issues.
	Audience = "valetkey-api"
	// RoleEndUser is the role of workspace-scoped tokens.
	RoleEndUser = "EMBEDDED_END_USER"
)

// Actor is the act claim: on whose behalf a scoped token acts.
type Actor struct {
	Sub string `json:"sub"`
}

// WorkspaceScope limits a token to one workspace.
type WorkspaceScope struct {
	WorkspaceID string `json:"workspaceId"`
}

// ConnectScope narrows a scoped token further: the Connect session of the
// native API names the collection new connections go to, the sources the
// end user may pick from, and where to send the browser when done.
type ConnectScope struct {
	Collection     string   `json:"collection,omitempty"`
	AllowedSources []string `json:"allowed_sources,omitempty"`
	RedirectURL    string   `json:"redirect_url,omitempty"`
}

// Claims are Valetkey's JWT claims.
type Claims struct {
	jwt.RegisteredClaims
	Type           string          `json:"typ"`
	Organization   string          `json:"org"`
	Roles          []string        `json:"roles,omitempty"`
	Act            *Actor          `json:"act,omitempty"`
	WorkspaceScope *WorkspaceScope `json:"io.valetkey.auth.workspace_scope,omitempty"`
	AllowedOrigin  string          `json:"allowed_origin,omitempty"`
	Connect        *ConnectScope   `json:"io.valetkey.connect,omitempty"`
}

// Store is what the issuer needs from storage.
type Store interface {
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
}

// Issuer signs and verifies tokens.
type Issuer struct {
	st     Store
	sealer credential.Sealer
	issuer func() string
	now    func() time.Time

	mu      sync.Mutex
	signing *key
	byKid   map[string]ed25519.PublicKey
}

type key struct {
	kid  string
	priv ed25519.PrivateKey
}

// New returns an Issuer; issuer gives the iss (the public URL).
func New(st Store, c credential.Cipher, issuer func() string, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{st: st, sealer: credential.Sealer{C: c}, issuer: issuer, now: now}
}

// ErrInvalid is every verification failure; the detail is for logs only.
var ErrInvalid = errors.New("invalid token")

func (i *Issuer) load(ctx context.Context) error {
	keys, err := i.st.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	byKid := map[string]ed25519.PublicKey{}
	var signing *key
	for _, k := range keys {
		byKid[k.ID] = ed25519.PublicKey(k.PublicKey)
		if signing == nil && k.RetiredAt == nil {
			p, err := i.sealer.OpenAD(k.Ciphertext, credential.ADFor(store.TableSigningKeys, "", k.ID))
			if err != nil {
				return fmt.Errorf("signing key %s: %w", k.ID, err)
			}
			seed, err := base64.RawStdEncoding.DecodeString(p.Fields["seed"].Reveal())
			if err != nil || len(seed) != ed25519.SeedSize {
				return fmt.Errorf("signing key %s: corrupt", k.ID)
			}
			signing = &key{kid: k.ID, priv: ed25519.NewKeyFromSeed(seed)}
		}
	}
	i.mu.Lock()
	i.signing, i.byKid = signing, byKid
	i.mu.Unlock()
	return nil
}

// Rotate creates a new signing key and retires the previous ones, which
// keep verifying the tokens they signed until those expire.
func (i *Issuer) Rotate(ctx context.Context) (string, error) {
	keys, err := i.st.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	kid, err := i.create(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.RetiredAt == nil {
			if err := i.st.RetireSigningKey(ctx, k.ID, i.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
		}
	}
	return kid, i.load(ctx)
}

func (i *Issuer) create(ctx context.Context) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	kid := uuid.Must(uuid.NewV7()).String()
	ct, keyID, err := i.sealer.SealAD(credential.ADFor(store.TableSigningKeys, "", kid),
		credential.Payload{Fields: map[string]vault.Secret{"seed": vault.NewSecret(base64.RawStdEncoding.EncodeToString(priv.Seed()))}})
	if err != nil {
		return "", err
	}
	return kid, i.st.CreateSigningKey(ctx, store.SigningKey{ID: kid, Ciphertext: ct, KeyID: keyID, PublicKey: pub, CreatedAt: i.now().UTC()})
}

func (i *Issuer) signingKey(ctx context.Context) (*key, error) {
	i.mu.Lock()
	k := i.signing
	i.mu.Unlock()
	if k != nil {
		return k, nil
	}
	if err := i.load(ctx); err != nil {
		return nil, err
	}
	i.mu.Lock()
	k = i.signing
	i.mu.Unlock()
	if k != nil {
		return k, nil
	}
	if _, err := i.create(ctx); err != nil {
		return nil, err
	}
	if err := i.load(ctx); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signing, nil
}

// Sign completes and signs claims valid for ttl.
func (i *Issuer) Sign(ctx context.Context, c Claims, ttl time.Duration) (string, time.Time, error) {
	k, err := i.signingKey(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now()
	exp := now.Add(ttl)
	c.Issuer, c.Audience = i.issuer(), jwt.ClaimStrings{Audience}
	c.IssuedAt, c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(-time.Second)), jwt.NewNumericDate(exp)
	c.ID = uuid.NewString()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.priv)
	return s, exp, err
}

// Verify checks signature (EdDSA only, by kid), issuer, audience and expiry.
func (i *Issuer) Verify(ctx context.Context, token string) (*Claims, error) {
	var c Claims
	var loadErr error // the keys could not be read: the token was not judged
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		i.mu.Lock()
		pub, ok := i.byKid[kid]
		i.mu.Unlock()
		if !ok {
			if err := i.load(ctx); err != nil {
				loadErr = err
				return nil, err
			}
			i.mu.Lock()
			pub, ok = i.byKid[kid]
			i.mu.Unlock()
		}
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(i.issuer()), jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(i.now))
	if loadErr != nil {
		return nil, fmt.Errorf("verify: signing keys: %w", loadErr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Organization == "" || (c.Type != TypeOperator && c.Type != TypeEmbedded) {
		return nil, fmt.Errorf("%w: missing org or unknown typ", ErrInvalid)
	}
	if c.Type == TypeEmbedded && (c.WorkspaceScope == nil || c.WorkspaceScope.WorkspaceID == "") {
		return nil, fmt.Errorf("%w: scoped token without workspace", ErrInvalid)
	}
	return &c, nil
}

// JWK is one public key in a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns every public key (current and retired).
func (i *Issuer) JWKS(ctx context.Context) ([]JWK, error) {
	if _, err := i.signingKey(ctx); err != nil {
		return nil, err
	}
	keys, err := i.st.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := []JWK{}
	for _, k := range keys {
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.PublicKey), Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	return out, nil
}
