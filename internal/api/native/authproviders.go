package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/authprovider"
)

// AuthProvider is a provider account as clients see it: never a secret.
type AuthProvider struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	ReadableID     string    `json:"readable_id"`
	ShortName      string    `json:"short_name"`
	MaskedClientID string    `json:"masked_client_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	ModifiedAt     time.Time `json:"modified_at"`
}

func providerOut(v authprovider.View) AuthProvider {
	return AuthProvider{ID: v.ID, Name: v.Name, ReadableID: v.ReadableID, ShortName: v.ShortName, MaskedClientID: v.MaskedClientID,
		CreatedAt: v.CreatedAt, ModifiedAt: v.ModifiedAt}
}

type providerOutput struct{ Body AuthProvider }

type createProviderInput struct {
	Body struct {
		Name       string         `json:"name" doc:"Display name"`
		ReadableID string         `json:"readable_id,omitempty" doc:"Generated from the name when absent"`
		ShortName  string         `json:"short_name" enum:"pipedream,composio"`
		AuthFields map[string]any `json:"auth_fields" doc:"pipedream: {client_id, client_secret}; composio: {api_key}"`
	}
}

type providerPath struct {
	ReadableID string `path:"readable_id"`
}

type updateProviderInput struct {
	ReadableID string `path:"readable_id"`
	Body       struct {
		Name       string         `json:"name,omitempty"`
		AuthFields map[string]any `json:"auth_fields"`
	}
}

func (h *Handlers) registerAuthProviders(api huma.API) {
	create := op("create-auth-provider", http.MethodPost, "/auth-providers", "Connect an auth provider account (Pipedream Connect, Composio)", "auth-providers")
	create.Description = "The credentials are checked with the provider (Pipedream: a client_credentials token request; Composio: an authenticated list call) and stored encrypted."
	shared.Register(api, h.log, create, func(ctx context.Context, in *createProviderInput) (*providerOutput, error) {
		p, err := shared.Principal(ctx)
		if err != nil {
			return nil, err
		}
		v, err := h.providers.Create(ctx, p.OrganizationID, authprovider.CreateInput{Name: in.Body.Name, ReadableID: in.Body.ReadableID,
			ShortName: in.Body.ShortName, AuthFields: in.Body.AuthFields})
		if err != nil {
			return nil, err
		}
		return &providerOutput{Body: providerOut(v)}, nil
	})
	shared.Register(api, h.log, op("list-auth-providers", http.MethodGet, "/auth-providers", "List the organization's auth provider accounts", "auth-providers"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body []AuthProvider }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.providers.List(ctx, p.OrganizationID)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []AuthProvider }{Body: make([]AuthProvider, 0, len(list))}
			for _, v := range list {
				out.Body = append(out.Body, providerOut(v))
			}
			return out, nil
		})
	shared.Register(api, h.log, op("auth-provider-catalog", http.MethodGet, "/auth-providers/catalog", "The provider kinds with their auth and config fields", "auth-providers"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body []authprovider.Kind }, error) {
			return &struct{ Body []authprovider.Kind }{Body: authprovider.Kinds}, nil
		})
	shared.Register(api, h.log, op("get-auth-provider", http.MethodGet, "/auth-providers/{readable_id}", "Get an auth provider account", "auth-providers"),
		func(ctx context.Context, in *providerPath) (*providerOutput, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			v, err := h.providers.Get(ctx, p.OrganizationID, in.ReadableID)
			if err != nil {
				return nil, err
			}
			return &providerOutput{Body: providerOut(v)}, nil
		})
	shared.Register(api, h.log, op("update-auth-provider", http.MethodPut, "/auth-providers/{readable_id}", "Replace an auth provider account's credentials (checked again)", "auth-providers"),
		func(ctx context.Context, in *updateProviderInput) (*providerOutput, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			v, err := h.providers.Update(ctx, p.OrganizationID, in.ReadableID, in.Body.Name, in.Body.AuthFields)
			if err != nil {
				return nil, err
			}
			return &providerOutput{Body: providerOut(v)}, nil
		})
	del := op("delete-auth-provider", http.MethodDelete, "/auth-providers/{readable_id}", "Delete an auth provider account no connection uses", "auth-providers")
	del.Errors = append(del.Errors, http.StatusConflict)
	shared.Register(api, h.log, del, func(ctx context.Context, in *providerPath) (*providerOutput, error) {
		p, err := shared.Principal(ctx)
		if err != nil {
			return nil, err
		}
		v, err := h.providers.Delete(ctx, p.OrganizationID, in.ReadableID)
		if err != nil {
			return nil, err
		}
		return &providerOutput{Body: providerOut(v)}, nil
	})
}
