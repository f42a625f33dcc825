package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// OAuthSource describes a catalog entry pointing at a test authorization server.
type OAuthSource struct {
	ShortName                         string
	AuthorizeURL, TokenURL, RevokeURL string
	OAuthType                         string // default with_rotating_refresh
	ClientAuth                        string // default header
	PKCE                              bool
	Scopes                            []string
	RefreshMargin                     string // default 5m
	// APIBaseURL, when set, adds an api block with one entity "me" whose
	// get action calls GET {APIBaseURL}/api/me (the test server's resource).
	APIBaseURL string
}

// WriteCatalogDir writes the sources as YAML files into a fresh directory
// for VALETKEY_CATALOG_DIR and returns it.
func WriteCatalogDir(t testing.TB, sources ...OAuthSource) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range sources {
		if s.OAuthType == "" {
			s.OAuthType = "with_rotating_refresh"
		}
		if s.ClientAuth == "" {
			s.ClientAuth = "header"
		}
		if s.RefreshMargin == "" {
			s.RefreshMargin = "5m"
		}
		yaml := fmt.Sprintf(`short_name: %s
name: Test %s
description: A source backed by the test authorization server.
labels: [test]
auth:
  - type: oauth2
    authorize_url: %q
    token_url: %q
    revoke_url: %q
    scopes: %s
    pkce: %v
    oauth_type: %s
    client_auth: %s
    refresh_margin: %s
`, s.ShortName, s.ShortName, s.AuthorizeURL, s.TokenURL, s.RevokeURL, scopesYAML(s.Scopes), s.PKCE, s.OAuthType, s.ClientAuth, s.RefreshMargin)
		if s.APIBaseURL != "" {
			yaml += fmt.Sprintf("api:\n  base_url: %q\n  auth_injection: bearer\n  entities:\n    me:\n      actions:\n        get:\n          method: GET\n          path: /api/me\n          records: $\n", s.APIBaseURL)
		}
		if err := os.WriteFile(filepath.Join(dir, s.ShortName+".yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func scopesYAML(scopes []string) string {
	out := "["
	for i, s := range scopes {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", s)
	}
	return out + "]"
}
