package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// gitEnv keeps the user's and the system's git configuration out of tests.
var gitEnv = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")

// checkout is a git checkout that tests commit to with the git CLI, as a CI
// job's checkout of a jobs repository.
type checkout struct {
	t   *testing.T
	dir string
	n   int
}

func newCheckout(t *testing.T) *checkout {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git: %v", err)
		}
		t.Skipf("git: %v", err)
	}
	c := &checkout{t: t, dir: filepath.Join(t.TempDir(), "jobs-repo")}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.git(nil, "init", "-q")
	return c
}

func (c *checkout) git(env []string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
		"-c", "commit.gpgsign=false", "-c", "gc.auto=0"}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string(nil), gitEnv...), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func (c *checkout) write(path, content string) {
	c.t.Helper()
	full := filepath.Join(c.dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *checkout) remove(path string) {
	c.t.Helper()
	if err := os.Remove(filepath.Join(c.dir, filepath.FromSlash(path))); err != nil {
		c.t.Fatal(err)
	}
}

// commit commits everything with fixed dates, so that the same content
// gives the same commit.
func (c *checkout) commit(msg string) string {
	c.t.Helper()
	c.n++
	date := fmt.Sprintf("2026-01-01T00:00:%02dZ", c.n%60)
	c.git(nil, "add", "-A")
	c.git([]string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, "commit", "-q", "--allow-empty", "-m", msg)
	return c.git(nil, "rev-parse", "HEAD")
}

// jobManifest is a valid job of two steps; image and env vary with rev.
func jobManifest(alias, rev string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: %[1]s
  labels:
    team: data
trigger:
  type: cron
  configuration:
    expression: "0 3 * * *"
steps:
  - name: extract
    image: registry.example.com/etl:%[2]s
    command: [etl, extract, --job=%[1]s]
  - name: load
    image: registry.example.com/etl:%[2]s
    command: [etl, load, --job=%[1]s]
    env:
      LOG_LEVEL: info
`, alias, rev)
}

// onceRun is one run of the built caesium-agent.
type onceRun struct {
	code           int
	stdout, stderr string
}

func (r onceRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// results parses --output json.
func (r onceRun) results(t *testing.T) []agent.SyncResult {
	t.Helper()
	var out []agent.SyncResult
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--output json does not parse: %v\n%s", err, r)
	}
	return out
}

// onceEnv runs the binary for one database and data dir.
type onceEnv struct {
	t       *testing.T
	bin     string
	dbURL   string
	dataDir string
}

func (e *onceEnv) run(dir string, args ...string) onceRun {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(args, "--database-url", e.dbURL, "--data-dir", e.dataDir, "--log-format", "json")...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dataDir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := onceRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatal(err)
	}
	return r
}

// want runs the binary and fails the test unless it exits with code.
func (e *onceEnv) want(code int, dir string, args ...string) onceRun {
	e.t.Helper()
	r := e.run(dir, args...)
	if r.code != code {
		e.t.Fatalf("caesium-agent %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	return r
}

// jobs reads the live jobs straight from the database: alias -> image of
// the first step.
func (e *onceEnv) jobs() map[string]string {
	e.t.Helper()
	st, err := store.Open(context.Background(), e.dbURL, store.Options{DataDir: e.dataDir})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	list, err := st.ListJobs(context.Background(), store.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, j := range list {
		if j.DeletedAt != nil {
			continue
		}
		job, err := j.Decode()
		if err != nil {
			e.t.Fatal(err)
		}
		out[j.Alias] = job.Steps[0].Image
	}
	return out
}

func wantJobs(t *testing.T, when string, got map[string]string, want ...string) {
	t.Helper()
	var parts []string
	for _, w := range want {
		alias, rev, _ := strings.Cut(w, "=")
		parts = append(parts, alias+"="+"registry.example.com/etl:"+rev)
	}
	g := []string{}
	for alias, image := range got {
		g = append(g, alias+"="+image)
	}
	if fmt.Sprint(sortStrings(g)) != fmt.Sprint(sortStrings(parts)) {
		t.Errorf("%s: live jobs %v, want %v", when, sortStrings(g), sortStrings(parts))
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func summaryOf(r agent.SyncResult) string {
	if r.Report == nil {
		return "no report"
	}
	s := r.Report.Summary
	return fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", s.Created, s.Updated, s.Deleted, s.Unchanged)
}

// TestOnceBinary builds caesium-agent and runs it as CI would: --once on a
// checkout, with and without --dry-run and --detailed-exitcode, through
// edits, deletions, an emptied repository and an invalid manifest.
func TestOnceBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "caesium-agent")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	newEnv := func(t *testing.T, backend string) *onceEnv {
		dataDir := t.TempDir()
		dbURL := "sqlite://" + filepath.Join(dataDir, "caesium.db")
		if backend == "postgres" {
			dbURL = storetest.PostgresURL(t)
		}
		return &onceEnv{t: t, bin: bin, dbURL: dbURL, dataDir: dataDir}
	}

	for _, backend := range storetest.Backends() {
		t.Run("flow/"+backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			c := newCheckout(t)
			c.write("a.yaml", jobManifest("a", "1"))
			c.write("b.yaml", jobManifest("b", "1"))
			c.write("team/c.yaml", jobManifest("c", "1"))
			c.write("README.md", "# jobs\n")
			c1 := c.commit("three jobs")
			repo := []string{"--once", "--repo", c.dir}

			r := e.want(0, "", append(repo, "--output", "json")...).results(t)
			if len(r) != 1 || r[0].Commit != c1 || summaryOf(r[0]) != "3 created, 0 updated, 0 deleted, 0 unchanged" || r[0].SourceID != "jobs-repo" {
				t.Fatalf("first apply: %+v", r)
			}
			wantJobs(t, "first apply", e.jobs(), "a=1", "b=1", "c=1")
			e.want(0, "", append(repo, "--dry-run", "--detailed-exitcode")...)
			if r := e.want(0, "", append(repo, "--detailed-exitcode", "--output", "json")...).results(t); !r[0].UpToDate {
				t.Errorf("applying an applied commit again: %+v", r[0])
			}

			// One file edited: the plan says 2, and the apply touches only it.
			c.write("a.yaml", jobManifest("a", "2"))
			c2 := c.commit("edit a")
			if out := e.want(2, "", append(repo, "--dry-run", "--detailed-exitcode")...).stdout; !strings.Contains(out, "would update") || !strings.Contains(out, "a") {
				t.Errorf("dry run of the edit:\n%s", out)
			}
			wantJobs(t, "after the dry run", e.jobs(), "a=1", "b=1", "c=1")
			r = e.want(0, "", append(repo, "--output", "json")...).results(t)
			if r[0].Commit != c2 || summaryOf(r[0]) != "0 created, 1 updated, 0 deleted, 2 unchanged" {
				t.Errorf("apply of the edit: %s", summaryOf(r[0]))
			}
			for _, o := range r[0].Report.Outcomes {
				if (o.Alias == "a") != (o.Action == "update") {
					t.Errorf("outcome %s: %s", o.Alias, o.Action)
				}
			}
			wantJobs(t, "after the edit", e.jobs(), "a=2", "b=1", "c=1")

			// A deleted file prunes its job.
			c.remove("b.yaml")
			c.commit("remove b")
			r = e.want(0, "", append(repo, "--output", "json")...).results(t)
			if summaryOf(r[0]) != "0 created, 0 updated, 1 deleted, 2 unchanged" {
				t.Errorf("apply of the deletion: %s", summaryOf(r[0]))
			}
			wantJobs(t, "after the deletion", e.jobs(), "a=2", "c=1")

			// Every manifest deleted: refused, nothing deleted.
			c.remove("a.yaml")
			c.remove("team/c.yaml")
			c.commit("remove everything")
			res := e.want(1, "", append(repo, "--output", "json")...)
			if r := res.results(t); r[0].Reason != agent.ReasonPruneRefused || r[0].Report.PruneRefused == "" {
				t.Errorf("emptied repository: %+v", r[0])
			}
			if !strings.Contains(res.stderr, "refusing to prune") {
				t.Errorf("stderr does not say why:\n%s", res.stderr)
			}
			wantJobs(t, "after the emptied repository", e.jobs(), "a=2", "c=1")

			// An invalid manifest: exit 1, nothing changed, not even the
			// valid edit next to it.
			c.write("a.yaml", jobManifest("a", "3"))
			c.write("team/c.yaml", jobManifest("c", "1"))
			c.write("d.yaml", "apiVersion: v1\nkind: Job\nmetadata:\n  alias: d\nsteps:\n  - name: main\n    image: alpine:3.20\n    retries: many\n")
			c.commit("an invalid manifest")
			res = e.want(1, "", repo...)
			if !strings.Contains(res.stdout, "d.yaml:8") || !strings.Contains(res.stdout, "InvalidManifests") {
				t.Errorf("text output does not locate the problem:\n%s", res)
			}
			e.want(1, "", append(repo, "--dry-run", "--detailed-exitcode")...)
			wantJobs(t, "after the invalid manifest", e.jobs(), "a=2", "c=1")

			// Fixed: applies.
			c.remove("d.yaml")
			c.commit("fix")
			e.want(0, "", repo...)
			wantJobs(t, "after the fix", e.jobs(), "a=3", "c=1")
		})
	}

	t.Run("subdirectory", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "sqlite")
		c := newCheckout(t)
		c.write("jobs/a.yaml", jobManifest("a", "1"))
		c.write("jobs/nightly/b.yaml", jobManifest("b", "1"))
		c.write("deploy/not-a-job.yaml", "kind: Deployment\n")
		c.commit("jobs and other YAML")
		// As in CI: relative to the checkout.
		r := e.want(0, c.dir, "--once", "--repo", "./jobs", "--output", "json").results(t)
		if r[0].SourceID != "jobs" || r[0].Files != 2 || summaryOf(r[0]) != "2 created, 0 updated, 0 deleted, 0 unchanged" {
			t.Errorf("subdirectory: %+v", r[0])
		}
		wantJobs(t, "subdirectory", e.jobs(), "a=1", "b=1")
		e.want(0, c.dir, "--once", "--repo", "./jobs", "--dry-run", "--detailed-exitcode")
	})

	t.Run("markdown", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "sqlite")
		c := newCheckout(t)
		c.write("a.yaml", jobManifest("a", "1"))
		c.write("b.yaml", jobManifest("b", "1"))
		c.write("c.yaml", jobManifest("c", "1"))
		c.commit("three jobs")
		e.want(0, "", "--once", "--repo", c.dir, "--source-id", "platform-jobs")

		c.write("a.yaml", strings.Replace(jobManifest("a", "2"), "LOG_LEVEL: info", "LOG_LEVEL: debug", 1))
		c.remove("b.yaml")
		c.write("d.yaml", jobManifest("d", "1"))
		head := c.commit("edit a, remove b, add d")
		res := e.want(2, "", "--once", "--repo", c.dir, "--source-id", "platform-jobs", "--dry-run", "--detailed-exitcode", "--output", "markdown")
		got := strings.ReplaceAll(res.stdout, head[:12], "COMMIT")
		for _, want := range []string{"1 to create, 1 to update, 1 to delete", "| action | job | detail |", "<details><summary><code>a</code>"} {
			if !strings.Contains(got, want) {
				t.Errorf("markdown lacks %q", want)
			}
		}
		golden(t, "testdata/once-dry-run.md", got)
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "sqlite")
		c := newCheckout(t)
		c.write("a.yaml", jobManifest("a", "1"))
		c.write("b.yaml", "apiVersion: v1\nkind: Job\nmetadata:\n  alias: b\nsteps: []\n")
		c.commit("one bad")
		res := e.want(1, "", "--once", "--repo", c.dir, "--output", "json", "--dry-run")
		var raw []map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil || len(raw) != 1 {
			t.Fatalf("json: %v\n%s", err, res.stdout)
		}
		for _, key := range []string{"sourceId", "repo", "commit", "diagnostics", "reason", "error", "files", "jobs"} {
			if _, ok := raw[0][key]; !ok {
				t.Errorf("json lacks %q: %s", key, res.stdout)
			}
		}
	})
}

// daemon is a caesium-agent binary serving in the background.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan struct{}
}

// startDaemon runs the binary as a daemon and waits for the line saying
// where it serves.
func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: newSyncBuffer(), exited: make(chan struct{})}
	d.cmd = exec.Command(bin, append(args, "--http-addr", "127.0.0.1:0", "--log-format", "json")...)
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(d.exited)
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = d.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.exited
	})
	select {
	case d.url = <-addr:
	case <-time.After(60 * time.Second): // a hang guard
		_ = d.cmd.Process.Kill()
		t.Fatalf("the agent did not say where it serves; stderr:\n%s", d.stderr.String())
	}
	return d
}

// syncStatus is the answer to a sync request: 202 from the leader, 503
// from a follower.
func (d *daemon) syncStatus(t *testing.T, source string) int {
	t.Helper()
	resp, err := http.Post(d.url+"/v1/sources/"+source+"/sync", "application/json", nil)
	if err != nil {
		t.Fatalf("POST sync: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDaemonFailover: two agents on one PostgreSQL; the leader is killed
// with SIGKILL (no graceful resign) and the other takes over when the
// server ends the dead leader's session, then syncs a new commit.
func TestDaemonFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dbURL := storetest.PostgresURL(t)
	bin := filepath.Join(t.TempDir(), "caesium-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := newCheckout(t)
	c.write("a.yaml", jobManifest("a", "1"))
	c.commit("first")
	args := []string{"--repo", c.dir, "--source-id", "jobs", "--database-url", dbURL}
	a := startDaemon(t, bin, append(args, "--data-dir", t.TempDir())...)
	b := startDaemon(t, bin, append(args, "--data-dir", t.TempDir())...)

	var leader, follower *daemon
	deadline := time.Now().Add(60 * time.Second) // hang guards, not timing assertions
	for leader == nil {
		sa, sb := a.syncStatus(t, "jobs"), b.syncStatus(t, "jobs")
		switch {
		case sa == http.StatusAccepted && sb == http.StatusAccepted:
			t.Fatal("both agents lead")
		case sa == http.StatusAccepted && sb == http.StatusServiceUnavailable:
			leader, follower = a, b
		case sb == http.StatusAccepted && sa == http.StatusServiceUnavailable:
			leader, follower = b, a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader: %d %d", sa, sb)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	killed := time.Now()
	for follower.syncStatus(t, "jobs") != http.StatusAccepted {
		if time.Now().After(killed.Add(60 * time.Second)) {
			t.Fatalf("the follower did not take over; its log:\n%s", follower.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("takeover %s after SIGKILL of the leader", time.Since(killed).Round(10*time.Millisecond))

	c.write("a.yaml", jobManifest("a", "2"))
	c2 := c.commit("second")
	e := &onceEnv{t: t, dbURL: dbURL}
	for e.jobs()["a"] != "registry.example.com/etl:2" {
		if s := follower.syncStatus(t, "jobs"); s != http.StatusAccepted {
			t.Fatalf("the new leader answers %d to a sync", s)
		}
		if time.Now().After(killed.Add(120 * time.Second)) {
			t.Fatalf("the new leader did not sync %s; its log:\n%s", c2, follower.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
