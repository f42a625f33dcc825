package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/valetkey/valetkey/internal/store"
)

// closedPort returns a port of 127.0.0.1 nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestUnavailableClassifiesConnectionErrors(t *testing.T) {
	port := closedPort(t)
	_, refused := pgconn.Connect(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", port))
	var ce *pgconn.ConnectError
	if !errors.As(refused, &ce) {
		t.Fatalf("connecting to a closed port gave %T %v, want a *pgconn.ConnectError", refused, refused)
	}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no rows", sql.ErrNoRows, false},
		{"other error", errors.New("boom"), false},
		{"context canceled", context.Canceled, false},
		{"statement cut by the caller's deadline", fmt.Errorf("timeout: %w", errors.Join(context.DeadlineExceeded,
			&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})), false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"bad password", &pgconn.PgError{Code: "28P01"}, false},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", fmt.Errorf("query: %w", &pgconn.PgError{Code: "57P03"}), true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"cannot connect", &pgconn.PgError{Code: "08001"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"refused (pgx connect)", refused, true},
		{"reset", fmt.Errorf("receive: %w", reset), true},
		{"refused (errno)", syscall.ECONNREFUSED, true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"bad conn", fmt.Errorf("exec: %w", driver.ErrBadConn), true},
		{"conn done", sql.ErrConnDone, true},
		{"pgx conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"unexpected EOF", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{"EOF", io.EOF, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unavailable(tc.err); got != tc.want {
				t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestWrapMarksUnavailable(t *testing.T) {
	s := &Store{f: postgresFlavor}
	cause := &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
	err := s.wrap(cause, "get connection")
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("wrap(57P01) = %v: want store.ErrUnavailable with the cause kept", err)
	}
	for _, other := range []error{sql.ErrNoRows, &pgconn.PgError{Code: "23505"}, errors.New("boom")} {
		if errors.Is(s.wrap(other, "x"), store.ErrUnavailable) {
			t.Errorf("wrap(%v) is marked unavailable", other)
		}
	}
}

// A store whose Postgres is not running answers at once with
// store.ErrUnavailable, reads and transactions alike.
func TestUnreachablePostgresFailsFast(t *testing.T) {
	s, err := Connect(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	began := time.Now()
	if _, err := s.GetOrganization(ctx, "default"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("read: %v, want store.ErrUnavailable", err)
	}
	if err := s.inTx(ctx, func(*sql.Tx) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("transaction: %v, want store.ErrUnavailable", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestWithConnectTimeout(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "connect_timeout=3"},
		{"postgres://u@h/db?connect_timeout=10", "connect_timeout=10"},
		{"postgres://u@h/db?search_path=vk_test_1&sslmode=disable", "connect_timeout=3"},
	}
	for _, tc := range tests {
		got := WithConnectTimeout(tc.in)
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		in, _ := url.Parse(tc.in)
		for k, v := range in.Query() {
			if u.Query().Get(k) != v[0] {
				t.Errorf("WithConnectTimeout(%q) = %q: lost %s", tc.in, got, k)
			}
		}
		if u.Query().Get("connect_timeout") != tc.want[len("connect_timeout="):] || u.User.Username() != "u" || u.Path != in.Path {
			t.Errorf("WithConnectTimeout(%q) = %q, want %s", tc.in, got, tc.want)
		}
	}
}
