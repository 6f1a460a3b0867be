package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		want    target
		wantErr bool
	}{
		{name: "empty is the default file", url: "",
			want: target{dialect: dialectSQLite, display: "sqlite:///data/caesium.db", path: "/data/caesium.db"}},
		{name: "relative path", url: "sqlite://db/jobs.db",
			want: target{dialect: dialectSQLite, display: "sqlite:///data/db/jobs.db", path: "/data/db/jobs.db"}},
		{name: "absolute path", url: "sqlite:///var/lib/caesium/c.db",
			want: target{dialect: dialectSQLite, display: "sqlite:///var/lib/caesium/c.db", path: "/var/lib/caesium/c.db"}},
		{name: "memory", url: "sqlite://:memory:",
			want: target{dialect: dialectSQLite, display: "sqlite://:memory:", path: ":memory:"}},
		{name: "postgres", url: "postgres://caesium:pw@db:5432/caesium?sslmode=require",
			want: target{dialect: dialectPostgres, display: "postgres://caesium:xxxxx@db:5432/caesium?sslmode=require",
				url: "postgres://caesium:pw@db:5432/caesium?sslmode=require", secrets: []string{"pw"}}},
		{name: "postgresql with password parameter", url: "postgresql://db/caesium?password=pw2&sslmode=disable",
			want: target{dialect: dialectPostgres, display: "postgresql://db/caesium?password=xxxxx&sslmode=disable",
				url: "postgresql://db/caesium?password=pw2&sslmode=disable", secrets: []string{"pw2"}}},
		{name: "sqlite without path", url: "sqlite://", wantErr: true},
		{name: "sqlite with parameters", url: "sqlite://x.db?_pragma=foreign_keys(0)", wantErr: true},
		{name: "unknown scheme", url: "mysql://root:pw@db/x", wantErr: true},
		{name: "no scheme", url: "caesium.db", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseURL(tc.url, "/data")
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseURL(%q) error = %v, wantErr %v", tc.url, err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), ":pw@") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseURL(%q) =\n%+v\nwant\n%+v", tc.url, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unique violation", &pgconn.PgError{Code: "23505"}, ErrConflict},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, ErrConflict},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, ErrConflict},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, ErrUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, ErrUnavailable},
		{"syntax error", &pgconn.PgError{Code: "42601"}, nil},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), ErrUnavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), ErrUnavailable},
		{"eof", io.ErrUnexpectedEOF, ErrUnavailable},
		{"bad conn", driver.ErrBadConn, ErrUnavailable},
		{"deadline", context.DeadlineExceeded, ErrUnavailable},
		{"canceled", context.Canceled, nil},
		{"closed", errClosed, ErrUnavailable},
		{"other", errors.New("boom"), nil},
	}
	for _, tc := range tests {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	base := fmt.Errorf("connect postgres://u:p%%40ss@h/x: %w", ErrUnavailable)
	err := scrub(base, []string{"p@ss"})
	if strings.Contains(err.Error(), "p%40ss") || strings.Contains(err.Error(), "p@ss") {
		t.Errorf("scrub left the password in %q", err)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("scrub lost the chain: %v", err)
	}
	if got := scrub(base, nil); got != base {
		t.Errorf("scrub without secrets changed the error")
	}
}

// TestSQLiteConnections: the SQLite driver is the pure-Go one on both pools,
// whatever the build tags (no sqliteshim), with the DSN's pragmas in effect
// and the reader pool unable to write.
func TestSQLiteConnections(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []driver.Driver{s.db.DB.Driver(), s.rdb.DB.Driver()} {
		if _, ok := d.(*sqlite.Driver); !ok {
			t.Errorf("driver is %T, want *sqlite.Driver (modernc.org/sqlite)", d)
		}
	}
	var mode string
	if err := s.db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	for _, p := range []struct {
		pragma string
		want   int
	}{
		{"foreign_keys", 1},
		{"synchronous", 1}, // NORMAL
		{"busy_timeout", int(sqliteBusyTimeout.Milliseconds())},
		{"cache_size", sqliteWriterCache},
		{"mmap_size", sqliteMmapSize},
	} {
		var got int
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+p.pragma).Scan(&got); err != nil || got != p.want {
			t.Errorf("writer: PRAGMA %s = %d (%v), want %d", p.pragma, got, err, p.want)
		}
	}
	var mmap int
	if err := s.rdb.QueryRowContext(t.Context(), "PRAGMA mmap_size").Scan(&mmap); err != nil || mmap != sqliteMmapSize {
		t.Errorf("reader: PRAGMA mmap_size = %d (%v), want %d", mmap, err, sqliteMmapSize)
	}
	if _, err := s.rdb.ExecContext(t.Context(), "DELETE FROM jobs"); err == nil {
		t.Errorf("the reader pool accepted a write")
	}
}
