package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// unavailable reports whether err means the database could not be reached
// or went away (refused or timed-out connection, server shutting down or
// starting up, connection lost mid-query) rather than a failed statement.
// wrap marks such errors with store.ErrUnavailable; callers may retry.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return unavailableState(pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) { // no server error inside: refused, timed out, reset
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's own deadline or cancellation cut the statement short
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// unavailableState reports whether a Postgres SQLSTATE says the server
// cannot serve now: connection exceptions (class 08), admin or crash
// shutdown (57P01, 57P02), not yet accepting connections (57P03), or too
// many connections (53300).
func unavailableState(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// connectTimeout bounds each connection attempt to Postgres when the URL
// sets no connect_timeout: with the server down or unreachable, a request
// fails within seconds (ErrUnavailable) instead of waiting for the
// operating system's TCP timeout.
const connectTimeout = 3 * time.Second

// WithConnectTimeout adds connect_timeout to a postgres:// URL that has none
// (the store and the Postgres job queue open their pools with it).
func WithConnectTimeout(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return databaseURL // left for the driver to report
	}
	q := u.Query()
	if q.Get("connect_timeout") != "" {
		return databaseURL
	}
	q.Set("connect_timeout", strconv.Itoa(int(connectTimeout/time.Second)))
	u.RawQuery = q.Encode()
	return u.String()
}
