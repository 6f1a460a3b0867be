-- Leader election (store/leader.go). The lock itself is a session-level advisory lock held on a
-- dedicated connection; this row says who holds it, for status, and carries the fencing token
-- that ApplyChanges checks inside its transaction. The token grows by one on every acquisition
-- and the row is never deleted, so tokens increase strictly across successive leaders.
-- released_at is set on a graceful hand-over; a leader that dies leaves it NULL, and readers
-- then ask pg_locks whether the lock is still held.
CREATE TABLE IF NOT EXISTS leaders (
	name        TEXT        NOT NULL PRIMARY KEY,
	identity    TEXT        NOT NULL,
	token       BIGINT      NOT NULL CHECK (token >= 1),
	acquired_at TIMESTAMPTZ NOT NULL,
	renewed_at  TIMESTAMPTZ NOT NULL,
	released_at TIMESTAMPTZ
);
