package native

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/execute"
)

// ExecuteBody is an execute call.
type ExecuteBody struct {
	Entity string         `json:"entity" minLength:"1" doc:"e.g. contacts"`
	Action string         `json:"action" minLength:"1" enum:"list,get,create,update,delete,search"`
	Params map[string]any `json:"params,omitempty" doc:"Action params; 'cursor' continues a list"`
}

// ExecuteResult is an execute answer.
type ExecuteResult struct {
	Result            any               `json:"result"`
	ConnectorMetadata ConnectorMetadata `json:"connector_metadata"`
}

// ConnectorMetadata carries paging.
type ConnectorMetadata struct {
	Pagination struct {
		Cursor *string `json:"cursor"`
	} `json:"pagination"`
}

// ExecuteOut builds the answer (shared with the embedded dialect).
func ExecuteOut(r execute.Result) ExecuteResult {
	out := ExecuteResult{Result: r.Result}
	out.ConnectorMetadata.Pagination.Cursor = r.Cursor
	return out
}

// RegisterExecute adds the execute routes of the native dialect.
func RegisterExecute(api huma.API, eng *execute.Engine, h *Handlers) {
	ex := op("execute-source-connection", http.MethodPost, "/source-connections/{id}/execute", "Run an entity action against the provider's API", "execute")
	ex.Errors = append(ex.Errors, http.StatusTooManyRequests, http.StatusBadGateway)
	shared.Register(api, h.log, ex, func(ctx context.Context, in *struct {
		ID   string `path:"id"`
		Body ExecuteBody
	}) (*struct{ Body ExecuteResult }, error) {
		p, err := callerFor(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		r, err := eng.Execute(ctx, p.OrganizationID, in.ID, execute.Request{Entity: in.Body.Entity, Action: in.Body.Action, Params: in.Body.Params})
		if err != nil {
			return nil, err
		}
		return &struct{ Body ExecuteResult }{Body: ExecuteOut(r)}, nil
	})
	shared.Register(api, h.log, op("list-source-connection-entities", http.MethodGet, "/source-connections/{id}/entities", "What a connection can execute: entity → actions", "execute"),
		func(ctx context.Context, in *idPath) (*struct{ Body map[string][]string }, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			m, err := eng.Entities(ctx, p.OrganizationID, in.ID)
			if err != nil {
				return nil, err
			}
			return &struct{ Body map[string][]string }{Body: m}, nil
		})
}
