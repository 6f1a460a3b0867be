package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/uptrace/bun/migrate"
)

// migrationFiles holds one directory of SQL migrations per dialect, the same
// versions in both. A migration is NNNNNNNNNNNNNN_name.tx.up.sql (run in a
// transaction) with a .tx.down.sql beside it; add new ones, never edit old
// ones. SQLite migrations must be idempotent (see the SQLite init migration).
//
//go:embed migrations
var migrationFiles embed.FS

// migrationLockKey is the first half of the PostgreSQL advisory lock taken
// around migrations; the second is a hash of the schema, so that databases in
// different schemas (tests) migrate in parallel.
const migrationLockKey = 0x63616573 // "caes"

// migrate applies the migrations not applied yet and returns how many it applied.
func (s *Store) migrate(ctx context.Context) (int, error) {
	sub, err := fs.Sub(migrationFiles, "migrations/"+s.dialect)
	if err != nil {
		return 0, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(sub); err != nil {
		return 0, fmt.Errorf("discover migrations: %w", err)
	}
	m := migrate.NewMigrator(s.db, ms,
		migrate.WithTableName("bun_migrations"),
		migrate.WithLocksTableName("bun_migration_locks"),
		// A failed migration stays unapplied, and is tried again next start.
		migrate.WithMarkAppliedOnSuccess(true),
		// Two processes that both ran an idempotent migration record it once.
		migrate.WithUpsert(true),
	)

	if s.dialect == dialectPostgres {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		// Session-level lock: held across the migrations' own transactions,
		// released on unlock or when the connection ends.
		if _, err := conn.ExecContext(ctx,
			"SELECT pg_advisory_lock(?, hashtext(current_schema()))", migrationLockKey); err != nil {
			return 0, fmt.Errorf("lock migrations: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx),
				"SELECT pg_advisory_unlock(?, hashtext(current_schema()))", migrationLockKey)
		}()
	}

	if err := m.Init(ctx); err != nil {
		return 0, fmt.Errorf("init migrations: %w", err)
	}
	group, err := m.Migrate(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if !group.IsZero() {
		s.log.Info("migrated", "group", group.ID, "migrations", group.Migrations.String())
	}
	return len(group.Migrations), nil
}
