package native

import (
	"context"
	"github.com/danielgtaylor/huma/v2"
	"net/http"
	"time"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/store"
)

// Collection is a collection as clients see it.
type Collection struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	ReadableID         string    `json:"readable_id"`
	OrganizationID     string    `json:"organization_id"`
	VectorSize         int       `json:"vector_size" doc:"Always 0: Valetkey indexes records for full-text search, not embeddings"`
	EmbeddingModelName string    `json:"embedding_model_name"`
	Status             string    `json:"status" enum:"ACTIVE,NEEDS SOURCE,ERROR"`
	CreatedAt          time.Time `json:"created_at"`
	ModifiedAt         time.Time `json:"modified_at"`
}

func (h *Handlers) collectionOut(ctx context.Context, c store.Collection) (Collection, error) {
	has, err := h.conns.HasConnections(ctx, c)
	status := "NEEDS SOURCE"
	if has {
		status = "ACTIVE"
	}
	return Collection{ID: c.ID, Name: c.Name, ReadableID: c.ReadableID, OrganizationID: c.OrganizationID,
		EmbeddingModelName: "none", Status: status, CreatedAt: c.CreatedAt, ModifiedAt: c.ModifiedAt}, err
}

type collectionOutput struct{ Body Collection }

type createCollectionInput struct {
	Body struct {
		Name       string `json:"name" maxLength:"64" doc:"Display name"`
		ReadableID string `json:"readable_id,omitempty" doc:"Lowercase letters, digits and hyphens; generated from the name when absent"`
	}
}

type readableIDPath struct {
	ReadableID string `path:"readable_id"`
}

func (h *Handlers) registerCollections(api huma.API) {
	shared.Register(api, h.log, op("create-collection", http.MethodPost, "/collections", "Create a collection", "collections"),
		func(ctx context.Context, in *createCollectionInput) (*collectionOutput, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			c, err := h.conns.CreateCollection(ctx, p.OrganizationID, in.Body.Name, in.Body.ReadableID)
			if err != nil {
				return nil, err
			}
			out, err := h.collectionOut(ctx, c)
			return &collectionOutput{Body: out}, err
		})

	shared.Register(api, h.log, op("list-collections", http.MethodGet, "/collections", "List collections", "collections"),
		func(ctx context.Context, in *Paging) (*struct{ Body []Collection }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.conns.ListCollections(ctx, p.OrganizationID, in.Skip, in.Limit)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []Collection }{Body: make([]Collection, 0, len(list))}
			for _, c := range list {
				v, err := h.collectionOut(ctx, c)
				if err != nil {
					return nil, err
				}
				out.Body = append(out.Body, v)
			}
			return out, nil
		})

	shared.Register(api, h.log, op("get-collection", http.MethodGet, "/collections/{readable_id}", "Get a collection", "collections"),
		func(ctx context.Context, in *readableIDPath) (*collectionOutput, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			c, err := h.conns.GetCollection(ctx, p.OrganizationID, in.ReadableID)
			if err != nil {
				return nil, err
			}
			out, err := h.collectionOut(ctx, c)
			return &collectionOutput{Body: out}, err
		})

	shared.Register(api, h.log, op("delete-collection", http.MethodDelete, "/collections/{readable_id}",
		"Delete a collection with its connections and their credentials", "collections"),
		func(ctx context.Context, in *readableIDPath) (*collectionOutput, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			c, err := h.conns.GetCollection(ctx, p.OrganizationID, in.ReadableID)
			if err != nil {
				return nil, err
			}
			out, err := h.collectionOut(ctx, c) // the state being deleted
			if err != nil {
				return nil, err
			}
			if _, err := h.conns.DeleteCollection(ctx, p.OrganizationID, in.ReadableID); err != nil {
				return nil, err
			}
			return &collectionOutput{Body: out}, nil
		})
}
