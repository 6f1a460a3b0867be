package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

var _ Store = (*store.Store)(nil)

// backends runs body once per store backend, on a fresh isolated store.
func backends(t *testing.T, body func(t *testing.T, f *fixture, st *store.Store)) {
	t.Helper()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			body(t, setup(t), storetest.Open(t, backend))
		})
	}
}

// planStore is what the agent does before an apply: list the live jobs and
// plan against them.
func planStore(t *testing.T, st *store.Store, desired []Desired, opts Options) *Changeset {
	t.Helper()
	actual, err := st.ListJobs(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	cs, err := Plan(desired, actual, opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return cs
}

// sync plans and applies, failing the test unless everything applied.
func sync(t *testing.T, st *store.Store, desired []Desired, opts Options) *Report {
	t.Helper()
	cs := planStore(t, st, desired, opts)
	rep, err := Apply(t.Context(), st, cs, ApplyOptions{Actor: "test", Force: opts.Force})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rep.Summary.Failed > 0 {
		t.Fatalf("Apply failed: %+v", rep.Outcomes)
	}
	return rep
}

func liveJobs(t *testing.T, st *store.Store) map[string]store.Job {
	t.Helper()
	jobs, err := st.ListJobs(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	out := make(map[string]store.Job, len(jobs))
	for _, j := range jobs {
		out[j.Alias] = j
	}
	return out
}

func outcome(t *testing.T, rep *Report, alias string) Outcome {
	t.Helper()
	for _, o := range rep.Outcomes {
		if o.Alias == alias {
			return o
		}
	}
	t.Fatalf("no outcome for %s", alias)
	return Outcome{}
}

func lastApply(t *testing.T, st *store.Store, source string) store.ApplyRecord {
	t.Helper()
	recs, err := st.ListApplies(t.Context(), source, 1)
	if err != nil {
		t.Fatalf("ListApplies: %v", err)
	}
	if len(recs) != 1 {
		t.Fatalf("no apply recorded for %s", source)
	}
	return recs[0]
}

func TestApplyThenReplanIsNoop(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, f *fixture, st *store.Store) {
		ctx := t.Context()
		desired := []Desired{
			f.desired("etl/nightly.yaml", cronJob),
			f.desired("deploy/hook.yaml", httpJob),
			f.desired("jobs/a.yaml", simpleJob("a", "tier: low")),
			f.desired("jobs/b.yaml", simpleJob("b", "caesium.io/prune: disabled")),
		}
		opts := Options{SourceID: srcPlatform, Prune: true}

		cs := planStore(t, st, desired, opts)
		rep, err := Apply(ctx, st, cs, ApplyOptions{Actor: "agent", Revision: commitA})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if want := (Summary{Counts: Counts{Created: 4}}); rep.Summary != want || rep.Failed() || rep.HistoryID == 0 {
			t.Fatalf("cold apply: summary %+v, history %d; want %+v", rep.Summary, rep.HistoryID, want)
		}

		// What was stored is what was planned.
		jobs := liveJobs(t, st)
		for _, d := range desired {
			j, ok := jobs[d.Job.Metadata.Alias]
			switch {
			case !ok:
				t.Fatalf("%s not stored", d.Job.Metadata.Alias)
			case j.Hash != d.Hash || string(j.Spec) != string(d.Spec) || j.Version != 1:
				t.Errorf("%s stored as version %d hash %s spec %s", j.Alias, j.Version, j.Hash, j.Spec)
			case j.Provenance.SourceID != srcPlatform || j.Provenance.Path != d.Provenance.Path || j.Provenance.Commit != commitA:
				t.Errorf("%s provenance %+v", j.Alias, j.Provenance)
			case fmt.Sprint(j.Labels) != fmt.Sprint(d.Job.Metadata.Labels):
				t.Errorf("%s labels %v, want %v", j.Alias, j.Labels, d.Job.Metadata.Labels)
			}
		}
		kids, err := st.JobChildren(ctx, jobs["nightly-etl"].ID)
		if err != nil {
			t.Fatal(err)
		}
		if kids.Trigger.Type != "cron" || len(kids.Tasks) != 3 || len(kids.Edges) != 2 || len(kids.Callbacks) != 1 {
			t.Errorf("nightly-etl children: trigger %s, %d tasks, %d edges, %d callbacks", kids.Trigger.Type, len(kids.Tasks), len(kids.Edges), len(kids.Callbacks))
		}

		// Re-planning the same revision, at the same or a new commit, writes nothing.
		for _, commit := range []string{commitA, commitB} {
			for i := range desired {
				desired[i].Provenance.Commit = commit
			}
			before := st.Stats()
			cs := planStore(t, st, desired, opts)
			if n := cs.Counts(); n != (Counts{Unchanged: 4}) {
				t.Fatalf("re-plan at %s: %+v\n%s", commit[:7], n, render(cs))
			}
			rep, err := Apply(ctx, st, cs, ApplyOptions{Actor: "agent", Revision: commit})
			if err != nil {
				t.Fatal(err)
			}
			if rep.HistoryID != 0 || rep.Summary != (Summary{Counts: Counts{Unchanged: 4}}) {
				t.Errorf("no-op apply: summary %+v, history %d", rep.Summary, rep.HistoryID)
			}
			if after := st.Stats(); after.Writes != before.Writes {
				t.Errorf("no-op plan and apply wrote %d statements", after.Writes-before.Writes)
			}
		}

		// One edit is one update; the version moves once; then quiet again.
		desired[2] = f.desired("jobs/a.yaml", simpleJob("a", "tier: high"))
		cs = planStore(t, st, desired, opts)
		if n := cs.Counts(); n != (Counts{Updated: 1, Unchanged: 3}) {
			t.Fatalf("plan of one edit: %+v", n)
		}
		if _, err := Apply(ctx, st, cs, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if a := liveJobs(t, st)["a"]; a.Version != 2 || a.Hash != desired[2].Hash || a.Labels["tier"] != "high" {
			t.Errorf("a after its edit: version %d, labels %v", a.Version, a.Labels)
		}
		if cs := planStore(t, st, desired, opts); writes(cs) != 0 {
			t.Errorf("re-plan after the edit writes: %s", render(cs))
		}

		// A moved file rewrites the provenance only: no new version.
		desired[1].Provenance.Path = "deploy/moved.yaml"
		cs = planStore(t, st, desired, opts)
		if ch := byAlias(t, cs, "deploy-hook"); ch.Action != ActionUpdate || !slices.Equal(diffSummary(ch.Diff), []string{"provenance.path changed"}) {
			t.Fatalf("moved file planned as %s %v", ch.Action, diffSummary(ch.Diff))
		}
		if _, err := Apply(ctx, st, cs, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if j := liveJobs(t, st)["deploy-hook"]; j.Version != 1 || j.Provenance.Path != "deploy/moved.yaml" {
			t.Errorf("moved job: version %d path %s", j.Version, j.Provenance.Path)
		}
		if cs := planStore(t, st, desired, opts); writes(cs) != 0 {
			t.Errorf("re-plan after the move writes: %s", render(cs))
		}
	})
}

// staleWorld stores a, b, c, d for srcPlatform, then plans a revision that
// edits a, b and c, adds e and drops d; before that plan is applied, another
// writer updates b.
func staleWorld(t *testing.T, f *fixture, st *store.Store) (*Changeset, map[string]store.Job) {
	t.Helper()
	var desired []Desired
	for _, alias := range []string{"a", "b", "c", "d"} {
		desired = append(desired, f.desired("jobs/"+alias+".yaml", simpleJob(alias)))
	}
	opts := Options{SourceID: srcPlatform, Prune: true}
	sync(t, st, desired, opts)

	revision := []Desired{
		f.desired("jobs/a.yaml", simpleJob("a", "tier: high")),
		f.desired("jobs/b.yaml", simpleJob("b", "tier: high")),
		f.desired("jobs/c.yaml", simpleJob("c", "tier: high")),
		f.desired("jobs/e.yaml", simpleJob("e")),
	}
	cs := planStore(t, st, revision, opts)
	if n := cs.Counts(); n != (Counts{Created: 1, Updated: 3, Deleted: 1}) {
		t.Fatalf("plan: %+v", n)
	}

	// The other writer: b changes between Plan and Apply.
	sync(t, st, []Desired{f.desired("jobs/b.yaml", simpleJob("b", "tier: other"))}, Options{SourceID: srcPlatform})
	return cs, liveJobs(t, st)
}

func TestApplyIsolatesAStaleJob(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, f *fixture, st *store.Store) {
				cs, before := staleWorld(t, f, st)
				rep, err := Apply(t.Context(), st, cs, ApplyOptions{BatchSize: batch, Actor: "agent", Revision: commitB})
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				want := Summary{Counts: Counts{Created: 1, Updated: 2, Deleted: 1}, Failed: 1}
				if rep.Summary != want || !rep.Failed() {
					t.Errorf("summary = %+v, want %+v", rep.Summary, want)
				}
				for _, o := range rep.Outcomes {
					stale := o.Alias == "b"
					if o.Applied == stale || (o.Error != "") != stale {
						t.Errorf("%s: applied %v, error %q", o.Alias, o.Applied, o.Error)
					}
				}
				if e := outcome(t, rep, "b").Error; !strings.Contains(e, "conflict") || !strings.Contains(e, "version") {
					t.Errorf("b failed with %q, want a version conflict", e)
				}

				jobs := liveJobs(t, st)
				for _, alias := range []string{"a", "c"} {
					if jobs[alias].Labels["tier"] != "high" || jobs[alias].Version != 2 {
						t.Errorf("%s not updated: %+v", alias, jobs[alias])
					}
				}
				if b := jobs["b"]; b.Labels["tier"] != "other" || b.Hash != before["b"].Hash {
					t.Errorf("the other writer's b was overwritten: %v", b.Labels)
				}
				if _, ok := jobs["e"]; !ok {
					t.Errorf("e not created")
				}
				if _, ok := jobs["d"]; ok {
					t.Errorf("d not deleted")
				}

				rec := lastApply(t, st, srcPlatform)
				if rec.Created != 1 || rec.Updated != 2 || rec.Deleted != 1 || rec.Failed != 1 || rec.Atomic || rec.Revision != commitB || rec.Actor != "agent" {
					t.Errorf("history: %+v", rec)
				}
			})
		})
	}
}

func TestApplyAtomicAppliesNothingOnConflict(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, f *fixture, st *store.Store) {
		cs, before := staleWorld(t, f, st)
		rep, err := Apply(t.Context(), st, cs, ApplyOptions{Atomic: true, Actor: "agent"})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if want := (Summary{Failed: 5}); rep.Summary != want {
			t.Errorf("summary = %+v, want %+v", rep.Summary, want)
		}
		for _, o := range rep.Outcomes {
			if o.Applied || !strings.Contains(o.Error, "conflict") {
				t.Errorf("%s: applied %v, error %q", o.Alias, o.Applied, o.Error)
			}
		}
		after := liveJobs(t, st)
		if len(after) != len(before) {
			t.Errorf("jobs %d, before %d", len(after), len(before))
		}
		for alias, j := range before {
			if a := after[alias]; a.Hash != j.Hash || a.Version != j.Version || !a.UpdatedAt.Equal(j.UpdatedAt) {
				t.Errorf("%s changed by a failed atomic apply", alias)
			}
		}
		rec := lastApply(t, st, srcPlatform)
		if !rec.Atomic || rec.Failed != 5 || rec.Created+rec.Updated+rec.Deleted != 0 {
			t.Errorf("history: %+v", rec)
		}
	})
}

func TestApplyRecordsHistory(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, f *fixture, st *store.Store) {
		ctx := t.Context()
		sync(t, st, []Desired{f.desired("c.yaml", simpleJob("c"))}, Options{SourceID: srcData})
		sync(t, st, []Desired{f.desired("m.yaml", simpleJob("m"))}, Options{})
		sync(t, st, []Desired{
			f.desired("a.yaml", simpleJob("a")),
			f.desired("b.yaml", simpleJob("b")),
			f.desired("d.yaml", simpleJob("d")),
		}, Options{SourceID: srcPlatform})

		revision := []Desired{
			f.desired("a.yaml", simpleJob("a")),                 // unchanged
			f.desired("b.yaml", simpleJob("b", "tier: high")),   // updated
			f.desired("c.yaml", simpleJob("c")),                 // data-jobs' job
			f.desired("e.yaml", simpleJob("e")),                 // created
			f.desired("m.yaml", simpleJob("m", "tier: shared")), // a hand-applied job
		} // d: deleted
		clock := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
		now := func() time.Time { clock = clock.Add(time.Second); return clock }

		// Without force: conflicts, named in the report and counted in history.
		cs := planStore(t, st, revision, Options{SourceID: srcPlatform, Prune: true})
		rep, err := Apply(ctx, st, cs, ApplyOptions{Actor: "agent", Revision: commitA, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		rec := lastApply(t, st, srcPlatform)
		want := store.ApplyRecord{
			ID: rep.HistoryID, SourceID: srcPlatform, Revision: commitA, Actor: "agent",
			Created: 1, Updated: 1, Deleted: 1, Unchanged: 1, Conflicts: 2,
			StartedAt: time.Date(2026, 11, 27, 10, 0, 1, 0, time.UTC), FinishedAt: time.Date(2026, 11, 27, 10, 0, 2, 0, time.UTC),
		}
		if fmt.Sprintf("%+v", rec) != fmt.Sprintf("%+v", want) {
			t.Errorf("history:\n got %+v\nwant %+v", rec, want)
		}
		if !strings.Contains(outcome(t, rep, "c").Reason, `"data-jobs"`) || !strings.Contains(outcome(t, rep, "m").Reason, `"manual"`) {
			t.Errorf("conflict reasons: %q, %q", outcome(t, rep, "c").Reason, outcome(t, rep, "m").Reason)
		}

		// With force: both transferred, and the transfers recorded.
		cs = planStore(t, st, revision, Options{SourceID: srcPlatform, Prune: true, Force: true})
		rep, err = Apply(ctx, st, cs, ApplyOptions{Actor: "alice", Revision: commitA, Force: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		rec = lastApply(t, st, srcPlatform)
		wantXfers := []store.OwnershipTransfer{{Alias: "c", From: srcData, To: srcPlatform}, {Alias: "m", From: ManualSource, To: srcPlatform}}
		if !slices.Equal(rec.Transfers, wantXfers) || !rec.Force || rec.Updated != 2 || rec.Unchanged != 3 || rec.ID != rep.HistoryID {
			t.Errorf("forced apply history: %+v", rec)
		}
		jobs := liveJobs(t, st)
		if jobs["c"].Provenance.SourceID != srcPlatform || jobs["m"].Provenance.SourceID != srcPlatform || jobs["m"].Labels["tier"] != "shared" {
			t.Errorf("after transfer: c %+v, m %+v", jobs["c"].Provenance, jobs["m"])
		}
		if jobs["c"].Version != 1 {
			t.Errorf("a transfer of an unchanged spec made version %d", jobs["c"].Version)
		}

		// A refused prune is recorded even though nothing was written.
		before := st.Stats()
		cs = planStore(t, st, nil, Options{SourceID: srcPlatform, Prune: true})
		rep, err = Apply(ctx, st, cs, ApplyOptions{Actor: "agent", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		rec = lastApply(t, st, srcPlatform)
		if !rep.Failed() || rec.PruneRefused == "" || rec.PruneRefused != rep.PruneRefused || rec.Deleted != 0 {
			t.Errorf("refused prune: report %q, history %+v", rep.PruneRefused, rec)
		}
		if n := st.Stats().Writes - before.Writes; n != 1 {
			t.Errorf("a refused prune wrote %d statements, want 1 (the history)", n)
		}
		if len(liveJobs(t, st)) != 5 {
			t.Errorf("a refused prune deleted jobs")
		}
	})
}

// failing is a real store that becomes unreachable after some calls.
type failing struct {
	*store.Store
	okCalls atomic.Int32 // ApplyChanges calls that go through
}

func (s *failing) ApplyChanges(ctx context.Context, changes []store.Change) ([]store.Job, error) {
	if s.okCalls.Add(-1) < 0 {
		return nil, fmt.Errorf("apply changes: %w: connection reset", store.ErrUnavailable)
	}
	return s.Store.ApplyChanges(ctx, changes)
}

func TestApplyUnreachableStore(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, f *fixture, st *store.Store) {
		var desired []Desired
		for i := range 5 {
			alias := fmt.Sprintf("u-%d", i)
			desired = append(desired, f.desired(alias+".yaml", simpleJob(alias)))
		}
		cs := planStore(t, st, desired, Options{SourceID: srcPlatform})

		t.Run("closed", func(t *testing.T) {
			other := storetest.Open(t, st.Dialect())
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Apply(t.Context(), other, cs, ApplyOptions{})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if rep == nil || rep.Summary.Failed != 5 || !rep.Failed() {
				t.Fatalf("report = %+v", rep)
			}
			for _, o := range rep.Outcomes {
				if o.Applied || o.Error == "" {
					t.Errorf("%s: applied %v, error %q", o.Alias, o.Applied, o.Error)
				}
			}
		})

		t.Run("lost after the first batch", func(t *testing.T) {
			fs := &failing{Store: st}
			fs.okCalls.Store(1)
			rep, err := Apply(t.Context(), fs, cs, ApplyOptions{BatchSize: 2})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			// The first batch is in; the rest failed, each saying why.
			if rep.Summary != (Summary{Counts: Counts{Created: 2}, Failed: 3}) {
				t.Errorf("summary = %+v", rep.Summary)
			}
			for _, o := range rep.Outcomes {
				if !o.Applied && !strings.Contains(o.Error, "unavailable") {
					t.Errorf("%s: not applied, error %q", o.Alias, o.Error)
				}
			}
			rec := lastApply(t, st, srcPlatform)
			if rec.ID != rep.HistoryID || rec.Created != 2 || rec.Failed != 3 || !strings.Contains(rec.Error, "unavailable") {
				t.Errorf("history: %+v", rec)
			}
			if n := len(liveJobs(t, st)); n != 2 {
				t.Errorf("%d jobs stored, want 2", n)
			}
		})
	})
}

func TestApplyCancelled(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, f *fixture, st *store.Store) {
		cs := planStore(t, st, []Desired{f.desired("x.yaml", simpleJob("x"))}, Options{SourceID: srcPlatform})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		rep, err := Apply(ctx, st, cs, ApplyOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if rep.Summary.Failed != 1 {
			t.Errorf("summary = %+v", rep.Summary)
		}
		// The history is written even so.
		if rec := lastApply(t, st, srcPlatform); rec.Failed != 1 || rec.Error == "" || rec.ID != rep.HistoryID {
			t.Errorf("history: %+v", rec)
		}
	})
}

// seedStore writes a world's actual jobs, soft-deleted rows included, through
// the store, in ID order (an alias's deleted row before its live one).
func seedStore(t *testing.T, st *store.Store, actual []store.Job) {
	t.Helper()
	rows := slices.Clone(actual)
	slices.SortFunc(rows, func(a, b store.Job) int { return int(a.ID - b.ID) })
	for _, a := range rows {
		j, err := a.Decode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.ApplyChanges(t.Context(), []store.Change{{Op: store.OpCreate, Alias: a.Alias, Job: j, Hash: a.Hash, Provenance: a.Provenance}})
		if err != nil {
			t.Fatalf("seed %s: %v", a.Alias, err)
		}
		if a.DeletedAt != nil {
			if _, err := st.ApplyChanges(t.Context(), []store.Change{{Op: store.OpDelete, Alias: a.Alias, ID: got[0].ID, Version: got[0].Version}}); err != nil {
				t.Fatalf("seed delete %s: %v", a.Alias, err)
			}
		}
	}
}

// The store does with a changeset what applyToModel says, so the idempotence
// property proven on the model holds on the databases.
func TestPropertyApplyMatchesModel(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, _ *fixture, _ *store.Store) {
		trial(t, max(*worlds/10, 3), func(t *testing.T, g *gen) {
			st := storetest.Open(t, strings.Split(t.Name(), "/")[1])
			w := newWorld(t, g)
			seedStore(t, st, w.actual)
			actual, err := st.ListJobs(t.Context(), store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cs, err := Plan(w.desired, actual, w.opts)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Apply(t.Context(), st, cs, ApplyOptions{BatchSize: 1 + g.r.IntN(10), Atomic: g.chance(0.3)})
			if err != nil || rep.Summary.Failed > 0 {
				t.Fatalf("Apply: %v %+v", err, rep.Summary)
			}
			key := func(j store.Job) string {
				return fmt.Sprintf("%s v%d %s %+v %v", j.Alias, j.Version, j.Hash, j.Provenance, j.Labels)
			}
			var want, got []string
			for _, j := range applyToModel(actual, cs) {
				if j.DeletedAt == nil {
					want = append(want, key(j))
				}
			}
			after, err := st.ListJobs(t.Context(), store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range after {
				got = append(got, key(j))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("store after apply:\n  %s\nmodel:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			before := st.Stats()
			again, err := Plan(w.desired, after, w.opts)
			if err != nil {
				t.Fatal(err)
			}
			if writes(again) != 0 {
				t.Errorf("re-plan writes:\n%s", render(again))
			}
			if _, err := Apply(t.Context(), st, again, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if n := st.Stats().Writes - before.Writes; n > 1 {
				t.Errorf("re-apply wrote %d statements (at most the history of conflicts or a refused prune)", n)
			}
		})
	})
}

func TestPreview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cs, err := Plan(
		[]Desired{f.desired("a.yaml", simpleJob("a")), f.desired("b.yaml", simpleJob("b", "tier: high")), f.desired("c.yaml", simpleJob("c"))},
		[]store.Job{f.actual(srcPlatform, "b.yaml", simpleJob("b")), f.actual(srcData, "c.yaml", simpleJob("c")), f.actual(srcPlatform, "d.yaml", simpleJob("d"))},
		Options{SourceID: srcPlatform, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := Preview(cs)
	if want := (Summary{Counts: Counts{Created: 1, Updated: 1, Deleted: 1, Conflicts: 1}}); rep.Summary != want {
		t.Errorf("summary = %+v, want %+v", rep.Summary, want)
	}
	if len(rep.Outcomes) != len(cs.Changes) || rep.SourceID != srcPlatform || rep.HistoryID != 0 {
		t.Errorf("report = %+v", rep)
	}
	for i, o := range rep.Outcomes {
		if o.Applied || o.Error != "" || o.Alias != cs.Changes[i].Alias || o.Action != cs.Changes[i].Action {
			t.Errorf("outcome %d = %+v", i, o)
		}
	}
}
