-- The SQLite twin of migrations/postgres/20261128000001_leaders.tx.up.sql. The lock is an
-- flock(2) on a file beside the database (store/leader.go); the row is for status and fencing.
CREATE TABLE IF NOT EXISTS leaders (
	name        TEXT    NOT NULL PRIMARY KEY,
	identity    TEXT    NOT NULL,
	token       INTEGER NOT NULL CHECK (token >= 1),
	acquired_at TEXT    NOT NULL,
	renewed_at  TEXT    NOT NULL,
	released_at TEXT
) STRICT;
