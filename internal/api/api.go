// Package api assembles Valetkey's HTTP server: the router, middleware
// (recovery, request logs, metrics, authentication), the OpenAPI document and
// docs, health routes, and the API dialects.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/valetkey/valetkey/internal/api/docs"
	"github.com/valetkey/valetkey/internal/api/embedded"
	"github.com/valetkey/valetkey/internal/api/native"
	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/audit"
	"github.com/valetkey/valetkey/internal/authprovider"
	"github.com/valetkey/valetkey/internal/connection"
	emb "github.com/valetkey/valetkey/internal/embedded"
	"github.com/valetkey/valetkey/internal/execute"
	"github.com/valetkey/valetkey/internal/jobs"
	"github.com/valetkey/valetkey/internal/jwtauth"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/web"
	"github.com/valetkey/valetkey/internal/webhooks"
)

// Version is reported in the OpenAPI document.
const Version = "0.1.0"

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the services the API serves.
type Deps struct {
	Tenants     *tenant.Service
	Connections *connection.Service
	Apps        *oauthapp.Service
	Providers   *authprovider.Service
	Execute     *execute.Engine
	Embedded    *emb.Service
	Jobs        *jobs.Service
	Webhooks    *webhooks.Service
	Audit       native.AuditReader
	Issuer      *jwtauth.Issuer
	DB          Pinger
	Logger      *slog.Logger
	// RateLimit and RateBurst bound each caller's requests (0: no limit).
	RateLimit float64
	RateBurst int
	// Registry receives the HTTP metrics; nil makes a private one.
	Registry *prometheus.Registry
}

func init() { shared.InstallErrorModel() }

// New returns the HTTP handler.
func New(d Deps) http.Handler {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
		d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := newMetrics(d.Registry)

	r := chi.NewRouter()
	r.Use(recoverer(d.Logger))
	r.Use(m.middleware)
	r.Use(requestLog(d.Logger))
	r.Use(middleware.StripSlashes)
	r.Use(textInput)
	r.Use(authenticate(d.Tenants))
	if d.Embedded != nil {
		r.Use(embedded.Middleware(d.Embedded))
	}
	r.Use(newRateLimiter(d.RateLimit, d.RateBurst).middleware)

	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeDetail(w, http.StatusNotFound, "Not Found") })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, `{"status":"ok"}`) })
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.DB.Ping(ctx); err != nil {
			d.Logger.WarnContext(ctx, "readiness check failed", "error", err.Error())
			writeJSON(w, http.StatusServiceUnavailable, `{"status":"unavailable","detail":"database unreachable"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
	})
	r.Handle("/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	if d.Issuer != nil {
		r.Get("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
			keys, err := d.Issuer.JWKS(r.Context())
			if err != nil {
				d.Logger.ErrorContext(r.Context(), "jwks", "error", err.Error())
				writeDetail(w, http.StatusInternalServerError, "Internal server error")
				return
			}
			b, _ := json.Marshal(map[string]any{"keys": keys})
			w.Header().Set("Cache-Control", "public, max-age=300")
			writeJSON(w, http.StatusOK, string(b))
		})
	}
	r.Get(web.WidgetPath, web.Widget)
	r.Get(connection.WidgetDonePath, web.Done)
	r.Get(web.AssetsPath+"*", web.Asset)
	r.Get(web.EmbedPath, web.Embed)
	docsHandler := docs.Handler()
	r.Handle("/docs", docsHandler)
	r.Handle("/docs/assets/*", docsHandler)

	cfg := huma.DefaultConfig("Valetkey", Version)
	cfg.CreateHooks = nil // no $schema links in bodies
	cfg.DocsPath = ""     // served from embedded assets above
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.Info.Description = "Self-hosted credential broker for embedded integrations. Airweave-style routes at the root (X-API-Key)."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"apiKey": {Type: "apiKey", In: "header", Name: "X-API-Key"},
		"bearer": {Type: "http", Scheme: "bearer"},
	}
	api := humachi.New(r, cfg)
	native.Register(api, native.Services{Connections: d.Connections, Apps: d.Apps, Providers: d.Providers, Execute: d.Execute, Jobs: d.Jobs, Webhooks: d.Webhooks, Audit: d.Audit, Sessions: d.Embedded, Tenants: d.Tenants}, d.Logger)
	if d.Embedded != nil {
		embedded.Register(api, embedded.Services{Embedded: d.Embedded, Connections: d.Connections, Apps: d.Apps, Execute: d.Execute, Issuer: d.Issuer, Tenants: d.Tenants}, d.Logger)
	}
	flow := &oauthFlow{conns: d.Connections, log: d.Logger}
	r.Get(connection.AuthorizePath+"{code}", flow.authorize)
	r.Get(connection.CallbackPath, flow.callback)
	return r
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeDetail(w http.ResponseWriter, status int, msg string) { shared.WriteDetail(w, status, msg) }

// public routes need no API key.
func public(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/openapi.json", "/openapi.yaml", "/openapi-3.0.json", "/openapi-3.0.yaml", "/docs":
		return true
	}
	return strings.HasPrefix(path, "/docs/") || strings.HasPrefix(path, connection.AuthorizePath) || path == connection.CallbackPath ||
		path == "/.well-known/jwks.json" || path == web.WidgetPath || strings.HasPrefix(path, web.WidgetPath+"/") || path == web.EmbedPath || strings.HasPrefix(path, "/api/v1/") // the embedded dialect authenticates its own bearer tokens
}

// authenticate resolves X-API-Key (or Authorization: Bearer) to the caller's
// organization for every route but the public ones.
func authenticate(tenants *tenant.Service) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := shared.WithRemoteAddr(r.Context(), r)
			if public(r.URL.Path) {
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			key := r.Header.Get("X-API-Key")
			if key == "" {
				if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
					key = strings.TrimSpace(a[7:])
				}
			}
			p, err := tenants.Authenticate(ctx, key)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="valetkey"`)
				shared.WriteAuthFailure(w, err)
				return
			}
			ctx = audit.WithActor(shared.WithPrincipal(ctx, p), audit.Actor{Name: p.Actor(), RemoteAddr: shared.RemoteAddr(ctx)})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// recoverer turns a panic into a 500 and logs it without request values.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "route", routePattern(r))
					writeDetail(w, http.StatusInternalServerError, "Internal server error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// requestLog logs method, route pattern (never the raw path, which may hold
// a one-time code), status and duration: no header or body values.
func requestLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			log.InfoContext(r.Context(), "request", "method", r.Method, "route", routePattern(r),
				"status", ww.Status(), "duration_ms", float64(time.Since(start).Microseconds())/1000)
		})
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "valetkey_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "valetkey_http_request_duration_seconds", Help: "HTTP request durations by route.", Buckets: prometheus.DefBuckets}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := routePattern(r)
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(ww.Status())).Inc()
		m.duration.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
	})
}
