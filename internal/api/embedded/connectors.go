package embedded

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/native"
	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/execute"
)

type sourceTemplate struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	ConnectorType string `json:"connector_type"`
}

type connectorOut struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	SourceTemplate    sourceTemplate `json:"source_template"`
	ReplicationConfig map[string]any `json:"replication_config"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

func (h *handlers) connectors(api huma.API) {
	create := op("embedded-create-connector", http.MethodPost, "/api/v1/integrations/connectors", "Create a connector from a server-side OAuth secret_id")
	create.DefaultStatus = http.StatusCreated
	shared.Register(api, h.log, create, func(ctx context.Context, in *struct {
		Body struct {
			ExternalUserID string `json:"external_user_id" minLength:"1"`
			ConnectorType  string `json:"connector_type" minLength:"1"`
			Name           string `json:"name,omitempty"`
			SecretID       string `json:"server_side_oauth_secret_id" minLength:"1"`
		}
	}) (*struct{ Body connectorOut }, error) {
		tg, err := h.resolve(ctx, in.Body.ConnectorType, in.Body.ExternalUserID, false)
		if err != nil {
			return nil, err
		}
		c, src, ws := tg.caller, tg.src, tg.workspace
		v, err := h.Connections.CreateFromSecret(ctx, c.OrganizationID, ws, src.ShortName, in.Body.Name, in.Body.SecretID)
		if err != nil {
			return nil, err
		}
		return &struct{ Body connectorOut }{Body: connectorOut{ID: v.ID, Name: v.Name,
			SourceTemplate:    sourceTemplate{ID: definitionID(src.ShortName), Name: src.Name, ConnectorType: src.ShortName},
			ReplicationConfig: map[string]any{}, CreatedAt: v.CreatedAt, UpdatedAt: v.ModifiedAt}}, nil
	})

	ex := op("embedded-execute", http.MethodPost, "/api/v1/connectors/sources/{id}/execute", "Run an entity action against the provider's API")
	ex.Errors = append(ex.Errors, http.StatusTooManyRequests, http.StatusBadGateway)
	shared.Register(api, h.log, ex, func(ctx context.Context, in *struct {
		ID   string `path:"id"`
		Body native.ExecuteBody
	}) (*struct{ Body native.ExecuteResult }, error) {
		c, err := h.connectionCaller(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		r, err := h.Execute.Execute(ctx, c.OrganizationID, in.ID, execute.Request{Entity: in.Body.Entity, Action: in.Body.Action, Params: in.Body.Params})
		if err != nil {
			return nil, err
		}
		return &struct{ Body native.ExecuteResult }{Body: executeOut(r)}, nil
	})
	shared.Register(api, h.log, op("embedded-entities", http.MethodGet, "/api/v1/connectors/sources/{id}/entities", "What a connector can execute"),
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{ Body map[string][]string }, error) {
			c, err := h.connectionCaller(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			m, err := h.Execute.Entities(ctx, c.OrganizationID, in.ID)
			if err != nil {
				return nil, err
			}
			return &struct{ Body map[string][]string }{Body: m}, nil
		})
}

// connectionCaller checks the connection is the caller's: in its
// organization and, for a scoped token, in its workspace (else 404).
func (h *handlers) connectionCaller(ctx context.Context, id string) (emb.Caller, error) {
	c, _, err := h.connectionOf(ctx, id)
	return c, err
}

// connectionOf is connectionCaller that also returns the connection.
func (h *handlers) connectionOf(ctx context.Context, id string) (emb.Caller, connection.View, error) {
	c, err := caller(ctx)
	if err != nil {
		return c, connection.View{}, err
	}
	v, err := h.Connections.Get(ctx, c.OrganizationID, id)
	if err != nil {
		return c, v, err
	}
	if c.Scoped() && v.WorkspaceID != c.WorkspaceID {
		return c, connection.View{}, apperr.NotFound("Source connection '%s' not found", id)
	}
	return c, v, nil
}
