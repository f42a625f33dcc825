// Package shared holds what both API dialects use: the caller's identity in
// the request context, the error body and the single mapping of domain errors
// to HTTP, and the Register helper every handler goes through.
package shared

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/tenant"
)

type principalKey struct{}

type callerKey struct{}

// WithCaller stores the embedded API's caller in ctx.
func WithCaller(ctx context.Context, c any) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns what WithCaller stored.
func CallerFrom(ctx context.Context) any { return ctx.Value(callerKey{}) }

type remoteAddrKey struct{}

// WithRemoteAddr records the client's address (host only) for audit records.
func WithRemoteAddr(ctx context.Context, r *http.Request) context.Context {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return context.WithValue(ctx, remoteAddrKey{}, host)
}

// RemoteAddr returns the address WithRemoteAddr recorded.
func RemoteAddr(ctx context.Context) string {
	s, _ := ctx.Value(remoteAddrKey{}).(string)
	return s
}

// WithPrincipal stores the authenticated caller in ctx.
func WithPrincipal(ctx context.Context, p tenant.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller.
func PrincipalFrom(ctx context.Context) (tenant.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(tenant.Principal)
	return p, ok
}

// ErrorBody is every error response: {"detail": "message"}, or for 422
// {"detail": [{"loc": [...], "msg": "...", "type": "..."}]}.
type ErrorBody struct {
	status int
	Detail any `json:"detail" doc:"A message, or for 422 a list of {loc, msg, type}"`
}

// Error implements error.
func (e *ErrorBody) Error() string {
	if s, ok := e.Detail.(string); ok {
		return s
	}
	return http.StatusText(e.status)
}

// GetStatus implements huma.StatusError.
func (e *ErrorBody) GetStatus() int { return e.status }

// ContentType keeps the JSON content type for errors.
func (e *ErrorBody) ContentType(string) string { return "application/json" }

// NewError replaces huma's error model (see InstallErrorModel). Validation
// details become FastAPI-style entries; the offending value huma would echo
// back is dropped, since it may be a secret.
func NewError(status int, msg string, errs ...error) huma.StatusError {
	if status == http.StatusUnprocessableEntity {
		var details []apperr.FieldError
		for _, err := range errs {
			if err == nil {
				continue
			}
			var d huma.ErrorDetailer
			if errors.As(err, &d) {
				details = append(details, fieldError(d.ErrorDetail()))
				continue
			}
			details = append(details, apperr.FieldError{Loc: []any{"body"}, Msg: err.Error(), Type: "value_error"})
		}
		if len(details) == 0 {
			details = []apperr.FieldError{{Loc: []any{"body"}, Msg: msg, Type: "value_error"}}
		}
		return &ErrorBody{status: status, Detail: details}
	}
	var parts []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			ed := d.ErrorDetail()
			parts = append(parts, strings.TrimSpace(ed.Location+" "+ed.Message))
		} else {
			parts = append(parts, err.Error())
		}
	}
	switch {
	case status == http.StatusUnsupportedMediaType:
		return &ErrorBody{status: status, Detail: "Unsupported Content-Type: send application/json"}
	case status == http.StatusBadRequest && len(parts) > 0 && strings.HasPrefix(parts[0], "body "):
		return &ErrorBody{status: status, Detail: "Malformed JSON body: " + strings.TrimPrefix(parts[0], "body ")}
	}
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	return &ErrorBody{status: status, Detail: msg}
}

// InstallErrorModel points huma's error constructor at NewError. huma keeps
// it in a package variable; this is the one place that sets it.
func InstallErrorModel() {
	huma.NewError = NewError
	huma.NewErrorWithContext = func(_ huma.Context, status int, msg string, errs ...error) huma.StatusError {
		return NewError(status, msg, errs...)
	}
}

// fieldError converts a huma validation detail, naming the missing property
// in the location as FastAPI does.
func fieldError(ed *huma.ErrorDetail) apperr.FieldError {
	loc := splitLocation(ed.Location)
	const pre, post = "expected required property ", " to be present"
	if strings.HasPrefix(ed.Message, pre) && strings.HasSuffix(ed.Message, post) {
		name := strings.TrimSuffix(strings.TrimPrefix(ed.Message, pre), post)
		return apperr.FieldError{Loc: append(loc, name), Msg: fmt.Sprintf("Field '%s' is required", name), Type: "missing"}
	}
	if ed.Message == "unexpected property" {
		return apperr.FieldError{Loc: loc, Msg: "Unknown field", Type: "extra_forbidden"}
	}
	return apperr.FieldError{Loc: loc, Msg: ed.Message, Type: "value_error"}
}

// splitLocation turns "body.auth_fields.token" or "body.items[2].x" into a
// loc list.
func splitLocation(loc string) []any {
	var out []any
	for _, part := range strings.Split(loc, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				out = append(out, part[i:])
				break
			}
			if n, err := strconv.Atoi(part[i+1 : j]); err == nil {
				out = append(out, n)
			} else {
				out = append(out, part[i+1:j])
			}
			part = part[j+1:]
		}
	}
	return out
}

// statusOf maps a domain error kind to its HTTP status: the one table.
var statusOf = map[apperr.Kind]int{
	apperr.KindBadRequest:      http.StatusBadRequest,
	apperr.KindUnauthorized:    http.StatusUnauthorized,
	apperr.KindForbidden:       http.StatusForbidden,
	apperr.KindNotFound:        http.StatusNotFound,
	apperr.KindConflict:        http.StatusConflict,
	apperr.KindValidation:      http.StatusUnprocessableEntity,
	apperr.KindUnavailable:     http.StatusServiceUnavailable,
	apperr.KindTooManyRequests: http.StatusTooManyRequests,
	apperr.KindBadGateway:      http.StatusBadGateway,
}

// DatabaseRetryAfter is the Retry-After sent while the database is
// unreachable (a restart or failover usually takes seconds).
const DatabaseRetryAfter = 2 * time.Second

// errDatabaseUnavailable answers a request that failed because the database
// could not be reached (store.ErrUnavailable): nothing happened, retry.
func errDatabaseUnavailable(err error) *apperr.Error {
	return &apperr.Error{Kind: apperr.KindUnavailable, Msg: "The database is unavailable; retry later", RetryAfter: DatabaseRetryAfter, Err: err}
}

// ToHTTP converts any error a handler returns into the response error.
// Domain errors map by kind; store.ErrUnavailable is a 503 with
// Retry-After; unclassified errors are logged and answered 500 with no
// detail.
func ToHTTP(ctx context.Context, log *slog.Logger, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	e, ok := apperr.As(err)
	if !ok && errors.Is(err, store.ErrUnavailable) {
		log.WarnContext(ctx, "database unavailable", "error", err.Error()) // the driver's words, for the operator
		e, ok = errDatabaseUnavailable(err), true
	}
	if !ok {
		log.ErrorContext(ctx, "internal error", "error", err.Error())
		return &ErrorBody{status: http.StatusInternalServerError, Detail: "Internal server error"}
	}
	status := statusOf[e.Kind]
	if status == 0 {
		log.ErrorContext(ctx, "internal error", "error", e.Error())
		return &ErrorBody{status: http.StatusInternalServerError, Detail: "Internal server error"}
	}
	var body *ErrorBody
	if e.Kind == apperr.KindValidation {
		body = &ErrorBody{status: status, Detail: e.Fields}
	} else {
		body = &ErrorBody{status: status, Detail: e.Msg}
	}
	if e.RetryAfter > 0 {
		return huma.ErrorWithHeaders(body, http.Header{"Retry-After": []string{retryAfter(e.RetryAfter)}})
	}
	return body
}

// retryAfter is a Retry-After value: whole seconds, rounded up.
func retryAfter(d time.Duration) string { return strconv.Itoa(int(d.Seconds() + 0.999)) }

// WriteAuthFailure answers a request whose credentials could not be checked
// (the middlewares of both dialects): 401 with the reason when they were
// refused, else 503, with Retry-After when the database is unreachable.
func WriteAuthFailure(w http.ResponseWriter, err error) {
	if e, ok := apperr.As(err); ok && e.Kind == apperr.KindUnauthorized {
		WriteDetail(w, http.StatusUnauthorized, e.Msg)
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		w.Header().Set("Retry-After", retryAfter(DatabaseRetryAfter))
	}
	WriteDetail(w, http.StatusServiceUnavailable, "Authentication is unavailable")
}

// Register adds an operation whose handler errors are mapped by ToHTTP.
func Register[I, O any](api huma.API, log *slog.Logger, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	huma.Register(api, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err != nil {
			return nil, ToHTTP(ctx, log, err)
		}
		return out, nil
	})
}

// Principal returns the caller or an Unauthorized error (for handlers that
// run behind the auth middleware, this cannot fail).
func Principal(ctx context.Context) (tenant.Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return p, apperr.Unauthorized("Missing API key: send X-API-Key or Authorization: Bearer")
	}
	return p, nil
}

// WriteDetail writes {"detail": msg} outside huma (middleware).
func WriteDetail(w http.ResponseWriter, status int, msg string) {
	writeBody(w, &ErrorBody{status: status, Detail: msg})
}

// WriteFieldErrors writes a 422 {"detail": [{loc, msg, type}...]} outside huma (middleware).
func WriteFieldErrors(w http.ResponseWriter, fes ...apperr.FieldError) {
	writeBody(w, &ErrorBody{status: http.StatusUnprocessableEntity, Detail: fes})
}

func writeBody(w http.ResponseWriter, e *ErrorBody) {
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}
