package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// Leader election: several agents on one PostgreSQL elect one reconciler.
//
// PostgreSQL: the leader holds a session-level advisory lock on a dedicated
// connection taken out of the pool. The server releases the lock when that
// session ends for whatever reason (Resign, the process exiting or crashing,
// pg_terminate_backend, the TCP connection found dead), and a follower, which
// tries pg_try_advisory_lock every RetryInterval, takes over. SQLite: one agent
// per database file, elected by an flock(2) on a file beside the database.
//
// Both keep a row per role in the leaders table: who leads, since when, and a
// fencing token that grows by one on every acquisition. ApplyChanges under
// WithLease checks the token inside its transaction, so a leader that lost its
// lock but has not noticed yet (at most one CheckInterval plus the check's
// timeout) cannot commit after its successor took over.

// ErrNotLeader: a write fenced with WithLease was refused because the lease has
// ended (lost or resigned) or a newer leader has taken over. The caller stops
// reconciling; retrying under the same lease cannot succeed.
var ErrNotLeader = errors.New("store: not the leader")

const (
	defaultLeaderRetry = 2 * time.Second
	defaultLeaderCheck = 2 * time.Second
	// minLeaderCheckTimeout is the floor of the time a check may take, so that
	// a short CheckInterval on a loaded machine does not cost the lease.
	minLeaderCheckTimeout = time.Second
	// leaderAttemptTimeout bounds one attempt to acquire: a connection, the
	// lock, the token. Taking the token may wait for an apply of the previous
	// leader to commit.
	leaderAttemptTimeout = 30 * time.Second
	// leaderReleaseTimeout bounds a graceful release: mark the row, unlock.
	leaderReleaseTimeout = 5 * time.Second
	// leaderLockKey is the first half of the PostgreSQL advisory lock key (the
	// migrations use another); the second is a hash of the schema and the role
	// name, so that roles, and databases in different schemas (tests), do not
	// contend.
	leaderLockKey = 0x6c656164 // "lead"
	// keepaliveProbes unanswered keepalive probes end the leader's session.
	keepaliveProbes = 3
	maxLeaderName   = 63
)

// pgLockHeld is true when some session holds the advisory lock of the role
// named by its two arguments (leaderLockKey, name). pg_locks shows the two
// int4 halves of the key as oids (classid, objid), with objsubid 2.
const pgLockHeld = `SELECT 1 FROM pg_locks
	WHERE locktype = 'advisory' AND granted AND objsubid = 2
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid = ? AND objid = ((` + pgLeaderKey + `)::bigint & 4294967295)`

// pgLeaderKey is the second half of the advisory lock key of the role named by
// its argument.
const pgLeaderKey = `hashtext(coalesce(current_schema(), '') || '/' || ?)`

// LeaderOptions configures Campaign.
type LeaderOptions struct {
	// Name is the role campaigned for, e.g. "reconciler": letters, digits,
	// '.', '_' and '-', at most 63 characters.
	Name string
	// Identity says who leads, for status: host:pid or an agent ID. "" is
	// host:pid of this process.
	Identity string
	// RetryInterval is how often a follower tries to take the lock (default 2s).
	RetryInterval time.Duration
	// CheckInterval is how often the leader verifies that it still holds the
	// lock (default 2s). A check that does not answer within
	// max(CheckInterval, 1s) ends the lease.
	CheckInterval time.Duration
	// Logger receives campaign and lease events; nil is the store's logger.
	Logger *slog.Logger
}

func (o *LeaderOptions) validate() error {
	if o.Name == "" || len(o.Name) > maxLeaderName {
		return fmt.Errorf("leader name %q: want 1 to %d characters", o.Name, maxLeaderName)
	}
	for _, r := range o.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("leader name %q: want letters, digits, '.', '_' or '-'", o.Name)
		}
	}
	if o.RetryInterval < 0 || o.CheckInterval < 0 {
		return fmt.Errorf("leader %s: negative interval", o.Name)
	}
	return nil
}

func (o *LeaderOptions) defaults(s *Store) {
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = host + ":" + strconv.Itoa(os.Getpid())
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = defaultLeaderRetry
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = defaultLeaderCheck
	}
	if o.Logger == nil {
		o.Logger = s.log.WithGroup("leader")
	}
	o.Logger = o.Logger.With("name", o.Name)
}

func (o *LeaderOptions) checkTimeout() time.Duration {
	return max(o.CheckInterval, minLeaderCheckTimeout)
}

// LeaderInfo is who leads a role, for status.
type LeaderInfo struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
	// Token is the leader's fencing token.
	Token int64 `json:"token"`
	// Since is when the leader acquired the role.
	Since time.Time `json:"since"`
	// RenewedAt is the leader's last successful check of its lock (on SQLite
	// the checks renew it only when the single writer is free).
	RenewedAt time.Time `json:"renewedAt"`
}

type leaderRow struct {
	bun.BaseModel `bun:"table:leaders,alias:l"`

	Name       string     `bun:"name,pk,type:text"`
	Identity   string     `bun:"identity,type:text"`
	Token      int64      `bun:"token,type:bigint"`
	AcquiredAt time.Time  `bun:"acquired_at,type:timestamptz"`
	RenewedAt  time.Time  `bun:"renewed_at,type:timestamptz"`
	ReleasedAt *time.Time `bun:"released_at,type:timestamptz"`
}

// Campaign blocks until this process leads the role opts.Name, or ctx ends.
// It returns a Lease whose Done channel closes when leadership ends: the lock
// was lost (its connection dropped, the check failed or timed out, the store
// was closed), Resign was called, or ctx ended. The caller must stop
// reconciling as soon as Done closes, and should run its writes under
// WithLease so that the store refuses them once a successor has taken over.
//
// On PostgreSQL the lease keeps one connection of the pool
// (Options.MaxOpenConns) for as long as it lasts, and a follower borrows one
// for a moment every RetryInterval.
//
// Database errors while campaigning are logged and retried every
// RetryInterval; Campaign returns an error only for invalid options, a closed
// store (ErrUnavailable) or the end of ctx (wrapping ctx.Err()).
//
// Hand-over, with R = RetryInterval, C = CheckInterval, T = max(C, 1s):
//   - Resign, ctx ending, or the leader process exiting or crashing on a live
//     host: the lock is released at once; a follower leads within R.
//   - The leader's session killed on the server: a follower leads within R;
//     the old leader's Done closes within C.
//   - PostgreSQL, the leader's host or network gone: the old leader's Done
//     closes within C+T (its check times out); the server ends the session
//     after TCP keepalives go unanswered for ceil(C+T) + 3*ceil(T) seconds (or
//     unacknowledged data for as long, tcp_user_timeout), set on the leader's
//     session; a follower leads within that plus R: 10s + 2s with the
//     defaults. The server's release always comes after the old leader's
//     Done, and the fencing token covers the rest.
//
// SQLite: one agent per database file. The lock is an flock on "<database
// file>.leader-<name>.lock", so a second process (or a second Store in the
// same process) on the same file waits. An in-memory database always leads
// at once, each Campaign taking a new token.
func (s *Store) Campaign(ctx context.Context, opts LeaderOptions) (*Lease, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	opts.defaults(s)
	op := "campaign " + opts.Name
	log := opts.Logger
	failing := false
	for {
		if err := s.check(); err != nil {
			return nil, s.wrap(op, err)
		}
		lock, err := s.tryLead(ctx, opts)
		switch {
		case errors.Is(err, errNoFlock):
			return nil, fmt.Errorf("%s: %w", op, err)
		case lock != nil:
			log.Info("leading", "identity", opts.Identity, "token", lock.token())
			return newLease(ctx, opts, lock), nil
		case err != nil && ctx.Err() == nil:
			// Once per outage at Warn; the retries repeat it at Debug.
			level := slog.LevelWarn
			if failing {
				level = slog.LevelDebug
			}
			log.Log(ctx, level, "campaign attempt failed", "err", s.wrap(op, err))
			failing = true
		case err == nil && failing:
			log.Info("campaigning again: another process leads")
			failing = false
		}
		t := time.NewTimer(opts.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
}

// Leader returns who leads the role name. Errors: ErrNotFound when no one
// does (never elected, resigned, or its lock is gone), ErrUnavailable.
//
// The answer is for status: right after a hand-over it may name the previous
// leader for as long as the new one takes to record itself.
func (s *Store) Leader(ctx context.Context, name string) (LeaderInfo, error) {
	op := "leader " + name
	if err := s.check(); err != nil {
		return LeaderInfo{}, s.wrap(op, err)
	}
	var row leaderRow
	q := s.rdb.NewSelect().Model(&row).Where("l.name = ?", name).Where("l.released_at IS NULL")
	if s.dialect == dialectPostgres {
		q = q.Where("EXISTS ("+pgLockHeld+")", leaderLockKey, name)
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return LeaderInfo{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return LeaderInfo{}, s.wrap(op, err)
	}
	if s.dialect == dialectSQLite {
		path, err := s.leaderLockPath(ctx, name)
		if err != nil {
			return LeaderInfo{}, s.wrap(op, err)
		}
		if path != "" { // an in-memory database has no lock file: the row is the truth
			held, err := lockFileHeld(path)
			if err != nil {
				return LeaderInfo{}, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
			}
			if !held {
				return LeaderInfo{}, fmt.Errorf("%s: %w", op, ErrNotFound)
			}
		}
	}
	return LeaderInfo{
		Name:      row.Name,
		Identity:  row.Identity,
		Token:     row.Token,
		Since:     row.AcquiredAt.UTC(),
		RenewedAt: row.RenewedAt.UTC(),
	}, nil
}

// Lease is leadership of one role, held until Done closes.
type Lease struct {
	name     string
	token    int64
	done     chan struct{} // closed when leadership ends
	resign   chan struct{} // closed by Resign
	once     sync.Once
	released chan struct{} // closed once the lock is given up
}

func newLease(ctx context.Context, opts LeaderOptions, lock leaderLock) *Lease {
	l := &Lease{
		name:     opts.Name,
		token:    lock.token(),
		done:     make(chan struct{}),
		resign:   make(chan struct{}),
		released: make(chan struct{}),
	}
	go l.hold(ctx, opts, lock)
	return l
}

// Done is closed when leadership ends; stop reconciling at once.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Token is the fencing token: it grows strictly from one leader of the role
// to the next.
func (l *Lease) Token() int64 { return l.token }

// Resign gives up leadership, so that a follower takes over without waiting
// for the lock to time out, and returns once the lock is released (within a
// few seconds even when the database does not answer). It is safe to call
// more than once, and after Done has closed.
func (l *Lease) Resign() {
	l.once.Do(func() { close(l.resign) })
	<-l.released
}

// hold checks the lock every CheckInterval until leadership ends, then
// releases it.
func (l *Lease) hold(ctx context.Context, opts LeaderOptions, lock leaderLock) {
	defer close(l.released)
	log := opts.Logger.With("token", l.token)
	ticker := time.NewTicker(opts.CheckInterval)
	defer ticker.Stop()
	graceful := true
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("giving up leadership: context ended")
			break loop
		case <-l.resign:
			log.Info("resigning leadership")
			break loop
		case <-ticker.C:
			// Not canceled with ctx: cancelling a query kills the connection,
			// and a graceful release needs it.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.checkTimeout())
			err := lock.check(cctx)
			cancel()
			if err != nil {
				log.Warn("leadership lost", "err", err)
				graceful = false
				break loop
			}
		}
	}
	close(l.done)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaderReleaseTimeout)
	defer cancel()
	if err := lock.release(rctx, graceful); err != nil {
		// The lock goes with the session or the file descriptor regardless.
		log.Debug("release leadership", "err", err)
	}
}

type leaseKey struct{}

// WithLease returns a context under which ApplyChanges commits only while l
// leads: the transaction checks, first, that l's token is still the newest
// for its role and that l has not resigned, and on PostgreSQL keeps a share
// lock on the leaders row until it commits, so a successor takes its token
// only after the apply has committed. Refused writes fail with ErrNotLeader.
func WithLease(ctx context.Context, l *Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// checkFence enforces the lease in ctx, if any, inside tx.
func (s *Store) checkFence(ctx context.Context, tx bun.Tx) error {
	l, _ := ctx.Value(leaseKey{}).(*Lease)
	if l == nil {
		return nil
	}
	select {
	case <-l.done:
		return fmt.Errorf("lease %s token %d has ended: %w", l.name, l.token, ErrNotLeader)
	default:
	}
	q := tx.NewSelect().Model((*leaderRow)(nil)).Column("token").
		Where("name = ?", l.name).Where("released_at IS NULL")
	if s.dialect == dialectPostgres {
		// KEY SHARE does not block the leader's own renewals (plain updates);
		// it blocks a successor's token bump, which locks FOR UPDATE.
		q = q.For("KEY SHARE")
	}
	var token int64
	err := q.Scan(ctx, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lease %s token %d: role released: %w", l.name, l.token, ErrNotLeader)
	}
	if err != nil {
		return fmt.Errorf("check lease %s: %w", l.name, err)
	}
	if token != l.token {
		return fmt.Errorf("lease %s token %d superseded by token %d: %w", l.name, l.token, token, ErrNotLeader)
	}
	return nil
}

// leaderLock is a held lock of one backend.
type leaderLock interface {
	token() int64
	// check verifies that the lock is still held and renews the row; an
	// error means that leadership is lost.
	check(ctx context.Context) error
	// release gives the lock up, marking the row released first when graceful.
	release(ctx context.Context, graceful bool) error
}

// errNoFlock: leader election on an SQLite file needs flock(2), which some
// systems lack (leader_noflock.go).
var errNoFlock = errors.New("leader election on an sqlite file needs flock, which this system lacks")

// errLockLost is a check that found the lock or the token gone.
var errLockLost = errors.New("lock no longer held or token superseded")

// tryLead makes one attempt to take the role: a nil lock and nil error mean
// that another process holds it.
func (s *Store) tryLead(ctx context.Context, opts LeaderOptions) (leaderLock, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderAttemptTimeout)
	defer cancel()
	if s.dialect == dialectPostgres {
		return s.tryLeadPostgres(ctx, opts)
	}
	return s.tryLeadSQLite(ctx, opts)
}

// rawSQL formats a query with Bun, for statements sent past Bun's hooks: the
// election's periodic statements are housekeeping, not the caller's, and
// stay out of Stats.
func (s *Store) rawSQL(query string, args ...any) string {
	return s.db.QueryGen().FormatQuery(query, args...)
}

// recordLeader takes the next token for the role and records the new leader,
// in one statement. On PostgreSQL the CTE locks the existing row FOR UPDATE,
// which waits for a fenced apply of the previous leader (KEY SHARE) to commit.
func (s *Store) recordLeader(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, opts LeaderOptions) (int64, error) {
	now := s.timestamp()
	var q string
	if s.dialect == dialectPostgres {
		q = s.rawSQL(`WITH prev AS (SELECT token FROM leaders WHERE name = ? FOR UPDATE)
			INSERT INTO leaders (name, identity, token, acquired_at, renewed_at)
			VALUES (?, ?, coalesce((SELECT token FROM prev), 0) + 1, ?, ?)
			ON CONFLICT (name) DO UPDATE SET identity = EXCLUDED.identity, token = leaders.token + 1,
				acquired_at = EXCLUDED.acquired_at, renewed_at = EXCLUDED.renewed_at, released_at = NULL
			RETURNING token`, opts.Name, opts.Name, opts.Identity, now, now)
	} else {
		q = s.rawSQL(`INSERT INTO leaders (name, identity, token, acquired_at, renewed_at)
			VALUES (?, ?, 1, ?, ?)
			ON CONFLICT (name) DO UPDATE SET identity = excluded.identity, token = leaders.token + 1,
				acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, released_at = NULL
			RETURNING token`, opts.Name, opts.Identity, now, now)
	}
	var token int64
	if err := db.QueryRowContext(ctx, q).Scan(&token); err != nil {
		return 0, fmt.Errorf("record leader: %w", err)
	}
	return token, nil
}

// markReleased records a graceful hand-over, so that status shows no leader
// and fenced writes under the old token fail at once.
func (s *Store) markReleased(ctx context.Context, db interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, name string, token int64) error {
	_, err := db.ExecContext(ctx, s.rawSQL(
		"UPDATE leaders SET released_at = ? WHERE name = ? AND token = ?", s.timestamp(), name, token))
	return err
}

// PostgreSQL.

type pgLeaderLock struct {
	s     *Store
	conn  *sql.Conn // dedicated: never returned to the pool
	name  string
	tok   int64
	renew string // the check's statement, but for the time
}

func (s *Store) tryLeadPostgres(ctx context.Context, opts LeaderOptions) (leaderLock, error) {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	err = conn.QueryRowContext(ctx, s.rawSQL("SELECT pg_try_advisory_lock(?, "+pgLeaderKey+")",
		leaderLockKey, opts.Name)).Scan(&ok)
	if err != nil {
		discardConn(conn) // the lock may have been taken before the error
		return nil, fmt.Errorf("try lock: %w", err)
	}
	if !ok {
		return nil, conn.Close()
	}
	// From here the connection holds the lock and must never go back to the
	// pool: on any error it is closed, which ends the session and the lock.
	if err := s.setSessionTimeouts(ctx, conn, opts); err != nil {
		discardConn(conn)
		return nil, err
	}
	token, err := s.recordLeader(ctx, conn, opts)
	if err != nil {
		discardConn(conn)
		return nil, err
	}
	return &pgLeaderLock{s: s, conn: conn, name: opts.Name, tok: token}, nil
}

// setSessionTimeouts makes the server end the leader's session, and so
// release the lock, in bounded time when the leader's host or network dies:
// TCP keepalives after ceil(C+T) seconds of silence, every ceil(T) seconds,
// keepaliveProbes of them; tcp_user_timeout as long for unacknowledged data.
// The old leader's own check gives up within C+T, before.
func (s *Store) setSessionTimeouts(ctx context.Context, conn *sql.Conn, opts LeaderOptions) error {
	idle := ceilSeconds(opts.CheckInterval + opts.checkTimeout())
	interval := ceilSeconds(opts.checkTimeout())
	user := (idle + keepaliveProbes*interval) * 1000
	_, err := conn.ExecContext(ctx, s.rawSQL(`SELECT set_config('tcp_keepalives_idle', ?, false),
		set_config('tcp_keepalives_interval', ?, false), set_config('tcp_keepalives_count', ?, false),
		set_config('tcp_user_timeout', ?, false)`,
		strconv.Itoa(idle), strconv.Itoa(interval), strconv.Itoa(keepaliveProbes), strconv.Itoa(user)))
	if err != nil {
		return fmt.Errorf("set session timeouts: %w", err)
	}
	return nil
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func (l *pgLeaderLock) token() int64 { return l.tok }

// check proves the session alive and the lock held by this session, and
// renews the row, in one statement.
func (l *pgLeaderLock) check(ctx context.Context) error {
	if err := l.s.check(); err != nil {
		return err
	}
	res, err := l.conn.ExecContext(ctx, l.s.rawSQL(`UPDATE leaders SET renewed_at = ?
		WHERE name = ? AND token = ? AND released_at IS NULL
		AND EXISTS (`+pgLockHeld+` AND pid = pg_backend_pid())`,
		l.s.timestamp(), l.name, l.tok, leaderLockKey, l.name))
	if err != nil {
		return l.s.wrap("check leader lock", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errLockLost
	}
	return nil
}

func (l *pgLeaderLock) release(ctx context.Context, graceful bool) error {
	defer discardConn(l.conn)
	if !graceful {
		return nil
	}
	if err := l.s.markReleased(ctx, l.conn, l.name, l.tok); err != nil {
		return err
	}
	// Unlocking before the connection closes makes the lock free when Resign
	// returns; the end of the session would free it a moment later.
	_, err := l.conn.ExecContext(ctx, l.s.rawSQL("SELECT pg_advisory_unlock(?, "+pgLeaderKey+")", leaderLockKey, l.name))
	return err
}

// discardConn closes a dedicated connection for good instead of returning it
// to the pool, so that the server ends the session and any lock it holds.
func discardConn(conn *sql.Conn) {
	// database/sql closes a driver connection whose Raw returns ErrBadConn.
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// SQLite.

type fileLeaderLock struct {
	s    *Store
	f    *os.File // nil for an in-memory database
	path string
	name string
	tok  int64
	log  *slog.Logger
}

// leaderLockPath is the lock file of the role, or "" for an in-memory database.
func (s *Store) leaderLockPath(ctx context.Context, name string) (string, error) {
	var file string
	err := s.rdb.DB.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file)
	if err != nil || file == "" {
		return "", err
	}
	return file + ".leader-" + name + ".lock", nil
}

func (s *Store) tryLeadSQLite(ctx context.Context, opts LeaderOptions) (leaderLock, error) {
	path, err := s.leaderLockPath(ctx, opts.Name)
	if err != nil {
		return nil, err
	}
	l := &fileLeaderLock{s: s, path: path, name: opts.Name, log: opts.Logger}
	if path != "" {
		f, err := lockFile(path)
		if err != nil || f == nil {
			return nil, err
		}
		l.f = f
	}
	if l.tok, err = s.recordLeader(ctx, s.db.DB, opts); err != nil {
		l.unlock()
		return nil, err
	}
	return l, nil
}

func (l *fileLeaderLock) token() int64 { return l.tok }

// check verifies that the lock file is still the one locked (a file removed
// and created again would let another process lock the new one), then renews
// the row. Only a token taken by someone else ends the lease: the single
// writer may be busy with a long apply, which must not cost the lease.
func (l *fileLeaderLock) check(ctx context.Context) error {
	if err := l.s.check(); err != nil {
		return err
	}
	if l.f != nil {
		held, err := l.f.Stat()
		if err != nil {
			return err
		}
		cur, err := os.Stat(l.path)
		if err != nil || !os.SameFile(held, cur) {
			return fmt.Errorf("lock file %s was removed or replaced", l.path)
		}
	}
	res, err := l.s.db.DB.ExecContext(ctx, l.s.rawSQL(
		"UPDATE leaders SET renewed_at = ? WHERE name = ? AND token = ? AND released_at IS NULL",
		l.s.timestamp(), l.name, l.tok))
	if err != nil {
		l.log.Debug("renew leader row", "err", err)
		return nil
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return errLockLost
	}
	return nil
}

func (l *fileLeaderLock) release(ctx context.Context, graceful bool) error {
	defer l.unlock()
	if !graceful {
		return nil
	}
	return l.s.markReleased(ctx, l.s.db.DB, l.name, l.tok)
}

// unlock closes the lock file, which releases the flock. The file stays: a
// process that opened it before removal would lock an orphan.
func (l *fileLeaderLock) unlock() {
	if l.f != nil {
		_ = l.f.Close()
	}
}
