// Package catalog holds the source definitions: what each integration is, how it
// authenticates and which fields a connection to it takes. Definitions are YAML
// files, built in and optionally extended from a directory at start.
package catalog

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed sources/*.yaml
var builtin embed.FS

// Auth method types.
const (
	AuthOAuth2 = "oauth2"
	AuthAPIKey = "api_key"
	AuthBasic  = "basic"
	AuthCustom = "custom"
)

// OAuth types: how a provider hands out and rotates refresh tokens.
const (
	OAuthAccessOnly          = "access_only"
	OAuthWithRefresh         = "with_refresh"
	OAuthWithRotatingRefresh = "with_rotating_refresh"
)

// Source is one integration definition.
type Source struct {
	ShortName    string        `yaml:"short_name" json:"short_name"`
	Name         string        `yaml:"name" json:"name"`
	Description  string        `yaml:"description" json:"description"`
	Labels       []string      `yaml:"labels" json:"labels"`
	Auth         []AuthMethod  `yaml:"auth" json:"-"`
	ConfigFields []ConfigField `yaml:"config_fields" json:"config_fields"`
	API          *API          `yaml:"api,omitempty" json:"-"`
	// PipedreamSlug is the app slug Pipedream uses when it differs from ShortName.
	PipedreamSlug string `yaml:"pipedream_slug,omitempty" json:"-"`
	// ComposioSlug is the toolkit slug Composio uses when it differs from ShortName.
	ComposioSlug string `yaml:"composio_slug,omitempty" json:"-"`
	// Docs links the provider's authentication documentation the definition was checked against.
	Docs string `yaml:"docs,omitempty" json:"-"`
}

// AuthMethod is one way a source accepts credentials.
type AuthMethod struct {
	Type string `yaml:"type"`

	// oauth2
	AuthorizeURL    string            `yaml:"authorize_url,omitempty"`
	TokenURL        string            `yaml:"token_url,omitempty"`
	RevokeURL       string            `yaml:"revoke_url,omitempty"`
	Scopes          []string          `yaml:"scopes,omitempty"`
	ScopeSeparator  string            `yaml:"scope_separator,omitempty"`
	PKCE            bool              `yaml:"pkce,omitempty"`
	OAuthType       string            `yaml:"oauth_type,omitempty"`
	ClientAuth      string            `yaml:"client_auth,omitempty"`
	RefreshMargin   Duration          `yaml:"refresh_margin,omitempty"`
	AuthorizeParams map[string]string `yaml:"authorize_params,omitempty"`

	// api_key, basic, custom
	Fields []Field `yaml:"fields,omitempty"`
}

// Field is one credential field of an auth method.
type Field struct {
	Name        string `yaml:"name" json:"name"`
	Title       string `yaml:"title,omitempty" json:"title,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Secret      bool   `yaml:"secret,omitempty" json:"secret"`
	Optional    bool   `yaml:"optional,omitempty" json:"-"`
	Pattern     string `yaml:"pattern,omitempty" json:"pattern,omitempty"`

	re *regexp.Regexp
}

// Regexp is the compiled pattern, nil when the field has none.
func (f Field) Regexp() *regexp.Regexp { return f.re }

// ConfigField is one non-secret setting of a connection.
type ConfigField struct {
	Name        string `yaml:"name" json:"name"`
	Title       string `yaml:"title,omitempty" json:"title,omitempty"`
	Type        string `yaml:"type" json:"type"` // string | integer | number | boolean | array
	Required    bool   `yaml:"required,omitempty" json:"required"`
	Default     any    `yaml:"default,omitempty" json:"default,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Pattern     string `yaml:"pattern,omitempty" json:"pattern,omitempty"`

	re *regexp.Regexp
}

// Regexp is the compiled pattern, nil when the field has none.
func (f ConfigField) Regexp() *regexp.Regexp { return f.re }

// API describes how execute and sync call the provider.
type API struct {
	BaseURL       string             `yaml:"base_url"`
	AuthInjection string             `yaml:"auth_injection,omitempty"`
	Headers       map[string]string  `yaml:"headers,omitempty"` // sent with every call, e.g. Notion-Version
	Entities      map[string]*Entity `yaml:"entities,omitempty"`
}

// Entity is one kind of record a source exposes.
type Entity struct {
	Actions map[string]*Action `yaml:"actions"`
}

// Action is one declarative call against the provider.
type Action struct {
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Params  map[string]*Param `yaml:"params,omitempty"`
	Records string            `yaml:"records,omitempty"`
	Cursor  string            `yaml:"cursor,omitempty"`
	// Paging is how the next page is found: cursor (the Cursor path; the
	// default), link (the Link header's rel="next"), page (page number + 1
	// while a page is full), offset, or last_id (the last record's id while
	// the HasMore path is true).
	Paging  string `yaml:"paging,omitempty"`
	HasMore string `yaml:"has_more,omitempty"`
	// PageSize names the param that sets the page size (page and offset paging).
	PageSize string `yaml:"page_size,omitempty"`
	// Incremental makes syncs ask only for what changed since the last run.
	Incremental *Incremental   `yaml:"incremental,omitempty"`
	ID          string         `yaml:"id,omitempty"`
	Title       string         `yaml:"title,omitempty"`
	Body        map[string]any `yaml:"body,omitempty"`
}

// Incremental names the list param that takes the last seen value (e.g.
// since) and the record field it comes from (JSONPath, e.g. $.updated_at).
type Incremental struct {
	Param string `yaml:"param"`
	Field string `yaml:"field"`
}

// Param maps one execute parameter onto the request.
type Param struct {
	In       string `yaml:"in"` // path | query | body | header
	Name     string `yaml:"name,omitempty"`
	Required bool   `yaml:"required,omitempty"`
	From     string `yaml:"from,omitempty"`
	Default  any    `yaml:"default,omitempty"`
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("refresh_margin: %w", err)
	}
	*d = Duration(v)
	return nil
}

// DefaultRefreshMargin is used when a source names none.
const DefaultRefreshMargin = 5 * time.Minute

// Margin is how long before expiry a token is refreshed.
func (m AuthMethod) Margin() time.Duration {
	if m.RefreshMargin > 0 {
		return time.Duration(m.RefreshMargin)
	}
	return DefaultRefreshMargin
}

// CredentialFields are the fields a caller supplies to inject credentials for
// this method: for OAuth2 the token fields its oauth_type implies, otherwise
// the declared fields.
func (m AuthMethod) CredentialFields() []Field {
	switch m.Type {
	case AuthOAuth2:
		fs := []Field{{Name: "access_token", Title: "Access token", Secret: true}}
		if m.OAuthType != OAuthAccessOnly {
			fs = append(fs, Field{Name: "refresh_token", Title: "Refresh token", Secret: true, Optional: true})
		}
		return fs
	case AuthBasic:
		if len(m.Fields) > 0 {
			return m.Fields
		}
		return []Field{{Name: "username", Title: "Username"}, {Name: "password", Title: "Password", Secret: true}}
	default:
		return m.Fields
	}
}

// Method returns the source's auth method of the given type.
func (s *Source) Method(typ string) (AuthMethod, bool) {
	for _, m := range s.Auth {
		if m.Type == typ {
			return m, true
		}
	}
	return AuthMethod{}, false
}

// Catalog is an immutable set of sources.
type Catalog struct {
	byName map[string]*Source
	sorted []*Source
}

// ErrNotFound is returned for an unknown short name.
var ErrNotFound = errors.New("source not found")

// Get returns the source with the given short name.
func (c *Catalog) Get(shortName string) (*Source, error) {
	s, ok := c.byName[shortName]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, shortName)
	}
	return s, nil
}

// List returns every source ordered by short name.
func (c *Catalog) List() []*Source { return c.sorted }

// Load reads the built-in definitions and then, if dir is not empty, the YAML
// files in dir; a file whose short_name is already known replaces it whole.
func Load(dir string) (*Catalog, error) {
	c := &Catalog{byName: map[string]*Source{}}
	if err := c.addFS(builtin, "sources", false); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := c.addFS(os.DirFS(dir), ".", true); err != nil {
			return nil, err
		}
	}
	for _, s := range c.byName {
		c.sorted = append(c.sorted, s)
	}
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].ShortName < c.sorted[j].ShortName })
	return c, nil
}

func (c *Catalog) addFS(fsys fs.FS, root string, replace bool) error {
	fromFile := map[string]string{} // short_name -> file, within this directory
	entries, err := fs.ReadDir(fsys, root)
	if err != nil {
		return fmt.Errorf("catalog: read %s: %w", root, err)
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		data, err := fs.ReadFile(fsys, filepath.ToSlash(filepath.Join(root, e.Name())))
		if err != nil {
			return fmt.Errorf("catalog: %s: %w", e.Name(), err)
		}
		s, err := Parse(data)
		if err != nil {
			return fmt.Errorf("catalog: %s: %w", e.Name(), err)
		}
		if prev, dup := fromFile[s.ShortName]; dup {
			return fmt.Errorf("catalog: %s: short_name %q is already defined by %s", e.Name(), s.ShortName, prev)
		}
		if _, dup := c.byName[s.ShortName]; dup && !replace {
			return fmt.Errorf("catalog: %s: duplicate short_name %q", e.Name(), s.ShortName)
		}
		fromFile[s.ShortName] = e.Name()
		c.byName[s.ShortName] = s
	}
	return nil
}

var shortNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// Parse decodes and validates one source definition. Unknown keys are errors.
func Parse(data []byte) (*Source, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Source
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Source) validate() error {
	if !shortNameRE.MatchString(s.ShortName) {
		return fmt.Errorf("short_name %q must match [a-z0-9_]+", s.ShortName)
	}
	if s.Name == "" {
		return errors.New("name is required")
	}
	if len(s.Auth) == 0 {
		return errors.New("auth: at least one method is required")
	}
	config := map[string]bool{}
	for _, f := range s.ConfigFields {
		config[f.Name] = true
	}
	for i := range s.Auth {
		if err := s.Auth[i].validate(); err != nil {
			return fmt.Errorf("auth[%d]: %w", i, err)
		}
		m := s.Auth[i]
		for key, u := range map[string]string{"authorize_url": m.AuthorizeURL, "token_url": m.TokenURL, "revoke_url": m.RevokeURL} {
			if err := checkDefinitionURL(u, config); err != nil {
				return fmt.Errorf("auth[%d].%s: %w", i, key, err)
			}
		}
	}
	if s.API != nil {
		if err := checkDefinitionURL(s.API.BaseURL, config); err != nil {
			return fmt.Errorf("api.base_url: %w", err)
		}
		for en, e := range s.API.Entities {
			if e == nil || len(e.Actions) == 0 {
				return fmt.Errorf("api.entities.%s: no actions", en)
			}
			for an, a := range e.Actions {
				if err := a.validate(); err != nil {
					return fmt.Errorf("api.entities.%s.actions.%s: %w", en, an, err)
				}
			}
		}
	}
	for i := range s.ConfigFields {
		f := &s.ConfigFields[i]
		if f.Name == "" {
			return fmt.Errorf("config_fields[%d]: name is required", i)
		}
		switch f.Type {
		case "string", "integer", "number", "boolean", "array":
		case "":
			f.Type = "string"
		default:
			return fmt.Errorf("config_fields[%d]: type %q must be string, integer, number, boolean or array", i, f.Type)
		}
		if f.Pattern != "" {
			re, err := regexp.Compile(f.Pattern)
			if err != nil {
				return fmt.Errorf("config_fields[%d]: pattern: %w", i, err)
			}
			f.re = re
		}
	}
	return nil
}

func (m *AuthMethod) validate() error {
	switch m.Type {
	case AuthOAuth2:
		if m.AuthorizeURL == "" || m.TokenURL == "" {
			return errors.New("oauth2 needs authorize_url and token_url")
		}
		switch m.OAuthType {
		case "":
			m.OAuthType = OAuthWithRefresh
		case OAuthAccessOnly, OAuthWithRefresh, OAuthWithRotatingRefresh:
		default:
			return fmt.Errorf("oauth_type %q must be access_only, with_refresh or with_rotating_refresh", m.OAuthType)
		}
		switch m.ClientAuth {
		case "":
			m.ClientAuth = "body"
		case "body", "header":
		default:
			return fmt.Errorf("client_auth %q must be body or header", m.ClientAuth)
		}
		if m.ScopeSeparator == "" {
			m.ScopeSeparator = " "
		}
	case AuthAPIKey, AuthCustom:
		if len(m.Fields) == 0 {
			return fmt.Errorf("%s needs fields", m.Type)
		}
	case AuthBasic:
	default:
		return fmt.Errorf("type %q must be oauth2, api_key, basic or custom", m.Type)
	}
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Name == "" {
			return fmt.Errorf("fields[%d]: name is required", i)
		}
		if f.Pattern != "" {
			re, err := regexp.Compile(f.Pattern)
			if err != nil {
				return fmt.Errorf("fields[%d]: pattern: %w", i, err)
			}
			f.re = re
		}
	}
	return nil
}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

// checkDefinitionURL accepts an empty string or an absolute http(s) URL whose
// {placeholders} each name a config field. (Built-in sources are further
// held to https by the catalog tests; operator files may point at local test
// servers.)
func checkDefinitionURL(raw string, config map[string]bool) error {
	if raw == "" {
		return nil
	}
	var missing string
	sub := placeholderRE.ReplaceAllStringFunc(raw, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		if !config[name] && missing == "" {
			missing = name
		}
		return "x"
	})
	if missing != "" {
		return fmt.Errorf("%q uses {%s}, which is not a config field", raw, missing)
	}
	u, err := url.Parse(sub)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http(s) URL", raw)
	}
	return nil
}

// ActionNames are the actions an entity may define.
var ActionNames = []string{"list", "get", "create", "update", "delete", "search"}

func (a *Action) validate() error {
	switch a.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		return fmt.Errorf("method %q must be GET, POST, PUT, PATCH or DELETE", a.Method)
	}
	if !strings.HasPrefix(a.Path, "/") {
		return fmt.Errorf("path %q must start with /", a.Path)
	}
	switch a.Paging {
	case "", "cursor", "link", "page", "offset", "last_id":
	default:
		return fmt.Errorf("paging %q must be cursor, link, page, offset or last_id", a.Paging)
	}
	if a.Incremental != nil {
		if _, ok := a.Params[a.Incremental.Param]; !ok || !strings.HasPrefix(a.Incremental.Field, "$") {
			return fmt.Errorf("incremental: param %q must be one of the action's params and field a $-path", a.Incremental.Param)
		}
	}
	for name, p := range a.Params {
		if p == nil {
			return fmt.Errorf("params.%s: empty", name)
		}
		switch p.In {
		case "path", "query", "body", "header":
		default:
			return fmt.Errorf("params.%s.in %q must be path, query, body or header", name, p.In)
		}
		if p.In == "path" && !strings.Contains(a.Path, "{"+name+"}") {
			return fmt.Errorf("params.%s is a path param but the path has no {%s}", name, name)
		}
	}
	return nil
}
