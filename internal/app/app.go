// Package app wires Valetkey's parts together from a Config: database,
// vault, catalog, services and the HTTP server. The CLI and the tests that
// run a whole server start it through here.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/valetkey/valetkey/internal/api"
	"github.com/valetkey/valetkey/internal/audit"
	"github.com/valetkey/valetkey/internal/authprovider"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/execute"
	"github.com/valetkey/valetkey/internal/jobs"
	"github.com/valetkey/valetkey/internal/jwtauth"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/tracing"
	"github.com/valetkey/valetkey/internal/vault"
	"github.com/valetkey/valetkey/internal/webhooks"
)

// App is a running set of Valetkey components.
type App struct {
	Config      config.Config
	Log         *slog.Logger
	Store       *sqlstore.Store
	Vault       *vault.Vault
	Catalog     *catalog.Catalog
	Tenants     *tenant.Service
	Connections *connection.Service
	Apps        *oauthapp.Service
	Refresh     *refresh.Engine
	Providers   *authprovider.Service
	Execute     *execute.Engine
	Issuer      *jwtauth.Issuer
	Embedded    *embedded.Service
	Jobs        *jobs.Service
	Queue       *jobs.Queue
	Webhooks    *webhooks.Service

	// Tracing is the OpenTelemetry provider (nil when traces are off).
	Tracing *tracing.Provider

	publicURL     atomic.Value // string
	stopRetention context.CancelFunc
}

// PublicURL is where browsers and providers reach this server.
func (a *App) PublicURL() string {
	s, _ := a.publicURL.Load().(string)
	return s
}

// SetPublicURL sets the public URL (Serve does, once it listens).
func (a *App) SetPublicURL(u string) { a.publicURL.Store(strings.TrimRight(u, "/")) }

// NewLogger builds the process logger from the config.
func NewLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := cfg.SlogLevel()
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// Open connects to the database (migrating it), loads the vault keyset
// (generating one when absent) and the catalog.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	cat, err := catalog.Load(cfg.CatalogDir)
	if err != nil {
		return nil, err
	}
	v, created, err := vault.Open(cfg.KeysetFile)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("GENERATED A NEW LOCAL KEYSET: it is for development only. Every credential is encrypted with it; "+
			"back it up, and in production provide VALETKEY_KEYSET_FILE from a secret store.", "keyset_file", cfg.KeysetFile)
	}
	st, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Store: st, Vault: v, Catalog: cat, Tenants: tenant.New(st)}
	tw := cfg.TraceWriter
	if tw == nil {
		tw = os.Stdout
	}
	if a.Tracing, err = tracing.New(ctx, cfg.Traces, tw, api.Version); err != nil {
		st.Close()
		return nil, err
	}
	a.Tenants.CacheKeys(cfg.APIKeyCacheTTL, apiKeyCacheSize)
	a.SetPublicURL(cfg.PublicURL)
	// With tracing on, calls to providers (token endpoints, APIs, auth
	// providers) are client spans; with it off each service keeps its default client.
	traced := func(timeout time.Duration) *http.Client {
		if a.Tracing == nil {
			return nil
		}
		return &http.Client{Timeout: timeout, Transport: a.Tracing.Transport(nil)}
	}
	a.Apps = oauthapp.New(st, cat, v)
	a.Webhooks = webhooks.New(st, v, log, cfg.AllowPrivateTargets)
	ropt := cfg.Refresh
	if cfg.RefreshLeaseTTL > 0 {
		ropt.LeaseTTL = cfg.RefreshLeaseTTL // the engine keeps its refresh budget below it
	}
	if cfg.RefreshRequestTimeout > 0 {
		ropt.RequestTimeout = cfg.RefreshRequestTimeout
	}
	if cfg.Clock != nil {
		ropt.Now = cfg.Clock
	}
	if ropt.HTTPClient == nil {
		timeout := ropt.RequestTimeout
		if timeout == 0 {
			timeout = refresh.DefaultRequestTimeout
		}
		ropt.HTTPClient = traced(timeout)
	}
	ropt.OnNeedsReauth = func(ctx context.Context, orgID, connectionID, reason string) {
		a.Webhooks.Emit(ctx, orgID, "source_connection.needs_reauth", map[string]any{"source_connection_id": connectionID, "reason": reason})
	}
	a.Refresh = refresh.New(st, cat, refresh.ClientFunc(func(ctx context.Context, orgID, shortName string) (oauth.Client, error) {
		reg, err := a.Apps.For(ctx, orgID, shortName)
		return reg.Client, err
	}), v, log, ropt)
	popt := cfg.Providers
	popt.PipedreamBaseURL, popt.ComposioBaseURL = cfg.PipedreamBaseURL, cfg.ComposioBaseURL
	if cfg.Clock != nil {
		popt.Now = cfg.Clock
	}
	if popt.HTTPClient == nil {
		popt.HTTPClient = traced(15 * time.Second)
	}
	a.Providers = authprovider.New(st, v, popt)
	a.Connections = connection.New(st, cat, v, connection.Options{Apps: a.Apps, Refresh: a.Refresh, PublicURL: a.PublicURL, Log: log,
		Now: cfg.Clock, Providers: a.Providers, Events: a.Webhooks, HTTPClient: traced(15 * time.Second)})
	a.Execute = execute.New(a.Connections, execute.Options{HTTPClient: traced(execute.DefaultTimeout)})
	a.Issuer = jwtauth.New(st, v, a.PublicURL, cfg.Clock)
	a.Embedded = embedded.New(st, a.Tenants, a.Issuer, a.PublicURL, cfg.Clock)
	a.Jobs = jobs.New(st, a.Connections, a.Execute, v, log, cfg.Clock)
	a.Jobs.SetEvents(a.Webhooks)
	a.Jobs.SetScheduleStore(st)
	if cfg.JobRescueAfter > 0 {
		a.Jobs.RescueAfter = cfg.JobRescueAfter
	}
	qopt := jobs.QueueOptions{PollInterval: cfg.JobPollInterval, Register: []func(*river.Workers){a.Webhooks.Register}, RetryPolicy: cfg.RetryPolicy, TickInterval: cfg.ScheduleTick, RescueAfter: cfg.JobRescueAfter}
	if st.Flavor() == "sqlite" {
		a.Queue, err = jobs.NewSQLiteQueue(ctx, st.WriterDB(), a.Jobs, log, qopt)
	} else {
		a.Queue, err = jobs.NewPostgresQueue(ctx, sqlstore.WithConnectTimeout(cfg.DatabaseURL), a.Jobs, log, qopt)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	a.Jobs.SetQueue(a.Queue)
	a.Webhooks.SetQueue(a.Queue)
	return a, nil
}

// StartWorkers starts the job queue's workers and the audit retention.
func (a *App) StartWorkers(ctx context.Context) error {
	if a.Config.AuditRetention > 0 {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stopRetention = cancel
		go a.retainAudit(rctx)
	}
	return a.Queue.Start(ctx)
}

// apiKeyCacheSize bounds how many verified API keys a replica remembers.
const apiKeyCacheSize = 10000

// AuditPruneEvery is how often each replica deletes expired audit events.
const AuditPruneEvery = time.Hour

// retainAudit deletes audit events older than VALETKEY_AUDIT_RETENTION at
// start and then hourly (idempotent, so every replica may do it).
func (a *App) retainAudit(ctx context.Context) {
	t := time.NewTicker(AuditPruneEvery)
	defer t.Stop()
	for {
		if _, err := a.PruneAudit(ctx); err != nil && ctx.Err() == nil {
			a.Log.WarnContext(ctx, "audit retention failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PruneAudit deletes the audit events older than the retention now.
func (a *App) PruneAudit(ctx context.Context) (int, error) {
	now := time.Now
	if a.Config.Clock != nil {
		now = a.Config.Clock
	}
	n, err := a.Store.PruneAudit(ctx, now().Add(-a.Config.AuditRetention))
	if n > 0 {
		a.Log.InfoContext(ctx, "deleted expired audit events", "count", n, "retention", a.Config.AuditRetention.String())
	}
	return n, err
}

// AuditOperator records an operator action that concerns every
// organization (a keyset or signing-key rotation) in each one's audit log.
func (a *App) AuditOperator(ctx context.Context, action, targetType, targetID string) error {
	orgs, err := a.Store.ListOrganizations(ctx)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	ctx = audit.WithActor(ctx, audit.Operator())
	for _, o := range orgs {
		if err := audit.Event(ctx, a.Store, o.ID, action, targetType, targetID, "cli"); err != nil {
			return fmt.Errorf("audit %s: %w", action, err)
		}
	}
	return nil
}

// Close stops the workers (if started) and releases the database.
func (a *App) Close() error {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a.stopRetention != nil {
		a.stopRetention()
	}
	_ = a.Tracing.Shutdown(sctx)
	_ = a.Queue.Stop(sctx)
	return a.Store.Close()
}

// Bootstrap creates the default organization and first API key on an empty
// database, writing the generated key to w once.
func (a *App) Bootstrap(ctx context.Context, w io.Writer) error {
	key, created, err := a.Tenants.Bootstrap(ctx, vault.NewSecret(a.Config.BootstrapAPIKey))
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if !created {
		return nil
	}
	a.Log.Info("created the default organization and its first API key", "organization", tenant.DefaultOrgName)
	if a.Config.BootstrapAPIKey == "" {
		fmt.Fprintf(w, "bootstrap api key: %s\n", key.Reveal())
	}
	return nil
}

// registry holds the process metrics: Go runtime, HTTP (added by the API),
// and the domain counters below.
func (a *App) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels prometheus.Labels, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	refreshed := func(pick func(refresh.Stats) int64) func() float64 {
		return func() float64 { return float64(pick(a.Refresh.Stats())) }
	}
	counter("valetkey_refresh_total", "Token refreshes by outcome.", prometheus.Labels{"outcome": "refreshed"}, refreshed(func(s refresh.Stats) int64 { return s.Refreshed }))
	counter("valetkey_refresh_total", "Token refreshes by outcome.", prometheus.Labels{"outcome": "needs_reauth"}, refreshed(func(s refresh.Stats) int64 { return s.NeedsReauth }))
	counter("valetkey_refresh_total", "Token refreshes by outcome.", prometheus.Labels{"outcome": "failed"}, refreshed(func(s refresh.Stats) int64 { return s.Failed - s.NeedsReauth }))
	counter("valetkey_token_reads_total", "Credentials returned by GET /source-connections/{id}/token.", nil, func() float64 { return float64(a.Connections.TokenReads()) })
	for _, st := range []string{"completed", "failed", "cancelled"} {
		st := st
		counter("valetkey_sync_jobs_ended_total", "Sync jobs ended by this process, by status.", prometheus.Labels{"status": st}, func() float64 { return float64(a.Jobs.Ended(st)) })
	}
	for _, st := range []string{"pending", "running"} {
		st := st
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "valetkey_sync_jobs", Help: "Sync jobs waiting or running (queue depth), all replicas.",
			ConstLabels: prometheus.Labels{"status": st}}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := a.Store.CountSyncJobs(ctx, st)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	counter("valetkey_webhook_attempts_total", "Webhook delivery attempts by outcome.", prometheus.Labels{"outcome": "delivered"}, func() float64 { return float64(a.Webhooks.Delivered.Load()) })
	counter("valetkey_webhook_attempts_total", "Webhook delivery attempts by outcome.", prometheus.Labels{"outcome": "failed"}, func() float64 { return float64(a.Webhooks.FailedAttempts.Load()) })
	return reg
}

// Handler returns the HTTP handler.
func (a *App) Handler() http.Handler {
	return a.Tracing.Middleware(api.New(api.Deps{Tenants: a.Tenants, Connections: a.Connections, Apps: a.Apps, Providers: a.Providers, Execute: a.Execute, Embedded: a.Embedded, Issuer: a.Issuer, Jobs: a.Jobs, Webhooks: a.Webhooks, Audit: a.Store, DB: a.Store, Logger: a.Log, Registry: a.registry(),
		RateLimit: a.Config.RateLimit, RateBurst: a.Config.RateBurst}))
}

// Serve listens on the configured address and serves until ctx ends, then
// shuts down gracefully. ready, if not nil, gets the bound address.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.Config.Addr, err)
	}
	addr := ln.Addr().String()
	a.Config.PublicURL = a.Config.PublicURLFor(addr)
	a.SetPublicURL(a.Config.PublicURL)
	if err := a.StartWorkers(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	if a.Config.SweepInterval > 0 {
		sctx, stop := context.WithCancel(ctx)
		swept := make(chan struct{})
		go func() {
			defer close(swept)
			a.Refresh.RunSweeper(sctx, a.Config.SweepInterval, refresh.SweepOptions{Window: a.Config.SweepWindow, Concurrency: a.Config.SweepConcurrency, Jitter: time.Second})
		}()
		// Returning (and then closing the store) waits for the sweep's
		// requests in flight, so a rotated refresh token is stored.
		defer func() { stop(); <-swept }()
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.Log.Info("listening", "addr", addr, "public_url", a.Config.PublicURL, "database", sqlFlavor(a.Store))
	if ready != nil {
		ready(addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func sqlFlavor(s *sqlstore.Store) string { return s.Flavor() }
