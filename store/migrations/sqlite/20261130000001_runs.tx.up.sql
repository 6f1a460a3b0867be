-- The SQLite twin of migrations/postgres/20261130000001_runs.tx.up.sql: same tables, columns,
-- constraints and indexes. Purging a job cascades to its runs and their task rows
-- (foreign_keys is on for every connection).
CREATE TABLE IF NOT EXISTS runs (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	job_alias        TEXT    NOT NULL,
	job_version      INTEGER NOT NULL,
	spec_hash        TEXT    NOT NULL,
	"trigger"        TEXT    NOT NULL,
	actor            TEXT    NOT NULL DEFAULT '',
	status           TEXT    NOT NULL
		CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
	error            TEXT    NOT NULL DEFAULT '',
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	callbacks        TEXT    NOT NULL DEFAULT '[]',
	created_at       TEXT    NOT NULL,
	started_at       TEXT,
	finished_at      TEXT,
	FOREIGN KEY (job_id, job_version) REFERENCES job_versions (job_id, version) ON DELETE CASCADE
) STRICT;
CREATE INDEX IF NOT EXISTS runs_job_alias_id_idx ON runs (job_alias, id DESC);
CREATE INDEX IF NOT EXISTS runs_status_id_idx ON runs (status, id DESC);
CREATE INDEX IF NOT EXISTS runs_job_id_active_idx ON runs (job_id, id) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS runs_job_id_version_idx ON runs (job_id, job_version);

CREATE TABLE IF NOT EXISTS task_runs (
	run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	position    INTEGER NOT NULL,
	status      TEXT    NOT NULL
		CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
	attempts    INTEGER NOT NULL DEFAULT 0,
	exit_code   INTEGER,
	error       TEXT    NOT NULL DEFAULT '',
	output      TEXT    NOT NULL DEFAULT '',
	started_at  TEXT,
	finished_at TEXT,
	PRIMARY KEY (run_id, name)
) STRICT; -- a rowid table: output makes rows large

CREATE INDEX IF NOT EXISTS triggers_http_path_idx ON triggers (json_extract(configuration, '$.path')) WHERE type = 'http';

-- One row: a random id for this database (see the PostgreSQL twin).
CREATE TABLE IF NOT EXISTS installation (
	id         TEXT NOT NULL PRIMARY KEY,
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
INSERT INTO installation (id) SELECT lower(hex(randomblob(16))) WHERE NOT EXISTS (SELECT 1 FROM installation);
