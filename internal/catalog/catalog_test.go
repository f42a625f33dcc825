package catalog

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// requiredSources must always be in the built-in catalog.
var requiredSources = []string{
	"google_drive", "google_calendar", "gmail", "onedrive", "outlook_mail",
	"outlook_calendar", "sharepoint", "asana", "slack", "notion", "hubspot",
	"github", "salesforce", "intercom", "stripe", "jira", "confluence", "linear",
	"dropbox", "box", "zendesk", "airtable", "clickup", "monday", "trello",
	"todoist", "gitlab",
}

const minBuiltinSources = 150

var (
	labelRE         = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	injectionRE     = regexp.MustCompile(`^(bearer|basic|header:[A-Za-z0-9-]+|query:[A-Za-z0-9_.-]+)$`)
	fieldNameRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	validOAuthTypes = []string{OAuthAccessOnly, OAuthWithRefresh, OAuthWithRotatingRefresh}
)

func loadBuiltin(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	return c
}

func mustGet(t *testing.T, c *Catalog, name string) *Source {
	t.Helper()
	s, err := c.Get(name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return s
}

func TestBuiltinHasRequiredSources(t *testing.T) {
	c := loadBuiltin(t)
	for _, name := range requiredSources {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Get(name); err != nil {
				t.Errorf("required source %q missing: %v", name, err)
			}
		})
	}
	if n := len(c.List()); n < minBuiltinSources {
		t.Errorf("built-in catalog has %d sources, want at least %d", n, minBuiltinSources)
	}
	if !slices.IsSortedFunc(c.List(), func(a, b *Source) int { return strings.Compare(a.ShortName, b.ShortName) }) {
		t.Error("List() is not sorted by short name")
	}
}

func TestGetUnknown(t *testing.T) {
	c := loadBuiltin(t)
	if _, err := c.Get("no_such_source"); err == nil || !strings.Contains(err.Error(), "no_such_source") {
		t.Fatalf("Get(unknown) error = %v, want ErrNotFound naming the source", err)
	}
}

// TestBuiltinFileNames checks that every built-in file is named after its short_name.
func TestBuiltinFileNames(t *testing.T) {
	entries, err := fs.ReadDir(builtin, "sources")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(builtin, path.Join("sources", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(data)
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if want := s.ShortName + ".yaml"; e.Name() != want {
			t.Errorf("file %s holds short_name %q, want file name %s", e.Name(), s.ShortName, want)
		}
	}
}

// checkURL parses raw (placeholders replaced) and checks it is https. When
// hostOnly is set, placeholders may only appear in the host. Every placeholder
// must name a config field of the source.
func checkURL(t *testing.T, what, raw string, s *Source, hostOnly bool) {
	t.Helper()
	if raw == "" {
		t.Errorf("%s is empty", what)
		return
	}
	config := map[string]bool{}
	for _, f := range s.ConfigFields {
		config[f.Name] = true
	}
	var names []string
	sub := placeholderRE.ReplaceAllStringFunc(raw, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		names = append(names, name)
		return "ph-" + strings.ReplaceAll(name, "_", "-")
	})
	if strings.ContainsAny(sub, "{}") {
		t.Errorf("%s %q has an unbalanced placeholder", what, raw)
		return
	}
	u, err := url.Parse(sub)
	if err != nil {
		t.Errorf("%s %q does not parse: %v", what, raw, err)
		return
	}
	if u.Scheme != "https" || u.Host == "" {
		t.Errorf("%s %q must be an absolute https URL", what, raw)
	}
	if u.User != nil || u.Fragment != "" {
		t.Errorf("%s %q must not carry user info or a fragment", what, raw)
	}
	for _, name := range names {
		if !config[name] {
			t.Errorf("%s %q uses placeholder {%s} but the source has no config field %q", what, raw, name, name)
		}
		if hostOnly && !strings.Contains(u.Host, "ph-"+strings.ReplaceAll(name, "_", "-")) {
			t.Errorf("%s %q: placeholder {%s} is only allowed in the host", what, raw, name)
		}
	}
}

func TestBuiltinSourcesValid(t *testing.T) {
	c := loadBuiltin(t)
	for _, s := range c.List() {
		t.Run(s.ShortName, func(t *testing.T) {
			if !shortNameRE.MatchString(s.ShortName) {
				t.Errorf("short_name %q invalid", s.ShortName)
			}
			if s.Name == "" || s.Description == "" {
				t.Error("name and description are required")
			}
			if len(s.Labels) == 0 {
				t.Error("at least one label is required")
			}
			for _, l := range s.Labels {
				if !labelRE.MatchString(l) {
					t.Errorf("label %q must be lowercase words", l)
				}
			}
			if s.Docs == "" {
				t.Error("docs link is required")
			} else if u, err := url.Parse(s.Docs); err != nil || u.Scheme != "https" {
				t.Errorf("docs %q must be an https URL", s.Docs)
			}
			for _, slug := range []string{s.PipedreamSlug, s.ComposioSlug} {
				if slug != "" && (!shortNameRE.MatchString(slug) || slug == s.ShortName) {
					t.Errorf("slug %q must be [a-z0-9_]+ and differ from short_name", slug)
				}
			}

			configNames := map[string]bool{}
			for _, f := range s.ConfigFields {
				if configNames[f.Name] {
					t.Errorf("config field %q declared twice", f.Name)
				}
				configNames[f.Name] = true
				if !fieldNameRE.MatchString(f.Name) {
					t.Errorf("config field name %q invalid", f.Name)
				}
				if (f.Pattern == "") != (f.Regexp() == nil) {
					t.Errorf("config field %q: pattern %q not compiled", f.Name, f.Pattern)
				}
				if d, ok := f.Default.(string); ok && d != "" && f.Regexp() != nil && !f.Regexp().MatchString(d) {
					t.Errorf("config field %q: default %q does not match its pattern", f.Name, d)
				}
			}

			if s.API == nil {
				t.Fatal("api block is required")
			}
			checkURL(t, "api.base_url", s.API.BaseURL, s, false)
			if !injectionRE.MatchString(s.API.AuthInjection) {
				t.Errorf("api.auth_injection %q must be bearer, basic, header:NAME or query:NAME", s.API.AuthInjection)
			}

			if len(s.Auth) == 0 {
				t.Fatal("no auth methods")
			}
			seen := map[string]bool{}
			for i, m := range s.Auth {
				if seen[m.Type] {
					t.Errorf("auth[%d]: type %q listed twice", i, m.Type)
				}
				seen[m.Type] = true
				checkMethod(t, s, i, m)
			}
		})
	}
}

func checkMethod(t *testing.T, s *Source, i int, m AuthMethod) {
	t.Helper()
	fieldNames := map[string]bool{}
	for _, f := range m.Fields {
		if fieldNames[f.Name] {
			t.Errorf("auth[%d]: field %q declared twice", i, f.Name)
		}
		fieldNames[f.Name] = true
		if !fieldNameRE.MatchString(f.Name) {
			t.Errorf("auth[%d]: field name %q invalid", i, f.Name)
		}
		if (f.Pattern == "") != (f.Regexp() == nil) {
			t.Errorf("auth[%d]: field %q pattern %q not compiled", i, f.Name, f.Pattern)
		}
	}
	switch m.Type {
	case AuthOAuth2:
		checkURL(t, "authorize_url", m.AuthorizeURL, s, true)
		checkURL(t, "token_url", m.TokenURL, s, true)
		if m.RevokeURL != "" {
			checkURL(t, "revoke_url", m.RevokeURL, s, true)
		}
		if !slices.Contains(validOAuthTypes, m.OAuthType) {
			t.Errorf("auth[%d]: oauth_type %q invalid", i, m.OAuthType)
		}
		if m.ClientAuth != "body" && m.ClientAuth != "header" {
			t.Errorf("auth[%d]: client_auth %q invalid", i, m.ClientAuth)
		}
		if m.ScopeSeparator != " " && m.ScopeSeparator != "," {
			t.Errorf("auth[%d]: scope_separator %q must be a space or a comma", i, m.ScopeSeparator)
		}
		for _, sc := range m.Scopes {
			if sc == "" || strings.ContainsAny(sc, " ,") {
				t.Errorf("auth[%d]: scope %q must be one non-empty token", i, sc)
			}
		}
		for k := range m.AuthorizeParams {
			switch k {
			case "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method":
				t.Errorf("auth[%d]: authorize_params must not set %q, the broker does", i, k)
			}
		}
		if m.Margin() <= 0 {
			t.Errorf("auth[%d]: refresh margin must be positive", i)
		}
		if len(m.Fields) != 0 {
			t.Errorf("auth[%d]: oauth2 methods take no fields", i)
		}
	case AuthAPIKey:
		if !fieldNames["api_key"] {
			t.Errorf("auth[%d]: api_key method needs a field named api_key", i)
		}
		for _, f := range m.Fields {
			if f.Name == "api_key" && !f.Secret {
				t.Errorf("auth[%d]: api_key field must be secret", i)
			}
		}
	case AuthBasic:
		if len(m.Fields) > 0 && !(fieldNames["username"] && fieldNames["password"]) {
			t.Errorf("auth[%d]: basic fields must be username and password", i)
		}
		if len(m.CredentialFields()) == 0 {
			t.Errorf("auth[%d]: basic method has no credential fields", i)
		}
	case AuthCustom:
		secret := false
		for _, f := range m.Fields {
			secret = secret || f.Secret
		}
		if !secret {
			t.Errorf("auth[%d]: custom method needs at least one secret field", i)
		}
	default:
		t.Errorf("auth[%d]: unknown type %q", i, m.Type)
	}
}

func fieldByName(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func TestCredentialPatterns(t *testing.T) {
	const random = "not-a-real-key-7f3a9c"
	tests := []struct {
		source, method, field, value string
		want                         bool
	}{
		{"stripe", AuthAPIKey, "api_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", true},
		{"stripe", AuthAPIKey, "api_key", "sk_live_51H8abcDEF", true},
		{"stripe", AuthAPIKey, "api_key", "rk_live_51H8abcDEF", true},
		{"stripe", AuthAPIKey, "api_key", "pk_test_TYooMQauvdEDq54NiTphI7jx", false},
		{"stripe", AuthAPIKey, "api_key", "sk_prod_4eC39HqLyjWDarjtT1zdp7dc", false},
		{"stripe", AuthAPIKey, "api_key", random, false},
		{"github", AuthAPIKey, "api_key", "ghp_" + strings.Repeat("a1B2", 9), true},
		{"github", AuthAPIKey, "api_key", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", true},
		{"github", AuthAPIKey, "api_key", "gho_" + strings.Repeat("a1B2", 9), false},
		{"github", AuthAPIKey, "api_key", random, false},
		{"hubspot", AuthAPIKey, "api_key", "pat-na1-12345678-1234-1234-1234-123456789012", true},
		{"hubspot", AuthAPIKey, "api_key", random, false},
		{"linear", AuthAPIKey, "api_key", "lin_api_0123456789abcdefABCDEF", true},
		{"linear", AuthAPIKey, "api_key", "lin_oauth_0123456789abcdef", false},
		{"linear", AuthAPIKey, "api_key", random, false},
		{"slack", AuthAPIKey, "api_key", "xoxb-1234-5678-abcdef", true},
		{"slack", AuthAPIKey, "api_key", "xoxp-1234-5678-abcdef", true},
		{"slack", AuthAPIKey, "api_key", "xapp-1-A123-456-abcdef", false},
		{"slack", AuthAPIKey, "api_key", random, false},
		{"notion", AuthAPIKey, "api_key", "secret_abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", true},
		{"notion", AuthAPIKey, "api_key", "ntn_1234567890abcdef", true},
		{"notion", AuthAPIKey, "api_key", random, false},
		{"airtable", AuthAPIKey, "api_key", "patAbCdEf12345678.0123456789abcdef", true},
		{"airtable", AuthAPIKey, "api_key", "keyAbCdEf12345678", false},
		{"gitlab", AuthAPIKey, "api_key", "glpat-xxxxxxxxxxxxxxxxxxxx", true},
		{"gitlab", AuthAPIKey, "api_key", "gldt-xxxxxxxxxxxxxxxxxxxx", false},
		{"sentry", AuthAPIKey, "api_key", "sntryu_0123456789abcdef", true},
		{"sentry", AuthAPIKey, "api_key", "sntrys_eyJpYXQiOjE3MDAwMDAwMDB9_abc", true},
		{"sentry", AuthAPIKey, "api_key", strings.Repeat("0a", 32), true},
		{"sentry", AuthAPIKey, "api_key", random, false},
		{"sendgrid", AuthAPIKey, "api_key", "SG.abcDEF_123-xyz.0123456789abcdefABCDEF-_", true},
		{"sendgrid", AuthAPIKey, "api_key", random, false},
		{"shopify", AuthAPIKey, "api_key", "shpat_" + strings.Repeat("0f", 16), true},
		{"shopify", AuthAPIKey, "api_key", "shpat_short", false},
		{"figma", AuthAPIKey, "api_key", "figd_0123456789abcdef", true},
		{"figma", AuthAPIKey, "api_key", random, false},
		{"clickup", AuthAPIKey, "api_key", "pk_12345678_ABCDEFGHIJKLMNOP", true},
		{"clickup", AuthAPIKey, "api_key", random, false},
		{"mailchimp", AuthAPIKey, "api_key", "0123456789abcdef0123456789abcdef-us21", true},
		{"mailchimp", AuthAPIKey, "api_key", "0123456789abcdef0123456789abcdef", false},
		{"openai", AuthAPIKey, "api_key", "sk-proj-abc123", true},
		{"openai", AuthAPIKey, "api_key", random, false},
		{"anthropic", AuthAPIKey, "api_key", "sk-ant-api03-abc123", true},
		{"anthropic", AuthAPIKey, "api_key", "sk-proj-abc123", false},
		{"twilio", AuthBasic, "username", "AC" + strings.Repeat("0a", 16), true},
		{"twilio", AuthBasic, "username", "SK" + strings.Repeat("0a", 16), true},
		{"twilio", AuthBasic, "username", "AB" + strings.Repeat("0a", 16), false},
		{"zendesk", AuthBasic, "username", "jane@example.com/token", true},
		{"zendesk", AuthBasic, "username", "jane@example.com", false},
	}
	c := loadBuiltin(t)
	for _, tt := range tests {
		t.Run(tt.source+"/"+tt.value, func(t *testing.T) {
			m, ok := mustGet(t, c, tt.source).Method(tt.method)
			if !ok {
				t.Fatalf("%s has no %s method", tt.source, tt.method)
			}
			f, ok := fieldByName(m.Fields, tt.field)
			if !ok {
				t.Fatalf("%s %s has no field %q", tt.source, tt.method, tt.field)
			}
			if f.Regexp() == nil {
				t.Fatalf("%s %s field %q has no pattern", tt.source, tt.method, tt.field)
			}
			if got := f.Regexp().MatchString(tt.value); got != tt.want {
				t.Errorf("pattern %q on %q = %v, want %v", f.Pattern, tt.value, got, tt.want)
			}
		})
	}
}

func TestConfigFieldPatterns(t *testing.T) {
	tests := []struct {
		source, field, value string
		want                 bool
	}{
		{"zendesk", "subdomain", "acme-support", true},
		{"zendesk", "subdomain", "acme.zendesk.com", false},
		{"zendesk", "subdomain", "", false},
		{"shopify", "shop", "acme-store", true},
		{"shopify", "shop", "https://acme-store.myshopify.com", false},
		{"salesforce", "my_domain", "acme", true},
		{"salesforce", "my_domain", "acme--uat.sandbox", true},
		{"salesforce", "my_domain", "acme.my.salesforce.com", false},
		{"zoho_crm", "domain", "com", true},
		{"zoho_crm", "domain", "com.au", true},
		{"zoho_crm", "domain", "org", false},
		{"jira", "cloud_id", "11223344-a1b2-3b33-c444-def123456789", true},
		{"jira", "cloud_id", "acme", false},
	}
	c := loadBuiltin(t)
	for _, tt := range tests {
		t.Run(tt.source+"/"+tt.field+"="+tt.value, func(t *testing.T) {
			s := mustGet(t, c, tt.source)
			i := slices.IndexFunc(s.ConfigFields, func(f ConfigField) bool { return f.Name == tt.field })
			if i < 0 {
				t.Fatalf("%s has no config field %q", tt.source, tt.field)
			}
			re := s.ConfigFields[i].Regexp()
			if re == nil {
				t.Fatalf("%s config field %q has no pattern", tt.source, tt.field)
			}
			if got := re.MatchString(tt.value); got != tt.want {
				t.Errorf("pattern %q on %q = %v, want %v", re, tt.value, got, tt.want)
			}
		})
	}
}

func TestCredentialFields(t *testing.T) {
	c := loadBuiltin(t)
	type want struct {
		name     string
		optional bool
	}
	accessOnly := []want{{"access_token", false}}
	withRefresh := []want{{"access_token", false}, {"refresh_token", true}}
	tests := []struct {
		source    string
		oauthType string
		want      []want
	}{
		{"slack", OAuthAccessOnly, accessOnly},
		{"intercom", OAuthAccessOnly, accessOnly},
		{"google_drive", OAuthWithRefresh, withRefresh},
		{"hubspot", OAuthWithRefresh, withRefresh},
		{"airtable", OAuthWithRotatingRefresh, withRefresh},
		{"onedrive", OAuthWithRotatingRefresh, withRefresh},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			m, ok := mustGet(t, c, tt.source).Method(AuthOAuth2)
			if !ok {
				t.Fatalf("%s has no oauth2 method", tt.source)
			}
			if m.OAuthType != tt.oauthType {
				t.Fatalf("%s oauth_type = %q, want %q", tt.source, m.OAuthType, tt.oauthType)
			}
			got := m.CredentialFields()
			if len(got) != len(tt.want) {
				t.Fatalf("CredentialFields() = %+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				if got[i].Name != w.name || got[i].Optional != w.optional || !got[i].Secret {
					t.Errorf("field %d = {%s optional=%v secret=%v}, want {%s optional=%v secret=true}",
						i, got[i].Name, got[i].Optional, got[i].Secret, w.name, w.optional)
				}
			}
		})
	}

	t.Run("api_key", func(t *testing.T) {
		m, _ := mustGet(t, c, "stripe").Method(AuthAPIKey)
		got := m.CredentialFields()
		if len(got) != 1 || got[0].Name != "api_key" || !got[0].Secret {
			t.Errorf("stripe api_key CredentialFields() = %+v", got)
		}
	})
	t.Run("basic_default", func(t *testing.T) {
		got := AuthMethod{Type: AuthBasic}.CredentialFields()
		if len(got) != 2 || got[0].Name != "username" || got[1].Name != "password" || !got[1].Secret {
			t.Errorf("default basic CredentialFields() = %+v", got)
		}
	})
}

// Specific provider facts that the catalog must keep.
func TestProviderFacts(t *testing.T) {
	c := loadBuiltin(t)
	oauth := func(name string) AuthMethod {
		t.Helper()
		m, ok := mustGet(t, c, name).Method(AuthOAuth2)
		if !ok {
			t.Fatalf("%s has no oauth2 method", name)
		}
		return m
	}
	for _, name := range []string{"google_drive", "google_calendar", "gmail"} {
		m := oauth(name)
		if m.AuthorizeParams["access_type"] != "offline" || m.AuthorizeParams["prompt"] != "consent" {
			t.Errorf("%s: authorize_params = %v, want access_type=offline prompt=consent", name, m.AuthorizeParams)
		}
	}
	for _, name := range []string{"jira", "confluence"} {
		m := oauth(name)
		if m.AuthorizeParams["audience"] != "api.atlassian.com" || m.AuthorizeParams["prompt"] != "consent" || m.OAuthType != OAuthWithRotatingRefresh {
			t.Errorf("%s: want rotating refresh with audience and prompt=consent, got %+v", name, m)
		}
	}
	if m := oauth("dropbox"); m.AuthorizeParams["token_access_type"] != "offline" || m.OAuthType != OAuthWithRefresh {
		t.Errorf("dropbox: want token_access_type=offline and with_refresh, got %+v", m)
	}
	if m := oauth("slack"); m.ScopeSeparator != "," || m.OAuthType != OAuthAccessOnly {
		t.Errorf("slack: want comma scopes and access_only, got %+v", m)
	}
	for _, name := range []string{"notion", "airtable", "reddit"} {
		if m := oauth(name); m.ClientAuth != "header" {
			t.Errorf("%s: client_auth = %q, want header", name, m.ClientAuth)
		}
	}
	for _, name := range []string{"onedrive", "outlook_mail", "outlook_calendar", "sharepoint", "airtable"} {
		if m := oauth(name); m.OAuthType != OAuthWithRotatingRefresh {
			t.Errorf("%s: oauth_type = %q, want with_rotating_refresh", name, m.OAuthType)
		}
	}
	for _, name := range []string{"hubspot", "salesforce", "google_sheets"} {
		if m := oauth(name); m.OAuthType != OAuthWithRefresh {
			t.Errorf("%s: oauth_type = %q, want with_refresh", name, m.OAuthType)
		}
	}
	if m := oauth("zendesk"); !strings.Contains(m.AuthorizeURL, "{subdomain}") {
		t.Errorf("zendesk authorize_url %q should be per-subdomain", m.AuthorizeURL)
	}
	// Methods with defaults filled in by Parse.
	if m := oauth("google_drive"); m.ScopeSeparator != " " {
		t.Errorf("default scope separator = %q, want a space", m.ScopeSeparator)
	}
}

func TestParseRejectsUnknownKey(t *testing.T) {
	tests := []struct{ name, yaml, key string }{
		{"top level", "short_name: x\nname: X\nfavourite_colour: blue\nauth:\n  - type: basic\n", "favourite_colour"},
		{"in auth", "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n    token_url: https://a.example/token\n    refresh_url: https://a.example/refresh\n", "refresh_url"},
		{"in field", "short_name: x\nname: X\nauth:\n  - type: api_key\n    fields:\n      - {name: api_key, secrets: true}\n", "secrets"},
		{"in api", "short_name: x\nname: X\nauth:\n  - type: basic\napi:\n  base_url: https://a.example\n  auth: bearer\n", "auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted an unknown key")
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name the key %q", err, tt.key)
			}
		})
	}
}

func TestParseRejectsInvalid(t *testing.T) {
	const okAuth = "auth:\n  - type: basic\n"
	tests := []struct{ name, yaml, want string }{
		{"uppercase short_name", "short_name: GitHub\nname: X\n" + okAuth, "short_name"},
		{"dash in short_name", "short_name: google-drive\nname: X\n" + okAuth, "short_name"},
		{"empty short_name", "name: X\n" + okAuth, "short_name"},
		{"missing name", "short_name: x\n" + okAuth, "name"},
		{"missing auth", "short_name: x\nname: X\n", "auth"},
		{"empty auth", "short_name: x\nname: X\nauth: []\n", "auth"},
		{"bad auth type", "short_name: x\nname: X\nauth:\n  - type: saml\n", "saml"},
		{"bad oauth_type", "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n    token_url: https://a.example/token\n    oauth_type: forever\n", "oauth_type"},
		{"bad client_auth", "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n    token_url: https://a.example/token\n    client_auth: jwt\n", "client_auth"},
		{"oauth2 without token_url", "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n", "token_url"},
		{"api_key without fields", "short_name: x\nname: X\nauth:\n  - type: api_key\n", "fields"},
		{"bad field pattern", "short_name: x\nname: X\nauth:\n  - type: api_key\n    fields:\n      - {name: api_key, pattern: '^(sk_'}\n", "pattern"},
		{"bad config type", "short_name: x\nname: X\n" + okAuth + "config_fields:\n  - {name: a, type: map}\n", "type"},
		{"bad refresh_margin", "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n    token_url: https://a.example/token\n    refresh_margin: soon\n", "refresh_margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted an invalid definition")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte("short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: https://a.example/authorize\n    token_url: https://a.example/token\n    refresh_margin: 2m\nconfig_fields:\n  - {name: region}\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Auth[0]
	if m.OAuthType != OAuthWithRefresh || m.ClientAuth != "body" || m.ScopeSeparator != " " {
		t.Errorf("defaults = {%q %q %q}, want {with_refresh body space}", m.OAuthType, m.ClientAuth, m.ScopeSeparator)
	}
	if m.Margin().Minutes() != 2 {
		t.Errorf("Margin() = %v, want 2m", m.Margin())
	}
	if s.ConfigFields[0].Type != "string" {
		t.Errorf("config field type default = %q, want string", s.ConfigFields[0].Type)
	}
	if (AuthMethod{}).Margin() != DefaultRefreshMargin {
		t.Error("zero refresh_margin should use DefaultRefreshMargin")
	}
}

func TestLoadDirOverridesAndAdds(t *testing.T) {
	builtinCat := loadBuiltin(t)
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The file name does not matter; the short_name decides what is replaced.
	write("my-github.yaml", `short_name: github
name: GitHub Enterprise Server
description: Self-hosted GitHub.
labels: [developer_tools]
auth:
  - type: api_key
    fields:
      - {name: api_key, title: Personal access token, secret: true}
config_fields: []
api:
  base_url: https://github.example.com/api/v3
  auth_injection: bearer
`)
	write("test_server.yml", `short_name: test_server
name: Test server
description: A local test provider.
labels: [testing]
auth:
  - type: oauth2
    authorize_url: https://localhost:8443/authorize
    token_url: https://localhost:8443/token
    oauth_type: access_only
config_fields: []
`)
	write("README.txt", "not yaml, ignored\n")
	if err := os.Mkdir(filepath.Join(dir, "nested.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}

	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%q): %v", dir, err)
	}
	gh := mustGet(t, c, "github")
	if gh.Name != "GitHub Enterprise Server" || gh.API.BaseURL != "https://github.example.com/api/v3" {
		t.Errorf("github not replaced: %+v", gh)
	}
	if _, ok := gh.Method(AuthOAuth2); ok || len(gh.Auth) != 1 {
		t.Errorf("github replaced only partly: auth = %+v", gh.Auth)
	}
	if gh.Docs != "" || gh.PipedreamSlug != "" {
		t.Errorf("github kept built-in fields after replacement: docs=%q", gh.Docs)
	}
	ts := mustGet(t, c, "test_server")
	if m, _ := ts.Method(AuthOAuth2); m.OAuthType != OAuthAccessOnly {
		t.Errorf("test_server oauth_type = %q", m.OAuthType)
	}
	if got, want := len(c.List()), len(builtinCat.List())+1; got != want {
		t.Errorf("len(List()) = %d, want %d", got, want)
	}
	// Other built-ins are untouched, and the built-in catalog is not modified.
	if _, ok := mustGet(t, c, "gitlab").Method(AuthOAuth2); !ok {
		t.Error("gitlab lost its oauth2 method")
	}
	if _, ok := mustGet(t, builtinCat, "github").Method(AuthOAuth2); !ok {
		t.Error("loading a directory changed an earlier catalog")
	}
	if _, err := builtinCat.Get("test_server"); err == nil {
		t.Error("loading a directory added to an earlier catalog")
	}
}

func TestLoadDirErrors(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "absent")); err == nil {
			t.Error("Load of a missing directory succeeded")
		}
	})
	t.Run("bad file names file and key", func(t *testing.T) {
		dir := t.TempDir()
		body := "short_name: broken\nname: Broken\nauth:\n  - type: basic\nbogus_key: 1\n"
		if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil {
			t.Fatal("Load accepted a file with an unknown key")
		}
		if !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "bogus_key") {
			t.Errorf("error %q should name the file and the key", err)
		}
	})
}

func TestParseChecksURLsAndPlaceholders(t *testing.T) {
	base := "short_name: x\nname: X\nauth:\n  - type: oauth2\n    authorize_url: %s\n    token_url: https://a.example/token\nconfig_fields:\n  - {name: subdomain}\n"
	tests := []struct {
		url     string
		wantErr string
	}{
		{"https://{subdomain}.example.com/authorize", ""},
		{"http://127.0.0.1:9000/authorize", ""},
		{"https://{tenant}.example.com/authorize", "{tenant}"},
		{"/relative/authorize", "absolute"},
		{"ftp://a.example/authorize", "absolute"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(fmt.Sprintf(base, tc.url)))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one naming %q", tc.url, err, tc.wantErr)
		}
	}
}

func TestLoadDirRejectsDuplicateShortNames(t *testing.T) {
	dir := t.TempDir()
	def := "short_name: dup\nname: Dup\nauth:\n  - type: basic\n"
	for _, f := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "already defined by a.yaml") {
		t.Fatalf("Load = %v, want a duplicate error", err)
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := builtin.ReadDir("sources")
	for i, e := range entries {
		if i%8 == 0 { // a sample of real definitions as seeds
			b, _ := builtin.ReadFile("sources/" + e.Name())
			f.Add(b)
		}
	}
	f.Add([]byte("short_name: x\nname: X\nauth: [{type: basic}]\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err == nil && (s.ShortName == "" || len(s.Auth) == 0) {
			t.Fatalf("accepted an incomplete definition: %+v", s)
		}
	})
}
