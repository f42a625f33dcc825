// Package embedded is the Airbyte Embedded-style HTTP dialect under /api/v1:
// operator and workspace-scoped bearer tokens, widget tokens, OAuth
// credential overrides, the server-side OAuth flow with secret_id, and
// execute. It only translates between that wire shape and the domain
// services shared with the native dialect.
package embedded

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/api/native"
	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/audit"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/execute"
	"github.com/valetkey/valetkey/internal/jwtauth"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/vault"
)

// Services are what the dialect serves.
type Services struct {
	Embedded    *emb.Service
	Connections *connection.Service
	Apps        *oauthapp.Service
	Execute     *execute.Engine
	Issuer      *jwtauth.Issuer
	Tenants     *tenant.Service
}

type handlers struct {
	Services
	log *slog.Logger
}

// Middleware authenticates /api/v1 requests (but the token route) with a
// bearer API key, operator JWT or scoped JWT, and enforces a scoped
// token's allowed origin for CORS.
func Middleware(e *emb.Service) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/api/v1/") || r.URL.Path == "/api/v1/account/applications/token" {
				next.ServeHTTP(w, r)
				return
			}
			origin := r.Header.Get("Origin")
			if r.Method == http.MethodOptions && origin != "" {
				// Preflight: the actual request is checked against its token.
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				h.Add("Vary", "Origin")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			bearer := ""
			if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
				bearer = strings.TrimSpace(a[7:])
			}
			c, err := e.Authenticate(r.Context(), bearer)
			if err != nil {
				shared.WriteAuthFailure(w, err)
				return
			}
			if origin != "" {
				w.Header().Add("Vary", "Origin")
				if c.Scoped() && origin != e.PublicOrigin() { // the widget runs on Valetkey's own origin
					if origin != c.AllowedOrigin {
						shared.WriteDetail(w, http.StatusForbidden, "Origin not allowed for this token")
						return
					}
					w.Header().Set("Access-Control-Allow-Origin", origin)
				}
			}
			actor := c.Subject
			if c.Scoped() {
				actor = "workspace:" + c.WorkspaceID
			}
			ctx := audit.WithActor(shared.WithCaller(r.Context(), c), audit.Actor{Name: actor, RemoteAddr: shared.RemoteAddr(r.Context())})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func caller(ctx context.Context) (emb.Caller, error) {
	c, ok := shared.CallerFrom(ctx).(emb.Caller)
	if !ok {
		return c, apperr.Unauthorized("Missing bearer token")
	}
	return c, nil
}

func operator(ctx context.Context) (emb.Caller, error) {
	c, err := caller(ctx)
	if err == nil && c.Scoped() {
		err = apperr.Forbidden("This route needs an operator token")
	}
	return c, err
}

var bearer = []map[string][]string{{"bearer": {}}}

func op(id, method, path, summary string) huma.Operation {
	return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, Tags: []string{"embedded"}, Security: bearer,
		Errors: []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity}}
}

// Register adds the /api/v1 routes.
func Register(api huma.API, svc Services, log *slog.Logger) {
	h := &handlers{Services: svc, log: log}
	h.tokens(api)
	h.oauth(api)
	h.connectors(api)
	h.sources(api)
	h.widget(api)
}

func (h *handlers) tokens(api huma.API) {
	tok := op("embedded-application-token", http.MethodPost, "/api/v1/account/applications/token", "Exchange application credentials for an operator token (15 min)")
	tok.Security = nil
	shared.Register(api, h.log, tok, func(ctx context.Context, in *struct {
		Body struct {
			ClientID     string `json:"client_id" minLength:"1"`
			ClientSecret string `json:"client_secret" minLength:"1"`
		}
	}) (*struct{ Body map[string]any }, error) {
		t, ttl, err := h.Embedded.OperatorToken(ctx, in.Body.ClientID, vault.NewSecret(in.Body.ClientSecret))
		if err != nil {
			return nil, err
		}
		return &struct{ Body map[string]any }{Body: map[string]any{"access_token": t, "token_type": "Bearer", "expires_in": int(ttl.Seconds())}}, nil
	})

	shared.Register(api, h.log, op("embedded-widget-token", http.MethodPost, "/api/v1/embedded/widget_token", "Mint a workspace-scoped token for an end user (operator only)"),
		func(ctx context.Context, in *struct {
			Body struct {
				ExternalUserID string `json:"externalUserId" minLength:"1"`
				OrganizationID string `json:"organizationId,omitempty"`
				AllowedOrigin  string `json:"allowedOrigin" minLength:"1"`
			}
		}) (*struct{ Body map[string]string }, error) {
			c, err := operator(ctx)
			if err != nil {
				return nil, err
			}
			t, err := h.Embedded.WidgetToken(ctx, c, in.Body.ExternalUserID, in.Body.OrganizationID, in.Body.AllowedOrigin)
			if err != nil {
				return nil, err
			}
			return &struct{ Body map[string]string }{Body: map[string]string{"token": t}}, nil
		})

	type workspace struct {
		ID             string    `json:"workspace_id"`
		Name           string    `json:"name"`
		ExternalUserID string    `json:"external_user_id"`
		OrganizationID string    `json:"organization_id"`
		CreatedAt      time.Time `json:"created_at"`
	}
	shared.Register(api, h.log, op("embedded-list-workspaces", http.MethodGet, "/api/v1/workspaces", "List end-user workspaces (operator only)"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body map[string][]workspace }, error) {
			c, err := operator(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.Embedded.ListWorkspaces(ctx, c.OrganizationID)
			if err != nil {
				return nil, err
			}
			out := []workspace{}
			for _, w := range list {
				out = append(out, workspace{ID: w.ID, Name: w.ExternalUserID, ExternalUserID: w.ExternalUserID, OrganizationID: w.OrganizationID, CreatedAt: w.CreatedAt})
			}
			return &struct{ Body map[string][]workspace }{Body: map[string][]workspace{"data": out}}, nil
		})
}

// source finds a connector type case-insensitively.
func (h *handlers) source(connectorType string) (*catalog.Source, error) {
	return h.Connections.Source(strings.ToLower(strings.TrimSpace(connectorType)))
}

var definitionNamespace = uuid.MustParse("6f1c2a52-5a3e-4c1e-9a55-6b2f0d1e7a10")

func definitionID(short string) string {
	return uuid.NewSHA1(definitionNamespace, []byte(short)).String()
}

// workspaceFor resolves the workspace a request acts in: a scoped token's
// own (its external user must match when one is named), or for an operator
// the named external user's.
func (h *handlers) workspaceFor(ctx context.Context, c emb.Caller, externalUserID string, create bool) (string, error) {
	if c.Scoped() {
		if externalUserID != "" && externalUserID != c.ExternalUser {
			return "", apperr.NotFound("Workspace not found")
		}
		return c.WorkspaceID, nil
	}
	if create {
		w, err := h.Embedded.Workspace(ctx, c.OrganizationID, externalUserID)
		return w.ID, err
	}
	w, err := h.Embedded.ExistingWorkspace(ctx, c.OrganizationID, externalUserID)
	return w.ID, err
}

// target is who acts, on which connector, in which workspace.
type target struct {
	caller    emb.Caller
	src       *catalog.Source
	workspace string
}

// resolve reads the caller, the connector type and the workspace of a
// request that names an external user.
func (h *handlers) resolve(ctx context.Context, connectorType, externalUserID string, create bool) (target, error) {
	c, err := caller(ctx)
	if err != nil {
		return target{}, err
	}
	src, err := h.source(connectorType)
	if err != nil {
		return target{}, err
	}
	if err := c.AllowSource(src.ShortName); err != nil {
		return target{}, err
	}
	ws, err := h.workspaceFor(ctx, c, externalUserID, create)
	return target{caller: c, src: src, workspace: ws}, err
}

// Execute reuses the native dialect's result shape.
var executeOut = native.ExecuteOut
