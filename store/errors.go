package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The store's errors. Callers test them with errors.Is; every error the store
// returns wraps at most one of them, plus the driver's error for the message.
var (
	// ErrNotFound: no live row (or version) with that key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the row changed since it was read (ID/Version mismatch, a
	// concurrent writer), or a live job with that alias already exists on
	// create. Callers re-read, re-plan and try again.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the database cannot be reached or is too busy right now
	// (connection refused or reset, timeouts, a closed store, SQLite locked
	// past busy_timeout). Callers retry later.
	ErrUnavailable = errors.New("store: database unavailable")
)

// errClosed is the cause wrapped with ErrUnavailable after Close.
var errClosed = errors.New("store is closed")

// wrap adds context to a database error and translates it into the store's
// sentinels. The password of the database URL is scrubbed from the message.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var out error
	if sentinel := classify(err); sentinel != nil && !errors.Is(err, sentinel) {
		out = fmt.Errorf("%s: %w: %w", op, sentinel, err)
	} else {
		out = fmt.Errorf("%s: %w", op, err)
	}
	return scrub(out, s.secrets)
}

// classify maps a driver error to ErrConflict or ErrUnavailable, or nil when
// the error is neither (a bug, a constraint, a canceled context).
func classify(err error) error {
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound):
		return nil // already translated
	case errors.Is(err, context.Canceled):
		return nil // the caller gave up; not the database's fault
	case errors.Is(err, context.DeadlineExceeded):
		return ErrUnavailable
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "23505": // unique_violation: a live alias taken by a concurrent writer
			return ErrConflict
		case code == "40001", code == "40P01": // serialization_failure, deadlock_detected
			return ErrConflict
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"),                     // insufficient resources: too many connections, disk full
			code == "57P01", code == "57P02", code == "57P03", // shutting down, starting up
			code == "57014", // query_canceled (statement_timeout)
			code == "55P03": // lock_not_available (lock_timeout)
			return ErrUnavailable
		}
		return nil // a server-side error with a reason: not retryable as such
	}

	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return ErrConflict
		}
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM:
			return ErrUnavailable
		}
		return nil
	}

	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connectErr), // a PgError inside (bad password) was handled above
		pgconn.Timeout(err),
		errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, errClosed),
		strings.Contains(err.Error(), "sql: database is closed"): // database/sql has no sentinel for it
		return ErrUnavailable
	}
	return nil
}

// scrubbedError hides a secret from an error message while keeping the chain
// for errors.Is and errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub replaces every occurrence of the secrets in err's message, raw and
// URL-escaped. Drivers are careful not to print passwords; this is the belt to
// their braces.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, secret := range secrets {
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			msg = strings.ReplaceAll(msg, form, redacted)
		}
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
