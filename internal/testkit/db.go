// Package testkit holds helpers and emulators used only by tests.
package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv names the variable that enables the Postgres side of the suites.
const PostgresEnv = "VALETKEY_TEST_POSTGRES_URL"

// SQLiteURL returns a database URL for a fresh SQLite file in a temp dir.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "valetkey.db")
}

// PostgresURL returns a URL to a fresh, empty schema on the test Postgres
// server, dropped when the test ends. It skips the test when
// VALETKEY_TEST_POSTGRES_URL is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set: skipping the Postgres side")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "vk_test_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// DatabaseURLs returns the backends a suite runs against: SQLite always,
// Postgres when configured (a skipped subtest otherwise).
func DatabaseURLs() map[string]func(testing.TB) string {
	return map[string]func(testing.TB) string{"sqlite": SQLiteURL, "postgres": PostgresURL}
}
