package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// jobsRepo is a checkout that tests commit to with the git CLI.
type jobsRepo struct {
	t   *testing.T
	dir string
}

func newJobsRepo(t *testing.T) *jobsRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git: %v", err)
		}
		t.Skipf("git: %v", err)
	}
	r := &jobsRepo{t: t, dir: filepath.Join(t.TempDir(), "platform")}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q")
	return r
}

func (r *jobsRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
		"-c", "commit.gpgsign=false", "-c", "gc.auto=0"}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// commit writes the files (path -> content, "" deletes) and commits them.
func (r *jobsRepo) commit(files map[string]string) string {
	r.t.Helper()
	for path, content := range files {
		full := filepath.Join(r.dir, path)
		if content == "" {
			if err := os.Remove(full); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", "change")
	return r.git("rev-parse", "HEAD")
}

// startSourceAgent runs an agent with one source, "platform", on repo, on
// dbURL. Its source polls once at start; later syncs are asked for.
func startSourceAgent(t *testing.T, dbURL, repo string) *testAgent {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = dbURL
	cfg.Sources = []config.Source{{
		ID: "platform", Repo: repo, Globs: config.DefaultGlobs, Interval: time.Hour,
		Timeout: time.Minute, OnInvalid: config.OnInvalidFail,
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("agent.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	return &testAgent{url: "http://" + a.Addr().String()}
}

// source reads one source through `caesium source get -o json`.
func (a *testAgent) source(t *testing.T, id string) (store.Source, store.SourceStatus) {
	t.Helper()
	res := a.mustCLI(t, "source", "get", id, "-o", "json")
	var src store.Source
	if err := json.Unmarshal([]byte(res.stdout), &src); err != nil {
		t.Fatalf("source get -o json: %v\n%s", err, res.stdout)
	}
	st, err := src.DecodeStatus()
	if err != nil {
		t.Fatal(err)
	}
	return src, st
}

// TestSourceCommands drives caesium source list, get and sync against an
// agent syncing a local repository, on both databases.
func TestSourceCommands(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			repo := newJobsRepo(t)
			c1 := repo.commit(map[string]string{"hello.yaml": manifest("hello", "rev=1"), "bye.yaml": manifest("bye")})
			a := startSourceAgent(t, storetest.URL(t, backend), repo.dir)
			deadline := time.Now().Add(60 * time.Second) // a hang guard
			for {
				if src, _ := a.source(t, "platform"); src.LastAppliedCommit == c1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the first sync did not happen")
				}
				time.Sleep(50 * time.Millisecond)
			}

			a.mustCLI(t, "source", "list").want(t, 0, []string{
				"ID STATUS APPLIED ATTEMPTED REPO",
				fmt.Sprintf("platform Ready %s %s %s", c1[:12], c1[:12], repo.dir),
			})
			var list []store.Source
			if err := json.Unmarshal([]byte(a.mustCLI(t, "source", "list", "-o", "json").stdout), &list); err != nil || len(list) != 1 || list[0].ID != "platform" {
				t.Errorf("source list -o json: %v %+v", err, list)
			}
			a.mustCLI(t, "source", "get", "platform").want(t, 0, []string{
				"ID: platform", "Status: Ready", "Applied commit: " + c1, "Conditions:", "Ready true Applied",
				"History (newest first):", c1[:12] + " applied",
			})
			var fromYAML map[string]any
			if err := yaml.Unmarshal([]byte(a.mustCLI(t, "source", "get", "platform", "-o", "yaml").stdout), &fromYAML); err != nil || fromYAML["id"] != "platform" {
				t.Errorf("source get -o yaml: %v %v", err, fromYAML)
			}
			a.cli(t, "source", "get", "nope").want(t, 1, nil, `source "nope" not found`)

			// A new commit, synced on request: the command waits and shows
			// the result.
			c2 := repo.commit(map[string]string{"hello.yaml": manifest("hello", "rev=2"), "bye.yaml": ""})
			a.mustCLI(t, "source", "sync", "platform").want(t, 0, []string{
				"sync of platform queued", "Status: Ready", "Applied commit: " + c2, c2[:12] + " applied",
			})
			if got := a.live(t); len(got) != 1 || got[0] != "hello" || a.job(t, "hello").Labels["rev"] != "2" {
				t.Errorf("jobs after the sync: %v", got)
			}

			// Nothing new: the sync finds the source up to date.
			a.mustCLI(t, "source", "sync", "platform", "--wait", "30s").want(t, 0, []string{"Status: Ready", "Applied commit: " + c2})

			// An invalid manifest: the sync fails, and so does the command.
			c3 := repo.commit(map[string]string{"bad.yaml": "apiVersion: v1\nkind: Job\nmetadata:\n  alias: bad\nsteps: []\n"})
			a.cli(t, "source", "sync", "platform").want(t, 1, []string{
				"Status: Stalled (InvalidManifests)", "Applied commit: " + c2, "Attempted commit: " + c3, "Last error:", "bad.yaml", c3[:12] + " invalid",
			})
			a.mustCLI(t, "source", "list").want(t, 0, []string{fmt.Sprintf("platform Stalled (InvalidManifests) %s %s", c2[:12], c3[:12])})

			// Fixed: the next sync recovers.
			c4 := repo.commit(map[string]string{"bad.yaml": ""})
			a.mustCLI(t, "source", "sync", "platform").want(t, 0, []string{"Status: Ready", "Applied commit: " + c4})

			a.mustCLI(t, "source", "sync", "platform", "--wait", "0").want(t, 0, []string{"sync of platform queued\n"})
			a.cli(t, "source", "sync", "nope").want(t, 1, nil, `source "nope" not found`)
		})
	}
}

// TestSourceSyncOnFollower: an agent that does not lead refuses a sync
// request, and the command says why.
func TestSourceSyncOnFollower(t *testing.T) {
	t.Parallel()
	repo := newJobsRepo(t)
	repo.commit(map[string]string{"hello.yaml": manifest("hello")})
	dbURL := storetest.URL(t, "sqlite")
	first := startSourceAgent(t, dbURL, repo.dir)
	second := startSourceAgent(t, dbURL, repo.dir)
	// One of them leads; the other answers 503.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r1 := first.cli(t, "source", "sync", "platform", "--wait", "0")
		r2 := second.cli(t, "source", "sync", "platform", "--wait", "0")
		if r1.code == 0 && r2.code == 1 || r1.code == 1 && r2.code == 0 {
			follower := r2
			if r1.code == 1 {
				follower = r1
			}
			follower.want(t, 1, nil, "not the leader")
			return
		}
		if r1.code == 0 && r2.code == 0 {
			t.Fatal("both agents accept syncs")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader:\n%s\n%s", r1.stderr, r2.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
