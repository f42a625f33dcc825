package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/testkit"
)

// run executes the CLI in-process with a fresh environment for dir.
func run(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(append(args, "--data-dir", dir))
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func decodeOne(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value: %s", stdout)
	}
}

func TestServeBootstrapsAndPrintsKeyOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VALETKEY_ADDR", "127.0.0.1:0")
	for attempt := 0; attempt < 2; attempt++ {
		var out, errb testkit.SyncBuffer
		root := newRoot(&out, &errb)
		root.SetArgs([]string{"serve", "--data-dir", dir})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		addrRE := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
		var addr string
		for deadline := time.Now().Add(20 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := addrRE.FindStringSubmatch(errb.String()); m != nil {
				addr = m[1]
			}
		}
		if addr == "" {
			cancel()
			t.Fatalf("server did not log its address: %s", errb.String())
		}
		keyRE := regexp.MustCompile(`(?m)^bootstrap api key: (vk_[0-9A-Za-z]{43})$`)
		keys := keyRE.FindAllStringSubmatch(errb.String(), -1)
		if attempt == 0 {
			if len(keys) != 1 {
				cancel()
				t.Fatalf("first start printed %d keys: %s", len(keys), errb.String())
			}
			if !strings.Contains(errb.String(), "GENERATED A NEW LOCAL KEYSET") {
				t.Error("no warning about the generated development keyset")
			}
			req, _ := http.NewRequest("GET", "http://"+addr+"/collections", nil)
			req.Header.Set("X-API-Key", keys[0][1])
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				cancel()
				t.Fatalf("bootstrap key rejected: %v %v", resp, err)
			}
			resp.Body.Close()
			// The key appears in no log line, only on its own line.
			for _, line := range strings.Split(errb.String(), "\n") {
				if strings.Contains(line, keys[0][1]) && !strings.HasPrefix(line, "bootstrap api key: ") {
					t.Errorf("key in a log line: %s", line)
				}
			}
		} else if len(keys) != 0 || strings.Contains(errb.String(), "GENERATED A NEW LOCAL KEYSET") {
			t.Errorf("second start printed a key or generated a keyset again: %s", errb.String())
		}
		if out.String() != "" {
			t.Errorf("serve wrote to stdout: %q", out.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
}

func TestCommandsPrintOneJSONObject(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VALETKEY_BOOTSTRAP_API_KEY", "vk_bootstrap_for_cli_tests_0123456789abcdef")

	stdout, _, err := run(t, dir, "migrate", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decodeOne(t, stdout, &m)

	stdout, _, err = run(t, dir, "org", "create", "acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var org struct{ ID, Name string }
	decodeOne(t, stdout, &org)
	if org.Name != "acme" || org.ID == "" {
		t.Fatalf("org = %+v", org)
	}
	if _, _, err := run(t, dir, "org", "create", "acme", "--json"); err == nil {
		t.Fatal("duplicate organization accepted")
	}

	stdout, stderr, err := run(t, dir, "apikey", "create", "--org", "acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		ID             string `json:"id"`
		OrganizationID string `json:"organization_id"`
		Key            string `json:"key"`
	}
	decodeOne(t, stdout, &key)
	if key.OrganizationID != org.ID || !strings.HasPrefix(key.Key, "vk_") || len(key.Key) != 46 {
		t.Fatalf("key = %+v", key)
	}
	if strings.Contains(stderr, key.Key) {
		t.Fatal("the new key was logged")
	}

	stdout, _, err = run(t, dir, "apikey", "list", "--org", org.ID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []map[string]any
	decodeOne(t, stdout, &keys)
	if len(keys) != 1 || keys[0]["id"] != key.ID || strings.Contains(stdout, key.Key) {
		t.Fatalf("list = %s", stdout)
	}
	if _, _, err := run(t, dir, "apikey", "revoke", key.ID, "--org", "acme", "--json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, dir, "apikey", "revoke", key.ID, "--org", "acme"); err == nil {
		t.Fatal("revoking twice succeeded")
	}

	stdout, _, err = run(t, dir, "keys", "rotate", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rot struct {
		PrimaryKeyID uint32 `json:"primary_key_id"`
	}
	decodeOne(t, stdout, &rot)
	stdout, _, err = run(t, dir, "keys", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ks []struct {
		KeyID   uint32 `json:"key_id"`
		Primary bool   `json:"primary"`
	}
	decodeOne(t, stdout, &ks)
	if len(ks) != 2 {
		t.Fatalf("keys after rotate = %+v", ks)
	}
	stdout, _, err = run(t, dir, "keys", "prune", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var pr struct{ Removed []uint32 }
	decodeOne(t, stdout, &pr)
	if len(pr.Removed) != 1 || pr.Removed[0] == rot.PrimaryKeyID {
		t.Fatalf("prune = %+v", pr)
	}
	if _, _, err = run(t, dir, "keys", "rotate-signing", "--json"); err != nil {
		t.Fatal(err)
	}

	// Each key operation is in every organization's audit log, by the
	// operator who ran it.
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "valetkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for action, target := range map[string]string{"keyset.rotate": strconv.FormatUint(uint64(rot.PrimaryKeyID), 10),
		"keyset.prune": strconv.FormatUint(uint64(pr.Removed[0]), 10), "signing_key.rotate": ""} {
		evs, err := st.ListAudit(context.Background(), org.ID, store.AuditFilter{Action: action})
		if err != nil || len(evs) != 1 {
			t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
		}
		if e := evs[0]; !strings.HasPrefix(e.Actor, "operator:") || (target != "" && e.TargetID != target) || e.TargetID == "" {
			t.Fatalf("audit %s: %+v", action, e)
		}
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VALETKEY_DATABASE_URL", "mysql://nope")
	if _, _, err := run(t, dir, "migrate"); err == nil {
		t.Fatal("env database URL was not used")
	}
	if _, _, err := run(t, dir, "migrate", "--database-url", "sqlite:"+filepath.Join(dir, "flag.db")); err != nil {
		t.Fatalf("flag did not win over env: %v", err)
	}
}

func TestAppCreatePrintsCredentialsOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VALETKEY_BOOTSTRAP_API_KEY", "vk_bootstrap_for_cli_tests_0123456789abcdef")
	if _, _, err := run(t, dir, "migrate"); err != nil {
		t.Fatal(err)
	}
	// serve bootstraps the default organization; the CLI does it via org create here.
	if _, _, err := run(t, dir, "org", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, dir, "app", "create", "--org", "acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	decodeOne(t, stdout, &a)
	if !strings.HasPrefix(a.ClientID, "vkc_") || !strings.HasPrefix(a.ClientSecret, "vks_") || strings.Contains(stderr, a.ClientSecret) {
		t.Fatalf("app = %+v", a)
	}
	stdout, _, err = run(t, dir, "keys", "rotate-signing", "--json")
	if err != nil || !strings.Contains(stdout, `"kid"`) {
		t.Fatalf("rotate-signing = %q, %v", stdout, err)
	}
}

func TestSourcesListsCatalogWithAuthMethods(t *testing.T) {
	dir := t.TempDir()
	stdout, _, err := run(t, dir, "sources", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ShortName string `json:"short_name"`
		Auth      []struct {
			Type      string   `json:"type"`
			OAuthType string   `json:"oauth_type"`
			Fields    []string `json:"fields"`
		} `json:"auth"`
	}
	decodeOne(t, stdout, &list)
	if len(list) < 150 {
		t.Fatalf("%d sources listed, want at least 150", len(list))
	}
	by := map[string]int{}
	for i, s := range list {
		by[s.ShortName] = i
		if len(s.Auth) == 0 {
			t.Errorf("%s lists no auth method", s.ShortName)
		}
	}
	stripe := list[by["stripe"]]
	if stripe.Auth[0].Type != "api_key" || stripe.Auth[0].Fields[0] != "api_key" || stripe.Auth[1].Type != "oauth2" || stripe.Auth[1].OAuthType != "with_refresh" {
		t.Fatalf("stripe = %+v", stripe)
	}
	human, _, err := run(t, dir, "sources")
	if err != nil || !strings.Contains(human, "hubspot") || !strings.Contains(human, "oauth2 (") {
		t.Fatalf("human output: %v\n%s", err, human)
	}
}
