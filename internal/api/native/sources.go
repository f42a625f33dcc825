package native

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/connection"
)

// FieldSpec describes one input field so a client can build a form.
type FieldSpec struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required"`
	Secret      bool   `json:"secret,omitempty"`
	Pattern     string `json:"pattern,omitempty"`
	Default     any    `json:"default,omitempty"`
}

// Fields wraps a list of field specs, as the Airweave SDK expects.
type Fields struct {
	Fields []FieldSpec `json:"fields"`
}

// AuthScheme is one way a source accepts credentials.
type AuthScheme struct {
	Type       string   `json:"type" enum:"oauth2,api_key,basic,custom"`
	AuthMethod string   `json:"auth_method" doc:"The connection auth method credentials of this scheme give"`
	Fields     Fields   `json:"fields" doc:"Fields to send when injecting credentials directly"`
	OAuthType  string   `json:"oauth_type,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	PKCE       bool     `json:"pkce,omitempty"`
}

// Source is a catalog entry as clients see it.
type Source struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	ShortName    string       `json:"short_name"`
	ClassName    string       `json:"class_name"`
	Description  string       `json:"description"`
	Labels       []string     `json:"labels"`
	AuthMethods  []string     `json:"auth_methods"`
	OAuthType    *string      `json:"oauth_type"`
	AuthFields   Fields       `json:"auth_fields" doc:"Credential fields of the default auth scheme"`
	ConfigFields Fields       `json:"config_fields"`
	AuthSchemes  []AuthScheme `json:"auth_schemes" doc:"Every auth scheme, default first"`
	CreatedAt    time.Time    `json:"created_at"`
	ModifiedAt   time.Time    `json:"modified_at"`
}

var sourceNamespace = uuid.MustParse("6f1c2a52-5a3e-4c1e-9a55-6b2f0d1e7a10")

func credentialFields(m catalog.AuthMethod) Fields {
	out := Fields{Fields: []FieldSpec{}}
	for _, f := range m.CredentialFields() {
		title := f.Title
		if title == "" {
			title = f.Name
		}
		out.Fields = append(out.Fields, FieldSpec{Name: f.Name, Title: title, Type: "string", Description: f.Description,
			Required: !f.Optional, Secret: f.Secret || m.Type == catalog.AuthOAuth2, Pattern: f.Pattern})
	}
	return out
}

func (h *Handlers) sourceOut(s *catalog.Source) Source {
	out := Source{
		ID: uuid.NewSHA1(sourceNamespace, []byte(s.ShortName)).String(), Name: s.Name, ShortName: s.ShortName,
		ClassName: className(s.ShortName), Description: s.Description, Labels: s.Labels,
		AuthMethods: []string{}, ConfigFields: Fields{Fields: []FieldSpec{}}, CreatedAt: h.loaded, ModifiedAt: h.loaded,
	}
	if out.Labels == nil {
		out.Labels = []string{}
	}
	seen := map[string]bool{}
	addMethod := func(m string) {
		if !seen[m] {
			seen[m] = true
			out.AuthMethods = append(out.AuthMethods, m)
		}
	}
	for i, m := range s.Auth {
		scheme := AuthScheme{Type: m.Type, Fields: credentialFields(m)}
		if m.Type == catalog.AuthOAuth2 {
			scheme.AuthMethod, scheme.OAuthType, scheme.Scopes, scheme.PKCE = connection.MethodOAuthToken, m.OAuthType, m.Scopes, m.PKCE
			addMethod(connection.MethodOAuthToken)
			addMethod(connection.MethodOAuthBrowser)
			addMethod(connection.MethodOAuthBYOC)
			if out.OAuthType == nil {
				t := m.OAuthType
				out.OAuthType = &t
			}
		} else {
			scheme.AuthMethod = connection.MethodDirect
			addMethod(connection.MethodDirect)
		}
		if i == 0 {
			out.AuthFields = scheme.Fields
		}
		out.AuthSchemes = append(out.AuthSchemes, scheme)
	}
	for _, f := range s.ConfigFields {
		title := f.Title
		if title == "" {
			title = f.Name
		}
		out.ConfigFields.Fields = append(out.ConfigFields.Fields, FieldSpec{Name: f.Name, Title: title, Type: f.Type,
			Description: f.Description, Required: f.Required && f.Default == nil, Pattern: f.Pattern, Default: f.Default})
	}
	return out
}

func className(short string) string {
	var b strings.Builder
	for _, w := range strings.Split(short, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String() + "Source"
}

func (h *Handlers) registerSources(api huma.API) {
	shared.Register(api, h.log, op("list-sources", http.MethodGet, "/sources", "List the source catalog", "sources"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body []Source }, error) {
			list := h.conns.Catalog().List()
			out := &struct{ Body []Source }{Body: make([]Source, 0, len(list))}
			for _, s := range list {
				out.Body = append(out.Body, h.sourceOut(s))
			}
			return out, nil
		})
	shared.Register(api, h.log, op("get-source", http.MethodGet, "/sources/{short_name}", "Get a source with its auth and config field schemas", "sources"),
		func(ctx context.Context, in *struct {
			ShortName string `path:"short_name"`
		}) (*struct{ Body Source }, error) {
			s, err := h.conns.Source(in.ShortName)
			if err != nil {
				return nil, err
			}
			return &struct{ Body Source }{Body: h.sourceOut(s)}, nil
		})
}
