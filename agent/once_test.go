package agent_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestOnce: Once syncs every source in order, a second run finds them up to
// date, and a dry run plans a new commit without writing it.
func TestOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			one, two := newWorkRepo(t), newWorkRepo(t)
			one.write("a.yaml", manifest("a", "1"))
			c1 := one.commit("first")
			two.write("jobs/b.yaml", manifest("b", "1"))
			two.write("jobs/c.yaml", manifest("c", "1"))
			c2 := two.commit("first")
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Database.URL = storetest.URL(t, backend)
			cfg.Sources = []config.Source{sourceConfig("one", one.Dir), sourceConfig("two", two.Dir+"/jobs")}
			ctx := context.Background()
			log := slog.New(slog.DiscardHandler)

			results, err := agent.Once(ctx, cfg, log, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 2 || results[0].SourceID != "one" || results[1].SourceID != "two" {
				t.Fatalf("results: %s", asJSON(results))
			}
			for i, want := range []struct {
				commit string
				sum    string
			}{
				{c1, "created 1, updated 0, deleted 0, unchanged 0, conflicts 0, failed 0"},
				{c2, "created 2, updated 0, deleted 0, unchanged 0, conflicts 0, failed 0"},
			} {
				if r := results[i]; r.Failed() || r.Commit != want.commit || summary(r) != want.sum || !r.Changes() {
					t.Errorf("results[%d]: %s", i, asJSON(r))
				}
			}

			// A second run, as a restarted agent: nothing is read again.
			results, err = agent.Once(ctx, cfg, log, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if !r.UpToDate || r.Changes() || r.Failed() {
					t.Errorf("second run of %s: %s", r.SourceID, asJSON(r))
				}
			}

			// A dry run plans the new commit and writes nothing.
			two.write("jobs/b.yaml", manifest("b", "2"))
			two.commit("edit b")
			results, err = agent.Once(ctx, cfg, log, true)
			if err != nil {
				t.Fatal(err)
			}
			if r := results[1]; !r.DryRun || !r.Changes() || summary(r) != "created 0, updated 1, deleted 0, unchanged 1, conflicts 0, failed 0" {
				t.Errorf("dry run: %s", asJSON(r))
			}
			if r := results[0]; r.UpToDate || r.Changes() || r.Report == nil {
				t.Errorf("a dry run plans even an applied commit: %s", asJSON(r))
			}
			st, err := store.Open(ctx, cfg.Database.URL, store.Options{DataDir: cfg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if v := liveJobs(t, st)["b"].Labels["variant"]; v != "1" {
				t.Errorf("the dry run applied b: variant %s", v)
			}
			if src, _ := sourceStatus(t, st, "two"); src.LastAppliedCommit != c2 || src.LastAttemptedCommit != c2 {
				t.Errorf("the dry run wrote the status: %+v", src)
			}
		})
	}
}

func TestOnceErrors(t *testing.T) {
	t.Parallel()
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.commit("first")
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string
	}{
		{name: "no sources", mutate: func(c *config.Config) { c.Sources = nil }, wantErr: "no sources"},
		{name: "database unreachable", mutate: func(c *config.Config) {
			c.Database.URL = "postgres://caesium:hunter2@127.0.0.1:1/caesium?connect_timeout=5"
		}, wantErr: "open store"},
		{name: "not a repository", mutate: func(c *config.Config) { c.Sources[0].Repo = t.TempDir() }, wantErr: "not inside a git repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Database.URL = storetest.URL(t, "sqlite")
			cfg.Sources = []config.Source{sourceConfig("src", w.Dir)}
			tt.mutate(&cfg)
			_, err := agent.Once(context.Background(), cfg, slog.New(slog.DiscardHandler), false)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Once: %v, want an error with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the database password: %v", err)
			}
		})
	}
}

// TestOnceFailedSourceDoesNotStopOthers: one failing source is reported as
// such and the others still sync.
func TestOnceFailedSourceDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	bad, good := newWorkRepo(t), newWorkRepo(t)
	bad.write("a.yaml", invalidManifest("a"))
	bad.commit("broken")
	good.write("b.yaml", manifest("b", "1"))
	good.commit("first")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "sqlite")
	cfg.Sources = []config.Source{sourceConfig("bad", bad.Dir), sourceConfig("good", good.Dir)}
	results, err := agent.Once(context.Background(), cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	if !results[0].Failed() || results[0].Reason != agent.ReasonInvalidManifests {
		t.Errorf("bad: %s", asJSON(results[0]))
	}
	if results[1].Failed() || !results[1].Changes() {
		t.Errorf("good: %s", asJSON(results[1]))
	}
}
