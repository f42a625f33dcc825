package embedded

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/vault"
)

type credentialsOut struct {
	ID                    string    `json:"id"`
	ScopeType             string    `json:"scope_type"`
	ScopeID               string    `json:"scope_id"`
	ConnectorType         string    `json:"connector_type"`
	ConnectorDefinitionID string    `json:"connector_definition_id"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

func (h *handlers) oauth(api huma.API) {
	shared.Register(api, h.log, op("embedded-put-oauth-credentials", http.MethodPut, "/api/v1/oauth/credentials", "Use your own OAuth app for a connector (operator only)"),
		func(ctx context.Context, in *struct {
			Body struct {
				ConnectorType string         `json:"connector_type" minLength:"1"`
				Configuration map[string]any `json:"configuration"`
			}
		}) (*struct{ Body credentialsOut }, error) {
			c, err := operator(ctx)
			if err != nil {
				return nil, err
			}
			src, err := h.source(in.Body.ConnectorType)
			if err != nil {
				return nil, err
			}
			if _, ok := src.Method(catalog.AuthOAuth2); !ok {
				return nil, apperr.BadRequest("Connector '%s' does not use OAuth", src.ShortName)
			}
			id, secret, errs := oauthConfig(in.Body.Configuration)
			if len(errs) > 0 {
				return nil, apperr.Invalid(errs...)
			}
			a, err := h.Apps.Put(ctx, c.OrganizationID, src.ShortName, oauthapp.Input{ClientID: id, ClientSecret: secret})
			if err != nil {
				return nil, err
			}
			return &struct{ Body credentialsOut }{Body: credentialsOut{ID: definitionID(c.OrganizationID + "/" + src.ShortName), ScopeType: "organization",
				ScopeID: c.OrganizationID, ConnectorType: "source", ConnectorDefinitionID: definitionID(src.ShortName), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}}, nil
		})

	shared.Register(api, h.log, op("embedded-oauth-credentials-spec", http.MethodGet, "/api/v1/oauth/credentials/spec", "JSON Schema of a connector's OAuth configuration"),
		func(ctx context.Context, in *struct {
			ConnectorType string `query:"connector_type" required:"true"`
		}) (*struct{ Body map[string]any }, error) {
			if _, err := caller(ctx); err != nil {
				return nil, err
			}
			src, err := h.source(in.ConnectorType)
			if err != nil {
				return nil, err
			}
			props := map[string]any{
				"client_id":     map[string]any{"type": "string", "title": "Client ID", "minLength": 1},
				"client_secret": map[string]any{"type": "string", "title": "Client secret", "minLength": 1, "airbyte_secret": true},
			}
			for _, f := range src.ConfigFields {
				props[f.Name] = map[string]any{"type": f.Type, "title": f.Title, "description": f.Description}
			}
			return &struct{ Body map[string]any }{Body: map[string]any{"type": "object", "required": []string{"client_id", "client_secret"},
				"additionalProperties": false, "properties": props}}, nil
		})

	shared.Register(api, h.log, op("embedded-oauth-initiate", http.MethodPost, "/api/v1/integrations/connectors/oauth/initiate", "Start a server-side OAuth flow: the consent URL"),
		func(ctx context.Context, in *struct {
			Body struct {
				ExternalUserID          string         `json:"external_user_id" minLength:"1"`
				ConnectorType           string         `json:"connector_type" minLength:"1"`
				RedirectURL             string         `json:"redirect_url" minLength:"1" doc:"secret_id=<id> is appended (or error=access_denied)"`
				OAuthInputConfiguration map[string]any `json:"oauth_input_configuration,omitempty"`
			}
		}) (*struct{ Body map[string]string }, error) {
			tg, err := h.resolve(ctx, in.Body.ConnectorType, in.Body.ExternalUserID, true)
			if err != nil {
				return nil, err
			}
			c, src, ws := tg.caller, tg.src, tg.workspace
			u, err := h.Connections.InitiateServerSide(ctx, c.OrganizationID, ws, src.ShortName, in.Body.RedirectURL, in.Body.OAuthInputConfiguration)
			if err != nil {
				return nil, err
			}
			return &struct{ Body map[string]string }{Body: map[string]string{"consent_url": u}}, nil
		})
}

// oauthConfig checks an OAuth override configuration.
func oauthConfig(cfg map[string]any) (string, vault.Secret, []apperr.FieldError) {
	var errs []apperr.FieldError
	get := func(name string) string {
		v, ok := cfg[name]
		s, isString := v.(string)
		if !ok {
			errs = append(errs, apperr.Field("missing", "Field '"+name+"' is required", "body", "configuration", name))
		} else if !isString || s == "" {
			errs = append(errs, apperr.Field("string_type", "Field '"+name+"' must be a non-empty string", "body", "configuration", name))
		}
		return s
	}
	id, secret := get("client_id"), get("client_secret")
	for k := range cfg {
		if k != "client_id" && k != "client_secret" {
			errs = append(errs, apperr.Field("extra_forbidden", "Unknown field '"+k+"'", "body", "configuration", k))
		}
	}
	return id, vault.NewSecret(secret), errs
}
