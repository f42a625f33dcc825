// Package sqlstore implements store.Store over database/sql for the two
// supported databases: SQLite (modernc.org/sqlite, the embedded default) and
// Postgres (pgx v5). The SQL is shared; a flavor supplies what differs.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/valetkey/valetkey/internal/store"
)

//go:embed migrations
var migrations embed.FS

// flavor is what differs between the databases.
type flavor struct {
	name      string
	dialect   goose.Dialect
	forUpdate string // row lock suffix for read-modify-write selects
	rebind    func(string) string
	isUnique  func(error) bool
}

var sqliteFlavor = flavor{
	name:      "sqlite",
	dialect:   goose.DialectSQLite3,
	forUpdate: "", // transactions begin IMMEDIATE: the writer lock is held from the start
	rebind:    func(q string) string { return q },
	isUnique: func(err error) bool {
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
		return false
	},
}

var postgresFlavor = flavor{
	name:      "postgres",
	dialect:   goose.DialectPostgres,
	forUpdate: " FOR UPDATE OF sc",
	rebind:    dollarPlaceholders,
	isUnique: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
}

// lockSuffix locks the rows a read-modify-write selects (Postgres; SQLite
// transactions already hold the write lock).
func (f flavor) lockSuffix() string {
	if f.name == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// dollarPlaceholders turns ? into $1, $2, ... (no query here has a literal ?).
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Store is the SQL implementation of store.Store.
type Store struct {
	db *sql.DB // reads
	w  *sql.DB // writes: the same pool on Postgres; one connection on SQLite
	f  flavor
	// audit group-commits audit events.
	audit *auditBatcher
	// stmts caches prepared statements by (pool, query).
	stmts  sync.Map
	nstmts atomic.Int64
}

func withAudit(s *Store) *Store {
	s.audit = newAuditBatcher(s)
	return s
}

var _ store.Store = (*Store)(nil)

// Open connects to a database URL, "sqlite:PATH" or "postgres://...", and
// applies pending migrations.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	s, err := Connect(databaseURL)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect opens the database without migrating.
func Connect(databaseURL string) (*Store, error) {
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return connectSQLite(strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"))
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		db, err := sql.Open("pgx", WithConnectTimeout(databaseURL))
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
		return withAudit(&Store{db: db, w: db, f: postgresFlavor}), nil
	default:
		return nil, fmt.Errorf("store: database URL must start with sqlite: or postgres:// (got scheme %q)", scheme(databaseURL))
	}
}

func scheme(u string) string {
	if i := strings.Index(u, ":"); i >= 0 {
		return u[:i]
	}
	return ""
}

func connectSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: sqlite: path is empty")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: sqlite: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_time_format", "sqlite")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	// SQLite has one writer at a time. Funnelling this process's writes
	// through one connection queues them in Go instead of in SQLite's busy
	// handler, which sleeps in steps of milliseconds; other processes on the
	// same file still meet busy_timeout.
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	return withAudit(&Store{db: db, w: w, f: sqliteFlavor}), nil
}

// Flavor names the database: "sqlite" or "postgres".
func (s *Store) Flavor() string { return s.f.name }

// DB exposes the pool, for tests and for packages that share the database.
func (s *Store) DB() *sql.DB { return s.db }

// WriterDB is the pool writes go through (on SQLite, the one connection).
func (s *Store) WriterDB() *sql.DB { return s.w }

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.f.name)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(s.f.dialect, s.w, sub)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close closes the pools.
func (s *Store) Close() error {
	s.audit.close()
	s.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	err := s.db.Close()
	if s.w != s.db {
		if werr := s.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if st := s.prepared(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, s.f.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, s.f.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	if st := s.prepared(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, s.f.rebind(query), args...)
}

// maxStatements bounds the statement cache; queries built with a variable
// number of placeholders past it are run unprepared.
const maxStatements = 512

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns a cached prepared statement for query on q's pool (in a
// transaction: the pool's statement bound to it), or nil to run it
// unprepared. Parsing SQL was a quarter of a warm /token read on SQLite.
// A transaction uses a statement only once the pool has prepared it.
func (s *Store) prepared(ctx context.Context, q querier, query string) *sql.Stmt {
	db, tx := s.db, (*sql.Tx)(nil)
	switch v := q.(type) {
	case *sql.DB:
		db = v
	case *sql.Tx:
		db, tx = s.w, v
	default:
		return nil
	}
	k := stmtKey{db, query}
	st, ok := s.stmts.Load(k)
	if !ok {
		// Never prepare on the pool from inside a transaction: on SQLite
		// the writer pool's one connection is the transaction's.
		if tx != nil || s.nstmts.Load() >= maxStatements {
			return nil
		}
		p, err := db.PrepareContext(ctx, s.f.rebind(query))
		if err != nil {
			return nil // the unprepared call reports the error
		}
		var loaded bool
		if st, loaded = s.stmts.LoadOrStore(k, p); loaded {
			p.Close()
		} else {
			s.nstmts.Add(1)
		}
	}
	if tx != nil {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	return st.(*sql.Stmt)
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err, "begin")
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return s.wrap(tx.Commit(), "commit")
}

// wrap maps driver errors onto the store sentinels. It is the one place a
// lost or unreachable database becomes store.ErrUnavailable (the driver's
// error stays in the chain for logs).
func (s *Store) wrap(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	case s.f.isUnique(err):
		return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
	case unavailable(err):
		return fmt.Errorf("store: %s: %w: %w", what, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("store: %s: %w", what, err)
	}
}

// utc normalises a time for storage: UTC, microsecond precision (what both
// databases keep), so values read back compare equal.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return utc(*t)
}

func timePtr(n sql.NullTime) *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time.UTC()
	return &t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func checkAffected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

// collect scans every row of a query with scan. The result is never nil, so
// an empty list encodes as [].
func collect[T any](s *Store, rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, s.wrap(err, what)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(err, what)
		}
		out = append(out, v)
	}
	return out, s.wrap(rows.Err(), what)
}
