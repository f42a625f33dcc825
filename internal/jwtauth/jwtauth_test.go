package jwtauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/vault"
)

// clock is a test clock (testkit imports app, which imports this package).
type clock struct{ offset time.Duration }

func (c *clock) Now() time.Time          { return time.Now().Add(c.offset) }
func (c *clock) Advance(d time.Duration) { c.offset += d }

func newIssuer(t testing.TB, iss string, clock *clock) *Issuer {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "vk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	v, _, err := vault.Open(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	return New(st, v, func() string { return iss }, clock.Now)
}

func scoped() Claims {
	return Claims{Type: TypeEmbedded, Organization: "org-1", Roles: []string{RoleEndUser}, Act: &Actor{Sub: "user-1"},
		WorkspaceScope: &WorkspaceScope{WorkspaceID: "ws-1"}, RegisteredClaims: jwt.RegisteredClaims{Subject: "app-1"}}
}

func TestSignVerifyAndAttacks(t *testing.T) {
	ctx := context.Background()
	clock := &clock{}
	iss := newIssuer(t, "https://vk.example.com", clock)
	tok, exp, err := iss.Sign(ctx, scoped(), 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(ctx, tok)
	if err != nil || c.WorkspaceScope.WorkspaceID != "ws-1" || c.Act.Sub != "user-1" || c.ID == "" || !c.ExpiresAt.Time.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("verify = %+v, %v", c, err)
	}
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(header), `"alg":"EdDSA"`) || !strings.Contains(string(header), `"kid"`) {
		t.Fatalf("header = %s", header)
	}
	jwks, err := iss.JWKS(ctx)
	if err != nil || len(jwks) != 1 {
		t.Fatalf("jwks = %v, %v", jwks, err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(jwks[0].X)

	other := newIssuer(t, "https://vk.example.com", clock)
	foreign, _, _ := other.Sign(ctx, scoped(), time.Minute)
	wrongIss := newIssuer(t, "https://evil.example.com", clock)
	_, _, _ = wrongIss.Sign(ctx, scoped(), time.Minute)

	claimsJSON := func(c Claims) string {
		t := jwt.NewWithClaims(jwt.SigningMethodNone, c)
		s, _ := t.SigningString()
		return strings.Split(s, ".")[1]
	}
	valid := *c
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+jwks[0].Kid+`"}`)) + "." + claimsJSON(valid) + "."
	hsTok := jwt.NewWithClaims(jwt.SigningMethodHS256, valid)
	hsTok.Header["kid"] = jwks[0].Kid
	hs, _ := hsTok.SignedString(pub)
	wrongKid := jwt.NewWithClaims(jwt.SigningMethodEdDSA, valid)
	wrongKid.Header["kid"] = "not-a-key"
	wk, _ := wrongKid.SignedString(iss.signing.priv)
	tampered := parts[0] + "." + claimsJSON(func() Claims { x := valid; x.WorkspaceScope = &WorkspaceScope{WorkspaceID: "ws-2"}; return x }()) + "." + parts[2]
	badAud := valid
	badAud.Audience = jwt.ClaimStrings{"someone-else"}
	ba := jwt.NewWithClaims(jwt.SigningMethodEdDSA, badAud)
	ba.Header["kid"] = jwks[0].Kid
	badAudTok, _ := ba.SignedString(iss.signing.priv)
	badIss := valid
	badIss.Issuer = "https://evil.example.com"
	bi := jwt.NewWithClaims(jwt.SigningMethodEdDSA, badIss)
	bi.Header["kid"] = jwks[0].Kid
	badIssTok, _ := bi.SignedString(iss.signing.priv)
	noWS := valid
	noWS.WorkspaceScope = nil
	nw := jwt.NewWithClaims(jwt.SigningMethodEdDSA, noWS)
	nw.Header["kid"] = jwks[0].Kid
	noWSTok, _ := nw.SignedString(iss.signing.priv)

	attacks := map[string]string{
		"alg none":                        noneTok,
		"HS256 keyed with the public key": hs,
		"unknown kid":                     wk,
		"tampered claims":                 tampered,
		"wrong audience":                  badAudTok,
		"wrong issuer":                    badIssTok,
		"another server's key":            foreign,
		"scoped without workspace":        noWSTok,
		"garbage":                         "not.a.jwt",
		"empty":                           "",
	}
	for name, tok := range attacks {
		if _, err := iss.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
	clock.Advance(21 * time.Minute)
	if _, err := iss.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("expired token accepted: %v", err)
	}
}

func TestRotateKeepsOldTokensVerifying(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, "https://vk.example.com", &clock{})
	old, _, _ := iss.Sign(ctx, scoped(), time.Minute)
	kid, err := iss.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := iss.Sign(ctx, scoped(), time.Minute)
	for _, tok := range []string{old, fresh} {
		if _, err := iss.Verify(ctx, tok); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(fresh, ".")[0])
	if !strings.Contains(string(h), kid) {
		t.Fatal("new tokens are not signed with the new key")
	}
	if jwks, _ := iss.JWKS(ctx); len(jwks) != 2 {
		t.Fatalf("jwks after rotation has %d keys", len(jwks))
	}
}

func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	iss := newIssuer(f, "https://vk.example.com", &clock{})
	tok, _, err := iss.Sign(ctx, scoped(), time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(ctx, s)
		if err == nil && s != tok {
			// Only a token this issuer signed may verify.
			if c.WorkspaceScope == nil || c.Organization != "org-1" {
				t.Fatalf("verified a foreign token: %+v", c)
			}
		}
	})
}

// downStore is a store whose database has gone away.
type downStore struct{ Store }

func (downStore) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	return nil, fmt.Errorf("list signing keys: %w", store.ErrUnavailable)
}

// TestVerifyWhileTheDatabaseIsDown: a token signed by a key this replica has
// not loaded yet cannot be judged while the keys cannot be read; that is
// the database's outage, not an invalid token (the caller answers 503, not
// 401). A key already loaded keeps verifying.
func TestVerifyWhileTheDatabaseIsDown(t *testing.T) {
	ctx := context.Background()
	c := &clock{}
	signer := newIssuer(t, "https://vk.example.com", c)
	tok, _, err := signer.Sign(ctx, scoped(), 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Verify(ctx, tok); err != nil { // loaded
		t.Fatal(err)
	}
	signer.st = downStore{signer.st}
	if _, err := signer.Verify(ctx, tok); err != nil {
		t.Fatalf("a loaded key stopped verifying: %v", err)
	}
	fresh := New(downStore{signer.st}, signer.sealer.C, signer.issuer, c.Now) // another replica, nothing loaded
	_, err = fresh.Verify(ctx, tok)
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("verify with the database down = %v; want the outage, not ErrInvalid", err)
	}
}
