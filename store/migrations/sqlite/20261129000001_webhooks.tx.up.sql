-- The SQLite twin of migrations/postgres/20261129000001_webhooks.tx.up.sql.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
	id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	provider        TEXT    NOT NULL,
	event           TEXT    NOT NULL DEFAULT '',
	delivery_id     TEXT    NOT NULL DEFAULT '',
	repository      TEXT    NOT NULL DEFAULT '',
	ref             TEXT    NOT NULL DEFAULT '',
	after           TEXT    NOT NULL DEFAULT '',
	result          TEXT    NOT NULL,
	reason          TEXT    NOT NULL DEFAULT '',
	matched_sources TEXT    NOT NULL DEFAULT '[]',
	status          INTEGER NOT NULL,
	duration_us     INTEGER NOT NULL DEFAULT 0,
	received_at     TEXT    NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS webhook_replays (
	key     TEXT NOT NULL PRIMARY KEY,
	seen_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_replays_seen_at ON webhook_replays (seen_at);
