// Package storetest opens isolated stores on real databases for tests: SQLite
// in the test's temporary directory, PostgreSQL in a schema of its own that is
// dropped when the test ends.
//
// PostgreSQL comes from the admin URL in CAESIUM_TEST_POSTGRES_URL (set by
// scripts/testenv.sh). Without it the PostgreSQL tests are skipped, except
// with CI=true, where they fail: CI never skips silently.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"github.com/caesium-io/caesium/store"
)

// EnvPostgresURL names the variable holding the PostgreSQL admin URL.
const EnvPostgresURL = "CAESIUM_TEST_POSTGRES_URL"

// Backends are the store's backends, for one conformance suite over all.
func Backends() []string { return []string{"sqlite", "postgres"} }

// Open returns an isolated, migrated store on backend ("sqlite" or
// "postgres"), closed when the test ends.
func Open(t testing.TB, backend string) *store.Store {
	t.Helper()
	return OpenOptions(t, backend, store.Options{})
}

// OpenOptions is Open with options (a clock, a logger).
func OpenOptions(t testing.TB, backend string, opts store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), URL(t, backend), opts)
	if err != nil {
		t.Fatalf("storetest: open %s store: %v", backend, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close %s store: %v", backend, err)
		}
	})
	return s
}

// URL returns the URL of a new, empty, isolated database on backend: a file
// in t.TempDir() for SQLite, a fresh schema for PostgreSQL. Open it any
// number of times (two stores on one database).
func URL(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "caesium.db")
	case "postgres":
		return PostgresURL(t)
	}
	t.Fatalf("storetest: unknown backend %q", backend)
	return ""
}

// PostgresURL creates a schema of its own on the test PostgreSQL server and
// returns a URL whose search_path is that schema, for stores and for
// end-to-end tests that start the agent with --database-url. The schema is
// dropped, with everything in it, when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	schema := "caesium_t_" + randomHex(t, 8)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("storetest: open admin connection: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Errorf("storetest: open admin connection: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: %s does not parse: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// AdminURL returns CAESIUM_TEST_POSTGRES_URL, skipping the test when it is
// unset (failing it when CI=true).
func AdminURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgresURL)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: %s is not set and CI=true; run scripts/testenv.sh", EnvPostgresURL)
		}
		t.Skipf("storetest: %s is not set; run eval \"$(scripts/testenv.sh)\" to test on PostgreSQL", EnvPostgresURL)
	}
	return admin
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storetest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
