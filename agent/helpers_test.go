package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/git"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// gitEnv keeps the user's and the system's git configuration out of tests.
var gitEnv = append(os.Environ(),
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_TERMINAL_PROMPT=0",
)

// requireTool skips when a command-line tool is missing, unless CI=true,
// where a missing service fails the test.
func requireTool(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s: %v (Debian packages: git, gnupg)", name, err)
		}
		tb.Skipf("%s: %v", name, err)
	}
}

// gitRun runs the git CLI in dir with extra environment and returns its
// trimmed stdout.
func gitRun(tb testing.TB, dir string, env []string, args ...string) string {
	tb.Helper()
	full := append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
		"-c", "gc.auto=0", "-c", "commit.gpgsign=false"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), gitEnv...), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// workRepo is a checkout the tests commit to with the git CLI; local
// sources read it in place and the HTTP server serves it.
type workRepo struct {
	tb  testing.TB
	Dir string
	n   int // commits made, for distinct commit dates
}

func newWorkRepo(tb testing.TB) *workRepo {
	tb.Helper()
	requireTool(tb, "git")
	dir := filepath.Join(tb.TempDir(), "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	gitRun(tb, dir, nil, "init", "-q")
	return &workRepo{tb: tb, Dir: dir}
}

func (w *workRepo) write(path, content string) {
	w.tb.Helper()
	full := filepath.Join(w.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		w.tb.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		w.tb.Fatal(err)
	}
}

func (w *workRepo) remove(path string) {
	w.tb.Helper()
	if err := os.RemoveAll(filepath.Join(w.Dir, filepath.FromSlash(path))); err != nil {
		w.tb.Fatal(err)
	}
}

// commit stages everything and commits; it returns the new commit's SHA.
// Dates are fixed, so the same content gives the same commit.
func (w *workRepo) commit(msg string) string {
	w.tb.Helper()
	gitRun(w.tb, w.Dir, nil, "add", "-A")
	gitRun(w.tb, w.Dir, w.dateEnv(), "commit", "-q", "--allow-empty", "-m", msg)
	return gitRun(w.tb, w.Dir, nil, "rev-parse", "HEAD")
}

func (w *workRepo) dateEnv() []string {
	w.n++
	date := fmt.Sprintf("2026-01-01T00:00:%02dZ", w.n%60)
	return []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}
}

// manifest is a valid job with one step; variant lands in a label, so that
// changing it is a one-line edit.
func manifest(alias, variant string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: %s
  labels:
    variant: %q
steps:
  - name: main
    image: alpine:3.20
    command: [echo, %s]
`, alias, variant, alias)
}

// invalidManifest does not validate: a step without an image.
func invalidManifest(alias string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\nsteps:\n  - name: main\n", alias)
}

// sourceConfig is a source on repo as config.Load would fill it in.
func sourceConfig(id, repo string) config.Source {
	return config.Source{
		ID: id, Repo: repo, Globs: append([]string(nil), config.DefaultGlobs...),
		Interval: time.Minute, Timeout: 30 * time.Second, OnInvalid: config.OnInvalidFail,
	}
}

// logBuffer collects log output; safe for concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// debugLogger logs everything, as JSON, into a buffer.
func debugLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// envSecrets is the agent's resolver with the environment replaced by a map.
func envSecrets(vars map[string]string) git.Resolver {
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	return secrets.New(map[string]secrets.Backend{schema.SecretEnv: env.New(lookup)}, secrets.Options{})
}

// fixture is a store and a data dir for sources.
type fixture struct {
	t       *testing.T
	st      *store.Store
	dataDir string
}

func newFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	return &fixture{t: t, st: storetest.Open(t, backend), dataDir: t.TempDir()}
}

// source builds a Source on the fixture's store, closed when the test ends.
func (f *fixture) source(cfg config.Source, res git.Resolver, log *slog.Logger) *agent.Source {
	f.t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := agent.NewSource(cfg, f.dataDir, f.st, res, log)
	if err != nil {
		f.t.Fatalf("NewSource: %v", err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

// jobs returns the live jobs by alias.
func (f *fixture) jobs() map[string]store.Job {
	f.t.Helper()
	return liveJobs(f.t, f.st)
}

func liveJobs(t testing.TB, st *store.Store) map[string]store.Job {
	t.Helper()
	list, err := st.ListJobs(context.Background(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Job{}
	for _, j := range list {
		if j.DeletedAt == nil {
			out[j.Alias] = j
		}
	}
	return out
}

// status reads a source's stored row and status.
func (f *fixture) status(id string) (store.Source, store.SourceStatus) {
	f.t.Helper()
	return sourceStatus(f.t, f.st, id)
}

func sourceStatus(t testing.TB, st *store.Store, id string) (store.Source, store.SourceStatus) {
	t.Helper()
	src, err := st.GetSource(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSource(%s): %v", id, err)
	}
	status, err := src.DecodeStatus()
	if err != nil {
		t.Fatalf("status of %s: %v\n%s", id, err, src.Status)
	}
	return src, status
}

// wantCondition checks one condition's status and reason.
func wantCondition(t testing.TB, st store.SourceStatus, typ string, status bool, reason string) {
	t.Helper()
	c, ok := st.Condition(typ)
	if !ok {
		t.Errorf("no %s condition in %+v", typ, st.Conditions)
		return
	}
	if c.Status != status || (reason != "" && c.Reason != reason) {
		t.Errorf("%s = %t (%s: %s), want %t (%s)", typ, c.Status, c.Reason, c.Message, status, reason)
	}
}

// wantReady checks that a status says the source is in step.
func wantReady(t testing.TB, st store.SourceStatus) {
	t.Helper()
	wantCondition(t, st, store.ConditionReady, true, "")
	wantCondition(t, st, store.ConditionStalled, false, "")
	wantCondition(t, st, store.ConditionReconciling, false, "")
	if st.LastError != "" {
		t.Errorf("lastError = %q on a ready source", st.LastError)
	}
}

// wantStalled checks that a status says the source fails for reason.
func wantStalled(t testing.TB, st store.SourceStatus, reason string) {
	t.Helper()
	wantCondition(t, st, store.ConditionStalled, true, reason)
	wantCondition(t, st, store.ConditionReady, false, reason)
	wantCondition(t, st, store.ConditionReconciling, false, "")
	if st.LastError == "" {
		t.Error("no lastError on a stalled source")
	}
}

// mustSync syncs and fails the test unless the sync succeeded.
func mustSync(t testing.TB, s *agent.Source) *agent.SyncResult {
	t.Helper()
	res := s.Sync(context.Background(), false)
	if res.Failed() {
		t.Fatalf("sync of %s failed: %s: %s\n%s", s.ID(), res.Reason, res.Error, asJSON(res))
	}
	return res
}

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// summary is a report's counts, for compact comparisons.
func summary(res *agent.SyncResult) string {
	if res.Report == nil {
		return "no report"
	}
	s := res.Report.Summary
	return fmt.Sprintf("created %d, updated %d, deleted %d, unchanged %d, conflicts %d, failed %d",
		s.Created, s.Updated, s.Deleted, s.Unchanged, s.Conflicts, s.Failed)
}

// waitFor polls cond until it holds. The timeout is a hang guard, generous
// on purpose: it asserts nothing about speed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gitServer is git's smart HTTP server (git http-backend under
// net/http/cgi) on loopback, optionally behind basic auth, that can be
// killed and restarted on the same port.
type gitServer struct {
	tb      testing.TB
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *httptest.Server

	// dieOnFetch makes the next upload-pack POST (the fetch, after the ref
	// listing succeeded) kill the server: the listener closes and the
	// request's connection drops mid-response.
	dieOnFetch atomic.Bool
	// hangOnFetch makes upload-pack POSTs block until the client gives up.
	hangOnFetch atomic.Bool
	requests    atomic.Int64 // authenticated requests
	hanging     atomic.Int64 // requests blocked by hangOnFetch
}

const httpBackend = "/usr/lib/git-core/git-http-backend"

// startGitServer serves the repositories below root at /git/NAME. With a
// non-empty user, requests need basic auth with user and pass.
func startGitServer(tb testing.TB, root, user, pass string) *gitServer {
	tb.Helper()
	requireTool(tb, "git")
	if _, err := os.Stat(httpBackend); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("git http-backend: %v", err)
		}
		tb.Skipf("git http-backend: %v", err)
	}
	s := &gitServer{tb: tb}
	backend := &cgi.Handler{
		Path:   httpBackend,
		Root:   "/git",
		Stderr: io.Discard,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		s.requests.Add(1)
		if r.Method == http.MethodPost && s.dieOnFetch.CompareAndSwap(true, false) {
			s.mu.Lock()
			_ = s.srv.Listener.Close()
			s.mu.Unlock()
			panic(http.ErrAbortHandler) // drops this connection
		}
		if r.Method == http.MethodPost && s.hangOnFetch.Load() {
			// Read the request first: only then does the server watch the
			// connection and cancel the request when the client goes.
			_, _ = io.Copy(io.Discard, r.Body)
			s.hanging.Add(1)
			<-r.Context().Done()
			return
		}
		backend.ServeHTTP(w, r)
	})
	s.start("127.0.0.1:0")
	tb.Cleanup(s.stop)
	return s
}

func (s *gitServer) start(addr string) {
	s.tb.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the old socket may linger briefly after a stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Listener = ln
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.Start()
	s.mu.Lock()
	s.srv, s.addr = srv, ln.Addr().String()
	s.mu.Unlock()
}

// stop kills the server: it drops every connection and stops listening.
func (s *gitServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.CloseClientConnections()
	srv.Close()
}

// restart serves again on the same port.
func (s *gitServer) restart() { s.start(s.addr) }

// url is the URL of a repository directory below the server's root.
func (s *gitServer) url(repo string) string { return "http://" + s.addr + "/git/" + repo }
