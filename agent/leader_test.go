package agent_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// member is one agent of a group sharing a database, with its own log.
type member struct {
	name string
	*running
	logs *logBuffer
}

// startMember runs an agent on dbURL with one local source on repo.
func startMember(t *testing.T, name, dbURL, repo string) *member {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = dbURL
	src := sourceConfig("jobs", repo)
	src.Interval = time.Hour // syncs come from the first poll and from POST /sync
	cfg.Sources = []config.Source{src}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log, logs := debugLogger()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("New %s: %v", name, err)
	}
	r := &running{url: "http://" + a.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("%s: Run returned %v", name, err)
		}
	})
	return &member{name: name, running: r, logs: logs}
}

// syncStatus is the HTTP status of POST /v1/sources/jobs/sync: 202 from the
// leader, 503 from a follower.
func (m *member) syncStatus(t *testing.T) int {
	t.Helper()
	status, _ := do(t, "POST", m.url+"/v1/sources/jobs/sync", "", "")
	return status
}

func (m *member) leads() bool {
	return strings.Contains(m.logs.String(), "leading: reconciling sources")
}

// synced reports whether the member's log says it applied commit.
func (m *member) synced(commit string) bool {
	for _, line := range strings.Split(m.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"synced"`) && strings.Contains(line, commit) {
			return true
		}
	}
	return false
}

// electLeader waits until exactly one member answers sync requests and the
// other refuses with 503, and returns (leader, follower).
func electLeader(t *testing.T, a, b *member) (*member, *member) {
	t.Helper()
	var leader, follower *member
	waitFor(t, "a leader", func() bool {
		sa, sb := a.syncStatus(t), b.syncStatus(t)
		switch {
		case sa == http.StatusAccepted && sb == http.StatusServiceUnavailable:
			leader, follower = a, b
		case sb == http.StatusAccepted && sa == http.StatusServiceUnavailable:
			leader, follower = b, a
		case sa == http.StatusAccepted && sb == http.StatusAccepted:
			t.Fatalf("both agents lead")
		}
		return leader != nil
	})
	return leader, follower
}

func appliedCommit(st *store.Store, id string) func() string {
	return func() string {
		src, err := st.GetSource(context.Background(), id)
		if err != nil {
			return ""
		}
		return src.LastAppliedCommit
	}
}

// TestLeaderElection: two agents on one PostgreSQL schema with the same
// source: exactly one reconciles, the other answers sync requests with 503;
// when the leader stops, the other takes over and syncs new commits.
func TestLeaderElection(t *testing.T) {
	t.Parallel()
	dbURL := storetest.PostgresURL(t)
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	c1 := w.commit("first")
	st, err := store.Open(context.Background(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	a := startMember(t, "a", dbURL, w.Dir)
	b := startMember(t, "b", dbURL, w.Dir)
	applied := appliedCommit(st, "jobs")
	waitFor(t, "the first sync", func() bool { return applied() == c1 })
	leader, follower := electLeader(t, a, b)

	w.write("a.yaml", manifest("a", "2"))
	c2 := w.commit("second")
	if s := leader.syncStatus(t); s != http.StatusAccepted {
		t.Fatalf("sync on the leader: %d", s)
	}
	waitFor(t, "the leader to sync the second commit", func() bool { return applied() == c2 })
	if follower.leads() || follower.synced(c1) || follower.synced(c2) {
		t.Errorf("the follower %s reconciled too:\n%s", follower.name, follower.logs.String())
	}
	if !leader.synced(c1) || !leader.synced(c2) {
		t.Errorf("the leader %s did not log its syncs:\n%s", leader.name, leader.logs.String())
	}
	_, status := sourceStatus(t, st, "jobs")
	if len(status.History) != 2 {
		t.Errorf("history of two commits: %+v", status.History)
	}
	recs, err := st.ListApplies(context.Background(), "jobs", 0)
	if err != nil || len(recs) != 2 || recs[0].Revision != c2 || recs[1].Revision != c1 {
		t.Errorf("apply history: %+v, %v; want one apply of each commit", recs, err)
	}

	// The leader goes; the follower takes over.
	stopped := time.Now()
	if err := leader.stop(); err != nil {
		t.Errorf("stop the leader: %v", err)
	}
	waitFor(t, "the follower to take over", func() bool { return follower.syncStatus(t) == http.StatusAccepted })
	t.Logf("handover took %s", time.Since(stopped).Round(time.Millisecond))
	w.write("a.yaml", manifest("a", "3"))
	c3 := w.commit("third")
	if s := follower.syncStatus(t); s != http.StatusAccepted {
		t.Fatalf("sync on the new leader: %d", s)
	}
	waitFor(t, "the new leader to sync", func() bool { return applied() == c3 })
	if !follower.synced(c3) {
		t.Errorf("the new leader did not log the sync of %s:\n%s", c3, follower.logs.String())
	}
	if v := liveJobs(t, st)["a"].Labels["variant"]; v != "3" {
		t.Errorf("variant %s after the handover, want 3", v)
	}
}

// TestLeaderPerDatabase: agents on two different schemas of one PostgreSQL
// server are two separate groups: each leads its own.
func TestLeaderPerDatabase(t *testing.T) {
	t.Parallel()
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.commit("first")
	a := startMember(t, "a", storetest.PostgresURL(t), w.Dir)
	b := startMember(t, "b", storetest.PostgresURL(t), w.Dir)
	waitFor(t, "both to lead", func() bool {
		return a.syncStatus(t) == http.StatusAccepted && b.syncStatus(t) == http.StatusAccepted
	})
}

// TestLeaderSQLite: two agents on one SQLite file: one syncs, the other
// answers 503.
func TestLeaderSQLite(t *testing.T) {
	t.Parallel()
	dbURL := storetest.URL(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.commit("first")
	a := startMember(t, "a", dbURL, w.Dir)
	b := startMember(t, "b", dbURL, w.Dir)
	leader, follower := electLeader(t, a, b)
	if err := leader.stop(); err != nil {
		t.Errorf("stop the leader: %v", err)
	}
	waitFor(t, "the follower to take over", func() bool { return follower.syncStatus(t) == http.StatusAccepted })
}
