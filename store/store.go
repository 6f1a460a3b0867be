package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
)

// Options configures Open. The zero value works.
type Options struct {
	// DataDir holds the SQLite file when the URL is "" or a relative sqlite:// path.
	DataDir string
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
	// MaxOpenConns bounds the connections of the pool: PostgreSQL connections
	// (default 10), or SQLite reader connections (default GOMAXPROCS, at least
	// 4; SQLite has one writer connection besides).
	MaxOpenConns int
	// Now is the clock that stamps created/updated/deleted times; nil is time.Now.
	Now func() time.Time
}

const (
	defaultPostgresConns = 10
	minSQLiteReaders     = 4
	// sqliteBusyTimeout is how long an SQLite statement waits for a lock held
	// by another process before it fails with SQLITE_BUSY (ErrUnavailable).
	sqliteBusyTimeout = 10 * time.Second
	sqliteMmapSize    = 256 << 20
	// sqliteWriterCache is the writer's page cache (negative: KiB).
	sqliteWriterCache = -64 << 10
)

// Store is the database of jobs, sources and apply history. It is safe for
// concurrent use.
//
// SQLite concurrency: a Store holds two pools on the file, one writer
// connection and a pool of readers (query_only). Every write, and so every
// write transaction, goes through the single writer connection, which
// database/sql hands out one caller at a time: writers within the process
// queue in Go (honouring their contexts) instead of spinning in SQLite's busy
// handler, and no transaction can deadlock upgrading a read lock to a write
// lock, the SQLITE_BUSY that busy_timeout does not cure. The writer's
// transactions also BEGIN IMMEDIATE (_txlock=immediate), so a second process
// on the same file waits at BEGIN under busy_timeout rather than failing
// midway. In WAL mode the readers never wait for the writer. An in-memory
// database has a single connection for both, since each connection would
// otherwise see its own empty database.
type Store struct {
	dialect string
	db      *bun.DB // writes; reads too on PostgreSQL
	rdb     *bun.DB // reads: SQLite's reader pool, or db
	log     *slog.Logger
	now     func() time.Time
	stats   statsHook
	closed  atomic.Bool
	secrets []string
}

// Open connects to the database at url and brings its schema up to date.
//
// url is "sqlite://PATH" (a relative PATH is below opts.DataDir; "" means
// DataDir/caesium.db), "sqlite:///abs/path.db", "sqlite://:memory:" (tests),
// or "postgres://…" / "postgresql://…" (pgx's URL and its parameters, such
// as search_path and sslmode). The embedded migrations run at start-up and are
// idempotent; on PostgreSQL an advisory lock serializes processes that start
// at once. Errors: ErrUnavailable when the database cannot be reached; the
// password of the URL never appears in an error or a log line.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t, err := parseURL(url, opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		dialect: t.dialect,
		log:     opts.Logger.WithGroup("store"),
		now:     opts.Now,
		secrets: t.secrets,
	}
	var applied int
	switch t.dialect {
	case dialectSQLite:
		applied, err = s.openSQLite(ctx, t.path, opts.MaxOpenConns)
	case dialectPostgres:
		applied, err = s.openPostgres(ctx, t.url, opts.MaxOpenConns)
	}
	if err != nil {
		s.closeDBs()
		return nil, s.wrap("open "+t.display, err)
	}
	// Counting starts now: migrations are not the caller's statements.
	s.stats.queries.Store(0)
	s.stats.writes.Store(0)
	s.log.Info("store opened", "dialect", t.dialect, "database", t.display, "migrations_applied", applied)
	return s, nil
}

func (s *Store) openPostgres(ctx context.Context, url string, maxConns int) (int, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, err
	}
	// Bun writes the values into the SQL text itself, so every statement is
	// unique: the simple protocol sends it in one round trip, where pgx's
	// default would prepare and cache each one on the server.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "caesium"
	}
	sqldb := stdlib.OpenDB(*cfg)
	s.db = bun.NewDB(sqldb, pgdialect.New())
	s.db.AddQueryHook(&s.stats)
	s.rdb = s.db

	if err := sqldb.PingContext(ctx); err != nil {
		return 0, err
	}
	// Unbounded while migrating: the advisory lock holds one connection and
	// the migrations need another.
	applied, err := s.migrate(ctx)
	if err != nil {
		return 0, err
	}
	if maxConns <= 0 {
		maxConns = defaultPostgresConns
	}
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	return applied, nil
}

func (s *Store) openSQLite(ctx context.Context, path string, maxConns int) (int, error) {
	memory := path == memoryPath
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return 0, err
		}
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds())
	// Reads through a memory map rather than a read(2) per page; the writer
	// also keeps a larger page cache for the indexes a batch touches.
	mmap := fmt.Sprintf("_pragma=mmap_size(%d)", sqliteMmapSize)
	writerDSN := path + "?" + strings.Join([]string{
		busy,
		fmt.Sprintf("_pragma=cache_size(%d)", sqliteWriterCache),
		mmap,
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	}, "&")
	w, err := openSQLiteDB(writerDSN)
	if err != nil {
		return 0, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s.db = bun.NewDB(w, sqlitedialect.New())
	s.db.AddQueryHook(&s.stats)
	s.rdb = s.db

	if err := w.PingContext(ctx); err != nil {
		return 0, err
	}
	applied, err := s.migrate(ctx)
	if err != nil {
		return 0, err
	}
	if memory {
		return applied, nil
	}

	readerDSN := path + "?" + strings.Join([]string{busy, mmap, "_pragma=foreign_keys(1)", "_query_only=1"}, "&")
	r, err := openSQLiteDB(readerDSN)
	if err != nil {
		return 0, err
	}
	if maxConns <= 0 {
		maxConns = max(runtime.GOMAXPROCS(0), minSQLiteReaders)
	}
	r.SetMaxOpenConns(maxConns)
	r.SetMaxIdleConns(maxConns)
	s.rdb = bun.NewDB(r, sqlitedialect.New())
	s.rdb.AddQueryHook(&s.stats)
	if err := r.PingContext(ctx); err != nil {
		return 0, err
	}
	return applied, nil
}

// openSQLiteDB opens a pool on modernc.org/sqlite's connector, never a driver
// looked up by name: no cgo driver can stand in for it.
func openSQLiteDB(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// Close closes the database pools. Calls after Close fail with ErrUnavailable.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.closeDBs(); err != nil {
		return s.wrap("close", err)
	}
	return nil
}

func (s *Store) closeDBs() error {
	var err error
	if s.rdb != nil && s.rdb != s.db {
		err = s.rdb.Close()
	}
	if s.db != nil {
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers. Errors: ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return s.wrap("ping", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return s.wrap("ping", err)
		}
	}
	return nil
}

// check fails once the store is closed.
func (s *Store) check() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// timestamp is the store's clock in UTC, at the microsecond precision both
// databases keep, so that what is returned equals what is read back later.
func (s *Store) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Stats counts the statements the store sent since Open (migrations not
// included). Tests use it to prove that a no-op wrote nothing.
type Stats struct {
	Queries int64 // every statement: reads, writes, BEGIN, COMMIT
	Writes  int64 // INSERT, UPDATE and DELETE statements
}

// Stats returns the statement counts.
func (s *Store) Stats() Stats {
	return Stats{Queries: s.stats.queries.Load(), Writes: s.stats.writes.Load()}
}

// statsHook counts statements as Bun runs them.
type statsHook struct {
	queries atomic.Int64
	writes  atomic.Int64
}

var _ bun.QueryHook = (*statsHook)(nil)

func (h *statsHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *statsHook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	h.queries.Add(1)
	switch strings.ToUpper(e.Operation()) {
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		h.writes.Add(1)
	}
}
