package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/vault"
)

// OAuthApp is a registered app as clients see it: never the secret.
type OAuthApp struct {
	ShortName            string    `json:"short_name"`
	ClientID             string    `json:"client_id"`
	Scopes               []string  `json:"scopes"`
	RedirectURLAllowlist []string  `json:"redirect_url_allowlist"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

func appOut(a oauthapp.App) OAuthApp {
	return OAuthApp{ShortName: a.ShortName, ClientID: a.ClientID, Scopes: a.Scopes, RedirectURLAllowlist: a.RedirectURLAllowlist,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type putAppInput struct {
	ShortName string `path:"short_name"`
	Body      struct {
		ClientID             string   `json:"client_id" minLength:"1"`
		ClientSecret         string   `json:"client_secret" minLength:"1"`
		Scopes               []string `json:"scopes,omitempty" doc:"Scopes to request; the catalog's defaults when absent"`
		RedirectURLAllowlist []string `json:"redirect_url_allowlist,omitempty" doc:"Where browsers may be sent after the flow: scheme, host and port exact, path prefix"`
	}
}

func (h *Handlers) registerOAuthApps(api huma.API) {
	put := op("put-oauth-app", http.MethodPut, "/oauth-apps/{short_name}", "Register the organization's own OAuth app for a source (white label)", "oauth-apps")
	put.Description = "The client secret is encrypted in the vault and never shown again."
	shared.Register(api, h.log, put, func(ctx context.Context, in *putAppInput) (*struct{ Body OAuthApp }, error) {
		p, err := shared.Principal(ctx)
		if err != nil {
			return nil, err
		}
		a, err := h.apps.Put(ctx, p.OrganizationID, in.ShortName, oauthapp.Input{ClientID: in.Body.ClientID,
			ClientSecret: vault.NewSecret(in.Body.ClientSecret), Scopes: in.Body.Scopes, RedirectURLAllowlist: in.Body.RedirectURLAllowlist})
		if err != nil {
			return nil, err
		}
		return &struct{ Body OAuthApp }{Body: appOut(a)}, nil
	})
	shared.Register(api, h.log, op("list-oauth-apps", http.MethodGet, "/oauth-apps", "List the organization's OAuth apps", "oauth-apps"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body []OAuthApp }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			apps, err := h.apps.List(ctx, p.OrganizationID)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []OAuthApp }{Body: make([]OAuthApp, 0, len(apps))}
			for _, a := range apps {
				out.Body = append(out.Body, appOut(a))
			}
			return out, nil
		})
	shared.Register(api, h.log, op("delete-oauth-app", http.MethodDelete, "/oauth-apps/{short_name}", "Remove the organization's OAuth app for a source", "oauth-apps"),
		func(ctx context.Context, in *struct {
			ShortName string `path:"short_name"`
		}) (*struct{}, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			return nil, h.apps.Delete(ctx, p.OrganizationID, in.ShortName)
		})
}
