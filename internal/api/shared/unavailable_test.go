package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
)

// dbDown is what the store returns when Postgres is gone: the sentinel and
// a driver error naming the server.
var dbDown = fmt.Errorf("store: get connection: %w: %w", store.ErrUnavailable,
	errors.New("failed to connect to `user=postgres database=vk`: 127.0.0.1:5432: connection refused"))

func TestToHTTPDatabaseUnavailable(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		detail     string
	}{
		{"database down", dbDown, 503, "2", "The database is unavailable; retry later"},
		{"database down, wrapped again", fmt.Errorf("audit: %w", dbDown), 503, "2", "The database is unavailable; retry later"},
		{"a domain error wins", &apperr.Error{Kind: apperr.KindNotFound, Msg: "Source connection 'x' not found", Err: dbDown}, 404, "", "Source connection 'x' not found"},
		{"unclassified", errors.New("boom"), 500, "", "Internal server error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ToHTTP(context.Background(), log, tc.err)
			var se huma.StatusError
			if !errors.As(err, &se) || se.GetStatus() != tc.status {
				t.Fatalf("ToHTTP(%v) = %v, want status %d", tc.err, err, tc.status)
			}
			var he huma.HeadersError
			got := ""
			if errors.As(err, &he) {
				got = he.GetHeaders().Get("Retry-After")
			}
			if got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			var body *ErrorBody
			if !errors.As(err, &body) || body.Detail != tc.detail {
				t.Errorf("detail = %v, want %q", err, tc.detail)
			}
		})
	}
}

func TestWriteAuthFailure(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		body       string
	}{
		{"refused", apperr.Unauthorized("Invalid API key"), 401, "", `{"detail":"Invalid API key"}`},
		{"database down", dbDown, 503, "2", `{"detail":"Authentication is unavailable"}`},
		{"other failure", errors.New("boom"), 503, "", `{"detail":"Authentication is unavailable"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteAuthFailure(w, tc.err)
			if w.Code != tc.status || w.Header().Get("Retry-After") != tc.retryAfter || strings.TrimSpace(w.Body.String()) != tc.body {
				t.Errorf("got %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
