package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store/sqlstore"
)

// seedCopies stores n copies of one connection and its credential, with ids
// "bench-<i>" and "bench-cred-<i>" (i from 1), in multi-row INSERTs, on
// SQLite or Postgres: the way to have 100,000 stored connections in
// seconds. Every column is copied from the template rows as they are, so
// the copies follow the schema without naming it; expires, when not nil,
// sets the i-th credential's expiry. The copies carry the template's
// ciphertext, which does not decrypt under their ids (the associated data
// binds it to the original): they are for benchmarks in which nothing reads
// them (startup, a sweep they are not due for).
func seedCopies(t testing.TB, st *sqlstore.Store, templateID string, n int, expires func(i int) time.Time) {
	t.Helper()
	ctx := context.Background()
	conn := templateRow(t, st, "source_connections", "id", templateID)
	cred := templateRow(t, st, "credentials", "source_connection_id", templateID)
	copyRows(t, st, conn, n, func(i int, row []any) {
		conn.set(row, "id", "bench-"+strconv.Itoa(i))
		conn.set(row, "name", fmt.Sprintf("%v %d", conn.get(row, "name"), i))
	})
	copyRows(t, st, cred, n, func(i int, row []any) {
		cred.set(row, "id", "bench-cred-"+strconv.Itoa(i))
		cred.set(row, "source_connection_id", "bench-"+strconv.Itoa(i))
		if expires != nil {
			cred.set(row, "expires_at", expires(i).UTC())
		}
	})
	if st.Flavor() == "postgres" {
		// Autovacuum would soon analyze tables that grew this much; SQLite
		// has no statistics unless asked (Valetkey never asks).
		for _, table := range []string{"source_connections", "credentials"} {
			if _, err := st.WriterDB().ExecContext(ctx, "ANALYZE "+table); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// row is one template row: its table, column names and values.
type row struct {
	table string
	cols  []string
	vals  []any
}

func (r row) index(col string) int {
	for i, c := range r.cols {
		if c == col {
			return i
		}
	}
	panic("bench: no column " + col + " in " + r.table)
}

func (r row) get(vals []any, col string) any    { return vals[r.index(col)] }
func (r row) set(vals []any, col string, v any) { vals[r.index(col)] = v }

func placeholder(st *sqlstore.Store, n int) string {
	if st.Flavor() == "postgres" {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

func templateRow(t testing.TB, st *sqlstore.Store, table, key, value string) row {
	t.Helper()
	rows, err := st.DB().QueryContext(context.Background(), "SELECT * FROM "+table+" WHERE "+key+" = "+placeholder(st, 1), value)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no %s row with %s = %s", table, key, value)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return row{table: table, cols: cols, vals: vals}
}

// copyRows inserts n copies of tmpl, edited by edit, in one transaction of
// multi-row INSERTs (kept under both databases' bound-parameter limits).
func copyRows(t testing.TB, st *sqlstore.Store, tmpl row, n int, edit func(i int, vals []any)) {
	t.Helper()
	ctx := context.Background()
	batch := min(1000, 30000/len(tmpl.cols))
	tx, err := st.WriterDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var stmt *sql.Stmt
	for start := 1; start <= n; start += batch {
		size := min(batch, n-start+1)
		if stmt == nil || size != batch {
			stmt = prepareInsert(t, tx, st, tmpl, size)
		}
		args := make([]any, 0, size*len(tmpl.cols))
		for i := start; i < start+size; i++ {
			vals := append([]any(nil), tmpl.vals...)
			edit(i, vals)
			args = append(args, vals...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			t.Fatalf("seed %s: %v", tmpl.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func prepareInsert(t testing.TB, tx *sql.Tx, st *sqlstore.Store, tmpl row, rows int) *sql.Stmt {
	t.Helper()
	var b strings.Builder
	b.WriteString("INSERT INTO " + tmpl.table + " (" + strings.Join(tmpl.cols, ", ") + ") VALUES ")
	n := 0
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range tmpl.cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(placeholder(st, n))
		}
		b.WriteString(")")
	}
	stmt, err := tx.PrepareContext(context.Background(), b.String())
	if err != nil {
		t.Fatal(err)
	}
	return stmt
}
