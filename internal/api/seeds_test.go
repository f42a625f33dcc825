package api_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valetkey/valetkey/internal/testkit"
)

// runShell runs a seed's curl command with the Airbyte host replaced by
// the test server's, and decodes its JSON output.
func runShell(t *testing.T, s *testkit.Server, cmd string) map[string]any {
	t.Helper()
	cmd = strings.ReplaceAll(cmd, "https://api.airbyte.ai", s.URL)
	out, err := exec.Command("bash", "-c", cmd+" --silent --show-error").Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: not JSON: %s", cmd, out)
	}
	return m
}

// TestSeedSnippetsWithOnlyTheHostChanged runs the seeds' curl commands and
// seed 003's Node.js snippets verbatim but for the host.
func TestSeedSnippetsWithOnlyTheHostChanged(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	node, nodeErr := exec.LookPath("node")
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	op := operatorToken(t, s)
	o, _ := s.App.Tenants.Organization(t.Context(), "default")

	// Seed 003, Part 1 (connector type testoauth stands for hubspot: its endpoints are the test server's).
	cred := runShell(t, s, `curl -X PUT https://api.airbyte.ai/api/v1/oauth/credentials \
  -H 'Authorization: Bearer `+op+`' \
  -H 'Content-Type: application/json' \
  -d '{
    "connector_type": "testoauth",
    "configuration": {
      "client_id": "valetkey-client",
      "client_secret": "valetkey-secret"
    }
  }'`)
	if cred["scope_type"] != "organization" {
		t.Fatalf("credentials = %v", cred)
	}
	// Seed 003, Part 2 (curl).
	init := runShell(t, s, `curl -X POST https://api.airbyte.ai/api/v1/integrations/connectors/oauth/initiate \
  -H 'Authorization: Bearer `+op+`' \
  -H 'Content-Type: application/json' \
  -d '{
    "external_user_id": "user_12345",
    "connector_type": "testoauth",
    "redirect_url": "https://yourapp.com/oauth/callback"
  }'`)
	if !strings.HasPrefix(init["consent_url"].(string), e.AS.AuthorizeURL()) {
		t.Fatalf("initiate = %v", init)
	}

	consentURL := init["consent_url"].(string)
	if nodeErr == nil {
		// Seed 003, Part 2 (Node.js): the same request with fetch.
		script := `const token = process.env.TOKEN; const userId = 'user_12345';
const response = await fetch('https://api.airbyte.ai/api/v1/integrations/connectors/oauth/initiate', {
method: 'POST',
headers: {
'Authorization': ` + "`Bearer ${token}`" + `,
'Content-Type': 'application/json'
},
body: JSON.stringify({
external_user_id: userId,
connector_type: 'testoauth',
redirect_url: 'https://yourapp.com/oauth/callback'
})
});
const { consent_url } = await response.json();
console.log(consent_url);`
		script = strings.ReplaceAll(script, "https://api.airbyte.ai", s.URL)
		f := filepath.Join(t.TempDir(), "initiate.mjs")
		if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, f)
		cmd.Env = append(os.Environ(), "TOKEN="+op)
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), e.AS.AuthorizeURL()) {
			t.Fatalf("node initiate: %v %s", err, out)
		}
		consentURL = strings.TrimSpace(string(out))
	} else if os.Getenv("CI") != "" {
		t.Fatal("node is required in CI for the seed 003 Node.js snippet")
	}

	// The user consents; Valetkey's callback sends them to the redirect URL with secret_id.
	resp := e.Get(t, e.AS.Consent(t, e.Browser, consentURL, true).String())
	back, _ := url.Parse(resp.Header.Get("Location"))
	secretID := back.Query().Get("secret_id")
	if back.String() != "https://yourapp.com/oauth/callback?secret_id="+secretID || secretID == "" {
		t.Fatalf("callback redirect = %s", back)
	}
	// Seed 003, Part 3 (curl shape of the create call).
	conn := runShell(t, s, `curl -X POST https://api.airbyte.ai/api/v1/integrations/connectors \
  -H 'Authorization: Bearer `+op+`' \
  -H 'Content-Type: application/json' \
  -d '{"external_user_id": "user_12345", "connector_type": "testoauth", "server_side_oauth_secret_id": "`+secretID+`"}'`)
	if conn["source_template"].(map[string]any)["connector_type"] != "testoauth" {
		t.Fatalf("connector = %v", conn)
	}

	// Seed 004: widget token with the seed's exact curl.
	wt := runShell(t, s, `curl --location 'https://api.airbyte.ai/api/v1/embedded/widget_token' \
--header 'Content-Type: application/json'\
 -H 'Authorization: Bearer `+op+`' \
--header 'Accept: application/json' \
--data '{
"externalUserId": "user_12345",
"organizationId": "`+o.ID+`",
"allowedOrigin": "https://api.airbyte.ai"
}'`)
	if wt["token"] == nil {
		t.Fatalf("widget token = %v", wt)
	}
}
