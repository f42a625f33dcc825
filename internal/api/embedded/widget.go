package embedded

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
)

// The Connect widget's routes: what a scoped token's end user may see and
// do from the widget page. They take only a scoped (widget or Connect
// session) token.

// WidgetField is one input of a source's form.
type WidgetField struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Secret      bool   `json:"secret"`
	Pattern     string `json:"pattern,omitempty"`
	// In is where the value goes: "auth_fields" or "config".
	In string `json:"in"`
}

// WidgetSource is a card of the source grid.
type WidgetSource struct {
	ShortName   string `json:"short_name"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Category    string `json:"category"`
	// OAuth is true when the source connects through a consent popup; it is
	// offered only when the organization registered its OAuth app.
	OAuth bool `json:"oauth"`
	// Fields are the form's inputs: config fields, then (for sources
	// connected by key or custom fields) the auth fields.
	Fields []WidgetField `json:"fields"`
}

// WidgetSession is what the widget needs to draw itself.
type WidgetSession struct {
	WorkspaceID    string         `json:"workspace_id"`
	ExternalUserID string         `json:"external_user_id"`
	AllowedOrigin  string         `json:"allowed_origin"`
	RedirectURL    string         `json:"redirect_url,omitempty"`
	ExpiresAt      time.Time      `json:"expires_at"`
	Organization   WidgetBranding `json:"organization"`
	Sources        []WidgetSource `json:"sources"`
}

// WidgetBranding is the organization's white label.
type WidgetBranding struct {
	Name        string `json:"name"`
	AccentColor string `json:"accent_color,omitempty"`
	LogoURL     string `json:"logo_url,omitempty"`
}

// WidgetConnection is a connection as the end user sees it.
type WidgetConnection struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ShortName  string    `json:"short_name"`
	SourceName string    `json:"source_name"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

// WidgetResult answers a create or reconnect: the connection and, for an
// OAuth source, the one-time URL to open in the consent popup.
type WidgetResult struct {
	Connection WidgetConnection `json:"connection"`
	AuthURL    string           `json:"auth_url,omitempty"`
}

func widgetCaller(ctx context.Context) (emb.Caller, error) {
	c, err := caller(ctx)
	if err == nil && !c.Scoped() {
		err = apperr.Forbidden("This route needs a widget token")
	}
	return c, err
}

func (h *handlers) widgetConn(v connection.View) WidgetConnection {
	name := v.ShortName
	if src, err := h.Connections.Source(v.ShortName); err == nil {
		name = src.Name
	}
	return WidgetConnection{ID: v.ID, Name: v.Name, ShortName: v.ShortName, SourceName: name, Status: v.Status, CreatedAt: v.CreatedAt}
}

func widgetSource(src *catalog.Source, oauthReady bool) (WidgetSource, bool) {
	ws := WidgetSource{ShortName: src.ShortName, Name: src.Name, Description: src.Description, Category: "other", Fields: []WidgetField{}}
	if len(src.Labels) > 0 {
		ws.Category = src.Labels[0]
	}
	for _, f := range src.ConfigFields {
		ws.Fields = append(ws.Fields, WidgetField{Name: f.Name, Title: titleOr(f.Title, f.Name), Description: f.Description, Type: f.Type,
			Required: f.Required, Pattern: f.Pattern, In: "config"})
	}
	if _, ok := src.Method(catalog.AuthOAuth2); ok && oauthReady {
		ws.OAuth = true
		return ws, true
	}
	// The first method that takes fields (API key, basic, custom).
	for _, m := range src.Auth {
		if m.Type == catalog.AuthOAuth2 || len(m.Fields) == 0 {
			continue
		}
		for _, f := range m.Fields {
			ws.Fields = append(ws.Fields, WidgetField{Name: f.Name, Title: titleOr(f.Title, f.Name), Description: f.Description, Type: "string",
				Required: !f.Optional, Secret: f.Secret, Pattern: f.Pattern, In: "auth_fields"})
		}
		return ws, true
	}
	return ws, false
}

func titleOr(title, name string) string {
	if title != "" {
		return title
	}
	return name
}

func (h *handlers) widget(api huma.API) {
	wop := func(id, method, path, summary string) huma.Operation {
		o := op(id, method, path, summary)
		o.Tags = []string{"widget"}
		return o
	}
	shared.Register(api, h.log, wop("widget-session", http.MethodGet, "/api/v1/embedded/widget/session", "The widget's session: branding and the sources the end user may connect"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body WidgetSession }, error) {
			c, err := widgetCaller(ctx)
			if err != nil {
				return nil, err
			}
			org, err := h.Tenants.Organization(ctx, c.OrganizationID)
			if err != nil {
				return nil, err
			}
			apps, err := h.Apps.List(ctx, c.OrganizationID)
			if err != nil {
				return nil, err
			}
			ready := map[string]bool{}
			for _, a := range apps {
				ready[a.ShortName] = true
			}
			out := WidgetSession{WorkspaceID: c.WorkspaceID, ExternalUserID: c.ExternalUser, AllowedOrigin: c.AllowedOrigin,
				RedirectURL: c.Connect.RedirectURL, ExpiresAt: c.ExpiresAt, Sources: []WidgetSource{},
				Organization: WidgetBranding{Name: org.Name, AccentColor: org.Branding.AccentColor, LogoURL: org.Branding.LogoURL}}
			if org.Branding.DisplayName != "" {
				out.Organization.Name = org.Branding.DisplayName
			}
			for _, src := range h.Connections.Catalog().List() {
				if !c.SourceAllowed(src.ShortName) {
					continue
				}
				if ws, ok := widgetSource(src, ready[src.ShortName]); ok {
					out.Sources = append(out.Sources, ws)
				}
			}
			sort.Slice(out.Sources, func(i, j int) bool { return out.Sources[i].Name < out.Sources[j].Name })
			return &struct{ Body WidgetSession }{Body: out}, nil
		})

	shared.Register(api, h.log, wop("widget-list-connections", http.MethodGet, "/api/v1/embedded/widget/connections", "The end user's connections"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body map[string][]WidgetConnection }, error) {
			c, err := widgetCaller(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.Connections.ListIn(ctx, c.OrganizationID, "", c.WorkspaceID, 0, 1000)
			if err != nil {
				return nil, err
			}
			out := []WidgetConnection{}
			for _, v := range list {
				out = append(out, h.widgetConn(v))
			}
			return &struct{ Body map[string][]WidgetConnection }{Body: map[string][]WidgetConnection{"data": out}}, nil
		})

	create := wop("widget-create-connection", http.MethodPost, "/api/v1/embedded/widget/connections", "Connect a source: with its fields, or start its OAuth consent")
	create.Errors = append(create.Errors, http.StatusBadRequest)
	shared.Register(api, h.log, create, func(ctx context.Context, in *struct {
		Body struct {
			ShortName  string         `json:"short_name" minLength:"1" maxLength:"100"`
			Name       string         `json:"name,omitempty" maxLength:"255"`
			AuthFields map[string]any `json:"auth_fields,omitempty"`
			Config     map[string]any `json:"config,omitempty"`
		}
	}) (*struct{ Body WidgetResult }, error) {
		c, err := widgetCaller(ctx)
		if err != nil {
			return nil, err
		}
		src, err := h.Connections.Source(in.Body.ShortName)
		if err != nil {
			return nil, err
		}
		if err := c.AllowSource(src.ShortName); err != nil {
			return nil, err
		}
		name := in.Body.Name
		if name == "" {
			name = src.Name
		}
		ci := connection.CreateInput{Name: name, ShortName: src.ShortName, Collection: c.Connect.Collection, CollectionLoc: []any{"body", "collection"},
			WorkspaceID: c.WorkspaceID, Config: in.Body.Config, ConfigLoc: []any{"body", "config"}}
		if in.Body.AuthFields != nil {
			ci.Credentials = &connection.Credentials{Raw: in.Body.AuthFields, Loc: []any{"body", "auth_fields"}, Direct: true}
		} else {
			ci.RedirectURL = h.Connections.WidgetDoneURL()
		}
		v, err := h.Connections.Create(ctx, c.OrganizationID, ci)
		if err != nil {
			return nil, err
		}
		return &struct{ Body WidgetResult }{Body: WidgetResult{Connection: h.widgetConn(v), AuthURL: v.AuthURL}}, nil
	})

	re := wop("widget-reconnect", http.MethodPost, "/api/v1/embedded/widget/connections/{id}/reconnect", "Reconnect: new fields, or a new OAuth consent")
	re.Errors = append(re.Errors, http.StatusBadRequest)
	shared.Register(api, h.log, re, func(ctx context.Context, in *struct {
		ID   string `path:"id"`
		Body struct {
			AuthFields map[string]any `json:"auth_fields,omitempty"`
		}
	}) (*struct{ Body WidgetResult }, error) {
		if _, err := widgetCaller(ctx); err != nil {
			return nil, err
		}
		c, cur, err := h.connectionOf(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if err := c.AllowSource(cur.ShortName); err != nil {
			return nil, err
		}
		var v connection.View
		if in.Body.AuthFields != nil {
			v, err = h.Connections.Update(ctx, c.OrganizationID, in.ID, connection.UpdateInput{
				Credentials: &connection.Credentials{Raw: in.Body.AuthFields, Loc: []any{"body", "auth_fields"}, Direct: true}})
		} else {
			v, err = h.Connections.Reauthorize(ctx, c.OrganizationID, in.ID, h.Connections.WidgetDoneURL())
		}
		if err != nil {
			return nil, err
		}
		return &struct{ Body WidgetResult }{Body: WidgetResult{Connection: h.widgetConn(v), AuthURL: v.AuthURL}}, nil
	})
}
