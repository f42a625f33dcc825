package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/tenant"
)

// ConnectSession is a widget session for one end user.
type ConnectSession struct {
	Token     string    `json:"token" doc:"Pass to Valetkey.open({token}) of /embed.js; short-lived"`
	URL       string    `json:"url" doc:"Opens the widget as a page of its own (the token rides in the fragment, never sent to a server)"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Branding is an organization's white label as clients see it.
type Branding struct {
	DisplayName string `json:"display_name,omitempty"`
	AccentColor string `json:"accent_color,omitempty" doc:"#rrggbb"`
	LogoURL     string `json:"logo_url,omitempty" doc:"https URL or data:image/...;base64, (at most 64 KiB)"`
}

// RegisterConnect adds POST /connect/sessions and the organization's
// white-label settings.
func RegisterConnect(api huma.API, sessions *embedded.Service, tenants *tenant.Service, h *Handlers) {
	shared.Register(api, h.log, op("create-connect-session", http.MethodPost, "/connect/sessions", "Open the Connect widget for one end user", "connect"),
		func(ctx context.Context, in *struct {
			Body struct {
				Collection     string   `json:"collection,omitempty" doc:"Readable id of the collection new connections go to"`
				ExternalUserID string   `json:"external_user_id,omitempty" maxLength:"255" doc:"Your id of the end user; their workspace is created on first use"`
				AllowedSources []string `json:"allowed_sources,omitempty" doc:"Short names offered (all when empty)"`
				RedirectURL    string   `json:"redirect_url,omitempty" doc:"Where a top-level widget page sends the browser when done"`
				AllowedOrigin  string   `json:"allowed_origin,omitempty" doc:"The origin that may embed the widget and receive its events"`
			}
		}) (*struct{ Body ConnectSession }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			s, err := sessions.ConnectSession(ctx, embedded.Caller{OrganizationID: p.OrganizationID, Subject: p.Actor()}, embedded.SessionInput{
				Collection: in.Body.Collection, ExternalUserID: in.Body.ExternalUserID, AllowedSources: in.Body.AllowedSources,
				RedirectURL: in.Body.RedirectURL, AllowedOrigin: in.Body.AllowedOrigin}, h.conns)
			if err != nil {
				return nil, err
			}
			return &struct{ Body ConnectSession }{Body: ConnectSession{Token: s.Token, URL: s.URL, ExpiresAt: s.ExpiresAt}}, nil
		})
	shared.Register(api, h.log, op("get-branding", http.MethodGet, "/organization/branding", "The widget's white label: display name, accent colour, logo", "connect"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body Branding }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			o, err := tenants.Organization(ctx, p.OrganizationID)
			if err != nil {
				return nil, err
			}
			b := o.Branding
			return &struct{ Body Branding }{Body: Branding{DisplayName: b.DisplayName, AccentColor: b.AccentColor, LogoURL: b.LogoURL}}, nil
		})
	shared.Register(api, h.log, op("put-branding", http.MethodPut, "/organization/branding", "Set the widget's white label", "connect"),
		func(ctx context.Context, in *struct{ Body Branding }) (*struct{ Body Branding }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			b, err := tenants.SetBranding(ctx, p.OrganizationID, store.Branding{DisplayName: in.Body.DisplayName, AccentColor: in.Body.AccentColor, LogoURL: in.Body.LogoURL})
			if err != nil {
				return nil, err
			}
			return &struct{ Body Branding }{Body: Branding{DisplayName: b.DisplayName, AccentColor: b.AccentColor, LogoURL: b.LogoURL}}, nil
		})
}
