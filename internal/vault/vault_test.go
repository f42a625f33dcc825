package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretRedactsEverywhere(t *testing.T) {
	const value = "tok_very_secret_value"
	s := NewSecret(value)
	type holder struct {
		Token Secret
		Ptr   *Secret
	}
	h := holder{Token: s, Ptr: &s}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("msg", "token", s, "holder", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("msg", "token", s)
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": s.String(), "GoString": s.GoString(), "%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", h),
		"%#v": fmt.Sprintf("%#v", h), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s), "%x": fmt.Sprintf("%x", s),
		"%d": fmt.Sprintf("%d", s), "json": string(j), "slog": logs.String(), "error": fmt.Errorf("wrap: %v", s).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("%s leaks the value: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s does not say it redacted: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}
	var back Secret
	if err := json.Unmarshal([]byte(`"abc"`), &back); err != nil || back.Reveal() != "abc" {
		t.Fatalf("unmarshal = %v, %v", back.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`12`), &back); err == nil {
		t.Fatal("a number decoded as a secret")
	}
}

func TestPanicWithSecretRedacts(t *testing.T) {
	s := NewSecret("panic_value_123")
	defer func() {
		v := recover()
		if strings.Contains(fmt.Sprint(v), "panic_value_123") {
			t.Fatalf("panic value shows the secret: %v", v)
		}
	}()
	panic(fmt.Sprintf("bad token %v", s))
}

func TestOpenGeneratesPrivateKeyset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keyset.json")
	v, created, err := Open(path)
	if err != nil || !created {
		t.Fatalf("open = %v, created %v", err, created)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("keyset mode = %v", st.Mode().Perm())
	}
	ct, err := v.Encrypt([]byte("hello"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	// Reopening the same file decrypts what the first instance sealed.
	v2, created, err := Open(path)
	if err != nil || created {
		t.Fatalf("reopen = %v, created %v", err, created)
	}
	if pt, err := v2.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("decrypt = %q, %v", pt, err)
	}
	if KeyIDOf(ct) != v.PrimaryKeyID() {
		t.Fatalf("ciphertext key id %d, primary %d", KeyIDOf(ct), v.PrimaryKeyID())
	}
}

func TestAssociatedDataBindsCiphertext(t *testing.T) {
	v, _, err := Open(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := v.Encrypt([]byte("token"), CredentialAD("org-a", "cred-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{CredentialAD("org-a", "cred-2"), CredentialAD("org-b", "cred-1"), nil} {
		if _, err := v.Decrypt(ct, ad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("decrypt with ad %q = %v, want ErrDecrypt", ad, err)
		}
	}
	ct[len(ct)-1] ^= 1
	if _, err := v.Decrypt(ct, CredentialAD("org-a", "cred-1")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered ciphertext: %v", err)
	}
}

func TestRotateKeepsOldKeysAndOtherInstancesFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	server, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := server.Encrypt([]byte("v"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	operator, _, err := Open(path) // another process: valetkey keys rotate
	if err != nil {
		t.Fatal(err)
	}
	newID, err := operator.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newID == KeyIDOf(old) || operator.PrimaryKeyID() != newID {
		t.Fatalf("rotate: new %d old %d primary %d", newID, KeyIDOf(old), operator.PrimaryKeyID())
	}
	fresh, err := operator.Encrypt([]byte("v"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	// The server, still on the old keyset in memory, opens the new ciphertext
	// by reloading the file.
	if pt, err := server.Decrypt(fresh, []byte("ad")); err != nil || string(pt) != "v" {
		t.Fatalf("server decrypt of new ciphertext = %q, %v", pt, err)
	}
	if server.PrimaryKeyID() != newID {
		t.Fatalf("server primary = %d after reload, want %d", server.PrimaryKeyID(), newID)
	}
	if _, err := operator.Decrypt(old, []byte("ad")); err != nil {
		t.Fatalf("old ciphertext no longer opens: %v", err)
	}
	// Prune keeps keys in use and the primary.
	removed, err := operator.Prune(func(id uint32) bool { return id == KeyIDOf(old) })
	if err != nil || len(removed) != 0 {
		t.Fatalf("prune in use = %v, %v", removed, err)
	}
	removed, err = operator.Prune(func(uint32) bool { return false })
	if err != nil || len(removed) != 1 || removed[0] != KeyIDOf(old) {
		t.Fatalf("prune = %v, %v", removed, err)
	}
	if _, err := operator.Decrypt(old, []byte("ad")); err == nil {
		t.Fatal("pruned key still opens its ciphertext")
	}
}
