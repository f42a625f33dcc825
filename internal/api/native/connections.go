package native

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/vault"
)

// AuthDetails is what a connection shows about its credential: never a value.
type AuthDetails struct {
	Method          string     `json:"method" enum:"direct,oauth_browser,oauth_token,oauth_byoc,auth_provider"`
	Authenticated   bool       `json:"authenticated"`
	AuthenticatedAt *time.Time `json:"authenticated_at"`
	ExpiresAt       *time.Time `json:"expires_at"`
	AuthURL         string     `json:"auth_url,omitempty" doc:"For oauth_browser/oauth_byoc connections just created: send the user here (single use)"`
	AuthURLExpires  *time.Time `json:"auth_url_expires,omitempty"`
	RedirectURL     string     `json:"redirect_url,omitempty" doc:"Where the browser returns with ?status=success&source_connection_id=... or ?status=error&error=..."`
	ProviderRID     string     `json:"provider_readable_id,omitempty" doc:"The auth provider that holds the credential"`
}

// SyncDetails summarises a connection's sync jobs.
type SyncDetails struct {
	TotalRuns      int `json:"total_runs"`
	SuccessfulRuns int `json:"successful_runs"`
	FailedRuns     int `json:"failed_runs"`
	LastJob        any `json:"last_job"`
}

// SourceConnection is a connection as clients see it.
type SourceConnection struct {
	ID                   string          `json:"id"`
	OrganizationID       string          `json:"organization_id"`
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	ShortName            string          `json:"short_name"`
	ReadableCollectionID string          `json:"readable_collection_id"`
	Status               string          `json:"status" enum:"active,pending_auth,syncing,error,needs_reauth,inactive,pending_sync"`
	CreatedAt            time.Time       `json:"created_at"`
	ModifiedAt           time.Time       `json:"modified_at"`
	Auth                 AuthDetails     `json:"auth"`
	Config               map[string]any  `json:"config"`
	Schedule             json.RawMessage `json:"schedule"`
	Sync                 SyncDetails     `json:"sync"`
}

// SourceConnectionListItem is a connection in a list.
type SourceConnectionListItem struct {
	ID                   string    `json:"id"`
	Name                 string    `json:"name"`
	ShortName            string    `json:"short_name"`
	ReadableCollectionID string    `json:"readable_collection_id"`
	Status               string    `json:"status"`
	IsAuthenticated      bool      `json:"is_authenticated"`
	AuthMethod           string    `json:"auth_method"`
	EntityCount          int       `json:"entity_count"`
	CreatedAt            time.Time `json:"created_at"`
	ModifiedAt           time.Time `json:"modified_at"`
}

func connectionOut(v connection.View) SourceConnection {
	cfg := map[string]any{}
	_ = json.Unmarshal(v.Config, &cfg)
	sched := v.Schedule
	if len(sched) == 0 {
		sched = json.RawMessage("null")
	}
	return SourceConnection{
		ID: v.ID, OrganizationID: v.OrganizationID, Name: v.Name, Description: v.Description, ShortName: v.ShortName,
		ReadableCollectionID: v.CollectionRID, Status: v.Status, CreatedAt: v.CreatedAt, ModifiedAt: v.ModifiedAt,
		Auth: AuthDetails{Method: v.AuthMethod, Authenticated: v.Authenticated, AuthenticatedAt: v.AuthenticatedAt, ExpiresAt: v.ExpiresAt,
			AuthURL: v.AuthURL, AuthURLExpires: v.AuthURLExpires, RedirectURL: v.RedirectURL, ProviderRID: v.AuthProviderRID},
		Config: cfg, Schedule: sched,
		Sync: SyncDetails{TotalRuns: v.Sync.Total, SuccessfulRuns: v.Sync.Successful, FailedRuns: v.Sync.Failed, LastJob: lastJob(v.Sync.Last)},
	}
}

func lastJob(j *store.SyncJob) any {
	if j == nil {
		return nil
	}
	return JobOut(*j)
}

// Authentication is the SDK's authentication union; which keys are present
// says which kind it is.
type Authentication struct {
	Credentials  map[string]any `json:"credentials,omitempty" doc:"Direct credentials (API keys, custom fields)"`
	AccessToken  *string        `json:"access_token,omitempty" doc:"OAuth2 access token to inject"`
	RefreshToken *string        `json:"refresh_token,omitempty" doc:"OAuth2 refresh token to inject; kept and used"`
	ExpiresAt    *string        `json:"expires_at,omitempty" doc:"Access token expiry, RFC 3339"`
	ExpiresIn    *int64         `json:"expires_in,omitempty" minimum:"0" doc:"Access token lifetime in seconds from now"`
	// OAuth browser flow: where the browser returns afterwards, and an
	// optional one-connection client (bring your own client).
	RedirectURI    string `json:"redirect_uri,omitempty" doc:"Where the browser returns after the OAuth flow (allowlisted)"`
	ClientID       string `json:"client_id,omitempty"`
	ClientSecret   string `json:"client_secret,omitempty"`
	ConsumerKey    string `json:"consumer_key,omitempty"`
	ConsumerSecret string `json:"consumer_secret,omitempty"`
	// Auth provider fields (issue #5).
	ProviderReadableID string         `json:"provider_readable_id,omitempty"`
	ProviderConfig     map[string]any `json:"provider_config,omitempty"`
}

// Schedule is a connection's sync schedule.
type Schedule struct {
	Cron        *string `json:"cron,omitempty"`
	Continuous  *bool   `json:"continuous,omitempty"`
	CursorField *string `json:"cursor_field,omitempty"`
}

// credentials turns the request's credential fields (either dialect shape)
// into the domain input, with the locations errors should name.
func credentials(authFields map[string]any, a *Authentication, now time.Time) (*connection.Credentials, error) {
	if authFields != nil {
		return &connection.Credentials{Raw: authFields, Loc: []any{"body", "auth_fields"}}, nil
	}
	if a == nil {
		return nil, nil
	}
	if a.ProviderReadableID != "" || a.ProviderConfig != nil {
		return nil, nil // provider-backed: see providerOf
	}
	if a.Credentials != nil {
		return &connection.Credentials{Raw: a.Credentials, Loc: []any{"body", "authentication", "credentials"}, Direct: true}, nil
	}
	if a.AccessToken == nil && a.RefreshToken == nil {
		return &connection.Credentials{Loc: []any{"body", "authentication"}}, nil // the browser flow
	}
	c := &connection.Credentials{Raw: map[string]any{}, Loc: []any{"body", "authentication"}}
	if a.AccessToken != nil {
		c.Raw["access_token"] = *a.AccessToken
	}
	if a.RefreshToken != nil {
		c.Raw["refresh_token"] = *a.RefreshToken
	}
	switch {
	case a.ExpiresAt != nil:
		t, err := time.Parse(time.RFC3339, *a.ExpiresAt)
		if err != nil {
			return nil, apperr.Invalid(apperr.Field("datetime_parsing", "Field 'expires_at' must be an RFC 3339 date-time", "body", "authentication", "expires_at"))
		}
		t = t.UTC()
		c.ExpiresAt = &t
	case a.ExpiresIn != nil:
		t := now.Add(time.Duration(*a.ExpiresIn) * time.Second).UTC()
		c.ExpiresAt = &t
	}
	return c, nil
}

func scheduleJSON(s *Schedule) json.RawMessage {
	if s == nil {
		return nil
	}
	b, _ := json.Marshal(s)
	return b
}

type createConnectionInput struct {
	Body struct {
		Name                 string          `json:"name" doc:"4 to 42 characters"`
		ShortName            string          `json:"short_name" doc:"The source, e.g. asana"`
		Description          string          `json:"description,omitempty" maxLength:"255"`
		Collection           string          `json:"collection,omitempty" doc:"Readable id of the collection (seeds' shape); absent creates one"`
		ReadableCollectionID string          `json:"readable_collection_id,omitempty" doc:"Readable id of the collection (SDK shape)"`
		ConfigFields         map[string]any  `json:"config_fields,omitempty" doc:"Source config (seeds' shape)"`
		Config               map[string]any  `json:"config,omitempty" doc:"Source config (SDK shape)"`
		AuthFields           map[string]any  `json:"auth_fields,omitempty" doc:"Credentials (seeds' shape): access_token, refresh_token, or the source's API-key fields"`
		Authentication       *Authentication `json:"authentication,omitempty" doc:"Credentials (SDK shape)"`
		Schedule             *Schedule       `json:"schedule,omitempty"`
		SyncImmediately      *bool           `json:"sync_immediately,omitempty" doc:"Start a first sync right away (when the connection is already authenticated)"`
		AuthProvider         string          `json:"auth_provider,omitempty" doc:"Readable id of an auth provider holding the account (seeds' shape)"`
		AuthProviderConfig   map[string]any  `json:"auth_provider_config,omitempty" doc:"Which account: pipedream {project_id, account_id, environment?, external_user_id?}; composio {auth_config_id, account_id}"`
		RedirectURL          string          `json:"redirect_url,omitempty" doc:"Where the browser returns after the OAuth flow; must be on the organization's allowlist"`
	}
}

type connectionOutput struct{ Body SourceConnection }

type idPath struct {
	ID string `path:"id" doc:"Source connection id"`
}

type updateConnectionInput struct {
	ID   string `path:"id"`
	Body struct {
		Name           *string         `json:"name,omitempty"`
		Description    *string         `json:"description,omitempty" maxLength:"255"`
		ConfigFields   map[string]any  `json:"config_fields,omitempty"`
		Config         map[string]any  `json:"config,omitempty"`
		AuthFields     map[string]any  `json:"auth_fields,omitempty"`
		Authentication *Authentication `json:"authentication,omitempty"`
		Schedule       *Schedule       `json:"schedule,omitempty"`
	}
}

type listConnectionsInput struct {
	Paging
	Collection string `query:"collection" doc:"Readable id of a collection to filter by"`
}

type tokenInput struct {
	ID                  string `path:"id"`
	IncludeRefreshToken bool   `query:"include_refresh_token" doc:"Also return the refresh token"`
}

// validID answers 404 for an id that cannot exist, as for a missing one.
func validID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return apperr.NotFound("Source connection '%s' not found", id)
	}
	return nil
}

// providerOf reads the auth provider reference from either shape.
func providerOf(rid string, cfg map[string]any, a *Authentication) (string, map[string]any, []any) {
	if rid != "" || cfg != nil {
		return rid, cfg, []any{"body", "auth_provider_config"}
	}
	if a != nil && (a.ProviderReadableID != "" || a.ProviderConfig != nil) {
		return a.ProviderReadableID, a.ProviderConfig, []any{"body", "authentication", "provider_config"}
	}
	return "", nil, nil
}

// callerFor returns the caller, after checking id could name a connection.
func callerFor(ctx context.Context, id string) (tenant.Principal, error) {
	if err := validID(id); err != nil {
		return tenant.Principal{}, err
	}
	return shared.Principal(ctx)
}

func firstNonNil(a, b map[string]any) (map[string]any, []any) {
	if a != nil {
		return a, []any{"body", "config_fields"}
	}
	return b, []any{"body", "config"}
}

func (h *Handlers) registerConnections(api huma.API) {
	create := op("create-source-connection", http.MethodPost, "/source-connections", "Create a source connection", "source-connections")
	create.Description = "Accepts the seeds' shape (auth_fields, config_fields, collection) and the Airweave SDK shape (authentication, config, readable_collection_id). Tokens are not verified with the provider at creation. An injected refresh token is kept and used."
	shared.Register(api, h.log, create, func(ctx context.Context, in *createConnectionInput) (*connectionOutput, error) {
		p, err := shared.Principal(ctx)
		if err != nil {
			return nil, err
		}
		b := in.Body
		creds, err := credentials(b.AuthFields, b.Authentication, time.Now())
		if err != nil {
			return nil, err
		}
		coll, collLoc := b.Collection, []any{"body", "collection"}
		if coll == "" {
			coll, collLoc = b.ReadableCollectionID, []any{"body", "readable_collection_id"}
		}
		cfg, cfgLoc := firstNonNil(b.ConfigFields, b.Config)
		ci := connection.CreateInput{
			Name: b.Name, Description: b.Description, ShortName: b.ShortName, Collection: coll, CollectionLoc: collLoc,
			Config: cfg, ConfigLoc: cfgLoc, Schedule: scheduleJSON(b.Schedule), Credentials: creds,
			RedirectURL: b.RedirectURL, RedirectURLLoc: []any{"body", "redirect_url"},
		}
		if a := b.Authentication; a != nil {
			if ci.RedirectURL == "" && a.RedirectURI != "" {
				ci.RedirectURL, ci.RedirectURLLoc = a.RedirectURI, []any{"body", "authentication", "redirect_uri"}
			}
			if (a.ClientID == "") != (a.ClientSecret == "") {
				return nil, apperr.Invalid(apperr.Field("missing", "Give client_id and client_secret together", "body", "authentication"))
			}
			if a.ClientID != "" {
				ci.Client = &oauth.Client{ID: a.ClientID, Secret: vault.NewSecret(a.ClientSecret)}
			}
		}
		ci.AuthProvider, ci.AuthProviderConfig, ci.AuthProviderConfigLoc = providerOf(b.AuthProvider, b.AuthProviderConfig, b.Authentication)
		if ci.AuthProvider == "" && ci.AuthProviderConfig != nil {
			return nil, apperr.Invalid(apperr.Field("missing", "auth_provider_config needs auth_provider", "body", "auth_provider"))
		}
		v, err := h.conns.Create(ctx, p.OrganizationID, ci)
		if err != nil {
			return nil, err
		}
		out := connectionOut(v)
		if b.SyncImmediately != nil && *b.SyncImmediately && h.jobs != nil {
			j, err := h.jobs.RunIfActive(ctx, v)
			if err != nil {
				// The connection exists; say why the first run did not start.
				h.log.WarnContext(ctx, "sync_immediately: first run not started", "source_connection_id", v.ID, "error", err.Error())
			} else if j != nil {
				out.Sync.TotalRuns, out.Sync.LastJob = 1, JobOut(*j)
			}
		}
		return &connectionOutput{Body: out}, nil
	})

	shared.Register(api, h.log, op("list-source-connections", http.MethodGet, "/source-connections", "List source connections", "source-connections"),
		func(ctx context.Context, in *listConnectionsInput) (*struct{ Body []SourceConnectionListItem }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := h.conns.List(ctx, p.OrganizationID, in.Collection, in.Skip, in.Limit)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []SourceConnectionListItem }{Body: make([]SourceConnectionListItem, 0, len(list))}
			for _, v := range list {
				out.Body = append(out.Body, SourceConnectionListItem{ID: v.ID, Name: v.Name, ShortName: v.ShortName,
					ReadableCollectionID: v.CollectionRID, Status: v.Status, IsAuthenticated: v.Authenticated,
					AuthMethod: v.AuthMethod, CreatedAt: v.CreatedAt, ModifiedAt: v.ModifiedAt})
			}
			return out, nil
		})

	shared.Register(api, h.log, op("get-source-connection", http.MethodGet, "/source-connections/{id}", "Get a source connection", "source-connections"),
		func(ctx context.Context, in *idPath) (*connectionOutput, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			v, err := h.conns.Get(ctx, p.OrganizationID, in.ID)
			if err != nil {
				return nil, err
			}
			return &connectionOutput{Body: connectionOut(v)}, nil
		})

	shared.Register(api, h.log, op("update-source-connection", http.MethodPatch, "/source-connections/{id}",
		"Update a source connection; new credentials are re-encrypted and clear needs_reauth", "source-connections"),
		func(ctx context.Context, in *updateConnectionInput) (*connectionOutput, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			b := in.Body
			creds, err := credentials(b.AuthFields, b.Authentication, time.Now())
			if err != nil {
				return nil, err
			}
			if creds != nil && creds.Raw == nil {
				return nil, apperr.Invalid(apperr.Field("missing", "Give credentials to replace the stored ones", creds.Loc...))
			}
			cfg, cfgLoc := firstNonNil(b.ConfigFields, b.Config)
			v, err := h.conns.Update(ctx, p.OrganizationID, in.ID, connection.UpdateInput{
				Name: b.Name, Description: b.Description, Config: cfg, ConfigLoc: cfgLoc,
				Schedule: scheduleJSON(b.Schedule), Credentials: creds,
			})
			if err != nil {
				return nil, err
			}
			return &connectionOutput{Body: connectionOut(v)}, nil
		})

	shared.Register(api, h.log, op("delete-source-connection", http.MethodDelete, "/source-connections/{id}",
		"Delete a source connection and erase its credential", "source-connections"),
		func(ctx context.Context, in *idPath) (*connectionOutput, error) {
			p, err := callerFor(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			v, err := h.conns.Delete(ctx, p.OrganizationID, in.ID)
			if err != nil {
				return nil, err
			}
			return &connectionOutput{Body: connectionOut(v)}, nil
		})

	tok := op("get-source-connection-token", http.MethodGet, "/source-connections/{id}/token", "Return the current credential to its owner", "source-connections")
	tok.Description = "The one route that returns a secret: the current access token (or API-key fields), for teams whose own copy went stale after Valetkey refreshed it. Every call is recorded in the audit log (never the value). The refresh token is returned only with include_refresh_token=true."
	shared.Register(api, h.log, tok, func(ctx context.Context, in *tokenInput) (*struct {
		CacheControl string `header:"Cache-Control"`
		Body         map[string]any
	}, error) {
		p, err := callerFor(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		t, err := h.conns.Token(ctx, p.OrganizationID, in.ID, in.IncludeRefreshToken, connection.Audit{Actor: p.Actor(), RemoteAddr: shared.RemoteAddr(ctx)})
		if err != nil {
			return nil, err
		}
		body := map[string]any{"token_type": t.TokenType, "expires_at": t.ExpiresAt}
		for k, v := range t.Fields {
			body[k] = v.Reveal()
		}
		return &struct {
			CacheControl string `header:"Cache-Control"`
			Body         map[string]any
		}{CacheControl: "no-store", Body: body}, nil
	})
}
