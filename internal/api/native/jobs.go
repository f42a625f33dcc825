package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/jobs"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Job is a sync job as clients see it.
type Job struct {
	ID                 string     `json:"id"`
	SourceConnectionID string     `json:"source_connection_id"`
	Status             string     `json:"status" enum:"created,pending,running,completed,failed,cancelling,cancelled"`
	StartedAt          *time.Time `json:"started_at"`
	CompletedAt        *time.Time `json:"completed_at"`
	DurationSeconds    *float64   `json:"duration_seconds"`
	EntitiesInserted   int        `json:"entities_inserted"`
	EntitiesUpdated    int        `json:"entities_updated"`
	EntitiesDeleted    int        `json:"entities_deleted"`
	EntitiesKept       int        `json:"entities_kept"`
	EntitiesFailed     int        `json:"entities_failed"`
	Error              string     `json:"error,omitempty"`
	ErrorCategory      string     `json:"error_category,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
}

// JobOut renders a job.
func JobOut(j store.SyncJob) Job {
	out := Job{ID: j.ID, SourceConnectionID: j.SourceConnectionID, Status: j.Status, StartedAt: j.StartedAt, CompletedAt: j.CompletedAt,
		EntitiesInserted: j.Inserted, EntitiesUpdated: j.Updated, EntitiesDeleted: j.Deleted, EntitiesKept: j.Kept, EntitiesFailed: j.Failed,
		Error: j.Error, ErrorCategory: j.ErrorCategory, CreatedAt: j.CreatedAt}
	if j.StartedAt != nil {
		end := time.Now()
		if j.CompletedAt != nil {
			end = *j.CompletedAt
		}
		d := end.Sub(*j.StartedAt).Seconds()
		out.DurationSeconds = &d
	}
	return out
}

// SearchHit is a search result.
type SearchHit struct {
	Source             string  `json:"source"`
	EntityType         string  `json:"entity_type"`
	UpstreamID         string  `json:"upstream_id"`
	SourceConnectionID string  `json:"source_connection_id"`
	Title              string  `json:"title"`
	Snippet            string  `json:"snippet"`
	Score              float64 `json:"score"`
}

type jobPath struct {
	ID    string `path:"id"`
	JobID string `path:"job_id"`
}

// RegisterJobs adds the sync job and search routes.
func RegisterJobs(api huma.API, svc *jobs.Service, h *Handlers) {
	run := op("run-source-connection", http.MethodPost, "/source-connections/{id}/run", "Run a sync now, optionally with a one-off access token", "jobs")
	run.Description = "An access_token in the body is used for this run only: never refreshed, never stored (kept sealed in the job until it ends); OAuth2 sources only."
	run.Errors = append(run.Errors, http.StatusConflict, http.StatusBadRequest)
	shared.Register(api, h.log, run, func(ctx context.Context, in *struct {
		ID            string `path:"id"`
		ForceFullSync bool   `query:"force_full_sync"`
		Body          *struct {
			AccessToken string `json:"access_token,omitempty"`
		}
	}) (*struct{ Body Job }, error) {
		p, err := callerFor(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		var override vault.Secret
		if in.Body != nil {
			override = vault.NewSecret(in.Body.AccessToken)
		}
		j, err := svc.Run(ctx, p.OrganizationID, in.ID, in.ForceFullSync, override)
		if err != nil {
			return nil, err
		}
		return &struct{ Body Job }{Body: JobOut(j)}, nil
	})
	shared.Register(api, h.log, op("list-source-connection-jobs", http.MethodGet, "/source-connections/{id}/jobs", "List a connection's sync jobs", "jobs"),
		func(ctx context.Context, in *struct {
			ID    string `path:"id"`
			Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*struct{ Body []Job }, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			list, err := svc.List(ctx, p.OrganizationID, in.ID, in.Limit)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []Job }{Body: []Job{}}
			for _, j := range list {
				out.Body = append(out.Body, JobOut(j))
			}
			return out, nil
		})
	shared.Register(api, h.log, op("get-source-connection-job", http.MethodGet, "/source-connections/{id}/jobs/{job_id}", "Get a sync job (live counts while running)", "jobs"),
		func(ctx context.Context, in *jobPath) (*struct{ Body Job }, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			j, err := svc.Get(ctx, p.OrganizationID, in.ID, in.JobID)
			if err != nil {
				return nil, err
			}
			return &struct{ Body Job }{Body: JobOut(j)}, nil
		})
	shared.Register(api, h.log, op("cancel-source-connection-job", http.MethodPost, "/source-connections/{id}/jobs/{job_id}/cancel", "Cancel a sync job", "jobs"),
		func(ctx context.Context, in *jobPath) (*struct{ Body Job }, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			j, err := svc.Cancel(ctx, p.OrganizationID, in.ID, in.JobID)
			if err != nil {
				return nil, err
			}
			return &struct{ Body Job }{Body: JobOut(j)}, nil
		})
	shared.Register(api, h.log, op("refresh-all-collection", http.MethodPost, "/collections/{readable_id}/refresh_all", "Run every connection of a collection", "collections"),
		func(ctx context.Context, in *readableIDPath) (*struct{ Body []Job }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			started, _, err := svc.RefreshAll(ctx, p.OrganizationID, in.ReadableID)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []Job }{Body: []Job{}}
			for _, j := range started {
				out.Body = append(out.Body, JobOut(j))
			}
			return out, nil
		})
	search := func(ctx context.Context, rid, query string, limit int) (*struct{ Body map[string]any }, error) {
		p, err := shared.Principal(ctx)
		if err != nil {
			return nil, err
		}
		hits, err := svc.Search(ctx, p.OrganizationID, rid, query, limit)
		if err != nil {
			return nil, err
		}
		out := []SearchHit{}
		for _, h := range hits {
			out = append(out, SearchHit{Source: h.Source, EntityType: h.EntityType, UpstreamID: h.UpstreamID, SourceConnectionID: h.SourceConnectionID,
				Title: h.Title, Snippet: h.Snippet, Score: h.Score})
		}
		status := "success"
		if len(out) == 0 {
			status = "no_results"
		}
		return &struct{ Body map[string]any }{Body: map[string]any{"results": out, "response_type": "raw", "status": status}}, nil
	}
	shared.Register(api, h.log, op("search-collection", http.MethodGet, "/collections/{readable_id}/search", "Full-text search over a collection's records", "collections"),
		func(ctx context.Context, in *struct {
			ReadableID string `path:"readable_id"`
			Query      string `query:"query"`
			Limit      int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
		}) (*struct{ Body map[string]any }, error) {
			return search(ctx, in.ReadableID, in.Query, in.Limit)
		})
	shared.Register(api, h.log, op("search-collection-post", http.MethodPost, "/collections/{readable_id}/search", "Full-text search (Airweave SDK request shape)", "collections"),
		func(ctx context.Context, in *struct {
			ReadableID string `path:"readable_id"`
			Body       SearchRequest
		}) (*struct{ Body map[string]any }, error) {
			limit := 20
			if in.Body.Limit != nil {
				limit = *in.Body.Limit
			}
			return search(ctx, in.ReadableID, in.Body.Query, limit)
		})
}

// SearchRequest accepts the Airweave SDK's search bodies; only query and
// limit change the full-text search, the other options are accepted.
type SearchRequest struct {
	Query                     string `json:"query"`
	Limit                     *int   `json:"limit,omitempty" minimum:"1" maximum:"100"`
	Offset                    *int   `json:"offset,omitempty" minimum:"0"`
	RetrievalStrategy         string `json:"retrieval_strategy,omitempty"`
	Filter                    any    `json:"filter,omitempty"`
	TemporalRelevance         any    `json:"temporal_relevance,omitempty"`
	ExpandQuery               any    `json:"expand_query,omitempty"`
	InterpretFilters          any    `json:"interpret_filters,omitempty"`
	Rerank                    any    `json:"rerank,omitempty"`
	GenerateAnswer            any    `json:"generate_answer,omitempty"`
	ScoreThreshold            any    `json:"score_threshold,omitempty"`
	ResponseType              string `json:"response_type,omitempty"`
	SearchMethod              string `json:"search_method,omitempty"`
	RecencyBias               any    `json:"recency_bias,omitempty"`
	ExpansionStrategy         string `json:"expansion_strategy,omitempty"`
	EnableReranking           any    `json:"enable_reranking,omitempty"`
	EnableQueryInterpretation any    `json:"enable_query_interpretation,omitempty"`
}
