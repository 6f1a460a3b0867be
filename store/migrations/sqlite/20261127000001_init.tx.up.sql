-- The SQLite twin of migrations/postgres/20261127000001_init.tx.up.sql: same tables, columns
-- and indexes. STRICT tables; JSON is TEXT, times are TEXT in one UTC layout
-- ("2006-01-02 15:04:05.999999+00:00") that sorts as it compares, booleans are 0/1.
-- AUTOINCREMENT keeps ids of purged rows from being handed out again, as on PostgreSQL.
--
-- SQLite has no advisory lock, so two processes opening a new file at once may both run a
-- migration: every statement must be idempotent (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS jobs (
	id                   INTEGER PRIMARY KEY AUTOINCREMENT,
	alias                TEXT    NOT NULL,
	version              INTEGER NOT NULL CHECK (version >= 1),
	spec_hash            TEXT    NOT NULL,
	spec                 TEXT    NOT NULL,
	labels               TEXT    NOT NULL DEFAULT '{}',
	annotations          TEXT    NOT NULL DEFAULT '{}',
	trigger_type         TEXT    NOT NULL,
	provenance_source_id TEXT    NOT NULL DEFAULT '',
	provenance_repo      TEXT    NOT NULL DEFAULT '',
	provenance_ref       TEXT    NOT NULL DEFAULT '',
	provenance_commit    TEXT    NOT NULL DEFAULT '',
	provenance_path      TEXT    NOT NULL DEFAULT '',
	created_at           TEXT    NOT NULL,
	updated_at           TEXT    NOT NULL,
	deleted_at           TEXT
) STRICT;

CREATE UNIQUE INDEX IF NOT EXISTS jobs_alias_live_key ON jobs (alias) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS jobs_provenance_source_id_idx ON jobs (provenance_source_id);
CREATE INDEX IF NOT EXISTS jobs_deleted_at_idx ON jobs (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS job_versions (
	job_id            INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	version           INTEGER NOT NULL,
	spec_hash         TEXT    NOT NULL,
	spec              TEXT    NOT NULL,
	provenance_commit TEXT    NOT NULL DEFAULT '',
	created_at        TEXT    NOT NULL,
	PRIMARY KEY (job_id, version)
) STRICT; -- a rowid table: WITHOUT ROWID suits rows far smaller than a spec

CREATE TABLE IF NOT EXISTS triggers (
	job_id        INTEGER NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
	type          TEXT    NOT NULL,
	configuration TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE IF NOT EXISTS tasks (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	name           TEXT    NOT NULL,
	position       INTEGER NOT NULL,
	engine         TEXT    NOT NULL,
	image          TEXT    NOT NULL DEFAULT '',
	command        TEXT    NOT NULL DEFAULT '[]',
	env            TEXT    NOT NULL DEFAULT '{}',
	workdir        TEXT    NOT NULL DEFAULT '',
	retries        INTEGER NOT NULL DEFAULT 0,
	retry_delay_ms INTEGER NOT NULL DEFAULT 0,
	timeout_ms     INTEGER NOT NULL DEFAULT 0,
	trigger_rule   TEXT    NOT NULL,
	UNIQUE (job_id, name)
) STRICT;

-- No foreign keys to tasks, as on PostgreSQL: edges go and come with their job's tasks.
CREATE TABLE IF NOT EXISTS task_edges (
	job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	from_task_id INTEGER NOT NULL,
	to_task_id   INTEGER NOT NULL,
	PRIMARY KEY (from_task_id, to_task_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_edges_job_id_idx ON task_edges (job_id);

CREATE TABLE IF NOT EXISTS callbacks (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id   INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	type     TEXT    NOT NULL,
	url      TEXT    NOT NULL,
	"on"     TEXT    NOT NULL DEFAULT '[]',
	headers  TEXT    NOT NULL DEFAULT '{}',
	UNIQUE (job_id, position)
) STRICT;

CREATE TABLE IF NOT EXISTS sources (
	id                    TEXT NOT NULL PRIMARY KEY,
	repo                  TEXT NOT NULL DEFAULT '',
	ref                   TEXT NOT NULL DEFAULT '',
	path                  TEXT NOT NULL DEFAULT '',
	last_attempted_commit TEXT NOT NULL DEFAULT '',
	last_applied_commit   TEXT NOT NULL DEFAULT '',
	status                TEXT,
	updated_at            TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS apply_history (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	source_id     TEXT    NOT NULL DEFAULT '',
	revision      TEXT    NOT NULL DEFAULT '',
	actor         TEXT    NOT NULL DEFAULT '',
	dry_run       INTEGER NOT NULL DEFAULT 0,
	force         INTEGER NOT NULL DEFAULT 0,
	atomic        INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL DEFAULT 0,
	updated       INTEGER NOT NULL DEFAULT 0,
	deleted       INTEGER NOT NULL DEFAULT 0,
	unchanged     INTEGER NOT NULL DEFAULT 0,
	conflicts     INTEGER NOT NULL DEFAULT 0,
	failed        INTEGER NOT NULL DEFAULT 0,
	prune_refused TEXT    NOT NULL DEFAULT '',
	transfers     TEXT    NOT NULL DEFAULT '[]',
	error         TEXT    NOT NULL DEFAULT '',
	started_at    TEXT    NOT NULL,
	finished_at   TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS apply_history_started_at_idx ON apply_history (started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS apply_history_source_id_idx ON apply_history (source_id, started_at DESC, id DESC);
