// Package tracing sets up OpenTelemetry traces, off by default: one server
// span per HTTP request, named by method and route pattern. Spans carry the
// route, never the raw path or query (they may hold one-time codes).
package tracing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Exporters.
const (
	Off    = ""
	Stdout = "stdout" // JSON spans on the given writer
	OTLP   = "otlp"   // OTLP over HTTP; endpoint and headers from the standard OTEL_EXPORTER_OTLP_* variables
)

// Provider is a tracer provider and how to flush it.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New returns a provider for exporter, or nil for Off.
func New(ctx context.Context, exporter string, w io.Writer, version string) (*Provider, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch exporter {
	case Off:
		return nil, nil
	case Stdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	case OTLP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: unknown exporter %q (stdout or otlp)", exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("valetkey"), semconv.ServiceVersion(version))
	return &Provider{tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// Shutdown flushes and stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// Middleware wraps h (a chi router) with a server span per request. The
// span is renamed to the route pattern once chi has routed the request.
func (p *Provider) Middleware(h http.Handler) http.Handler {
	if p == nil {
		return h
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if orig, ok := r.Context().Value(origURL{}).(original); ok {
			r.URL, r.RequestURI = orig.url, orig.requestURI
		}
		rctx := chi.NewRouteContext()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
		route := rctx.RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		span := trace.SpanFromContext(r.Context())
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	})
	traced := otelhttp.NewHandler(inner, "http",
		otelhttp.WithTracerProvider(p.tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
	// The instrumentation records the URL it is given: give it one without
	// the path and query (a one-time auth code, an OAuth callback's code and
	// state), and hand the real one back to the router inside.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), origURL{}, original{url: r.URL, requestURI: r.RequestURI})
		scrubbed := *r.URL
		scrubbed.Path, scrubbed.RawPath, scrubbed.RawQuery, scrubbed.Fragment = "/", "", "", ""
		r2 := r.WithContext(ctx)
		r2.URL, r2.RequestURI = &scrubbed, "/"
		traced.ServeHTTP(w, r2)
	})
}

type origURL struct{}

type original struct {
	url        *url.URL
	requestURI string
}

// Transport wraps base (http.DefaultTransport when nil) so each outgoing
// request is a client span named "HTTP METHOD host". A span records the
// method, the host and the status code: never the path or query (a
// provider may carry a key in either), never a header or body. Trace
// context is not propagated to providers. With tracing off it returns base.
func (p *Provider) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if p == nil {
		return base
	}
	return &clientSpans{base: base, tracer: p.tp.Tracer("github.com/valetkey/valetkey/outgoing")}
}

type clientSpans struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

func (c *clientSpans) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := c.tracer.Start(r.Context(), "HTTP "+r.Method+" "+r.URL.Host,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.ServerAddress(r.URL.Hostname())))
	defer span.End()
	resp, err := c.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		span.SetStatus(codes.Error, "request failed")
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}
