package embedded

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/store"
)

type templateOut struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ConnectorType        string         `json:"connector_type"`
	SourceDefinitionID   string         `json:"source_definition_id"`
	PartialDefaultConfig map[string]any `json:"partial_default_config"`
	CreatedAt            time.Time      `json:"created_at"`
	UpdatedAt            time.Time      `json:"updated_at"`
}

func tmplOut(t store.SourceTemplate) templateOut {
	cfg := map[string]any{}
	_ = json.Unmarshal(t.PartialDefaultConfig, &cfg)
	return templateOut{ID: t.ID, Name: t.Name, ConnectorType: t.ShortName, SourceDefinitionID: definitionID(t.ShortName),
		PartialDefaultConfig: cfg, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

type sourceOut struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	WorkspaceID    string         `json:"workspace_id"`
	SourceTemplate sourceTemplate `json:"source_template"`
	Status         string         `json:"status"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

func (h *handlers) srcOut(v connection.View) sourceOut {
	name := v.ShortName
	if src, err := h.Connections.Source(v.ShortName); err == nil {
		name = src.Name
	}
	return sourceOut{ID: v.ID, Name: v.Name, WorkspaceID: v.WorkspaceID, Status: v.Status, CreatedAt: v.CreatedAt, UpdatedAt: v.ModifiedAt,
		SourceTemplate: sourceTemplate{ID: definitionID(v.ShortName), Name: name, ConnectorType: v.ShortName}}
}

// workspaceByID checks a workspace id against the caller: a scoped token
// only its own; an operator any of its organization's.
func (h *handlers) workspaceByID(ctx context.Context, c emb.Caller, id string) (string, error) {
	if c.Scoped() {
		if id != "" && id != c.WorkspaceID {
			return "", apperr.NotFound("Workspace not found")
		}
		return c.WorkspaceID, nil
	}
	w, err := h.Embedded.GetWorkspace(ctx, c.OrganizationID, id)
	return w.ID, err
}

func (h *handlers) sources(api huma.API) {
	shared.Register(api, h.log, op("embedded-create-template", http.MethodPost, "/api/v1/integrations/templates/sources", "Create a source template (operator only)"),
		func(ctx context.Context, in *struct {
			Body struct {
				Name                 string         `json:"name" minLength:"1"`
				ConnectorType        string         `json:"connector_type" minLength:"1"`
				PartialDefaultConfig map[string]any `json:"partial_default_config,omitempty"`
			}
		}) (*struct{ Body templateOut }, error) {
			c, err := operator(ctx)
			if err != nil {
				return nil, err
			}
			t, err := h.Connections.CreateTemplate(ctx, c.OrganizationID, in.Body.Name, in.Body.ConnectorType, in.Body.PartialDefaultConfig)
			if err != nil {
				return nil, err
			}
			return &struct{ Body templateOut }{Body: tmplOut(t)}, nil
		})
	shared.Register(api, h.log, op("embedded-list-templates", http.MethodGet, "/api/v1/integrations/templates/sources", "List source templates"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body map[string][]templateOut }, error) {
			c, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.Connections.ListTemplates(ctx, c.OrganizationID)
			if err != nil {
				return nil, err
			}
			out := []templateOut{}
			for _, t := range list {
				out = append(out, tmplOut(t))
			}
			return &struct{ Body map[string][]templateOut }{Body: map[string][]templateOut{"data": out}}, nil
		})
	shared.Register(api, h.log, op("embedded-delete-template", http.MethodDelete, "/api/v1/integrations/templates/sources/{id}", "Delete a source template (operator only)"),
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{}, error) {
			c, err := operator(ctx)
			if err != nil {
				return nil, err
			}
			return nil, h.Connections.DeleteTemplate(ctx, c.OrganizationID, in.ID)
		})

	create := op("embedded-create-source", http.MethodPost, "/api/v1/integrations/sources", "Create a source in a workspace from a template")
	shared.Register(api, h.log, create, func(ctx context.Context, in *struct {
		Body struct {
			WorkspaceID             string         `json:"workspace_id" minLength:"1"`
			SourceConfigTemplateID  string         `json:"source_config_template_id" minLength:"1"`
			ConnectionConfiguration map[string]any `json:"connection_configuration"`
			Name                    string         `json:"name,omitempty"`
		}
	}) (*struct{ Body sourceOut }, error) {
		c, err := caller(ctx)
		if err != nil {
			return nil, err
		}
		ws, err := h.workspaceByID(ctx, c, in.Body.WorkspaceID)
		if err != nil {
			return nil, err
		}
		v, err := h.Connections.CreateFromTemplate(ctx, c.OrganizationID, ws, in.Body.SourceConfigTemplateID, in.Body.Name, in.Body.ConnectionConfiguration)
		if err != nil {
			return nil, err
		}
		return &struct{ Body sourceOut }{Body: h.srcOut(v)}, nil
	})
	shared.Register(api, h.log, op("embedded-list-sources", http.MethodGet, "/api/v1/integrations/sources", "List a workspace's sources"),
		func(ctx context.Context, in *struct {
			WorkspaceID string `query:"workspace_id"`
		}) (*struct{ Body map[string][]sourceOut }, error) {
			c, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			ws, err := h.workspaceByID(ctx, c, in.WorkspaceID)
			if err != nil {
				return nil, err
			}
			list, err := h.Connections.ListIn(ctx, c.OrganizationID, "", ws, 0, 1000)
			if err != nil {
				return nil, err
			}
			out := []sourceOut{}
			for _, v := range list {
				out = append(out, h.srcOut(v))
			}
			return &struct{ Body map[string][]sourceOut }{Body: map[string][]sourceOut{"data": out}}, nil
		})
	shared.Register(api, h.log, op("embedded-get-source", http.MethodGet, "/api/v1/integrations/sources/{id}", "Get a source"),
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{ Body sourceOut }, error) {
			c, err := h.connectionCaller(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			v, err := h.Connections.Get(ctx, c.OrganizationID, in.ID)
			if err != nil {
				return nil, err
			}
			return &struct{ Body sourceOut }{Body: h.srcOut(v)}, nil
		})
	shared.Register(api, h.log, op("embedded-delete-source", http.MethodDelete, "/api/v1/integrations/sources/{id}", "Delete a source and erase its credential"),
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{}, error) {
			c, err := h.connectionCaller(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			_, err = h.Connections.Delete(ctx, c.OrganizationID, in.ID)
			return nil, err
		})
}
