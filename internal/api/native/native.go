// Package native is the Airweave-style HTTP dialect: collections, sources and
// source connections at the root, authenticated by organization API keys. It
// only translates between that wire shape and the connection service.
package native

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/authprovider"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/execute"
	"github.com/valetkey/valetkey/internal/jobs"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/webhooks"
)

// Handlers serves the native routes.
type Handlers struct {
	conns     *connection.Service
	apps      *oauthapp.Service
	providers *authprovider.Service
	jobs      *jobs.Service
	log       *slog.Logger
	loaded    time.Time
}

// Services are the domain services the native dialect serves.
type Services struct {
	Connections *connection.Service
	Apps        *oauthapp.Service
	Providers   *authprovider.Service
	Execute     *execute.Engine
	Jobs        *jobs.Service
	Webhooks    *webhooks.Service
	Audit       AuditReader
	// Sessions and Tenants serve the Connect widget's session and branding routes.
	Sessions *embedded.Service
	Tenants  *tenant.Service
}

// Register adds the native routes to api.
func Register(api huma.API, svc Services, log *slog.Logger) {
	h := &Handlers{conns: svc.Connections, apps: svc.Apps, providers: svc.Providers, jobs: svc.Jobs, log: log, loaded: time.Now().UTC().Truncate(time.Second)}
	h.registerOAuthApps(api)
	h.registerAuthProviders(api)
	if svc.Execute != nil {
		RegisterExecute(api, svc.Execute, h)
	}
	if svc.Jobs != nil {
		RegisterJobs(api, svc.Jobs, h)
	}
	if svc.Webhooks != nil {
		RegisterWebhooks(api, svc.Webhooks, h)
	}
	if svc.Audit != nil {
		RegisterAudit(api, svc.Audit, h)
	}
	if svc.Sessions != nil && svc.Tenants != nil {
		RegisterConnect(api, svc.Sessions, svc.Tenants, h)
	}
	h.registerCollections(api)
	h.registerSources(api)
	h.registerConnections(api)
}

var security = []map[string][]string{{"apiKey": {}}, {"bearer": {}}}

func op(id, method, path, summary string, tags ...string) huma.Operation {
	return huma.Operation{
		OperationID: id, Method: method, Path: path, Summary: summary, Tags: tags, Security: security,
		Errors: []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusUnprocessableEntity},
	}
}

// Paging is the skip/limit query of list routes.
type Paging struct {
	Skip  int `query:"skip" minimum:"0" default:"0" doc:"Items to skip"`
	Limit int `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Items to return"`
}
