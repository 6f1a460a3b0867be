package reconcile

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

var (
	seed   = flag.Uint64("seed", 1, "first seed of the property tests; try -seed=$RANDOM to explore")
	trials = flag.Int("trials", 300, "random cases per property test of one job")
	worlds = flag.Int("worlds", 100, "random states and revisions per property test of whole plans")
)

// normalize writes a job as written to JSON (which is YAML) and parses it
// with schema.Parse, failing the test when the generator made an invalid job.
func (f *fixture) normalize(raw *schema.Job) *schema.Job {
	f.t.Helper()
	b, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		f.t.Fatal(err)
	}
	return f.job(string(b))
}

// trial runs body n times, on seeds from -seed on, naming the seed that fails.
func trial(t *testing.T, n int, body func(t *testing.T, g *gen)) {
	t.Helper()
	for i := range n {
		s := *seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			body(t, newGen(s))
		})
		if t.Failed() {
			t.Logf("reproduce with: go test ./reconcile -run '%s/seed=%d$' -seed=%d", t.Name(), s, *seed)
			return
		}
	}
}

// world is a random actual state and a random revision to plan against it.
type world struct {
	actual  []store.Job
	desired []Desired
	opts    Options
}

var sources = []string{srcPlatform, srcData, ManualSource}

// newWorld draws jobs owned by several sources and by hand, some soft
// deleted, some protected from pruning, and a revision of one source that
// keeps, edits, moves, drops and adds jobs.
func newWorld(t *testing.T, g *gen) world {
	f := setup(t)
	var w world
	w.opts = Options{
		SourceID:   pick(g, srcPlatform, srcPlatform, srcData, ""),
		Force:      g.chance(0.3),
		Prune:      g.chance(0.7),
		AllowEmpty: g.chance(0.3),
	}
	if g.chance(0.3) {
		w.opts.MaxDeletions = 1 + g.r.IntN(5)
	}
	empty := g.chance(0.1)
	var id int64
	deletedAt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := 1 + g.r.IntN(30)
	owner := func() string { return pick(g, sources...) }
	if g.chance(0.2) {
		// Large enough for the default limit to be a quarter of the source,
		// mostly of the planning source.
		n = 40 + g.r.IntN(40)
		owner = func() string {
			if g.chance(0.8) {
				return cmpOr(w.opts.SourceID, ManualSource)
			}
			return pick(g, sources...)
		}
	}
	for i := range n {
		alias := fmt.Sprintf("job-%02d", i)
		raw := g.job(alias)
		if g.chance(0.15) {
			if raw.Metadata.Labels == nil {
				raw.Metadata.Labels = map[string]string{}
			}
			raw.Metadata.Labels[schema.PruneLabel] = schema.PruneDisabled
		}
		path := "jobs/" + alias + ".yaml"
		if g.chance(0.2) {
			// An old row of the alias, soft-deleted.
			id++
			a := f.actualJob(f.normalize(g.job(alias)), prov(pick(g, sources...), path, commitA))
			a.ID, a.DeletedAt = id, &deletedAt
			w.actual = append(w.actual, a)
		}
		live := g.chance(0.8)
		if live {
			id++
			a := f.actualJob(f.normalize(raw), prov(owner(), path, pick(g, commitA, commitB)))
			a.ID = id
			w.actual = append(w.actual, a)
		}
		if empty {
			continue
		}
		switch k := g.r.IntN(10); {
		case k < 3: // not declared: a prune candidate if owned
		case k < 6: // declared as stored
			w.desired = append(w.desired, f.desiredJob(f.normalize(raw), prov("", path, commitB)))
		case k < 8: // declared with an edit
			edited, _ := g.mutate(raw)
			w.desired = append(w.desired, f.desiredJob(f.normalize(edited), prov("", path, commitB)))
		default: // declared, moved to another file
			w.desired = append(w.desired, f.desiredJob(f.normalize(raw), prov("", "moved/"+path, commitB)))
		}
	}
	if !empty {
		for i := range g.r.IntN(4) {
			alias := fmt.Sprintf("new-%02d", i)
			w.desired = append(w.desired, f.desiredJob(f.normalize(g.job(alias)), prov("", "jobs/"+alias+".yaml", commitB)))
		}
	}
	g.r.Shuffle(len(w.actual), func(a, b int) { w.actual[a], w.actual[b] = w.actual[b], w.actual[a] })
	g.r.Shuffle(len(w.desired), func(a, b int) { w.desired[a], w.desired[b] = w.desired[b], w.desired[a] })
	return w
}

// applyToModel is what a correct store does with a changeset: a pure
// function from the actual state to the next one.
func applyToModel(actual []store.Job, cs *Changeset) []store.Job {
	next := slices.Clone(actual)
	var maxID int64
	live := map[string]int{}
	for i, a := range next {
		maxID = max(maxID, a.ID)
		if a.DeletedAt == nil {
			live[a.Alias] = i
		}
	}
	deletedAt := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, ch := range cs.Changes {
		switch ch.Action {
		case ActionCreate:
			maxID++
			d := ch.Desired
			next = append(next, store.Job{
				ID: maxID, Alias: ch.Alias, Version: 1, Hash: d.Hash, Spec: d.Spec,
				Labels: d.Job.Metadata.Labels, Annotations: d.Job.Metadata.Annotations, Provenance: d.Provenance,
			})
		case ActionUpdate:
			i := live[ch.Alias]
			a, d := next[i], ch.Desired
			if a.Hash != d.Hash {
				a.Version++
			}
			a.Hash, a.Spec, a.Provenance = d.Hash, d.Spec, d.Provenance
			a.Labels, a.Annotations = d.Job.Metadata.Labels, d.Job.Metadata.Annotations
			next[i] = a
		case ActionDelete:
			next[live[ch.Alias]].DeletedAt = &deletedAt
		}
	}
	return next
}

// render is a changeset in a form two plans can be compared by.
func render(cs *Changeset) string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s refused %q candidates %d\n", cs.SourceID, cs.PruneRefused, cs.PruneCandidates)
	for _, ch := range cs.Changes {
		fmt.Fprintf(&b, "%s %s %v %q %+v\n", ch.Action, ch.Alias, diffSummary(ch.Diff), ch.Reason, ch.Transfer)
	}
	return b.String()
}

// Planning the result of applying a plan yields no changes, and a plan does
// not depend on the order of its inputs.
func TestPropertyIdempotent(t *testing.T) {
	t.Parallel()
	trial(t, *worlds, func(t *testing.T, g *gen) {
		w := newWorld(t, g)
		cs, err := Plan(w.desired, w.actual, w.opts)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		next := applyToModel(w.actual, cs)
		again, err := Plan(w.desired, next, w.opts)
		if err != nil {
			t.Fatalf("re-plan: %v", err)
		}
		if writes(again) != 0 {
			t.Errorf("re-plan after apply writes %+v\nfirst plan:\n%s\nre-plan:\n%s", again.Counts(), render(cs), render(again))
		}
		if got, want := again.Counts().Conflicts, cs.Counts().Conflicts; got != want {
			t.Errorf("re-plan has %d conflicts, the plan %d", got, want)
		}
		if again.PruneRefused != "" && cs.PruneRefused == "" {
			t.Errorf("re-plan refuses a prune the plan did not: %s", again.PruneRefused)
		}

		// The same inputs in another order give the same plan.
		desired, actual := slices.Clone(w.desired), slices.Clone(w.actual)
		slices.Reverse(desired)
		slices.Reverse(actual)
		shuffled, err := Plan(desired, actual, w.opts)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := render(cs), render(shuffled); a != b {
			t.Errorf("plan depends on input order:\n%s\nreversed:\n%s", a, b)
		}
	})
}

// Plan never deletes a job of another source, a hand-applied job, a job
// still declared or a protected job; and a refused prune deletes nothing.
func TestPropertyPruneSafety(t *testing.T) {
	t.Parallel()
	trial(t, *worlds, func(t *testing.T, g *gen) {
		w := newWorld(t, g)
		cs, err := Plan(w.desired, w.actual, w.opts)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		declared := map[string]bool{}
		for _, d := range w.desired {
			declared[d.Job.Metadata.Alias] = true
		}
		var deletes int
		for _, ch := range cs.Changes {
			if ch.Action != ActionDelete {
				continue
			}
			deletes++
			a := ch.Actual
			switch {
			case !w.opts.Prune:
				t.Errorf("%s deleted without prune", ch.Alias)
			case a == nil || a.DeletedAt != nil:
				t.Errorf("%s: delete of no live row: %+v", ch.Alias, a)
			case a.Provenance.SourceID != cs.SourceID:
				t.Errorf("%s of source %q deleted by source %q", ch.Alias, a.Provenance.SourceID, cs.SourceID)
			case a.Provenance.SourceID == ManualSource:
				t.Errorf("%s: hand-applied job deleted", ch.Alias)
			case a.Labels[schema.PruneLabel] == schema.PruneDisabled:
				t.Errorf("%s: protected job deleted", ch.Alias)
			case declared[ch.Alias]:
				t.Errorf("%s: declared job deleted", ch.Alias)
			}
		}
		if deletes > 0 && cs.PruneRefused != "" {
			t.Errorf("prune refused (%s) but %d deletes planned", cs.PruneRefused, deletes)
		}
		if deletes > 0 && len(w.desired) == 0 && !w.opts.AllowEmpty {
			t.Errorf("%d deletes for an empty revision without allowEmpty", deletes)
		}
		if w.opts.MaxDeletions > 0 && deletes > w.opts.MaxDeletions && !w.opts.Force {
			t.Errorf("%d deletes over maxDeletions %d", deletes, w.opts.MaxDeletions)
		}
	})
}

// A job whose spec and provenance are those stored is unchanged, whatever
// the commit and however the options are set.
func TestPropertyIdenticalIsUnchanged(t *testing.T) {
	t.Parallel()
	trial(t, *trials, func(t *testing.T, g *gen) {
		f := setup(t)
		raw := g.job("same")
		owner := pick(g, srcPlatform, srcData, ManualSource)
		path := pick(g, "same.yaml", "deep/dir/same.yaml")
		// Parsed twice: normalization must be deterministic too.
		actual := f.actualJob(f.normalize(raw), prov(owner, path, commitA))
		d := f.desiredJob(f.normalize(cloneRaw(raw)), prov(owner, path, pick(g, commitA, commitB)))
		opts := Options{SourceID: owner, Force: g.chance(0.5), Prune: g.chance(0.5), AllowEmpty: g.chance(0.5)}
		if owner == ManualSource && g.chance(0.5) {
			opts.SourceID = ""
		}
		cs, err := Plan([]Desired{d}, []store.Job{actual}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Changes) != 1 || cs.Changes[0].Action != ActionUnchanged || cs.Changes[0].Diff != nil || writes(cs) != 0 {
			t.Errorf("identical job planned as:\n%s", render(cs))
		}
	})
}

// DiffSpecs lists nothing exactly when the canonical specs are equal, and
// the same fields in both directions.
func TestPropertyDiffEmptyIffEqual(t *testing.T) {
	t.Parallel()
	var equal, different int
	trial(t, *trials, func(t *testing.T, g *gen) {
		f := setup(t)
		raw := g.job("diffed")
		edited := raw
		var edits []string
		for range 1 + g.r.IntN(3) {
			var what string
			edited, what = g.mutate(edited)
			edits = append(edits, what)
		}
		a, b := f.normalize(raw), f.normalize(edited)
		aSpec, err := a.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		bSpec, err := b.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		diff, err := DiffSpecs(aSpec, bSpec)
		if err != nil {
			t.Fatal(err)
		}
		same := bytes.Equal(aSpec, bSpec)
		if same {
			equal++
		} else {
			different++
		}
		if (len(diff) == 0) != same {
			t.Errorf("edits %v: canonical JSON equal %v, diff %v\n%s\n%s", edits, same, diffSummary(diff), aSpec, bSpec)
		}
		if (a.Hash() == b.Hash()) != same {
			t.Errorf("edits %v: hash equality disagrees with spec equality", edits)
		}
		back, err := DiffSpecs(bSpec, aSpec)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := flipped(back), sortedSummary(diff); !slices.Equal(got, want) {
			t.Errorf("edits %v: reverse diff %v, want %v", edits, got, want)
		}
		if self, _ := DiffSpecs(aSpec, aSpec); len(self) != 0 {
			t.Errorf("a spec differs from itself: %v", diffSummary(self))
		}
	})
	// The generator must produce both outcomes, or the property says little.
	if !t.Failed() && (equal == 0 || different < *trials/2) {
		t.Errorf("generator made %d equal and %d different pairs", equal, different)
	}
}

// The generator's jobs are valid and varied: a guard against a generator
// that quietly makes only trivial jobs.
func TestGeneratorCoverage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	g := newGen(*seed)
	seen := map[string]bool{}
	for i := range 200 {
		j := f.normalize(g.job(fmt.Sprintf("cov-%d", i)))
		seen["trigger "+j.Trigger.Type] = true
		seen[fmt.Sprintf("steps %d", min(len(j.Steps), 3))] = true
		if len(j.Callbacks) > 0 {
			seen["callbacks"] = true
		}
		if len(j.Metadata.Labels) > 0 {
			seen["labels"] = true
		}
		for _, s := range j.Steps {
			seen["engine "+s.Engine] = true
			if len(s.Next) > 0 {
				seen["next"] = true
			}
			if len(s.DependsOn) > 0 {
				seen["dependsOn"] = true
			}
			for _, v := range s.Env {
				if schema.IsSecretRef(v) {
					seen["secret env"] = true
				}
			}
		}
	}
	for _, want := range []string{"trigger manual", "trigger cron", "trigger http", "steps 1", "steps 2", "steps 3", "callbacks", "labels",
		"engine docker", "engine podman", "engine kubernetes", "engine local", "next", "dependsOn", "secret env"} {
		if !seen[want] {
			t.Errorf("generator never made a job with %s", want)
		}
	}
}
