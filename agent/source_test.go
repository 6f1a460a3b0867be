package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestSyncLocalRepo follows a local checkout through a first sync, a poll
// with nothing new, a one-file edit and a deletion, on both databases.
func TestSyncLocalRepo(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, backend)
			w := newWorkRepo(t)
			w.write("jobs/a.yaml", manifest("a", "1"))
			w.write("jobs/b.yaml", manifest("b", "1")+"---\n"+manifest("b2", "1"))
			w.write("README.md", "not a manifest\n")
			c1 := w.commit("first")
			s := f.source(sourceConfig("platform", w.Dir), nil, nil)

			res := mustSync(t, s)
			if res.Commit != c1 || res.Files != 2 || res.Jobs != 3 || summary(res) != "created 3, updated 0, deleted 0, unchanged 0, conflicts 0, failed 0" {
				t.Fatalf("first sync: commit %s files %d jobs %d, %s", res.Commit, res.Files, res.Jobs, summary(res))
			}
			jobs := f.jobs()
			if len(jobs) != 3 {
				t.Fatalf("live jobs %v, want a, b, b2", slices.Collect(mapKeys(jobs)))
			}
			p := jobs["b2"].Provenance
			if p.SourceID != "platform" || p.Repo != w.Dir || p.Commit != c1 || p.Path != "jobs/b.yaml" {
				t.Errorf("provenance of b2: %+v", p)
			}
			src, st := f.status("platform")
			if src.LastAppliedCommit != c1 || src.LastAttemptedCommit != c1 || src.Repo != w.Dir {
				t.Errorf("source row: %+v", src)
			}
			wantReady(t, st)
			if len(st.History) != 1 || st.History[0].Result != "applied" || st.History[0].Created != 3 || st.History[0].Commit != c1 {
				t.Errorf("history: %+v", st.History)
			}
			if st.LastAppliedAt == nil || st.LastAttemptAt == nil {
				t.Errorf("times not set: %+v", st)
			}

			// A poll with nothing new reads nothing and writes nothing.
			applies := countApplies(t, f.st, "platform")
			res = mustSync(t, s)
			if !res.UpToDate || res.Report != nil || res.Commit != c1 {
				t.Errorf("second sync: %s", asJSON(res))
			}
			if _, st := f.status("platform"); len(st.History) != 1 {
				t.Errorf("an up-to-date poll added history: %+v", st.History)
			}
			if n := countApplies(t, f.st, "platform"); n != applies {
				t.Errorf("an up-to-date poll recorded an apply: %d, want %d", n, applies)
			}

			// One file edited: one job updated, the others left alone.
			w.write("jobs/a.yaml", manifest("a", "2"))
			c2 := w.commit("edit a")
			res = mustSync(t, s)
			if summary(res) != "created 0, updated 1, deleted 0, unchanged 2, conflicts 0, failed 0" {
				t.Errorf("edit: %s", summary(res))
			}
			jobs = f.jobs()
			if jobs["a"].Labels["variant"] != "2" || jobs["a"].Provenance.Commit != c2 {
				t.Errorf("a after the edit: labels %v, commit %s", jobs["a"].Labels, jobs["a"].Provenance.Commit)
			}
			if jobs["b"].Provenance.Commit != c1 {
				t.Errorf("unchanged b was rewritten at %s", jobs["b"].Provenance.Commit)
			}

			// A deleted file prunes its jobs.
			w.remove("jobs/b.yaml")
			c3 := w.commit("remove b")
			res = mustSync(t, s)
			if summary(res) != "created 0, updated 0, deleted 2, unchanged 1, conflicts 0, failed 0" {
				t.Errorf("delete: %s", summary(res))
			}
			if jobs := f.jobs(); len(jobs) != 1 || jobs["a"].Alias != "a" {
				t.Errorf("live jobs after the delete: %v", slices.Collect(mapKeys(jobs)))
			}
			src, st = f.status("platform")
			if src.LastAppliedCommit != c3 || len(st.History) != 3 {
				t.Errorf("after three applies: applied %s, history %+v", src.LastAppliedCommit, st.History)
			}
			for i, want := range []string{c3, c2, c1} {
				if st.History[i].Commit != want {
					t.Errorf("history[%d] is %s, want %s (newest first)", i, st.History[i].Commit, want)
				}
			}
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func countApplies(t testing.TB, st *store.Store, source string) int {
	t.Helper()
	recs, err := st.ListApplies(context.Background(), source, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// TestDryRunWritesNothing: a dry run plans, even an applied commit, and
// leaves the jobs, the source's status and the apply history alone.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.commit("first")
	s := f.source(sourceConfig("dry", w.Dir), nil, nil)

	res := s.Sync(context.Background(), true)
	if res.Failed() || !res.DryRun || summary(res) != "created 1, updated 0, deleted 0, unchanged 0, conflicts 0, failed 0" {
		t.Fatalf("dry run: %s", asJSON(res))
	}
	if len(f.jobs()) != 0 || countApplies(t, f.st, "dry") != 0 {
		t.Error("a dry run wrote jobs or history")
	}
	if _, err := f.st.GetSource(context.Background(), "dry"); err == nil {
		t.Error("a dry run wrote the source's status")
	}

	mustSync(t, s)
	w.write("a.yaml", manifest("a", "2"))
	w.commit("edit")
	res = s.Sync(context.Background(), true)
	if res.UpToDate || summary(res) != "created 0, updated 1, deleted 0, unchanged 0, conflicts 0, failed 0" || len(res.Report.Outcomes[0].Diff) == 0 {
		t.Fatalf("dry run of an edit: %s", asJSON(res))
	}
	if f.jobs()["a"].Labels["variant"] != "1" {
		t.Error("a dry run applied the edit")
	}
}

// TestOnInvalid: with fail, a revision with an invalid manifest changes
// nothing; with skip, the valid files apply and the jobs of the invalid
// file are neither updated nor pruned.
func TestOnInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		onInvalid   string
		wantFail    bool
		wantSummary string
		wantLive    map[string]string // alias -> variant label
	}{
		{
			onInvalid: config.OnInvalidFail, wantFail: true,
			wantLive: map[string]string{"a": "1", "b": "1", "c": "1"},
		},
		{
			onInvalid:   config.OnInvalidSkip,
			wantSummary: "created 1, updated 1, deleted 1, unchanged 1, conflicts 0, failed 0",
			wantLive:    map[string]string{"a": "2", "b": "1", "d": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.onInvalid, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "sqlite")
			w := newWorkRepo(t)
			w.write("a.yaml", manifest("a", "1"))
			w.write("b.yaml", manifest("b", "1"))
			w.write("c.yaml", manifest("c", "1"))
			c1 := w.commit("first")
			cfg := sourceConfig("src", w.Dir)
			cfg.OnInvalid = tt.onInvalid
			s := f.source(cfg, nil, nil)
			mustSync(t, s)

			// a edited, b broken (and edited), c deleted, d new.
			w.write("a.yaml", manifest("a", "2"))
			w.write("b.yaml", strings.Replace(invalidManifest("b"), "steps:", "metadata2: x\nsteps:", 1))
			w.remove("c.yaml")
			w.write("d.yaml", manifest("d", "1"))
			c2 := w.commit("mixed")
			res := s.Sync(context.Background(), false)

			if !slices.ContainsFunc(res.Diagnostics, func(d schema.Diagnostic) bool {
				return d.File == "b.yaml" && d.Severity == schema.SeverityError
			}) {
				t.Errorf("no error diagnostic for b.yaml: %+v", res.Diagnostics)
			}
			live := map[string]string{}
			for alias, j := range f.jobs() {
				live[alias] = j.Labels["variant"]
			}
			if fmt.Sprint(live) != fmt.Sprint(tt.wantLive) {
				t.Errorf("live jobs %v, want %v", live, tt.wantLive)
			}
			src, st := f.status("src")
			if tt.wantFail {
				if !res.Failed() || res.Reason != agent.ReasonInvalidManifests || !strings.Contains(res.Error, "b.yaml") {
					t.Errorf("sync: failed %t, %s: %s", res.Failed(), res.Reason, res.Error)
				}
				wantStalled(t, st, agent.ReasonInvalidManifests)
				if src.LastAppliedCommit != c1 || src.LastAttemptedCommit != c2 {
					t.Errorf("applied %s attempted %s, want %s and %s", src.LastAppliedCommit, src.LastAttemptedCommit, c1, c2)
				}
				if st.History[0].Result != "invalid" {
					t.Errorf("history[0] = %+v, want result invalid", st.History[0])
				}
				return
			}
			if res.Failed() || summary(res) != tt.wantSummary {
				t.Errorf("sync: %s: %s; %s, want %s", res.Reason, res.Error, summary(res), tt.wantSummary)
			}
			wantReady(t, st)
			if src.LastAppliedCommit != c2 {
				t.Errorf("applied %s, want %s", src.LastAppliedCommit, c2)
			}
		})
	}
}

// TestSkipInvalidKeepsJobsPastPruneGuards: with onInvalid skip, the jobs of
// invalid files are kept, so they must not count as deletions for prune's
// guards either: breaking many files at once (or the only one) must not
// turn into a refused prune that stalls the source.
func TestSkipInvalidKeepsJobsPastPruneGuards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		total  int // files, one job each
		broken int // files made invalid
	}{
		{name: "more than maxDeletions", total: 20, broken: 11},
		{name: "every file", total: 2, broken: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "sqlite")
			w := newWorkRepo(t)
			for i := range tt.total {
				w.write(fmt.Sprintf("j%02d.yaml", i), manifest(fmt.Sprintf("j%02d", i), "1"))
			}
			w.commit("first")
			cfg := sourceConfig("src", w.Dir)
			cfg.OnInvalid = config.OnInvalidSkip
			s := f.source(cfg, nil, nil)
			mustSync(t, s)

			for i := range tt.broken {
				w.write(fmt.Sprintf("j%02d.yaml", i), invalidManifest(fmt.Sprintf("j%02d", i)))
			}
			if tt.broken < tt.total {
				w.write(fmt.Sprintf("j%02d.yaml", tt.total-1), manifest(fmt.Sprintf("j%02d", tt.total-1), "2"))
			}
			c2 := w.commit("break some")
			res := s.Sync(context.Background(), false)
			if res.Failed() {
				t.Errorf("sync failed: %s: %s", res.Reason, res.Error)
			}
			if res.Report != nil && (res.Report.PruneRefused != "" || res.Report.Summary.Deleted != 0) {
				t.Errorf("report: %s, prune refused %q", summary(res), res.Report.PruneRefused)
			}
			if n := len(f.jobs()); n != tt.total {
				t.Errorf("%d live jobs, want all %d kept", n, tt.total)
			}
			if tt.broken < tt.total {
				if v := f.jobs()[fmt.Sprintf("j%02d", tt.total-1)].Labels["variant"]; v != "2" {
					t.Errorf("the valid edit was not applied: variant %q", v)
				}
			}
			src, st := f.status("src")
			wantReady(t, st)
			if src.LastAppliedCommit != c2 {
				t.Errorf("applied %s, want %s", src.LastAppliedCommit, c2)
			}
		})
	}
}

// TestDefaultOnInvalidIsFail: a Source built without config defaults (no
// onInvalid) must fail closed, not skip invalid manifests.
func TestDefaultOnInvalidIsFail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.write("b.yaml", invalidManifest("b"))
	w.commit("first")
	s := f.source(config.Source{ID: "bare", Repo: w.Dir}, nil, nil)
	res := s.Sync(context.Background(), false)
	if res.Reason != agent.ReasonInvalidManifests || len(f.jobs()) != 0 {
		t.Errorf("sync: %s: %s; %d jobs applied", res.Reason, res.Error, len(f.jobs()))
	}
}

// TestAdHocSourcePrunes: the --repo source of caesium-agent prunes by
// default.
func TestAdHocSourcePrunes(t *testing.T) {
	t.Parallel()
	w := newWorkRepo(t)
	w.write("jobs/a.yaml", manifest("a", "1"))
	w.write("jobs/b.yaml", manifest("b", "1"))
	w.commit("first")

	fs := pflag.NewFlagSet("caesium-agent", pflag.ContinueOnError)
	config.BindFlags(fs)
	if err := fs.Parse([]string{"--repo", filepath.Join(w.Dir, "jobs"), "--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 1 || !cfg.Sources[0].Prune.On() || cfg.Sources[0].ID != "jobs" {
		t.Fatalf("ad-hoc source: %+v", cfg.Sources)
	}
	f := newFixture(t, "sqlite")
	s := f.source(cfg.Sources[0], nil, nil)
	mustSync(t, s)
	w.remove("jobs/b.yaml")
	w.commit("remove b")
	res := mustSync(t, s)
	if res.Report.Summary.Deleted != 1 {
		t.Errorf("delete b: %s", summary(res))
	}
	if jobs := f.jobs(); len(jobs) != 1 || jobs["a"].Provenance.Path != "jobs/a.yaml" {
		t.Errorf("live jobs: %v", jobs)
	}
}

// TestPruneDisabled: with prune off, a deleted manifest leaves its job.
func TestPruneDisabled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.write("b.yaml", manifest("b", "1"))
	w.commit("first")
	cfg := sourceConfig("src", w.Dir)
	off := false
	cfg.Prune.Enabled = &off
	s := f.source(cfg, nil, nil)
	mustSync(t, s)
	w.remove("b.yaml")
	w.commit("remove b")
	if res := mustSync(t, s); res.Changes() {
		t.Errorf("sync: %s", summary(res))
	}
	if len(f.jobs()) != 2 {
		t.Errorf("b was pruned with prune disabled")
	}
}

// TestSubdirectory: a source on a subdirectory of a checkout syncs only
// the manifests below it, and records paths from the repository root.
func TestSubdirectory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("jobs/a.yaml", manifest("a", "1"))
	w.write("jobs/nested/b.yaml", manifest("b", "1"))
	w.write("other/c.yaml", manifest("c", "1"))
	c1 := w.commit("first")

	cfg := sourceConfig("sub", filepath.Join(w.Dir, "jobs"))
	s := f.source(cfg, nil, nil)
	res := mustSync(t, s)
	if res.Jobs != 2 || res.Commit != c1 {
		t.Fatalf("sync: %s", asJSON(res))
	}
	jobs := f.jobs()
	if _, ok := jobs["c"]; ok || jobs["b"].Provenance.Path != "jobs/nested/b.yaml" || jobs["b"].Provenance.Repo != w.Dir {
		t.Errorf("jobs: %+v", jobs)
	}
	if src, _ := f.status("sub"); src.Path != "jobs" || src.Repo != w.Dir {
		t.Errorf("source row: repo %s path %s, want %s and jobs", src.Repo, src.Path, w.Dir)
	}

	// A path below the subdirectory narrows it further.
	f = newFixture(t, "sqlite")
	cfg = sourceConfig("nested", filepath.Join(w.Dir, "jobs"))
	cfg.Path = "nested"
	res = mustSync(t, f.source(cfg, nil, nil))
	if jobs := f.jobs(); res.Jobs != 1 || len(jobs) != 1 || jobs["b"].Provenance.Path != "jobs/nested/b.yaml" {
		t.Errorf("nested: %s", asJSON(res))
	}
}

// TestConflictWithAnotherSource: a job owned by another source is not taken
// over; the source stalls with Conflicts and its other jobs apply.
func TestConflictWithAnotherSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	other := newWorkRepo(t)
	other.write("shared.yaml", manifest("shared", "other"))
	other.commit("first")
	mustSync(t, f.source(sourceConfig("other", other.Dir), nil, nil))

	w := newWorkRepo(t)
	w.write("shared.yaml", manifest("shared", "mine"))
	w.write("own.yaml", manifest("own", "mine"))
	c1 := w.commit("first")
	s := f.source(sourceConfig("mine", w.Dir), nil, nil)
	res := s.Sync(context.Background(), false)
	if !res.Failed() || res.Reason != agent.ReasonConflicts || !strings.Contains(res.Error, "shared") {
		t.Fatalf("sync: %s: %s", res.Reason, res.Error)
	}
	if summary(res) != "created 1, updated 0, deleted 0, unchanged 0, conflicts 1, failed 0" {
		t.Errorf("report: %s", summary(res))
	}
	jobs := f.jobs()
	if jobs["shared"].Provenance.SourceID != "other" || jobs["shared"].Labels["variant"] != "other" {
		t.Errorf("shared was taken over: %+v", jobs["shared"].Provenance)
	}
	if jobs["own"].Provenance.SourceID != "mine" {
		t.Errorf("own not applied: %+v", jobs["own"])
	}
	src, st := f.status("mine")
	wantStalled(t, st, agent.ReasonConflicts)
	if src.LastAppliedCommit != "" || src.LastAttemptedCommit != c1 || st.History[0].Conflicts != 1 {
		t.Errorf("source: %+v, history %+v", src, st.History)
	}

	// Retries of the same stuck commit refuse again but do not grow the
	// apply history; a new commit that still conflicts is recorded.
	applies := func() int {
		recs, err := f.st.ListApplies(context.Background(), "mine", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	before := applies()
	for range 3 {
		if res := s.Sync(context.Background(), false); res.Reason != agent.ReasonConflicts {
			t.Fatalf("retry: %s: %s", res.Reason, res.Error)
		}
	}
	if got := applies(); got != before {
		t.Errorf("retries of a refused commit added %d apply records", got-before)
	}
	w.write("own.yaml", manifest("own", "mine-2"))
	w.commit("second")
	if res := s.Sync(context.Background(), false); res.Reason != agent.ReasonConflicts {
		t.Fatalf("new commit: %s: %s", res.Reason, res.Error)
	}
	if got := applies(); got != before+1 {
		t.Errorf("a new commit that wrote and conflicted: %d new apply records, want 1", got-before)
	}
}

// TestHistoryCapped: a source keeps its last 20 reconciles, newest first.
func TestHistoryCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	s := f.source(sourceConfig("src", w.Dir), nil, nil)
	var commits []string
	for i := range store.MaxSyncHistory + 5 {
		w.write("a.yaml", manifest("a", fmt.Sprint(i)))
		commits = append(commits, w.commit(fmt.Sprint(i)))
		mustSync(t, s)
	}
	_, st := f.status("src")
	if len(st.History) != store.MaxSyncHistory {
		t.Fatalf("%d history records, want %d", len(st.History), store.MaxSyncHistory)
	}
	for i, r := range st.History {
		if want := commits[len(commits)-1-i]; r.Commit != want || r.Result != "applied" {
			t.Errorf("history[%d] = %s %s, want %s applied", i, r.Commit, r.Result, want)
		}
	}
}

// TestRestartedSourceIsUpToDate: a new Source on the same store (an agent
// restarted) does not re-read or re-apply a commit that is already applied.
func TestRestartedSourceIsUpToDate(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, backend)
			w := newWorkRepo(t)
			w.write("a.yaml", manifest("a", "1"))
			c1 := w.commit("first")
			cfg := sourceConfig("src", w.Dir)
			cfg.Interval = time.Hour
			first := f.source(cfg, nil, nil)
			mustSync(t, first)
			_, before := f.status("src")
			_ = first.Close()

			second := f.source(cfg, nil, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- second.Run(ctx) }()
			// Run loads the stored status, then polls at once.
			waitFor(t, "the restarted source's first poll", func() bool {
				st := second.Status()
				return st.LastAttemptAt != nil && st.LastAttemptAt.After(*before.LastAttemptAt)
			})
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v", err)
			}
			src, after := f.status("src")
			if len(after.History) != 1 || src.LastAppliedCommit != c1 || countApplies(t, f.st, "src") != 1 {
				t.Errorf("the restarted source re-applied: history %+v", after.History)
			}
			if agent.Parses(second) != 0 {
				t.Errorf("the restarted source parsed %d files of an applied commit", agent.Parses(second))
			}
			wantReady(t, second.Status())
		})
	}
}

// TestBlobCache: a sync parses only the files whose content changed since
// the last sync.
func TestBlobCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	for i := range 5 {
		w.write(fmt.Sprintf("j%d.yaml", i), manifest(fmt.Sprintf("j%d", i), "1"))
	}
	w.commit("first")
	s := f.source(sourceConfig("src", w.Dir), nil, nil)
	mustSync(t, s)
	if n := agent.Parses(s); n != 5 {
		t.Fatalf("first sync parsed %d files, want 5", n)
	}

	steps := []struct {
		name   string
		change func()
		parses int // more than before
		sum    string
	}{
		{name: "one file edited, one added", change: func() {
			w.write("j0.yaml", manifest("j0", "2"))
			w.write("j5.yaml", manifest("j5", "1"))
		}, parses: 2, sum: "created 1, updated 1, deleted 0, unchanged 4, conflicts 0, failed 0"},
		{name: "a commit that changes no manifest", change: func() { w.write("README.md", "hi\n") },
			parses: 0, sum: "created 0, updated 0, deleted 0, unchanged 6, conflicts 0, failed 0"},
		{name: "a file deleted", change: func() { w.remove("j1.yaml") },
			parses: 0, sum: "created 0, updated 0, deleted 1, unchanged 5, conflicts 0, failed 0"},
		{name: "a file moved: same blob, new path", change: func() {
			w.remove("j2.yaml")
			w.write("moved/j2.yaml", manifest("j2", "1"))
		}, parses: 1, sum: "created 0, updated 1, deleted 0, unchanged 4, conflicts 0, failed 0"},
	}
	for _, step := range steps {
		before := agent.Parses(s)
		step.change()
		w.commit(step.name)
		res := mustSync(t, s)
		if got := agent.Parses(s) - before; got != step.parses {
			t.Errorf("%s: parsed %d files, want %d", step.name, got, step.parses)
		}
		if summary(res) != step.sum {
			t.Errorf("%s: %s, want %s", step.name, summary(res), step.sum)
		}
	}
}

// TestVerifySignedCommits: with verify mode head, an unsigned (or wrongly
// signed) head commit is not applied and stalls the source; a commit signed
// by a trusted key applies.
func TestVerifySignedCommits(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	trusted := g.genKey("Trusted <trusted@e>")
	other := g.genKey("Other <other@e>")
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	c1 := g.commitSigned(w, trusted, "signed")

	cfg := sourceConfig("signed", w.Dir)
	cfg.Verify = config.Verify{Mode: "head", Keys: []string{"secret://env/SIGNING_KEY"}}
	s := f.source(cfg, envSecrets(map[string]string{"SIGNING_KEY": trusted.pub}), nil)
	mustSync(t, s)

	for _, tt := range []struct {
		name   string // also a label value
		commit func() string
		want   string // in the error
	}{
		{name: "unsigned", commit: func() string { return w.commit("unsigned") }, want: "not signed"},
		{name: "signed-by-another-key", commit: func() string { return g.commitSigned(w, other, "other") }, want: "not trusted"},
	} {
		w.write("a.yaml", manifest("a", tt.name))
		w.write("b.yaml", manifest("b", tt.name))
		head := tt.commit()
		res := s.Sync(context.Background(), false)
		if res.Reason != agent.ReasonUnverified || !strings.Contains(res.Error, tt.want) || !strings.Contains(res.Error, head[:12]) {
			t.Errorf("%s: %s: %s", tt.name, res.Reason, res.Error)
		}
		jobs := f.jobs()
		if len(jobs) != 1 || jobs["a"].Labels["variant"] != "1" {
			t.Errorf("%s: jobs changed: %v", tt.name, jobs)
		}
		src, st := f.status("signed")
		wantStalled(t, st, agent.ReasonUnverified)
		if src.LastAppliedCommit != c1 || src.LastAttemptedCommit != head {
			t.Errorf("%s: applied %s attempted %s", tt.name, src.LastAppliedCommit, src.LastAttemptedCommit)
		}
	}

	w.write("a.yaml", manifest("a", "3"))
	c3 := g.commitSigned(w, trusted, "signed again")
	res := mustSync(t, s)
	if res.Commit != c3 || summary(res) != "created 1, updated 1, deleted 0, unchanged 0, conflicts 0, failed 0" {
		t.Errorf("signed commit: %s", summary(res))
	}
	_, st := f.status("signed")
	wantReady(t, st)
}

// TestGitServerOutage: a git server killed in the middle of a poll leaves
// the last applied state and a Stalled (FetchFailed) status with history;
// the first poll after it is back recovers, with or without a new commit.
func TestGitServerOutage(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, backend)
			w := newWorkRepo(t)
			w.write("a.yaml", manifest("a", "1"))
			w.write("b.yaml", manifest("b", "1"))
			c1 := w.commit("first")
			srv := startGitServer(t, filepath.Dir(w.Dir), "", "")
			s := f.source(sourceConfig("remote", srv.url("work")), nil, nil)
			mustSync(t, s)

			// The server dies between the ref listing and the fetch.
			w.write("a.yaml", manifest("a", "2"))
			w.remove("b.yaml")
			c2 := w.commit("edit a, remove b")
			srv.dieOnFetch.Store(true)
			res := s.Sync(context.Background(), false)
			srv.stop()
			if res.Reason != agent.ReasonFetchFailed || res.Commit != c2 || !strings.Contains(res.Error, "fetch") {
				t.Fatalf("sync while the server dies: %s: %s (commit %s)", res.Reason, res.Error, res.Commit)
			}
			checkLastApplied := func(when string) {
				t.Helper()
				jobs := f.jobs()
				if len(jobs) != 2 || jobs["a"].Labels["variant"] != "1" || jobs["a"].Provenance.Commit != c1 {
					t.Errorf("%s: jobs changed: %v", when, jobs)
				}
			}
			checkLastApplied("server killed mid-poll")
			src, st := f.status("remote")
			wantStalled(t, st, agent.ReasonFetchFailed)
			if src.LastAppliedCommit != c1 || src.LastAttemptedCommit != c2 {
				t.Errorf("applied %s attempted %s, want %s %s", src.LastAppliedCommit, src.LastAttemptedCommit, c1, c2)
			}
			if len(st.History) != 2 || st.History[0].Result != "failed" || st.History[0].Error == "" || st.History[1].Result != "applied" {
				t.Errorf("history: %+v", st.History)
			}

			// Down: the ref listing fails.
			res = s.Sync(context.Background(), false)
			if res.Reason != agent.ReasonFetchFailed || !strings.Contains(res.Error, "list refs") {
				t.Errorf("sync while down: %s: %s", res.Reason, res.Error)
			}
			checkLastApplied("server down")
			_, st = f.status("remote")
			wantStalled(t, st, agent.ReasonFetchFailed)

			// Back on the same port: the next poll applies the new commit.
			srv.restart()
			res = mustSync(t, s)
			if res.Commit != c2 || summary(res) != "created 0, updated 1, deleted 1, unchanged 0, conflicts 0, failed 0" {
				t.Errorf("after the restart: %s", summary(res))
			}
			src, st = f.status("remote")
			wantReady(t, st)
			if src.LastAppliedCommit != c2 || len(st.History) != 4 {
				t.Errorf("applied %s, history %+v", src.LastAppliedCommit, st.History)
			}

			// An outage without a new commit: stalled while down, ready
			// again on the first poll after.
			srv.stop()
			if res := s.Sync(context.Background(), false); res.Reason != agent.ReasonFetchFailed {
				t.Errorf("sync while down again: %s: %s", res.Reason, res.Error)
			}
			_, st = f.status("remote")
			wantStalled(t, st, agent.ReasonFetchFailed)
			srv.restart()
			if res := mustSync(t, s); !res.UpToDate {
				t.Errorf("after the second restart: %s", asJSON(res))
			}
			src, st = f.status("remote")
			wantReady(t, st)
			if src.LastAppliedCommit != c2 || src.LastAttemptedCommit != c2 {
				t.Errorf("applied %s attempted %s, want %s", src.LastAppliedCommit, src.LastAttemptedCommit, c2)
			}
		})
	}
}

// TestCanceledSyncIsNotAFailure: a sync cut short by its context (the agent
// stopping, leadership lost) leaves the source as it was, not Stalled with
// "context canceled" until the next sync.
func TestCanceledSyncIsNotAFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	c1 := w.commit("first")
	srv := startGitServer(t, filepath.Dir(w.Dir), "", "")
	s := f.source(sourceConfig("remote", srv.url("work")), nil, nil)
	mustSync(t, s)

	w.write("a.yaml", manifest("a", "2"))
	c2 := w.commit("second")
	srv.hangOnFetch.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *agent.SyncResult, 1)
	go func() { done <- s.Sync(ctx, false) }()
	waitFor(t, "the fetch to reach the server", func() bool { return srv.hanging.Load() > 0 })
	cancel()
	res := <-done
	if res.Error == "" || res.Commit != c2 {
		t.Errorf("canceled sync: %s", asJSON(res))
	}
	src, st := f.status("remote")
	wantReady(t, st)
	if src.LastAppliedCommit != c1 || len(st.History) != 1 {
		t.Errorf("canceled sync recorded: applied %s, history %+v", src.LastAppliedCommit, st.History)
	}
	if v := f.jobs()["a"].Labels["variant"]; v != "1" {
		t.Errorf("variant %s", v)
	}

	srv.hangOnFetch.Store(false)
	if res := mustSync(t, s); res.Commit != c2 {
		t.Errorf("next sync: %s", asJSON(res))
	}
}

// TestRunRecoversFromOutage drives Source.Run: it polls at once, syncs when
// nudged, and after a failed poll retries with backoff, which picks up the
// commit made while the server was down once it is back.
func TestRunRecoversFromOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "sqlite")
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	c1 := w.commit("first")
	srv := startGitServer(t, filepath.Dir(w.Dir), "", "")
	cfg := sourceConfig("remote", srv.url("work"))
	// No polls but the first: syncs come from Nudge and failure backoff.
	cfg.Interval = time.Hour
	s := f.source(cfg, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	applied := func(commit string) func() bool {
		return func() bool {
			src, err := f.st.GetSource(context.Background(), "remote")
			return err == nil && src.LastAppliedCommit == commit
		}
	}
	waitFor(t, "the first poll", applied(c1))

	w.write("a.yaml", manifest("a", "2"))
	c2 := w.commit("second")
	s.Nudge()
	waitFor(t, "the nudged sync", applied(c2))

	srv.stop()
	w.write("a.yaml", manifest("a", "3"))
	c3 := w.commit("third")
	s.Nudge()
	waitFor(t, "a Stalled status", func() bool {
		_, st := f.status("remote")
		c, _ := st.Condition(store.ConditionStalled)
		return c.Status && c.Reason == agent.ReasonFetchFailed
	})
	if v := f.jobs()["a"].Labels["variant"]; v != "2" {
		t.Errorf("while down: variant %s, want the last applied 2", v)
	}
	srv.restart()
	// No nudge: the retry after the failure finds the server back.
	waitFor(t, "recovery", applied(c3))
	_, st := f.status("remote")
	wantReady(t, st)
	if v := f.jobs()["a"].Labels["variant"]; v != "3" {
		t.Errorf("after recovery: variant %s, want 3", v)
	}
}

// TestCredentialsNeverShown: the password of an HTTP source is resolved
// from a secret reference and appears in no status, result, error, job or
// log line, whether the sync works, the password is wrong or the server is
// gone; nor does a password written into the URL.
func TestCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	const (
		user     = "caesium"
		password = "hunter2-correct-horse"
		wrong    = "tr0ub4dor-wrong-battery"
	)
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.commit("first")
	srv := startGitServer(t, filepath.Dir(w.Dir), user, password)

	tests := []struct {
		name       string
		url        string
		auth       config.SourceAuth
		secret     string // the value of GIT_PASSWORD
		wantReason string
	}{
		{name: "right password", url: srv.url("work"), auth: config.SourceAuth{Username: user, Password: "secret://env/GIT_PASSWORD"}, secret: password},
		{name: "wrong password", url: srv.url("work"), auth: config.SourceAuth{Username: user, Password: "secret://env/GIT_PASSWORD"}, secret: wrong, wantReason: agent.ReasonFetchFailed},
		{name: "password in the URL", url: strings.Replace(srv.url("work"), "http://", "http://"+user+":"+password+"@", 1)},
		{name: "wrong password in the URL", url: strings.Replace(srv.url("work"), "http://", "http://"+user+":"+wrong+"@", 1), wantReason: agent.ReasonFetchFailed},
		{name: "server gone", url: "http://127.0.0.1:1/git/work", auth: config.SourceAuth{Username: user, Password: "secret://env/GIT_PASSWORD"}, secret: wrong, wantReason: agent.ReasonFetchFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "sqlite")
			cfg := sourceConfig("creds", tt.url)
			cfg.Auth = tt.auth
			cfg.Timeout = 10 * time.Second
			log, logs := debugLogger()
			s := f.source(cfg, envSecrets(map[string]string{"GIT_PASSWORD": tt.secret}), log)
			res := s.Sync(context.Background(), false)
			if res.Reason != tt.wantReason {
				t.Errorf("sync: %q (%s), want reason %q", res.Reason, res.Error, tt.wantReason)
			}
			src, err := f.st.GetSource(context.Background(), "creds")
			if err != nil {
				t.Fatal(err)
			}
			jobs, _ := json.Marshal(f.jobs())
			shown := map[string]string{
				"result":       asJSON(res),
				"status":       asJSON(src),
				"logs":         logs.String(),
				"jobs":         string(jobs),
				"redacted URL": s.Redacted(),
				"status API":   asJSON(s.Status()),
			}
			for where, text := range shown {
				for _, secret := range []string{password, wrong} {
					if strings.Contains(text, secret) {
						t.Errorf("the %s shows a password:\n%s", where, text)
					}
				}
			}
			if tt.wantReason != "" && tt.name != "server gone" && !strings.Contains(strings.ToLower(res.Error), "auth") {
				t.Errorf("error %q does not say authentication failed", res.Error)
			}
		})
	}
}

// gpgHome is a throwaway GnuPG home with its own agent.
type gpgHome struct {
	tb  testing.TB
	dir string
	env []string
}

type gpgKey struct {
	fpr string
	pub string // armored public key
}

func newGPG(tb testing.TB) *gpgHome {
	tb.Helper()
	requireTool(tb, "gpg")
	requireTool(tb, "gpgconf")
	// Not t.TempDir(): the agent's socket lives in the home, and a socket
	// path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		tb.Fatal(err)
	}
	g := &gpgHome{tb: tb, dir: dir, env: []string{"GNUPGHOME=" + dir}}
	tb.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(append([]string(nil), gitEnv...), g.env...)
		_ = cmd.Run()
		_ = os.RemoveAll(dir)
	})
	return g
}

func (g *gpgHome) gpg(args ...string) string {
	g.tb.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty"}, args...)...)
	cmd.Env = append(append([]string(nil), gitEnv...), g.env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		g.tb.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// genKey makes an ed25519 signing key that never expires.
func (g *gpgHome) genKey(uid string) gpgKey {
	g.tb.Helper()
	out := g.gpg("--passphrase", "", "--status-fd", "1", "--quick-gen-key", uid, "ed25519", "sign", "never")
	var fpr string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "KEY_CREATED" {
			fpr = f[3]
		}
	}
	if len(fpr) != 40 {
		g.tb.Fatalf("no fingerprint in gpg's status output:\n%s", out)
	}
	return gpgKey{fpr: fpr, pub: g.gpg("--armor", "--export", fpr)}
}

// commitSigned commits everything, signed with key.
func (g *gpgHome) commitSigned(w *workRepo, key gpgKey, msg string) string {
	g.tb.Helper()
	gitRun(g.tb, w.Dir, nil, "add", "-A")
	gitRun(g.tb, w.Dir, append(w.dateEnv(), g.env...), "-c", "gpg.program=gpg", "-c", "user.signingkey="+key.fpr,
		"commit", "-q", "--allow-empty", "-S", "-m", msg)
	return gitRun(g.tb, w.Dir, nil, "rev-parse", "HEAD")
}
