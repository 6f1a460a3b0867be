package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestConformance runs one suite against every backend, each case on a
// database of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(t *testing.T, backend string)
	}{
		{"OpenTwice", testOpenTwice},
		{"OpenConcurrently", testOpenConcurrently},
		{"CreateGetList", testCreateGetList},
		{"UpdateBumpsVersion", testUpdateBumpsVersion},
		{"ProvenanceOnlyUpdate", testProvenanceOnlyUpdate},
		{"UnchangedUpdateWritesNothing", testUnchangedUpdateWritesNothing},
		{"StaleVersionRollsBackAll", testStaleVersionRollsBackAll},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"CreateLiveAliasConflicts", testCreateLiveAliasConflicts},
		{"SoftDelete", testSoftDelete},
		{"RecreateAfterDelete", testRecreateAfterDelete},
		{"DeleteAndCreateInOneCall", testDeleteAndCreateInOneCall},
		{"PurgeDeleted", testPurgeDeleted},
		{"ManyJobs", testManyJobs},
		{"InvalidChanges", testInvalidChanges},
		{"NotFound", testNotFound},
		{"ApplyHistory", testApplyHistory},
		{"Sources", testSources},
		{"Stats", testStats},
		{"ClosedStore", testClosedStore},
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

// fixture is what most cases start from.
type fixture struct {
	ctx   context.Context
	s     *store.Store
	clock *clock
}

func setup(t *testing.T, backend string) fixture {
	t.Helper()
	c := newClock()
	return fixture{
		ctx:   t.Context(),
		s:     storetest.OpenOptions(t, backend, store.Options{Now: c.Now}),
		clock: c,
	}
}

// apply runs ApplyChanges and fails the test on error.
func (f fixture) apply(t *testing.T, changes ...store.Change) []store.Job {
	t.Helper()
	out, err := f.s.ApplyChanges(f.ctx, changes)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if len(out) != len(changes) {
		t.Fatalf("ApplyChanges returned %d jobs for %d changes", len(out), len(changes))
	}
	return out
}

func (f fixture) get(t *testing.T, alias string) store.Job {
	t.Helper()
	j, err := f.s.GetJob(f.ctx, alias)
	if err != nil {
		t.Fatalf("GetJob(%s): %v", alias, err)
	}
	return j
}

func (f fixture) list(t *testing.T, opts store.ListOptions) []store.Job {
	t.Helper()
	jobs, err := f.s.ListJobs(f.ctx, opts)
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	return jobs
}

func (f fixture) children(t *testing.T, id int64) store.Children {
	t.Helper()
	c, err := f.s.JobChildren(f.ctx, id)
	if err != nil {
		t.Fatalf("JobChildren(%d): %v", id, err)
	}
	return c
}

func aliases(jobs []store.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.Alias
	}
	return out
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func testOpenTwice(t *testing.T, backend string) {
	ctx := t.Context()
	u := storetest.URL(t, backend)
	s1, err := store.Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	j := genJob("nightly-etl", 1)
	if _, err := s1.ApplyChanges(ctx, []store.Change{create(j, provenance("git-main", "c1"))}); err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	var logs bytes.Buffer
	s2, err := store.Open(ctx, u, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s2.Close()
	if !strings.Contains(logs.String(), "migrations_applied=0") {
		t.Errorf("second Open logged %q, want migrations_applied=0", logs.String())
	}
	got, err := s2.GetJob(ctx, "nightly-etl")
	if err != nil {
		t.Fatalf("GetJob after reopen: %v", err)
	}
	if got.Hash != j.Hash() {
		t.Errorf("hash after reopen = %s, want %s", got.Hash, j.Hash())
	}
	if s2.Dialect() != backend {
		t.Errorf("Dialect() = %q, want %q", s2.Dialect(), backend)
	}
	if err := s2.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// testOpenConcurrently starts two stores on one new database at once: the
// migrations run once and neither fails.
func testOpenConcurrently(t *testing.T, backend string) {
	ctx := t.Context()
	u := storetest.URL(t, backend)
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*store.Store, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = store.Open(ctx, u, store.Options{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	out, err := stores[0].ApplyChanges(ctx, []store.Change{create(smallJob("ci"), provenance("git", "c1"))})
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if _, err := stores[n-1].GetJob(ctx, "ci"); err != nil {
		t.Fatalf("GetJob on the other store: %v", err)
	}
	_ = out
}

func testCreateGetList(t *testing.T, backend string) {
	f := setup(t, backend)
	etl, ci := genJob("nightly-etl", 1), smallJob("ci")
	now := f.clock.Now().UTC().Truncate(time.Microsecond)
	out := f.apply(t,
		create(etl, provenance("git-main", "c1")),
		create(ci, store.Provenance{SourceID: "manual"}),
	)

	got := out[0]
	spec, err := etl.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := store.Job{
		ID:          got.ID,
		Alias:       "nightly-etl",
		Version:     1,
		Hash:        etl.Hash(),
		Spec:        spec,
		Labels:      map[string]string{"team": "data-platform", "tier": "batch"},
		Annotations: etl.Metadata.Annotations,
		Provenance:  provenance("git-main", "c1"),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if got.ID <= 0 {
		t.Errorf("ID = %d, want > 0", got.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ApplyChanges returned\n%+v\nwant\n%+v", got, want)
	}
	if fetched := f.get(t, "nightly-etl"); !reflect.DeepEqual(fetched, want) {
		t.Errorf("GetJob returned\n%+v\nwant\n%+v", fetched, want)
	}
	if out[1].Labels != nil || out[1].Annotations != nil {
		t.Errorf("job without labels: Labels=%v Annotations=%v, want nil", out[1].Labels, out[1].Annotations)
	}

	decoded, err := f.get(t, "nightly-etl").Decode()
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if decoded.Hash() != etl.Hash() {
		t.Errorf("decoded spec hash = %s, want %s", decoded.Hash(), etl.Hash())
	}

	all := f.list(t, store.ListOptions{})
	if got, want := aliases(all), []string{"ci", "nightly-etl"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListJobs aliases = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(all[1], want) {
		t.Errorf("ListJobs job =\n%+v\nwant\n%+v", all[1], want)
	}
	bySource := f.list(t, store.ListOptions{SourceID: "git-main"})
	if got, want := aliases(bySource), []string{"nightly-etl"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListJobs(SourceID=git-main) = %v, want %v", got, want)
	}
	for _, j := range f.list(t, store.ListOptions{OmitSpec: true}) {
		if j.Spec != nil || j.Hash == "" {
			t.Errorf("ListJobs(OmitSpec) %s: Spec=%q Hash=%q, want no spec and a hash", j.Alias, j.Spec, j.Hash)
		}
	}

	c := f.children(t, got.ID)
	if c.Trigger.Type != schema.TriggerCron {
		t.Errorf("trigger type = %q, want cron", c.Trigger.Type)
	}
	var config schema.TriggerConfiguration
	if err := json.Unmarshal(c.Trigger.Configuration, &config); err != nil || config.Expression != "*/15 * * * *" {
		t.Errorf("trigger configuration = %s (%v)", c.Trigger.Configuration, err)
	}
	if len(c.Tasks) != 4 || len(c.Edges) != 4 || len(c.Callbacks) != 1 {
		t.Fatalf("children: %d tasks, %d edges, %d callbacks; want 4, 4, 1", len(c.Tasks), len(c.Edges), len(c.Callbacks))
	}
	extract := c.Tasks[0]
	wantTask := store.Task{
		ID: extract.ID, Name: "extract", Position: 0, Engine: schema.EngineDocker, Image: "ghcr.io/acme/extract:1.1.0",
		Command: []string{"extract", "--since", "24h", "--out", "/data/raw"},
		Env:     map[string]string{"DB_URL": "secret://vault/kv/data/warehouse#url", "LOG_LEVEL": "info"},
		Workdir: "/data", Retries: 2, RetryDelay: 30 * time.Second, Timeout: 30 * time.Minute,
		TriggerRule: schema.RuleAllSuccess,
	}
	if !reflect.DeepEqual(extract, wantTask) {
		t.Errorf("task = %+v, want %+v", extract, wantTask)
	}
	ids := map[string]int64{}
	for _, task := range c.Tasks {
		ids[task.Name] = task.ID
	}
	wantEdges := map[store.TaskEdge]bool{
		{FromTaskID: ids["extract"], ToTaskID: ids["transform-orders"]}: true,
		{FromTaskID: ids["extract"], ToTaskID: ids["transform-users"]}:  true,
		{FromTaskID: ids["transform-orders"], ToTaskID: ids["load"]}:    true,
		{FromTaskID: ids["transform-users"], ToTaskID: ids["load"]}:     true,
	}
	for _, e := range c.Edges {
		if !wantEdges[e] {
			t.Errorf("unexpected edge %+v (task ids %v)", e, ids)
		}
	}
	wantCallback := store.Callback{
		Position: 0, Type: schema.CallbackWebhook, URL: "https://hooks.example.com/caesium/nightly-etl",
		On: []string{schema.OnSuccess, schema.OnFailure}, Headers: map[string]string{"Authorization": "secret://env/HOOK_TOKEN"},
	}
	if !reflect.DeepEqual(c.Callbacks[0], wantCallback) {
		t.Errorf("callback = %+v, want %+v", c.Callbacks[0], wantCallback)
	}
}

func testUpdateBumpsVersion(t *testing.T, backend string) {
	f := setup(t, backend)
	v1 := genJob("nightly-etl", 1)
	created := f.apply(t, create(v1, provenance("git-main", "c1")))[0]
	before := f.children(t, created.ID)

	f.clock.Advance(time.Minute)
	// A different shape: fewer steps, no callbacks, a manual trigger.
	v2 := smallJob("nightly-etl")
	updated := f.apply(t, update(created, v2, provenance("git-main", "c2")))[0]
	if updated.ID != created.ID || updated.Version != 2 || updated.Hash != v2.Hash() {
		t.Errorf("after update: id %d version %d hash %s; want id %d version 2 hash %s",
			updated.ID, updated.Version, updated.Hash, created.ID, v2.Hash())
	}
	if !updated.CreatedAt.Equal(created.CreatedAt) || !updated.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("times after update: created %v updated %v; want created %v and a later update",
			updated.CreatedAt, updated.UpdatedAt, created.CreatedAt)
	}
	if updated.Labels != nil {
		t.Errorf("labels after update = %v, want none (the new spec has none)", updated.Labels)
	}
	if got := f.get(t, "nightly-etl"); !reflect.DeepEqual(got, updated) {
		t.Errorf("GetJob after update =\n%+v\nwant\n%+v", got, updated)
	}

	after := f.children(t, created.ID)
	if len(after.Tasks) != 2 || len(after.Edges) != 1 || len(after.Callbacks) != 0 || after.Trigger.Type != schema.TriggerManual {
		t.Errorf("children after update: %d tasks, %d edges, %d callbacks, trigger %s; want 2, 1, 0, manual",
			len(after.Tasks), len(after.Edges), len(after.Callbacks), after.Trigger.Type)
	}
	for _, old := range before.Tasks {
		for _, cur := range after.Tasks {
			if old.ID == cur.ID {
				t.Errorf("task %s kept id %d: child rows were not replaced", cur.Name, cur.ID)
			}
		}
	}

	for _, tc := range []struct {
		version int64
		job     *schema.Job
		commit  string
	}{{1, v1, "c1"}, {2, v2, "c2"}} {
		got, err := f.s.GetJobVersion(f.ctx, created.ID, tc.version)
		if err != nil {
			t.Fatalf("GetJobVersion(%d): %v", tc.version, err)
		}
		want, _ := tc.job.CanonicalJSON()
		if got.Version != tc.version || got.Hash != tc.job.Hash() || !bytes.Equal(got.Spec, want) || got.Provenance.Commit != tc.commit {
			t.Errorf("GetJobVersion(%d) = version %d hash %s commit %s; want version %d hash %s commit %s",
				tc.version, got.Version, got.Hash, got.Provenance.Commit, tc.version, tc.job.Hash(), tc.commit)
		}
	}
	v1Job, _ := f.s.GetJobVersion(f.ctx, created.ID, 1)
	if !reflect.DeepEqual(v1Job.Labels, v1.Metadata.Labels) {
		t.Errorf("GetJobVersion(1) labels = %v, want the version's %v", v1Job.Labels, v1.Metadata.Labels)
	}

	// And back again: version 3, children of the big shape.
	v3 := genJob("nightly-etl", 3)
	third := f.apply(t, update(updated, v3, provenance("git-main", "c3")))[0]
	if third.Version != 3 {
		t.Errorf("third version = %d, want 3", third.Version)
	}
	if c := f.children(t, created.ID); len(c.Tasks) != 4 || len(c.Edges) != 4 || len(c.Callbacks) != 1 {
		t.Errorf("children after third update: %d tasks, %d edges, %d callbacks; want 4, 4, 1",
			len(c.Tasks), len(c.Edges), len(c.Callbacks))
	}
}

func testProvenanceOnlyUpdate(t *testing.T, backend string) {
	f := setup(t, backend)
	j := genJob("nightly-etl", 1)
	created := f.apply(t, create(j, provenance("git-main", "c1")))[0]
	tasks := f.children(t, created.ID).Tasks

	f.clock.Advance(time.Minute)
	moved := store.Provenance{SourceID: "git-other", Repo: "https://git.example.com/acme/other.git", Commit: "d9", Path: "moved/etl.yaml"}
	before := f.s.Stats()
	got := f.apply(t, update(created, j, moved))[0]
	writes := f.s.Stats().Writes - before.Writes
	if got.Version != 1 || got.Provenance != moved || !got.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("after provenance update: version %d provenance %+v updated %v; want version 1, %+v, later than %v",
			got.Version, got.Provenance, got.UpdatedAt, moved, created.UpdatedAt)
	}
	if writes != 1 {
		t.Errorf("provenance update wrote %d statements, want 1 (the job row)", writes)
	}
	if fetched := f.get(t, "nightly-etl"); !reflect.DeepEqual(fetched, got) {
		t.Errorf("GetJob =\n%+v\nwant\n%+v", fetched, got)
	}
	if _, err := f.s.GetJobVersion(f.ctx, created.ID, 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetJobVersion(2) error = %v, want ErrNotFound (no version row)", err)
	}
	if v1, err := f.s.GetJobVersion(f.ctx, created.ID, 1); err != nil || v1.Provenance.Commit != "c1" {
		t.Errorf("GetJobVersion(1) commit = %q (%v), want c1", v1.Provenance.Commit, err)
	}
	if after := f.children(t, created.ID).Tasks; !reflect.DeepEqual(after, tasks) {
		t.Errorf("tasks changed on a provenance-only update")
	}
	if got := aliases(f.list(t, store.ListOptions{SourceID: "git-other"})); !reflect.DeepEqual(got, []string{"nightly-etl"}) {
		t.Errorf("ListJobs(SourceID=git-other) = %v, want the moved job", got)
	}
}

func testUnchangedUpdateWritesNothing(t *testing.T, backend string) {
	f := setup(t, backend)
	j := genJob("nightly-etl", 1)
	created := f.apply(t, create(j, provenance("git-main", "c1")))[0]
	f.clock.Advance(time.Minute)
	before := f.s.Stats()
	got := f.apply(t, update(created, j, provenance("git-main", "c1")))[0]
	if w := f.s.Stats().Writes - before.Writes; w != 0 {
		t.Errorf("unchanged update wrote %d statements, want 0", w)
	}
	if !reflect.DeepEqual(got, created) {
		t.Errorf("unchanged update returned\n%+v\nwant\n%+v", got, created)
	}
}

// testStaleVersionRollsBackAll: one stale change fails the whole call, and
// the database is exactly as it was.
func testStaleVersionRollsBackAll(t *testing.T, backend string) {
	f := setup(t, backend)
	out := f.apply(t,
		create(genJob("a", 1), provenance("git", "c1")),
		create(genJob("b", 1), provenance("git", "c1")),
		create(genJob("c", 1), provenance("git", "c1")),
	)
	a, b, c := out[0], out[1], out[2]
	// c moves on behind the plan's back.
	cNow := f.apply(t, update(c, genJob("c", 2), provenance("git", "c2")))[0]
	snapshot := f.list(t, store.ListOptions{IncludeDeleted: true})
	stats := f.s.Stats()

	f.clock.Advance(time.Minute)
	_, err := f.s.ApplyChanges(f.ctx, []store.Change{
		update(a, genJob("a", 2), provenance("git", "c3")),
		remove(b),
		create(genJob("d", 1), provenance("git", "c3")),
		update(c, genJob("c", 3), provenance("git", "c3")), // stale: version 1, the database has 2
	})
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), "job c") {
		t.Errorf("conflict error %q does not name the alias c", err)
	}
	if got := f.list(t, store.ListOptions{IncludeDeleted: true}); !reflect.DeepEqual(got, snapshot) {
		t.Errorf("after a failed call the jobs are\n%+v\nwant\n%+v", got, snapshot)
	}
	for _, id := range []int64{a.ID, cNow.ID} {
		if _, err := f.s.GetJobVersion(f.ctx, id, 3); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetJobVersion(%d, 3) error = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := f.s.GetJobVersion(f.ctx, a.ID, 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("version 2 of a exists after rollback: %v", err)
	}
	if c := f.children(t, a.ID); len(c.Tasks) != 4 {
		t.Errorf("a has %d tasks after rollback, want 4", len(c.Tasks))
	}
	// The check happens before any write.
	if w := f.s.Stats().Writes - stats.Writes; w != 0 {
		t.Errorf("the failed call sent %d writes, want 0", w)
	}
}

// testConcurrentUpdates: plans made from the same read race; exactly one
// wins, the others get ErrConflict, and concurrent creates of one alias leave
// one live job.
func testConcurrentUpdates(t *testing.T, backend string) {
	f := setup(t, backend)
	base := f.apply(t, create(genJob("nightly-etl", 1), provenance("git", "c1")))[0]
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = f.s.ApplyChanges(f.ctx, []store.Change{
				update(base, genJob("nightly-etl", 10+i), provenance("git", fmt.Sprintf("c%d", 10+i))),
				create(smallJob("new"), provenance("git", "c1")),
			})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("a losing call failed with %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d calls won, want exactly 1", won)
	}
	if got := f.get(t, "nightly-etl"); got.Version != 2 {
		t.Errorf("version after the race = %d, want 2", got.Version)
	}
	if got := f.list(t, store.ListOptions{IncludeDeleted: true}); len(got) != 2 {
		t.Errorf("jobs after the race: %v, want nightly-etl and one new", aliases(got))
	}
}

func testCreateLiveAliasConflicts(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(genJob("nightly-etl", 1), provenance("git", "c1")))
	_, err := f.s.ApplyChanges(f.ctx, []store.Change{
		create(smallJob("ci"), provenance("git", "c2")),
		create(genJob("nightly-etl", 2), provenance("other", "x")),
	})
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), "nightly-etl") {
		t.Errorf("conflict error %q does not name the alias", err)
	}
	if _, err := f.s.GetJob(f.ctx, "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ci was created despite the conflict: %v", err)
	}
}

func testSoftDelete(t *testing.T, backend string) {
	f := setup(t, backend)
	out := f.apply(t,
		create(genJob("nightly-etl", 1), provenance("git", "c1")),
		create(smallJob("ci"), provenance("git", "c1")),
	)
	etl := out[0]
	f.clock.Advance(time.Hour)
	deleted := f.apply(t, remove(etl))[0]
	if deleted.DeletedAt == nil || !deleted.DeletedAt.Equal(f.clock.Now().Truncate(time.Microsecond)) {
		t.Errorf("DeletedAt = %v, want %v", deleted.DeletedAt, f.clock.Now())
	}
	if deleted.Version != etl.Version || deleted.Hash != etl.Hash {
		t.Errorf("delete changed version or hash: %+v", deleted)
	}

	if _, err := f.s.GetJob(f.ctx, "nightly-etl"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetJob of a deleted job: error %v, want ErrNotFound", err)
	}
	if got := aliases(f.list(t, store.ListOptions{})); !reflect.DeepEqual(got, []string{"ci"}) {
		t.Errorf("ListJobs = %v, want [ci]", got)
	}
	all := f.list(t, store.ListOptions{IncludeDeleted: true})
	if len(all) != 2 || all[1].Alias != "nightly-etl" || all[1].DeletedAt == nil {
		t.Fatalf("ListJobs(IncludeDeleted) = %+v, want ci and the deleted nightly-etl", all)
	}
	if !reflect.DeepEqual(all[1], deleted) {
		t.Errorf("listed deleted job =\n%+v\nwant\n%+v", all[1], deleted)
	}
	v, err := f.s.GetJobVersion(f.ctx, etl.ID, 1)
	if err != nil || v.Hash != etl.Hash || v.DeletedAt == nil {
		t.Errorf("GetJobVersion after delete = %+v, %v; want the spec and DeletedAt set", v, err)
	}
	if c := f.children(t, etl.ID); len(c.Tasks) != 4 || len(c.Callbacks) != 1 {
		t.Errorf("children after soft delete: %d tasks, %d callbacks; want them kept", len(c.Tasks), len(c.Callbacks))
	}

	_, err = f.s.ApplyChanges(f.ctx, []store.Change{remove(etl)})
	wantErr(t, err, store.ErrConflict)
	_, err = f.s.ApplyChanges(f.ctx, []store.Change{update(etl, genJob("nightly-etl", 2), provenance("git", "c2"))})
	wantErr(t, err, store.ErrConflict)
}

func testRecreateAfterDelete(t *testing.T, backend string) {
	f := setup(t, backend)
	first := f.apply(t, create(genJob("nightly-etl", 1), provenance("git", "c1")))[0]
	f.apply(t, remove(first))
	second := f.apply(t, create(genJob("nightly-etl", 2), provenance("git", "c2")))[0]
	if second.ID == first.ID || second.Version != 1 {
		t.Errorf("re-created job: id %d version %d; want a new id (not %d) and version 1", second.ID, second.Version, first.ID)
	}
	all := f.list(t, store.ListOptions{IncludeDeleted: true})
	if len(all) != 2 || all[0].ID != first.ID || all[1].ID != second.ID {
		t.Errorf("ListJobs(IncludeDeleted) = %+v; want both rows, oldest first", all)
	}
	if got := f.get(t, "nightly-etl"); got.ID != second.ID {
		t.Errorf("GetJob returned id %d, want the live %d", got.ID, second.ID)
	}
	if v, err := f.s.GetJobVersion(f.ctx, first.ID, 1); err != nil || v.Hash != first.Hash {
		t.Errorf("the deleted row's version: %+v, %v", v, err)
	}
}

func testDeleteAndCreateInOneCall(t *testing.T, backend string) {
	f := setup(t, backend)
	first := f.apply(t, create(genJob("nightly-etl", 1), provenance("git", "c1")))[0]
	out := f.apply(t,
		create(genJob("nightly-etl", 2), provenance("other", "x1")),
		remove(first),
	)
	if out[0].ID == first.ID || out[1].DeletedAt == nil {
		t.Errorf("replace in one call returned %+v", out)
	}
	if got := f.get(t, "nightly-etl"); got.ID != out[0].ID || got.Provenance.SourceID != "other" {
		t.Errorf("live job after replace = %+v", got)
	}
}

func testPurgeDeleted(t *testing.T, backend string) {
	f := setup(t, backend)
	out := f.apply(t,
		create(genJob("old", 1), provenance("git", "c1")),
		create(genJob("recent", 1), provenance("git", "c1")),
		create(genJob("live", 1), provenance("git", "c1")),
	)
	f.apply(t, update(out[0], genJob("old", 2), provenance("git", "c2"))) // two versions to purge
	old := f.get(t, "old")
	f.apply(t, remove(old))
	deletedAt := f.clock.Now()
	f.clock.Advance(24 * time.Hour)
	f.apply(t, remove(out[1]))

	if n, err := f.s.PurgeDeleted(f.ctx, deletedAt); err != nil || n != 0 {
		t.Errorf("PurgeDeleted(at the deletion) = %d, %v; want 0 (strictly before)", n, err)
	}
	n, err := f.s.PurgeDeleted(f.ctx, deletedAt.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PurgeDeleted = %d, %v; want 1", n, err)
	}
	if got := aliases(f.list(t, store.ListOptions{IncludeDeleted: true})); !reflect.DeepEqual(got, []string{"live", "recent"}) {
		t.Errorf("after purge ListJobs(IncludeDeleted) = %v, want [live recent]", got)
	}
	for _, v := range []int64{1, 2} {
		if _, err := f.s.GetJobVersion(f.ctx, old.ID, v); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetJobVersion of a purged job: %v, want ErrNotFound", err)
		}
	}
	if _, err := f.s.JobChildren(f.ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("JobChildren of a purged job: %v, want ErrNotFound", err)
	}
	if c := f.children(t, out[2].ID); len(c.Tasks) != 4 {
		t.Errorf("live job lost its tasks in the purge")
	}
	if n, err := f.s.PurgeDeleted(f.ctx, f.clock.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("second PurgeDeleted = %d, %v; want 1", n, err)
	}
}

// testManyJobs crosses the chunk sizes of every batched statement.
func testManyJobs(t *testing.T, backend string) {
	f := setup(t, backend)
	const n = 1234
	changes := make([]store.Change, n)
	for i := range changes {
		changes[i] = create(genJob(fmt.Sprintf("job-%05d", i), 1), provenance("git", "c1"))
	}
	before := f.s.Stats()
	out := f.apply(t, changes...)
	if w := f.s.Stats().Writes - before.Writes; w > 20 {
		t.Errorf("creating %d jobs took %d write statements; want batches (<= 20)", n, w)
	}
	for i, j := range out {
		if j.Alias != changes[i].Alias || j.Version != 1 {
			t.Fatalf("result %d = %s v%d, want %s v1 (input order)", i, j.Alias, j.Version, changes[i].Alias)
		}
	}
	listed := f.list(t, store.ListOptions{})
	if len(listed) != n {
		t.Fatalf("ListJobs returned %d jobs, want %d", len(listed), n)
	}

	// Update every other job, delete every seventh of the rest, leave the others.
	var upd []store.Change
	for i, j := range out {
		switch {
		case i%2 == 0:
			upd = append(upd, update(j, genJob(j.Alias, 2), provenance("git", "c2")))
		case i%7 == 0:
			upd = append(upd, remove(j))
		}
	}
	res := f.apply(t, upd...)
	for i, j := range res {
		want := int64(2)
		if upd[i].Op == store.OpDelete {
			want = 1
		}
		if j.Version != want {
			t.Fatalf("%s %s: version %d, want %d", upd[i].Op, j.Alias, j.Version, want)
		}
	}
	for _, i := range []int{0, 2, n - 2} {
		j := f.get(t, out[i].Alias)
		c := f.children(t, j.ID)
		if j.Version != 2 || len(c.Tasks) != 4 || len(c.Edges) != 4 || c.Tasks[0].Image != "ghcr.io/acme/extract:1.2.0" {
			t.Errorf("%s after batch update: version %d, %d tasks, %d edges, image %s",
				j.Alias, j.Version, len(c.Tasks), len(c.Edges), c.Tasks[0].Image)
		}
	}
	if live := f.list(t, store.ListOptions{}); len(live) != n-len(upd)+n/2+n%2 {
		t.Errorf("live jobs = %d", len(live))
	}
}

func testInvalidChanges(t *testing.T, backend string) {
	f := setup(t, backend)
	j := genJob("nightly-etl", 1)
	created := f.apply(t, create(j, provenance("git", "c1")))[0]
	other := genJob("other", 1)
	tests := []struct {
		name   string
		change store.Change
	}{
		{"unknown op", store.Change{Op: "upsert", Alias: "x", Job: j, Hash: j.Hash()}},
		{"no alias", store.Change{Op: store.OpCreate, Job: j, Hash: j.Hash()}},
		{"no job", store.Change{Op: store.OpCreate, Alias: "x", Hash: j.Hash()}},
		{"wrong hash", store.Change{Op: store.OpCreate, Alias: "other", Job: other, Hash: j.Hash()}},
		{"alias differs from spec", store.Change{Op: store.OpCreate, Alias: "x", Job: other, Hash: other.Hash()}},
		{"update without version", store.Change{Op: store.OpUpdate, Alias: "nightly-etl", Job: j, Hash: j.Hash(), ID: created.ID}},
		{"delete without id", store.Change{Op: store.OpDelete, Alias: "nightly-etl", Version: 1}},
	}
	for _, tc := range tests {
		_, err := f.s.ApplyChanges(f.ctx, []store.Change{tc.change})
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: error = %v, want a plain error", tc.name, err)
		}
	}
	_, err := f.s.ApplyChanges(f.ctx, []store.Change{create(other, provenance("a", "")), create(other, provenance("b", ""))})
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate alias in one call: error = %v, want a plain error", err)
	}
	// An update naming a job by the wrong alias is a conflict: the row is not what the plan saw.
	_, err = f.s.ApplyChanges(f.ctx, []store.Change{update(store.Job{ID: created.ID, Version: 1, Alias: "other"}, other, provenance("git", "c2"))})
	wantErr(t, err, store.ErrConflict)
}

func testNotFound(t *testing.T, backend string) {
	f := setup(t, backend)
	_, err := f.s.GetJob(f.ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetJobVersion(f.ctx, 42, 1)
	wantErr(t, err, store.ErrNotFound)
	created := f.apply(t, create(smallJob("ci"), provenance("git", "c1")))[0]
	_, err = f.s.GetJobVersion(f.ctx, created.ID, 2)
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetSource(f.ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.JobChildren(f.ctx, 42)
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.ApplyChanges(f.ctx, []store.Change{remove(store.Job{ID: 42, Version: 1, Alias: "missing"})})
	wantErr(t, err, store.ErrConflict) // the plan saw a row that is gone
}

func testApplyHistory(t *testing.T, backend string) {
	f := setup(t, backend)
	start := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	recs := []store.ApplyRecord{
		{SourceID: "git-main", Revision: "c1", Actor: "agent", Atomic: true, Created: 10, Unchanged: 0,
			StartedAt: start, FinishedAt: start.Add(2 * time.Second)},
		{Actor: "manual", DryRun: true, Force: true, Updated: 1, Deleted: 2, Conflicts: 1, Failed: 1,
			PruneRefused: "would delete 40% of the source's jobs",
			Transfers:    []store.OwnershipTransfer{{Alias: "etl", From: "git-old", To: "manual"}},
			Error:        "1 job failed", StartedAt: start.Add(time.Minute), FinishedAt: start.Add(time.Minute + time.Second)},
		{SourceID: "git-main", Revision: "c2", Actor: "agent", Unchanged: 10,
			StartedAt: start.Add(2 * time.Minute), FinishedAt: start.Add(2 * time.Minute)},
	}
	for i := range recs {
		id, err := f.s.RecordApply(f.ctx, recs[i])
		if err != nil {
			t.Fatalf("RecordApply: %v", err)
		}
		if id <= 0 {
			t.Fatalf("RecordApply id = %d", id)
		}
		recs[i].ID = id
		recs[i].StartedAt = recs[i].StartedAt.Truncate(time.Microsecond)
		recs[i].FinishedAt = recs[i].FinishedAt.Truncate(time.Microsecond)
	}
	all, err := f.s.ListApplies(f.ctx, "", 0)
	if err != nil {
		t.Fatalf("ListApplies: %v", err)
	}
	if want := []store.ApplyRecord{recs[2], recs[1], recs[0]}; !reflect.DeepEqual(all, want) {
		t.Errorf("ListApplies =\n%+v\nwant\n%+v", all, want)
	}
	main, err := f.s.ListApplies(f.ctx, "git-main", 1)
	if err != nil {
		t.Fatalf("ListApplies(git-main): %v", err)
	}
	if want := []store.ApplyRecord{recs[2]}; !reflect.DeepEqual(main, want) {
		t.Errorf("ListApplies(git-main, 1) = %+v, want %+v", main, want)
	}
}

func testSources(t *testing.T, backend string) {
	f := setup(t, backend)
	src := store.Source{
		ID: "git-main", Repo: "https://git.example.com/acme/jobs.git", Ref: "refs/heads/main", Path: "jobs/",
		LastAttemptedCommit: "c2", LastAppliedCommit: "c1",
		Status: json.RawMessage(`{"phase":"synced","errors":[]}`),
	}
	if err := f.s.UpsertSource(f.ctx, src); err != nil {
		t.Fatalf("UpsertSource: %v", err)
	}
	if err := f.s.UpsertSource(f.ctx, store.Source{ID: "a-manual"}); err != nil {
		t.Fatalf("UpsertSource: %v", err)
	}
	got, err := f.s.GetSource(f.ctx, "git-main")
	if err != nil {
		t.Fatalf("GetSource: %v", err)
	}
	if !jsonEqual(t, got.Status, src.Status) {
		t.Errorf("status = %s, want %s", got.Status, src.Status)
	}
	got.Status, src.Status = nil, nil
	src.UpdatedAt = f.clock.Now().Truncate(time.Microsecond)
	if !reflect.DeepEqual(got, src) {
		t.Errorf("GetSource =\n%+v\nwant\n%+v", got, src)
	}

	f.clock.Advance(time.Minute)
	src.LastAppliedCommit, src.Ref = "c2", "refs/heads/release"
	if err := f.s.UpsertSource(f.ctx, src); err != nil {
		t.Fatalf("UpsertSource again: %v", err)
	}
	list, err := f.s.ListSources(f.ctx)
	if err != nil {
		t.Fatalf("ListSources: %v", err)
	}
	src.UpdatedAt = f.clock.Now().Truncate(time.Microsecond)
	if len(list) != 2 || list[0].ID != "a-manual" || list[0].Status != nil || !reflect.DeepEqual(list[1], src) {
		t.Errorf("ListSources =\n%+v\nwant a-manual, then\n%+v", list, src)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func testStats(t *testing.T, backend string) {
	f := setup(t, backend)
	if got := f.s.Stats(); got != (store.Stats{}) {
		t.Errorf("Stats after Open = %+v, want zero (migrations are not counted)", got)
	}
	out, err := f.s.ApplyChanges(f.ctx, nil)
	if err != nil || out != nil {
		t.Errorf("ApplyChanges(nil) = %v, %v", out, err)
	}
	if got := f.s.Stats(); got != (store.Stats{}) {
		t.Errorf("ApplyChanges(nil) sent %+v, want nothing", got)
	}
	f.list(t, store.ListOptions{})
	if got := f.s.Stats(); got.Writes != 0 || got.Queries != 1 {
		t.Errorf("ListJobs: %+v, want 1 query and no writes", got)
	}
	f.apply(t, create(genJob("nightly-etl", 1), provenance("git", "c1")))
	if got := f.s.Stats(); got.Writes == 0 {
		t.Errorf("a create wrote nothing: %+v", got)
	}
}

// testClosedStore: every method of a closed store fails with ErrUnavailable,
// and no error shows the password of the URL.
func testClosedStore(t *testing.T, backend string) {
	const password = "s3cr3t-Pa55"
	u := storetest.URL(t, backend)
	if backend == "postgres" {
		// Trust authentication ignores the password; errors must not show it anyway.
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		pu.User = url.UserPassword(pu.User.Username(), password)
		u = pu.String()
	}
	ctx := t.Context()
	var logs bytes.Buffer
	s, err := store.Open(ctx, u, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	calls := map[string]func() error{
		"Ping":          func() error { return s.Ping(ctx) },
		"GetJob":        func() error { _, err := s.GetJob(ctx, "x"); return err },
		"ListJobs":      func() error { _, err := s.ListJobs(ctx, store.ListOptions{}); return err },
		"GetJobVersion": func() error { _, err := s.GetJobVersion(ctx, 1, 1); return err },
		"ApplyChanges": func() error {
			_, err := s.ApplyChanges(ctx, []store.Change{create(smallJob("ci"), provenance("git", "c1"))})
			return err
		},
		"PurgeDeleted": func() error { _, err := s.PurgeDeleted(ctx, time.Now()); return err },
		"RecordApply":  func() error { _, err := s.RecordApply(ctx, store.ApplyRecord{}); return err },
		"ListApplies":  func() error { _, err := s.ListApplies(ctx, "", 10); return err },
		"UpsertSource": func() error { return s.UpsertSource(ctx, store.Source{ID: "x"}) },
		"GetSource":    func() error { _, err := s.GetSource(ctx, "x"); return err },
		"ListSources":  func() error { _, err := s.ListSources(ctx); return err },
		"JobChildren":  func() error { _, err := s.JobChildren(ctx, 1); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a closed store: error = %v, want ErrUnavailable", name, err)
		} else if strings.Contains(err.Error(), password) {
			t.Errorf("%s error shows the password: %v", name, err)
		}
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("logs show the password: %s", logs.String())
	}
}

// TestOpenUnreachable: a database that does not answer is ErrUnavailable,
// and neither the error nor the logs show the password.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	const password = "hunter2-s3cret"
	for _, u := range []string{
		"postgres://postgres:" + password + "@127.0.0.1:1/x?sslmode=disable",
		"postgresql://caesium:" + password + "@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
		"postgres://caesium@127.0.0.1:1/x?sslmode=disable&password=" + password,
	} {
		var logs bytes.Buffer
		s, err := store.Open(t.Context(), u, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", u)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Open error = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
			t.Errorf("the password shows in %q or the logs %q", err, logs.String())
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("error %q does not say which database", err)
		}
	}
}

func TestOpenRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"mysql://root:pw@localhost/x", "sqlite://", "sqlite://x.db?mode=ro", "file.db"} {
		if s, err := store.Open(t.Context(), u, store.Options{DataDir: t.TempDir()}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		} else if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
}

func TestOpenSQLiteDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"", "sqlite://sub/dir/jobs.db", "sqlite://:memory:"} {
		s, err := store.Open(t.Context(), u, store.Options{DataDir: dir})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if _, err := s.ApplyChanges(t.Context(), []store.Change{create(smallJob("ci"), provenance("git", "c1"))}); err != nil {
			t.Errorf("Open(%q): ApplyChanges: %v", u, err)
		}
		if _, err := s.GetJob(t.Context(), "ci"); err != nil {
			t.Errorf("Open(%q): GetJob: %v", u, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
