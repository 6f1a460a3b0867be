package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/store"
)

// concurrentJobYAML is a job of two steps whose concurrency is maxRuns 1
// with strategy.
func concurrentJobYAML(alias, strategy string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: %s
  concurrency:
    maxRuns: 1
    strategy: %s
steps:
  - name: extract
    image: alpine:3.20
  - name: load
    image: alpine:3.20
`, alias, strategy)
}

// runsFixture is an API with two jobs, "etl" (the default concurrency:
// maxRuns 1, queue) and "once" (maxRuns 1, skip), and a count of the
// RunQueued calls.
type runsFixture struct {
	*fixture
	woken *atomic.Int32
}

func setupRuns(t *testing.T, backend string, opts ...func(*api.Config)) runsFixture {
	t.Helper()
	woken := &atomic.Int32{}
	opts = append(opts, func(c *api.Config) { c.RunQueued = func() { woken.Add(1) } })
	f := setup(t, backend, opts...)
	f.mustApply(t, request("", jobYAML("etl"), concurrentJobYAML("once", "skip")))
	return runsFixture{fixture: f, woken: woken}
}

// start posts a start-run request with body ("" for none) and decodes the
// run of a 202.
func (f runsFixture) start(t *testing.T, alias, body string) (response, store.Run) {
	t.Helper()
	r := f.request(t, http.MethodPost, "/v1/jobs/"+alias+"/runs", "application/json", body)
	var run store.Run
	if r.status == http.StatusAccepted {
		r.decode(t, &run)
	}
	return r, run
}

// mustStart starts a run and fails unless it is queued.
func (f runsFixture) mustStart(t *testing.T, alias string) store.Run {
	t.Helper()
	r, run := f.start(t, alias, "")
	if r.status != http.StatusAccepted || run.Status != store.RunQueued {
		t.Fatalf("start %s: %d %s", alias, r.status, r.body)
	}
	return run
}

func (f runsFixture) list(t *testing.T, path string) []store.Run {
	t.Helper()
	r := f.get(t, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"runs":[`) {
		t.Errorf("GET %s: runs is not a list: %s", path, r.body)
	}
	var l api.RunList
	r.decode(t, &l)
	return l.Runs
}

func ids(runs []store.Run) []int64 {
	out := []int64{}
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func TestStartRun(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)

		r, run := f.start(t, "etl", "")
		if r.status != http.StatusAccepted {
			t.Fatalf("start etl: %d %s", r.status, r.body)
		}
		if run.ID == 0 || run.JobAlias != "etl" || run.JobVersion != 1 || run.Status != store.RunQueued ||
			run.Trigger != "manual" || run.Actor != "api" || run.CreatedAt.IsZero() || run.StartedAt != nil || run.FinishedAt != nil {
			t.Errorf("queued run = %+v", run)
		}
		if n := f.woken.Load(); n != 1 {
			t.Errorf("RunQueued called %d times, want 1", n)
		}

		// The default strategy, queue: a second run waits behind the first.
		_, second := f.start(t, "etl", `{"actor": "alice"}`)
		if second.Status != store.RunQueued || second.Actor != "alice" || second.ID <= run.ID {
			t.Errorf("second run = %+v, want queued by alice", second)
		}
		// A JSON null is an empty body.
		if r, _ := f.start(t, "etl", "null"); r.status != http.StatusAccepted {
			t.Errorf("body null: %d %s", r.status, r.body)
		}

		// maxRuns 1, skip: the second run is recorded as skipped, and the
		// answer is a 409 error with the run in its details.
		first := f.mustStart(t, "once")
		woken := f.woken.Load()
		r, _ = f.start(t, "once", "")
		e := r.wantError(t, http.StatusConflict, `of job "once" skipped: not started`)
		var skipped store.Run
		if err := json.Unmarshal(e.Details, &skipped); err != nil {
			t.Fatalf("409 details are not a run: %v: %s", err, e.Details)
		}
		if skipped.ID <= first.ID || skipped.Status != store.RunSkipped || !strings.Contains(skipped.Error, "maxRuns 1") || skipped.FinishedAt == nil {
			t.Errorf("skipped run = %+v", skipped)
		}
		if !strings.Contains(e.Error, fmt.Sprintf("run %d ", skipped.ID)) {
			t.Errorf("409 message %q does not name run %d", e.Error, skipped.ID)
		}
		if f.woken.Load() != woken {
			t.Error("RunQueued was called for a skipped run")
		}
		var got store.Run
		f.get(t, fmt.Sprintf("/v1/runs/%d", skipped.ID)).decode(t, &got)
		if got.Status != store.RunSkipped {
			t.Errorf("the skipped run reads back as %+v", got)
		}

		// A run pins the version it was created with.
		f.mustApply(t, request("", strings.Replace(jobYAML("etl"), "alpine:3.20", "alpine:3.21", 1), concurrentJobYAML("once", "skip")))
		if _, v2 := f.start(t, "etl", ""); v2.JobVersion != 2 {
			t.Errorf("run after an update: version %d, want 2", v2.JobVersion)
		}
		f.get(t, fmt.Sprintf("/v1/runs/%d", run.ID)).decode(t, &got)
		if got.JobVersion != 1 {
			t.Errorf("the first run now reads version %d, want 1", got.JobVersion)
		}
	})
}

func TestStartRunErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		alias   string
		body    string
		want    int
		wantErr string
	}{
		{name: "unknown job", alias: "nope", want: 404, wantErr: `job "nope" not found`},
		{name: "deleted job", alias: "gone", want: 404, wantErr: `job "gone" not found`},
		{name: "truncated JSON", alias: "etl", body: `{"actor":`, want: 400, wantErr: "body must be a JSON object"},
		{name: "misspelt field", alias: "etl", body: `{"actr": "alice"}`, want: 400, wantErr: `unknown field "actr"`},
		{name: "not an object", alias: "etl", body: `"alice"`, want: 400, wantErr: "body must be a JSON object"},
		{name: "actor of the wrong type", alias: "etl", body: `{"actor": 7}`, want: 400, wantErr: "body must be a JSON object"},
		{name: "data after the object", alias: "etl", body: `{"actor": "a"} {}`, want: 400, wantErr: "data after the top-level object"},
		{name: "actor too long", alias: "etl", body: `{"actor": "` + strings.Repeat("a", 201) + `"}`, want: 400, wantErr: "actor is longer than 200 bytes"},
		{name: "body too large", alias: "etl", body: `{"actor": "` + strings.Repeat("a", 70<<10) + `"}`, want: 413, wantErr: "larger than 65536 bytes"},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)
		f.mustApply(t, request("", jobYAML("gone")))
		if r := f.request(t, http.MethodDelete, "/v1/jobs/gone", "", ""); r.status != http.StatusOK {
			t.Fatalf("delete gone: %d %s", r.status, r.body)
		}
		// One after the other: each counts the store's writes.
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := f.store.Stats().Writes
				r, _ := f.start(t, tt.alias, tt.body)
				r.wantError(t, tt.want, tt.wantErr)
				if w := f.store.Stats().Writes - before; w != 0 {
					t.Errorf("a %d wrote %d rows", tt.want, w)
				}
			})
		}
		if n := f.woken.Load(); n != 0 {
			t.Errorf("RunQueued called %d times, want 0", n)
		}
	})
}

func TestListRuns(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)
		if runs := f.list(t, "/v1/runs"); len(runs) != 0 {
			t.Fatalf("runs before any started: %v", ids(runs))
		}
		e1 := f.mustStart(t, "etl")
		o1 := f.mustStart(t, "once")
		e2 := f.mustStart(t, "etl")
		o2, _ := f.start(t, "once", "") // skipped
		var skipped store.Run
		if err := json.Unmarshal(o2.errorBody(t).Details, &skipped); err != nil || skipped.Status != store.RunSkipped {
			t.Fatalf("second run of once: %s", o2.body)
		}
		e3 := f.mustStart(t, "etl")
		if r := f.request(t, http.MethodPost, fmt.Sprintf("/v1/runs/%d/cancel", e2.ID), "", ""); r.status != http.StatusAccepted {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}

		tests := []struct {
			path string
			want []int64
		}{
			{path: "/v1/runs", want: []int64{e3.ID, skipped.ID, e2.ID, o1.ID, e1.ID}},
			{path: "/v1/runs?job=etl", want: []int64{e3.ID, e2.ID, e1.ID}},
			{path: "/v1/jobs/etl/runs", want: []int64{e3.ID, e2.ID, e1.ID}},
			{path: "/v1/jobs/once/runs", want: []int64{skipped.ID, o1.ID}},
			{path: "/v1/runs?status=queued", want: []int64{e3.ID, o1.ID, e1.ID}},
			{path: "/v1/runs?status=cancelled", want: []int64{e2.ID}},
			{path: "/v1/runs?status=skipped&job=once", want: []int64{skipped.ID}},
			{path: "/v1/jobs/once/runs?status=queued", want: []int64{o1.ID}},
			{path: "/v1/runs?status=running", want: []int64{}},
			{path: "/v1/runs?job=nope", want: []int64{}},
			{path: "/v1/jobs/nope/runs", want: []int64{}},
			{path: "/v1/runs?limit=2", want: []int64{e3.ID, skipped.ID}},
			{path: fmt.Sprintf("/v1/runs?limit=2&before=%d", skipped.ID), want: []int64{e2.ID, o1.ID}},
			{path: fmt.Sprintf("/v1/runs?before=%d", e1.ID), want: []int64{}},
			{path: fmt.Sprintf("/v1/jobs/etl/runs?before=%d&limit=1", e3.ID), want: []int64{e2.ID}},
			{path: "/v1/runs?limit=1000", want: []int64{e3.ID, skipped.ID, e2.ID, o1.ID, e1.ID}},
		}
		for _, tt := range tests {
			if got := ids(f.list(t, tt.path)); !slices.Equal(got, tt.want) {
				t.Errorf("GET %s = %v, want %v", tt.path, got, tt.want)
			}
		}
		// The list has no steps; the run of e2 says why it ended.
		for _, r := range f.list(t, "/v1/runs?status=cancelled") {
			if len(r.Tasks) != 0 || r.FinishedAt == nil || r.Error == "" {
				t.Errorf("listed run %+v", r)
			}
		}

		for _, tt := range []struct{ path, wantErr string }{
			{"/v1/runs?status=bogus", `status "bogus" is not one of queued, running, succeeded, failed, cancelled, skipped`},
			{"/v1/runs?status=Queued", `status "Queued"`},
			{"/v1/jobs/etl/runs?status=done", `status "done"`},
			{"/v1/runs?limit=0", "limit must be between 1 and 1000"},
			{"/v1/runs?limit=1001", "limit must be between 1 and 1000"},
			{"/v1/runs?limit=ten", "limit must be between 1 and 1000"},
			{"/v1/runs?before=0", `before="0" is not a run id`},
			{"/v1/runs?before=-3", `before="-3" is not a run id`},
			{"/v1/runs?before=x", `before="x" is not a run id`},
		} {
			f.get(t, tt.path).wantError(t, http.StatusBadRequest, tt.wantErr)
		}
	})
}

func TestGetRun(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)
		queued := f.mustStart(t, "once")

		var got store.Run
		f.get(t, fmt.Sprintf("/v1/runs/%d", queued.ID)).decode(t, &got)
		if got.ID != queued.ID || got.Status != store.RunQueued || len(got.Tasks) != 0 {
			t.Errorf("queued run = %+v", got)
		}

		// Claimed by a runner: one task per step, by position.
		ctx := context.Background()
		claimed, err := f.store.ClaimRuns(ctx, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("ClaimRuns = %d runs, %v", len(claimed), err)
		}
		exit := 0
		at := f.clock.Now()
		if err := f.store.SetTask(ctx, queued.ID, store.TaskRun{Name: "extract", Status: store.TaskSucceeded, Attempts: 1, ExitCode: &exit,
			Output: "42 rows\n", StartedAt: &at, FinishedAt: &at}); err != nil {
			t.Fatal(err)
		}
		f.get(t, fmt.Sprintf("/v1/runs/%d", queued.ID)).decode(t, &got)
		if got.Status != store.RunRunning || got.StartedAt == nil || len(got.Tasks) != 2 {
			t.Fatalf("running run = %+v", got)
		}
		if x, l := got.Tasks[0], got.Tasks[1]; x.Name != "extract" || x.Status != store.TaskSucceeded || x.ExitCode == nil || *x.ExitCode != 0 ||
			x.Output != "42 rows\n" || l.Name != "load" || l.Status != store.TaskPending || l.Position != 1 {
			t.Errorf("tasks = %+v", got.Tasks)
		}

		f.get(t, "/v1/runs/999999").wantError(t, http.StatusNotFound, "run 999999 not found")
		for _, id := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
			f.get(t, "/v1/runs/"+id).wantError(t, http.StatusBadRequest, fmt.Sprintf("run id %q is not a positive integer", id))
		}
	})
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)
		cancel := func(id int64) response {
			t.Helper()
			return f.request(t, http.MethodPost, fmt.Sprintf("/v1/runs/%d/cancel", id), "", "")
		}

		// Queued: cancelled at once.
		queued := f.mustStart(t, "etl")
		woken := f.woken.Load()
		r := cancel(queued.ID)
		if r.status != http.StatusAccepted {
			t.Fatalf("cancel queued: %d %s", r.status, r.body)
		}
		var run store.Run
		r.decode(t, &run)
		if run.ID != queued.ID || run.Status != store.RunCancelled || run.FinishedAt == nil {
			t.Errorf("cancelled run = %+v", run)
		}
		if f.woken.Load() != woken+1 {
			t.Error("RunQueued was not called after a cancel")
		}
		// Finished: 409.
		cancel(queued.ID).wantError(t, http.StatusConflict, fmt.Sprintf("run %d has already finished", queued.ID))

		// Running: the runner is asked to stop it; asking twice is fine.
		running := f.mustStart(t, "etl")
		ctx := context.Background()
		if claimed, err := f.store.ClaimRuns(ctx, 10); err != nil || len(claimed) != 1 || claimed[0].ID != running.ID {
			t.Fatalf("ClaimRuns = %+v, %v", claimed, err)
		}
		for range 2 {
			r = cancel(running.ID)
			if r.status != http.StatusAccepted {
				t.Fatalf("cancel running: %d %s", r.status, r.body)
			}
			r.decode(t, &run)
			if run.Status != store.RunRunning || !run.CancelRequested {
				t.Errorf("cancel of a running run = %+v, want running with cancelRequested", run)
			}
		}
		if err := f.store.FinishRun(ctx, running.ID, store.RunCancelled, "cancelled on request", nil); err != nil {
			t.Fatal(err)
		}
		cancel(running.ID).wantError(t, http.StatusConflict, "has already finished")

		cancel(999999).wantError(t, http.StatusNotFound, "run 999999 not found")
		f.request(t, http.MethodPost, "/v1/runs/x/cancel", "", "").wantError(t, http.StatusBadRequest, `run id "x" is not a positive integer`)
		f.get(t, fmt.Sprintf("/v1/runs/%d/cancel", running.ID)).wantError(t, http.StatusMethodNotAllowed, "method not allowed")
	})
}

func TestRunsAuth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend, func(c *api.Config) { c.Token = "s3cret" })
		run := f.mustStart(t, "etl")
		f.token = ""
		endpoints := []struct{ method, path string }{
			{"POST", "/v1/jobs/etl/runs"},
			{"GET", "/v1/jobs/etl/runs"},
			{"GET", "/v1/runs"},
			{"GET", fmt.Sprintf("/v1/runs/%d", run.ID)},
			{"POST", fmt.Sprintf("/v1/runs/%d/cancel", run.ID)},
		}
		for _, auth := range []string{"", "Authorization: Bearer wrong", "Authorization: s3cret"} {
			for _, ep := range endpoints {
				f.request(t, ep.method, ep.path, "", "", auth).wantError(t, http.StatusUnauthorized, "missing or invalid bearer token")
			}
		}
		var got store.Run
		if r := f.request(t, "GET", fmt.Sprintf("/v1/runs/%d", run.ID), "", "", "Authorization: Bearer s3cret"); r.status != http.StatusOK {
			t.Fatalf("with the token: %d %s", r.status, r.body)
		} else {
			r.decode(t, &got)
		}
		if got.Status != store.RunQueued {
			t.Errorf("an unauthenticated cancel changed the run: %+v", got)
		}
		if runs, err := f.store.ListRuns(context.Background(), store.RunFilter{}); err != nil || len(runs) != 1 {
			t.Errorf("runs = %d, %v; an unauthenticated start created one", len(runs), err)
		}
	})
}

// TestRunsStoreUnavailable: with the database gone every runs endpoint
// answers 503.
func TestRunsStoreUnavailable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setupRuns(t, backend)
		run := f.mustStart(t, "etl")
		if err := f.store.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ep := range []struct{ method, path string }{
			{"POST", "/v1/jobs/etl/runs"},
			{"GET", "/v1/jobs/etl/runs"},
			{"GET", "/v1/runs"},
			{"GET", fmt.Sprintf("/v1/runs/%d", run.ID)},
			{"POST", fmt.Sprintf("/v1/runs/%d/cancel", run.ID)},
		} {
			f.request(t, ep.method, ep.path, "", "").wantError(t, http.StatusServiceUnavailable, "unavailable")
		}
	})
}
