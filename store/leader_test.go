package store_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestMain checks that no goroutine outlives the tests: leases hold one each
// until they end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	leaderName = "reconciler"
	// handover bounds how long a test waits for something that should take
	// about a RetryInterval or CheckInterval: generous, since it is a
	// correctness check on a loaded machine, not a measurement.
	handover = 20 * time.Second
	// settle is how long a follower is watched not to lead.
	settle = 300 * time.Millisecond
)

func leaderOpts(identity string) store.LeaderOptions {
	return store.LeaderOptions{
		Name:          leaderName,
		Identity:      identity,
		RetryInterval: 50 * time.Millisecond,
		CheckInterval: 100 * time.Millisecond,
	}
}

// agents are two stores on one database, as two agents would have.
type agents struct {
	ctx  context.Context
	url  string
	a, b *store.Store
}

func setupAgents(t *testing.T, backend string) agents {
	t.Helper()
	u := storetest.URL(t, backend)
	open := func() *store.Store {
		s, err := store.Open(t.Context(), u, store.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return agents{ctx: t.Context(), url: u, a: open(), b: open()}
}

type campaignResult struct {
	lease *store.Lease
	err   error
}

// campaign starts Campaign in the background. A lease won after the test
// ended is resigned by the end of ctx (t.Context()).
func campaign(ctx context.Context, s *store.Store, opts store.LeaderOptions) <-chan campaignResult {
	ch := make(chan campaignResult, 1)
	go func() {
		l, err := s.Campaign(ctx, opts)
		ch <- campaignResult{l, err}
	}()
	return ch
}

// lead campaigns and fails the test unless it leads within handover. The
// lease is resigned when the test ends.
func lead(t *testing.T, ctx context.Context, s *store.Store, opts store.LeaderOptions) *store.Lease {
	t.Helper()
	return awaitLease(t, campaign(ctx, s, opts))
}

func awaitLease(t *testing.T, ch <-chan campaignResult) *store.Lease {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Campaign: %v", r.err)
		}
		t.Cleanup(r.lease.Resign)
		return r.lease
	case <-time.After(handover):
		t.Fatalf("Campaign did not lead within %v", handover)
		return nil
	}
}

func assertFollowing(t *testing.T, ch <-chan campaignResult) {
	t.Helper()
	select {
	case r := <-ch:
		if r.lease != nil {
			r.lease.Resign()
		}
		t.Fatalf("a second Campaign returned while the first leads: lease %v, err %v", r.lease, r.err)
	case <-time.After(settle):
	}
}

func awaitDone(t *testing.T, l *store.Lease) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(handover):
		t.Fatalf("lease %d still held %v after it should have ended", l.Token(), handover)
	}
}

func assertLeader(t *testing.T, s *store.Store, identity string, token int64) {
	t.Helper()
	// The new leader records itself right after taking the lock: poll.
	deadline := time.Now().Add(handover)
	for {
		got, err := s.Leader(t.Context(), leaderName)
		if err == nil && got.Identity == identity && got.Token == token {
			if got.Name != leaderName || got.Since.IsZero() || got.RenewedAt.Before(got.Since) {
				t.Errorf("Leader() = %+v: want name %q, since set, renewed after since", got, leaderName)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Leader() = %+v, %v; want identity %q token %d", got, err, identity, token)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertNoLeader(t *testing.T, s *store.Store) {
	t.Helper()
	got, err := s.Leader(t.Context(), leaderName)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Leader() = %+v, %v; want ErrNotFound", got, err)
	}
}

func TestLeaderElection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(t *testing.T, backend string)
	}{
		{"ExactlyOneLeadsAndResignHandsOver", testResignHandsOver},
		{"ContextEndsCampaign", testContextEndsCampaign},
		{"ContextEndsLease", testContextEndsLease},
		{"ClosedStoreEndsLease", testClosedStoreEndsLease},
		{"FenceRefusesEndedLease", testFenceRefusesEndedLease},
		{"FenceRefusesSupersededLease", testFenceRefusesSupersededLease},
		{"NoLeader", testNoLeader},
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, backend)
				})
			}
		})
	}
}

// testResignHandsOver: of two agents exactly one leads; each Resign hands
// over to the other, with a larger token each time.
func testResignHandsOver(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	leader := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	assertLeader(t, f.b, "agent-a", leader.Token())

	stores := map[string]*store.Store{"agent-a": f.a, "agent-b": f.b}
	identity := "agent-a"
	for range 3 {
		next := "agent-b"
		if identity == "agent-b" {
			next = "agent-a"
		}
		follower := campaign(f.ctx, stores[next], leaderOpts(next))
		assertFollowing(t, follower)
		assertLeader(t, stores[next], identity, leader.Token())

		leader.Resign()
		awaitDone(t, leader)
		successor := awaitLease(t, follower)
		if successor.Token() <= leader.Token() {
			t.Fatalf("token after hand-over = %d, want > %d", successor.Token(), leader.Token())
		}
		assertLeader(t, f.a, next, successor.Token())
		leader, identity = successor, next
	}
	leader.Resign()
	leader.Resign() // idempotent
	assertNoLeader(t, f.a)
}

func testContextEndsCampaign(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	ctx, cancel := context.WithTimeout(f.ctx, 200*time.Millisecond)
	defer cancel()
	l, err := f.b.Campaign(ctx, leaderOpts("agent-b"))
	if !errors.Is(err, context.DeadlineExceeded) || l != nil {
		t.Fatalf("Campaign = %v, %v; want context.DeadlineExceeded", l, err)
	}

	// Already canceled: no lease even when free.
	ctx, cancel = context.WithCancel(f.ctx)
	cancel()
	if l, err := f.b.Campaign(ctx, store.LeaderOptions{Name: "other"}); !errors.Is(err, context.Canceled) {
		if l != nil {
			l.Resign()
		}
		t.Fatalf("Campaign with a canceled context = %v, %v; want context.Canceled", l, err)
	}
}

// testContextEndsLease: the end of Campaign's context ends the lease and
// frees the role for the other agent.
func testContextEndsLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	first := lead(t, ctx, f.a, leaderOpts("agent-a"))
	follower := campaign(f.ctx, f.b, leaderOpts("agent-b"))
	assertFollowing(t, follower)
	cancel()
	awaitDone(t, first)
	second := awaitLease(t, follower)
	if second.Token() <= first.Token() {
		t.Errorf("token = %d, want > %d", second.Token(), first.Token())
	}
}

// testClosedStoreEndsLease: closing the leader's store ends its lease within
// a check, and the other agent takes over.
func testClosedStoreEndsLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	follower := campaign(f.ctx, f.b, leaderOpts("agent-b"))
	if err := f.a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	awaitDone(t, first)
	awaitLease(t, follower)
	if _, err := f.a.Campaign(f.ctx, leaderOpts("agent-a")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Campaign on a closed store: %v, want ErrUnavailable", err)
	}
}

// testFenceRefusesEndedLease: ApplyChanges under a lease commits while it
// leads, and is refused once it resigned.
func testFenceRefusesEndedLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	if _, err := f.a.ApplyChanges(store.WithLease(f.ctx, first), []store.Change{create(smallJob("one"), provenance("git-main", "c1"))}); err != nil {
		t.Fatalf("ApplyChanges under the lease: %v", err)
	}
	first.Resign()
	_, err := f.a.ApplyChanges(store.WithLease(f.ctx, first), []store.Change{create(smallJob("two"), provenance("git-main", "c2"))})
	wantErr(t, err, store.ErrNotLeader)
	if _, err := f.a.GetJob(f.ctx, "two"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused apply wrote job two: %v", err)
	}

	second := lead(t, f.ctx, f.b, leaderOpts("agent-b"))
	if _, err := f.b.ApplyChanges(store.WithLease(f.ctx, second), []store.Change{create(smallJob("two"), provenance("git-main", "c2"))}); err != nil {
		t.Fatalf("ApplyChanges under the new lease: %v", err)
	}
}

// testFenceRefusesSupersededLease: a leader that lost its lock and has not
// noticed yet (its check is an hour away) cannot commit once another agent
// took over: the token in the row has moved on. The lock is stolen the way it
// goes in production: the server ends the session (PostgreSQL), or the lock
// file is removed (SQLite).
func testFenceRefusesSupersededLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	opts := leaderOpts("agent-a")
	opts.CheckInterval = time.Hour
	stale := lead(t, f.ctx, f.a, opts)
	switch backend {
	case "postgres":
		terminateLeader(t, f.url)
	case "sqlite":
		path := strings.TrimPrefix(f.url, "sqlite://") + ".leader-" + leaderName + ".lock"
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	successor := lead(t, f.ctx, f.b, leaderOpts("agent-b"))
	select {
	case <-stale.Done():
		t.Fatal("the stale lease noticed its loss; the test needs it not to")
	default:
	}
	_, err := f.a.ApplyChanges(store.WithLease(f.ctx, stale), []store.Change{create(smallJob("stale"), provenance("git-main", "c1"))})
	wantErr(t, err, store.ErrNotLeader)
	if _, err := f.b.ApplyChanges(store.WithLease(f.ctx, successor), []store.Change{create(smallJob("fresh"), provenance("git-main", "c1"))}); err != nil {
		t.Fatalf("ApplyChanges under the successor's lease: %v", err)
	}
	// The stale lease's resignation must not release the successor's role.
	stale.Resign()
	assertLeader(t, f.a, "agent-b", successor.Token())
}

func testNoLeader(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	assertNoLeader(t, f.a)
	l := lead(t, f.ctx, f.a, store.LeaderOptions{Name: leaderName}) // default identity and intervals
	host, _ := os.Hostname()
	got, err := f.b.Leader(f.ctx, leaderName)
	if err != nil || !strings.HasPrefix(got.Identity, host+":") || got.Token != l.Token() {
		t.Errorf("Leader() = %+v, %v; want host:pid and token %d", got, err, l.Token())
	}
	if _, err := f.b.Leader(f.ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Leader(other) error = %v, want ErrNotFound", err)
	}
	l.Resign()
	assertNoLeader(t, f.b)
}

// TestLeaderSessionKilled: the server ends the leader's session (as when its
// host dies and the TCP keepalives go unanswered): the leader's Done closes
// and the follower takes over.
func TestLeaderSessionKilled(t *testing.T) {
	t.Parallel()
	f := setupAgents(t, "postgres")
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	follower := campaign(f.ctx, f.b, leaderOpts("agent-b"))
	assertFollowing(t, follower)

	terminateLeader(t, f.url)
	awaitDone(t, first)
	second := awaitLease(t, follower)
	if second.Token() <= first.Token() {
		t.Errorf("token = %d, want > %d", second.Token(), first.Token())
	}
	assertLeader(t, f.a, "agent-b", second.Token())
	// The first agent campaigns again and follows.
	assertFollowing(t, campaign(f.ctx, f.a, leaderOpts("agent-a")))
}

// TestLeaderTokenWaitsForFencedApply: a fenced apply keeps a share lock on
// the leaders row until it commits. The leader's own checks go on meanwhile
// (a long apply must not cost the lease), and a successor takes its token
// only after the apply has committed.
func TestLeaderTokenWaitsForFencedApply(t *testing.T) {
	t.Parallel()
	f := setupAgents(t, "postgres")
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))

	db, err := sql.Open("pgx", f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(f.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	// What checkFence runs inside ApplyChanges.
	var token int64
	if err := tx.QueryRowContext(f.ctx, "SELECT token FROM leaders WHERE name = $1 AND released_at IS NULL FOR KEY SHARE",
		leaderName).Scan(&token); err != nil || token != first.Token() {
		t.Fatalf("fence = %d, %v; want %d", token, err, first.Token())
	}
	select {
	case <-first.Done():
		t.Fatal("the lease ended while its own apply was in flight")
	case <-time.After(1500 * time.Millisecond): // longer than a check may take
	}

	terminateLeader(t, f.url)
	awaitDone(t, first)
	follower := campaign(f.ctx, f.b, leaderOpts("agent-b"))
	assertFollowing(t, follower)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if second := awaitLease(t, follower); second.Token() <= first.Token() {
		t.Errorf("token = %d, want > %d", second.Token(), first.Token())
	}
}

// terminateLeader ends, on the server, the session that holds the role's
// advisory lock in the schema of url.
func terminateLeader(t *testing.T, u string) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	schema := parsed.Query().Get("search_path")
	db, err := sql.Open("pgx", storetest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The second half of the lock key hashes the schema and the role name.
	var pid int
	err = db.QueryRowContext(t.Context(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND objid = ((hashtext($1 || '/' || $2))::bigint & 4294967295)`, schema, leaderName).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's session: %v", err)
	}
	var ok bool
	if err := db.QueryRowContext(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

// TestLeaderSQLiteSecondProcessWaits: a second Store on the same file (as a
// second process would be) waits until the first resigns.
func TestLeaderSQLiteSecondProcessWaits(t *testing.T) {
	t.Parallel()
	f := setupAgents(t, "sqlite")
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	follower := campaign(f.ctx, f.b, leaderOpts("agent-b"))
	assertFollowing(t, follower)
	// Another role does not contend.
	lead(t, f.ctx, f.b, store.LeaderOptions{Name: "janitor", RetryInterval: 50 * time.Millisecond})
	first.Resign()
	awaitLease(t, follower)
}

// TestLeaderInMemory: an in-memory database has one process; every Campaign
// leads at once, with a new token, and the newest is the one that counts.
func TestLeaderInMemory(t *testing.T) {
	t.Parallel()
	s, err := store.Open(t.Context(), "sqlite://:memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := lead(t, t.Context(), s, leaderOpts("agent-a"))
	b := lead(t, t.Context(), s, leaderOpts("agent-b"))
	if a.Token() != 1 || b.Token() != 2 {
		t.Errorf("tokens = %d, %d; want 1, 2", a.Token(), b.Token())
	}
	assertLeader(t, s, "agent-b", 2)
	_, err = s.ApplyChanges(store.WithLease(t.Context(), a), []store.Change{create(smallJob("x"), provenance("git-main", "c1"))})
	wantErr(t, err, store.ErrNotLeader)
	a.Resign()
	assertLeader(t, s, "agent-b", 2)
	b.Resign()
	assertNoLeader(t, s)
}

func TestCampaignRejectsBadOptions(t *testing.T) {
	t.Parallel()
	s, err := store.Open(t.Context(), "sqlite://:memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, opts := range []store.LeaderOptions{
		{},
		{Name: "no spaces"},
		{Name: "../escape"},
		{Name: strings.Repeat("x", 64)},
		{Name: "ok", RetryInterval: -time.Second},
	} {
		if l, err := s.Campaign(t.Context(), opts); err == nil {
			l.Resign()
			t.Errorf("Campaign(%+v) succeeded, want an error", opts)
		}
	}
}
