package sqlstore_test

import (
	"context"
	"testing"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/store/sqlstore"
	"github.com/valetkey/valetkey/internal/store/storetest"
	"github.com/valetkey/valetkey/internal/testkit"
)

func TestConformance(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			storetest.RunTests(t, func(t *testing.T) store.Store {
				s, err := sqlstore.Open(context.Background(), newURL(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	if _, err := sqlstore.Open(context.Background(), "mysql://x"); err == nil {
		t.Fatal("mysql URL accepted")
	}
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	url := testkit.SQLiteURL(t)
	for i := 0; i < 2; i++ {
		s, err := sqlstore.Open(context.Background(), url)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		s.Close()
	}
}
