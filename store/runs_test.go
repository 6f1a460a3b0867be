package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestRuns runs the run-history suite against every backend, each case on a
// database of its own.
func TestRuns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(t *testing.T, backend string)
	}{
		{"CreateRun", testCreateRun},
		{"CreateRunErrors", testCreateRunErrors},
		{"PinningSurvivesApply", testPinningSurvivesApply},
		{"Lifecycle", testRunLifecycle},
		{"FinishEndsTasks", testFinishEndsTasks},
		{"RequestCancel", testRequestCancel},
		{"StrategyQueue", testStrategyQueue},
		{"StrategySkipAndFail", testStrategySkipAndFail},
		{"StrategyReplace", testStrategyReplace},
		{"ClaimRespectsMaxRuns", testClaimRespectsMaxRuns},
		{"ClaimUsesPinnedMaxRuns", testClaimUsesPinnedMaxRuns},
		{"ConcurrentCreateRunSkip", testConcurrentCreateRunSkip},
		{"ConcurrentClaimRuns", testConcurrentClaimRuns},
		{"InterruptRuns", testInterruptRuns},
		{"ListRuns", testListRuns},
		{"JobByHTTPPath", testJobByHTTPPath},
		{"PurgeCascades", testRunsPurgeCascade},
		{"FenceRefusesEndedLease", testRunsFenceEndedLease},
		{"FenceRefusesSupersededLease", testRunsFenceSupersededLease},
		{"TextIsStorable", testRunTextIsStorable},
		{"ClosedStore", testRunsClosedStore},
		{"InstallationID", testInstallationID},
		{"ClaimFailsUnreadableSpec", testClaimFailsUnreadableSpec},
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

// runJob is smallJob (steps build, test) with concurrency settings.
func runJob(alias string, maxRuns int, strategy string) *schema.Job {
	j := smallJob(alias)
	j.Metadata.Concurrency = schema.Concurrency{MaxRuns: maxRuns, Strategy: strategy}
	schema.Normalize(j)
	return j
}

func (f fixture) createRun(t *testing.T, alias string) store.Run {
	t.Helper()
	r, err := f.s.CreateRun(f.ctx, store.NewRun{JobAlias: alias, Trigger: schema.TriggerManual, Actor: "cli"})
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", alias, err)
	}
	return r
}

func (f fixture) claim(t *testing.T, limit int) []store.Run {
	t.Helper()
	runs, err := f.s.ClaimRuns(f.ctx, limit)
	if err != nil {
		t.Fatalf("ClaimRuns(%d): %v", limit, err)
	}
	return runs
}

func (f fixture) getRun(t *testing.T, id int64) store.Run {
	t.Helper()
	r, err := f.s.GetRun(f.ctx, id)
	if err != nil {
		t.Fatalf("GetRun(%d): %v", id, err)
	}
	return r
}

func (f fixture) finish(t *testing.T, id int64, status store.RunStatus) {
	t.Helper()
	if err := f.s.FinishRun(f.ctx, id, status, "", nil); err != nil {
		t.Fatalf("FinishRun(%d, %s): %v", id, status, err)
	}
}

func runIDs(runs []store.Run) []int64 {
	out := make([]int64, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func wantStatus(t *testing.T, r store.Run, want store.RunStatus) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("run %d is %s (error %q), want %s", r.ID, r.Status, r.Error, want)
	}
}

func testCreateRun(t *testing.T, backend string) {
	f := setup(t, backend)
	job := f.apply(t, create(smallJob("build"), provenance("git-main", "c1")))[0]
	got, err := f.s.CreateRun(f.ctx, store.NewRun{JobAlias: "build", Trigger: schema.TriggerHTTP, Actor: "127.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Run{
		ID: got.ID, JobID: job.ID, JobAlias: "build", JobVersion: 1, SpecHash: job.Hash,
		Trigger: "http", Actor: "127.0.0.1:5000", Status: store.RunQueued, CreatedAt: f.clock.Now().UTC().Truncate(time.Microsecond),
	}
	if got.ID <= 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("CreateRun =\n%+v\nwant\n%+v", got, want)
	}
	if read := f.getRun(t, got.ID); fmt.Sprint(read) != fmt.Sprint(want) {
		t.Errorf("GetRun =\n%+v\nwant\n%+v (queued: no tasks yet)", read, want)
	}
	// The API's JSON: camelCase, unset times and flags left out.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"jobAlias":"build"`, `"jobVersion":1`, `"specHash":`, `"createdAt":`, `"status":"queued"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	for _, key := range []string{"startedAt", "finishedAt", "cancelRequested", "tasks", "callbacks", `"error"`} {
		if strings.Contains(string(b), key) {
			t.Errorf("JSON %s of a queued run has %s", b, key)
		}
	}
}

func testCreateRunErrors(t *testing.T, backend string) {
	f := setup(t, backend)
	job := f.apply(t, create(smallJob("gone"), provenance("git-main", "c1")))[0]
	f.apply(t, remove(job))
	for _, alias := range []string{"nope", "gone"} {
		_, err := f.s.CreateRun(f.ctx, store.NewRun{JobAlias: alias, Trigger: schema.TriggerManual})
		if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), alias) {
			t.Errorf("CreateRun(%s) error = %v, want ErrNotFound naming the alias", alias, err)
		}
	}
	f.apply(t, create(smallJob("live"), provenance("git-main", "c1")))
	for _, trigger := range []string{"", "webhook"} {
		_, err := f.s.CreateRun(f.ctx, store.NewRun{JobAlias: "live", Trigger: trigger})
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateRun with trigger %q: error = %v, want a plain error", trigger, err)
		}
	}
	if runs, err := f.s.ListRuns(f.ctx, store.RunFilter{}); err != nil || len(runs) != 0 {
		t.Errorf("ListRuns after failed creates = %v, %v; want none", runs, err)
	}
}

// testPinningSurvivesApply: a run keeps the version it was created with
// through later applies and a soft delete, and is claimed with that
// version's steps.
func testPinningSurvivesApply(t *testing.T, backend string) {
	f := setup(t, backend)
	v1 := f.apply(t, create(smallJob("pin"), provenance("git-main", "c1")))[0]
	run := f.createRun(t, "pin")

	next := smallJob("pin")
	next.Steps = append(next.Steps, schema.Step{Name: "publish", Image: "golang:1.26", Command: schema.Command{"true"}})
	schema.Normalize(next)
	v2 := f.apply(t, update(v1, next, provenance("git-main", "c2")))[0]
	if v2.Version != 2 {
		t.Fatalf("update gave version %d, want 2", v2.Version)
	}
	later := f.createRun(t, "pin")
	if later.JobVersion != 2 || later.SpecHash != v2.Hash {
		t.Errorf("a run created after the update pinned version %d (%s), want 2 (%s)", later.JobVersion, later.SpecHash, v2.Hash)
	}

	got := f.getRun(t, run.ID)
	if got.JobVersion != 1 || got.SpecHash != v1.Hash {
		t.Fatalf("after version 2: run pins version %d (%s), want 1 (%s)", got.JobVersion, got.SpecHash, v1.Hash)
	}
	pinned, err := f.s.GetJobVersion(f.ctx, got.JobID, got.JobVersion)
	if err != nil {
		t.Fatalf("GetJobVersion of the pinned version: %v", err)
	}
	if pinned.Hash != v1.Hash || pinned.Version != 1 {
		t.Errorf("GetJobVersion = version %d hash %s, want 1 %s", pinned.Version, pinned.Hash, v1.Hash)
	}

	// Soft-deleted: the runs stay and are still claimed with their own version's steps.
	f.apply(t, remove(v2))
	claimed := f.claim(t, 10)
	if len(claimed) != 1 || claimed[0].ID != run.ID {
		t.Fatalf("ClaimRuns = %v, want run %d only (maxRuns 1)", runIDs(claimed), run.ID)
	}
	if names := taskNames(f.getRun(t, run.ID)); names != "build test" {
		t.Errorf("tasks of the version 1 run = %q, want \"build test\"", names)
	}
	f.finish(t, run.ID, store.RunSucceeded)
	claimed = f.claim(t, 10)
	if len(claimed) != 1 || claimed[0].ID != later.ID {
		t.Fatalf("ClaimRuns = %v, want run %d", runIDs(claimed), later.ID)
	}
	if names := taskNames(f.getRun(t, later.ID)); names != "build test publish" {
		t.Errorf("tasks of the version 2 run = %q, want \"build test publish\"", names)
	}
}

func taskNames(r store.Run) string {
	var names []string
	for i, task := range r.Tasks {
		if task.Position != i {
			return fmt.Sprintf("task %s at position %d, want %d", task.Name, task.Position, i)
		}
		names = append(names, task.Name)
	}
	return strings.Join(names, " ")
}

// testRunLifecycle walks a run through every transition of a successful run.
func testRunLifecycle(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(smallJob("life"), provenance("git-main", "c1")))
	run := f.createRun(t, "life")
	createdAt := run.CreatedAt

	f.clock.Advance(time.Second)
	claimed := f.claim(t, 5)
	if len(claimed) != 1 {
		t.Fatalf("ClaimRuns = %v, want one run", runIDs(claimed))
	}
	c := claimed[0]
	startedAt := f.clock.Now().UTC().Truncate(time.Microsecond)
	wantStatus(t, c, store.RunRunning)
	if c.StartedAt == nil || !c.StartedAt.Equal(startedAt) || c.FinishedAt != nil || c.Tasks != nil {
		t.Errorf("claimed run = %+v: want started at %v, not finished, no tasks", c, startedAt)
	}
	if more := f.claim(t, 5); len(more) != 0 {
		t.Errorf("second ClaimRuns = %v, want none", runIDs(more))
	}
	got := f.getRun(t, run.ID)
	wantTasks := []store.TaskRun{
		{Name: "build", Position: 0, Status: store.TaskPending},
		{Name: "test", Position: 1, Status: store.TaskPending},
	}
	if fmt.Sprint(got.Tasks) != fmt.Sprint(wantTasks) {
		t.Fatalf("tasks after claim = %+v, want %+v", got.Tasks, wantTasks)
	}

	t0 := time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))
	t1 := t0.Add(1500 * time.Millisecond)
	zero, three := 0, 3
	steps := []store.TaskRun{
		{Name: "build", Status: store.TaskRunning, Attempts: 1, StartedAt: &t0},
		{Name: "build", Status: store.TaskSucceeded, Attempts: 1, ExitCode: &zero, Output: "ok\n", StartedAt: &t0, FinishedAt: &t1},
		{Name: "test", Status: store.TaskRunning, Attempts: 1, StartedAt: &t1},
		{Name: "test", Status: store.TaskFailed, Attempts: 2, ExitCode: &three, Error: "exit code 3", Output: "FAIL\n", StartedAt: &t1, FinishedAt: &t1},
	}
	for _, st := range steps {
		if err := f.s.SetTask(f.ctx, run.ID, st); err != nil {
			t.Fatalf("SetTask(%s %s): %v", st.Name, st.Status, err)
		}
	}
	u0, u1 := t0.UTC().Truncate(time.Microsecond), t1.UTC().Truncate(time.Microsecond)
	wantTasks = []store.TaskRun{
		{Name: "build", Position: 0, Status: store.TaskSucceeded, Attempts: 1, ExitCode: &zero, Output: "ok\n", StartedAt: &u0, FinishedAt: &u1},
		{Name: "test", Position: 1, Status: store.TaskFailed, Attempts: 2, ExitCode: &three, Error: "exit code 3", Output: "FAIL\n", StartedAt: &u1, FinishedAt: &u1},
	}
	got = f.getRun(t, run.ID)
	if err := sameTasks(got.Tasks, wantTasks); err != nil {
		t.Fatal(err)
	}

	// Errors of SetTask.
	if err := f.s.SetTask(f.ctx, run.ID, store.TaskRun{Name: "deploy", Status: store.TaskRunning}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetTask of an unknown task: %v, want ErrNotFound", err)
	}
	if err := f.s.SetTask(f.ctx, run.ID+1000, store.TaskRun{Name: "build", Status: store.TaskRunning}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetTask of an unknown run: %v, want ErrNotFound", err)
	}
	if err := f.s.SetTask(f.ctx, run.ID, store.TaskRun{Name: "build", Status: "done"}); err == nil {
		t.Errorf("SetTask with status done succeeded")
	}

	f.clock.Advance(time.Minute)
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	cbs := []store.CallbackResult{
		{URL: "https://hooks.example.com/a", Event: "run.failed", StatusCode: 204, Attempts: 1, At: at},
		{URL: "https://hooks.example.com/b", Event: "run.failed", Attempts: 3, Error: "connection refused", At: at},
	}
	if err := f.s.FinishRun(f.ctx, run.ID, "running", "", nil); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("FinishRun with status running: %v, want a plain error", err)
	}
	if err := f.s.FinishRun(f.ctx, run.ID, store.RunFailed, "step test failed", cbs); err != nil {
		t.Fatal(err)
	}
	got = f.getRun(t, run.ID)
	finishedAt := f.clock.Now().UTC().Truncate(time.Microsecond)
	wantStatus(t, got, store.RunFailed)
	if got.Error != "step test failed" || !got.CreatedAt.Equal(createdAt) || !got.StartedAt.Equal(startedAt) ||
		got.FinishedAt == nil || !got.FinishedAt.Equal(finishedAt) || fmt.Sprint(got.Callbacks) != fmt.Sprint(cbs) {
		t.Errorf("finished run = %+v\nwant error, times created %v started %v finished %v, callbacks %+v", got, createdAt, startedAt, finishedAt, cbs)
	}
	if err := sameTasks(got.Tasks, wantTasks); err != nil {
		t.Errorf("FinishRun changed finished tasks: %v", err)
	}

	// A finished run takes no more writes, but its callbacks may be recorded again.
	if err := f.s.FinishRun(f.ctx, run.ID, store.RunSucceeded, "", nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second FinishRun: %v, want ErrConflict", err)
	}
	if err := f.s.SetTask(f.ctx, run.ID, store.TaskRun{Name: "build", Status: store.TaskRunning}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetTask on a finished run: %v, want ErrConflict", err)
	}
	if err := f.s.FinishRun(f.ctx, run.ID+1000, store.RunSucceeded, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishRun of an unknown run: %v, want ErrNotFound", err)
	}
	if err := f.s.RecordCallbacks(f.ctx, run.ID, cbs[:1]); err != nil {
		t.Fatalf("RecordCallbacks: %v", err)
	}
	if got := f.getRun(t, run.ID); len(got.Callbacks) != 1 || got.Callbacks[0].URL != cbs[0].URL {
		t.Errorf("callbacks after RecordCallbacks = %+v, want the first only", got.Callbacks)
	}
	if err := f.s.RecordCallbacks(f.ctx, run.ID+1000, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordCallbacks of an unknown run: %v, want ErrNotFound", err)
	}
	other := f.createRun(t, "life")
	if err := f.s.RecordCallbacks(f.ctx, other.ID, cbs); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RecordCallbacks of a queued run: %v, want ErrConflict", err)
	}
	if err := f.s.FinishRun(f.ctx, other.ID, store.RunSucceeded, "", nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("FinishRun of a queued run: %v, want ErrConflict", err)
	}
	if err := f.s.SetTask(f.ctx, other.ID, store.TaskRun{Name: "build", Status: store.TaskRunning}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetTask of a queued run: %v, want ErrConflict", err)
	}
}

func sameTasks(got, want []store.TaskRun) error {
	b1, _ := json.Marshal(got)
	b2, _ := json.Marshal(want)
	if string(b1) != string(b2) {
		return fmt.Errorf("tasks =\n%s\nwant\n%s", b1, b2)
	}
	return nil
}

// testFinishEndsTasks: a finished run has no unfinished task left.
func testFinishEndsTasks(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(smallJob("ends"), provenance("git-main", "c1")))
	run := f.createRun(t, "ends")
	f.claim(t, 1)
	if err := f.s.SetTask(f.ctx, run.ID, store.TaskRun{Name: "build", Status: store.TaskRunning, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.FinishRun(f.ctx, run.ID, store.RunCancelled, "cancelled", nil); err != nil {
		t.Fatal(err)
	}
	got := f.getRun(t, run.ID)
	if len(got.Tasks) != 2 {
		t.Fatalf("tasks = %+v", got.Tasks)
	}
	build, test := got.Tasks[0], got.Tasks[1]
	if build.Status != store.TaskFailed || build.Error == "" || build.FinishedAt == nil {
		t.Errorf("running task after FinishRun = %+v, want failed with an error and a finish time", build)
	}
	if test.Status != store.TaskCancelled || test.FinishedAt == nil {
		t.Errorf("pending task after FinishRun = %+v, want cancelled with a finish time", test)
	}
}

func testRequestCancel(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(runJob("cancel", 5, schema.ConcurrencyQueue), provenance("git-main", "c1")))
	queued := f.createRun(t, "cancel")
	running := f.createRun(t, "cancel")
	if _, err := f.s.RequestCancel(f.ctx, queued.ID); err != nil {
		t.Fatal(err)
	}
	got := f.getRun(t, queued.ID)
	wantStatus(t, got, store.RunCancelled)
	if got.FinishedAt == nil || got.StartedAt != nil || got.Error == "" || got.CancelRequested {
		t.Errorf("cancelled queued run = %+v: want finished, never started, with an error", got)
	}
	if _, err := f.s.RequestCancel(f.ctx, queued.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RequestCancel of a cancelled run: %v, want ErrConflict", err)
	}
	if claimed := f.claim(t, 5); len(claimed) != 1 || claimed[0].ID != running.ID {
		t.Fatalf("ClaimRuns = %v, want run %d only (the other was cancelled)", runIDs(claimed), running.ID)
	}

	ids := []int64{queued.ID, running.ID, running.ID + 1000}
	if got, err := f.s.CancelRequested(f.ctx, ids); err != nil || len(got) != 0 {
		t.Errorf("CancelRequested before the request = %v, %v; want none", got, err)
	}
	for range 2 { // asking twice is fine
		got, err := f.s.RequestCancel(f.ctx, running.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunRunning || !got.CancelRequested || got.FinishedAt != nil {
			t.Errorf("RequestCancel of a running run = %+v, want running with cancelRequested", got)
		}
	}
	if got, err := f.s.CancelRequested(f.ctx, ids); err != nil || fmt.Sprint(got) != fmt.Sprint([]int64{running.ID}) {
		t.Errorf("CancelRequested = %v, %v; want [%d]", got, err, running.ID)
	}
	if got, err := f.s.CancelRequested(f.ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("CancelRequested(nil) = %v, %v", got, err)
	}
	f.finish(t, running.ID, store.RunCancelled)
	if got := f.getRun(t, running.ID); got.Status != store.RunCancelled || !got.CancelRequested {
		t.Errorf("cancelled running run = %+v, want cancelled, cancelRequested kept", got)
	}
	if _, err := f.s.RequestCancel(f.ctx, running.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RequestCancel of a finished run: %v, want ErrConflict", err)
	}
	if _, err := f.s.RequestCancel(f.ctx, running.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RequestCancel of an unknown run: %v, want ErrNotFound", err)
	}
}

func testStrategyQueue(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(runJob("queue", 1, schema.ConcurrencyQueue), provenance("git-main", "c1")))
	var runs []store.Run
	for range 3 {
		r := f.createRun(t, "queue")
		wantStatus(t, r, store.RunQueued)
		runs = append(runs, r)
	}
	for i, r := range runs {
		claimed := f.claim(t, 10)
		if len(claimed) != 1 || claimed[0].ID != r.ID {
			t.Fatalf("claim %d = %v, want [%d] (oldest first, one at a time)", i, runIDs(claimed), r.ID)
		}
		if more := f.claim(t, 10); len(more) != 0 {
			t.Fatalf("claim while run %d runs = %v, want none", r.ID, runIDs(more))
		}
		f.finish(t, r.ID, store.RunSucceeded)
	}
}

func testStrategySkipAndFail(t *testing.T, backend string) {
	for _, tc := range []struct {
		strategy string
		want     store.RunStatus
	}{
		{schema.ConcurrencySkip, store.RunSkipped},
		{schema.ConcurrencyFail, store.RunFailed},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			f := setup(t, backend)
			alias := "over-" + tc.strategy
			f.apply(t, create(runJob(alias, 2, tc.strategy), provenance("git-main", "c1")))
			first, second := f.createRun(t, alias), f.createRun(t, alias)
			wantStatus(t, first, store.RunQueued)
			wantStatus(t, second, store.RunQueued)
			over := f.createRun(t, alias)
			wantStatus(t, over, tc.want)
			now := f.clock.Now().UTC().Truncate(time.Microsecond)
			if over.FinishedAt == nil || !over.FinishedAt.Equal(now) || over.StartedAt != nil ||
				!strings.Contains(over.Error, "maxRuns 2") || !strings.Contains(over.Error, tc.strategy) {
				t.Errorf("run over the limit = %+v: want finished now, never started, an error naming maxRuns 2 and %s", over, tc.strategy)
			}
			if got := f.getRun(t, over.ID); got.Status != tc.want || got.Tasks != nil {
				t.Errorf("GetRun = %+v, want %s without tasks", got, tc.want)
			}
			// Running runs count too.
			f.claim(t, 1)
			wantStatus(t, f.createRun(t, alias), tc.want)
			// Room again once one ends.
			f.finish(t, first.ID, store.RunSucceeded)
			third := f.createRun(t, alias)
			wantStatus(t, third, store.RunQueued)
			want := []int64{second.ID, third.ID}
			if claimed := f.claim(t, 10); fmt.Sprint(runIDs(claimed)) != fmt.Sprint(want) {
				t.Errorf("ClaimRuns = %v, want %v: a skipped or failed run is never claimed", runIDs(claimed), want)
			}
		})
	}
}

func testStrategyReplace(t *testing.T, backend string) {
	t.Run("maxRuns 1", func(t *testing.T) {
		f := setup(t, backend)
		f.apply(t, create(runJob("refresh", 1, schema.ConcurrencyReplace), provenance("git-main", "c1")))
		r1 := f.createRun(t, "refresh")
		f.claim(t, 1)
		r2 := f.createRun(t, "refresh")
		wantStatus(t, r2, store.RunQueued)
		if got := f.getRun(t, r1.ID); got.Status != store.RunRunning || !got.CancelRequested {
			t.Fatalf("running run after a replace = %+v, want running with cancelRequested", got)
		}
		r3 := f.createRun(t, "refresh")
		wantStatus(t, r3, store.RunQueued)
		got := f.getRun(t, r2.ID)
		if got.Status != store.RunCancelled || got.FinishedAt == nil || !strings.Contains(got.Error, fmt.Sprint(r3.ID)) {
			t.Errorf("queued run after a replace = %+v, want cancelled, replaced by %d", got, r3.ID)
		}
		if claimed := f.claim(t, 10); len(claimed) != 0 {
			t.Errorf("ClaimRuns while the replaced run still runs = %v, want none", runIDs(claimed))
		}
		f.finish(t, r1.ID, store.RunCancelled)
		if claimed := f.claim(t, 10); len(claimed) != 1 || claimed[0].ID != r3.ID {
			t.Errorf("ClaimRuns = %v, want [%d]", runIDs(claimed), r3.ID)
		}
	})
	t.Run("maxRuns 2", func(t *testing.T) {
		f := setup(t, backend)
		f.apply(t, create(runJob("refresh", 2, schema.ConcurrencyReplace), provenance("git-main", "c1")))
		r1 := f.createRun(t, "refresh")
		f.claim(t, 1)
		// Below the limit, replace queues and cancels nothing.
		r2 := f.createRun(t, "refresh")
		if got := f.getRun(t, r1.ID); got.CancelRequested {
			t.Fatalf("a run below maxRuns asked run %d to cancel", r1.ID)
		}
		f.claim(t, 1)
		// At the limit: only the oldest running run makes room.
		f.createRun(t, "refresh")
		if got := f.getRun(t, r1.ID); !got.CancelRequested {
			t.Errorf("oldest running run %d not asked to cancel", r1.ID)
		}
		if got := f.getRun(t, r2.ID); got.CancelRequested {
			t.Errorf("second running run %d asked to cancel; one is enough for maxRuns 2", r2.ID)
		}
	})
}

func testClaimRespectsMaxRuns(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t,
		create(runJob("wide", 2, schema.ConcurrencyQueue), provenance("git-main", "c1")),
		create(runJob("narrow", 1, schema.ConcurrencyQueue), provenance("git-main", "c1")),
	)
	var wide []store.Run
	for range 5 {
		wide = append(wide, f.createRun(t, "wide"))
	}
	narrow := []store.Run{f.createRun(t, "narrow"), f.createRun(t, "narrow")}

	if got, err := f.s.ClaimRuns(f.ctx, 0); err != nil || got != nil {
		t.Errorf("ClaimRuns(0) = %v, %v; want nothing", got, err)
	}
	if got := f.claim(t, 1); fmt.Sprint(runIDs(got)) != fmt.Sprint([]int64{wide[0].ID}) {
		t.Errorf("ClaimRuns(1) = %v, want [%d]", runIDs(got), wide[0].ID)
	}
	// The busy job does not hold back the other job's newer runs.
	want := []int64{wide[1].ID, narrow[0].ID}
	if got := f.claim(t, 10); fmt.Sprint(runIDs(got)) != fmt.Sprint(want) {
		t.Errorf("ClaimRuns(10) = %v, want %v", runIDs(got), want)
	}
	if got := f.claim(t, 10); len(got) != 0 {
		t.Errorf("ClaimRuns at every limit = %v, want none", runIDs(got))
	}
	f.finish(t, wide[0].ID, store.RunSucceeded)
	f.finish(t, narrow[0].ID, store.RunFailed)
	want = []int64{wide[2].ID, narrow[1].ID}
	if got := f.claim(t, 10); fmt.Sprint(runIDs(got)) != fmt.Sprint(want) {
		t.Errorf("ClaimRuns after two ended = %v, want %v", runIDs(got), want)
	}
	running, err := f.s.ListRuns(f.ctx, store.RunFilter{Status: store.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range running {
		count[r.JobAlias]++
	}
	if count["wide"] != 2 || count["narrow"] != 1 {
		t.Errorf("running runs = %v, want wide 2, narrow 1", count)
	}
}

// testClaimUsesPinnedMaxRuns: a queued run starts under the maxRuns of the
// version it pinned.
func testClaimUsesPinnedMaxRuns(t *testing.T, backend string) {
	f := setup(t, backend)
	v1 := f.apply(t, create(runJob("grow", 1, schema.ConcurrencyQueue), provenance("git-main", "c1")))[0]
	old1, old2 := f.createRun(t, "grow"), f.createRun(t, "grow")
	f.apply(t, update(v1, runJob("grow", 3, schema.ConcurrencyQueue), provenance("git-main", "c2")))
	fresh := f.createRun(t, "grow")
	// old1 starts (nothing runs); old2 may not (version 1 allows one); fresh may (version 2 allows three).
	want := []int64{old1.ID, fresh.ID}
	if got := f.claim(t, 10); fmt.Sprint(runIDs(got)) != fmt.Sprint(want) {
		t.Errorf("ClaimRuns = %v, want %v (run %d waits under version 1's maxRuns)", runIDs(got), want, old2.ID)
	}
}

// testConcurrentCreateRunSkip: triggers racing on two stores (two agents) on
// one database never put more than maxRuns runs in flight.
func testConcurrentCreateRunSkip(t *testing.T, backend string) {
	for _, maxRuns := range []int{1, 3} {
		t.Run(fmt.Sprintf("maxRuns %d", maxRuns), func(t *testing.T) {
			f := setupAgents(t, backend)
			j := runJob("nightly", maxRuns, schema.ConcurrencySkip)
			if _, err := f.a.ApplyChanges(f.ctx, []store.Change{create(j, provenance("git-main", "c1"))}); err != nil {
				t.Fatal(err)
			}
			const n = 12
			var wg sync.WaitGroup
			start := make(chan struct{})
			results := make(chan store.Run, n)
			for i := range n {
				s := f.a
				if i%2 == 1 {
					s = f.b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := s.CreateRun(f.ctx, store.NewRun{JobAlias: "nightly", Trigger: schema.TriggerCron, Actor: fmt.Sprint("agent-", i%2)})
					if err != nil {
						t.Errorf("CreateRun: %v", err)
						return
					}
					results <- r
				}()
			}
			close(start)
			wg.Wait()
			close(results)
			count := map[store.RunStatus]int{}
			for r := range results {
				count[r.Status]++
			}
			if count[store.RunQueued] != maxRuns || count[store.RunSkipped] != n-maxRuns || len(count) != 2 {
				t.Errorf("statuses of %d concurrent runs = %v, want %d queued and %d skipped", n, count, maxRuns, n-maxRuns)
			}
			listed, err := f.b.ListRuns(f.ctx, store.RunFilter{Status: store.RunQueued})
			if err != nil || len(listed) != maxRuns {
				t.Errorf("queued runs in the database = %d (%v), want %d", len(listed), err, maxRuns)
			}
		})
	}
}

// testConcurrentClaimRuns: claimers on two stores race to start and finish
// the runs of a job with maxRuns 2; at no point do more than two run.
func testConcurrentClaimRuns(t *testing.T, backend string) {
	const maxRuns, total, claimers = 2, 16, 4
	f := setupAgents(t, backend)
	j := runJob("deploy", maxRuns, schema.ConcurrencyQueue)
	if _, err := f.a.ApplyChanges(f.ctx, []store.Change{create(j, provenance("git-main", "c1"))}); err != nil {
		t.Fatal(err)
	}
	for range total {
		if _, err := f.a.CreateRun(f.ctx, store.NewRun{JobAlias: "deploy", Trigger: schema.TriggerManual}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	// inFlight counts runs between a claim's commit and the start of their
	// FinishRun, so it never exceeds the database's count of running runs.
	var inFlight, peak, finished atomic.Int64
	var wg sync.WaitGroup
	for i := range claimers {
		s := f.a
		if i%2 == 1 {
			s = f.b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for finished.Load() < total && ctx.Err() == nil {
				runs, err := s.ClaimRuns(ctx, 3)
				if err != nil {
					t.Errorf("ClaimRuns: %v", err)
					return
				}
				n := inFlight.Add(int64(len(runs)))
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Millisecond)
				for _, r := range runs {
					inFlight.Add(-1)
					if err := s.FinishRun(ctx, r.ID, store.RunSucceeded, "", nil); err != nil {
						t.Errorf("FinishRun(%d): %v", r.ID, err)
						return
					}
					finished.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > maxRuns || p < 1 {
		t.Errorf("peak of runs in flight = %d, want 1..%d", p, maxRuns)
	}
	done, err := f.a.ListRuns(f.ctx, store.RunFilter{Status: store.RunSucceeded, Limit: 100})
	if err != nil || len(done) != total {
		t.Errorf("succeeded runs = %d (%v), want %d: every run claimed exactly once", len(done), err, total)
	}
}

func testInterruptRuns(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(runJob("busy", 3, schema.ConcurrencyQueue), provenance("git-main", "c1")))
	r1, r2, r3 := f.createRun(t, "busy"), f.createRun(t, "busy"), f.createRun(t, "busy")
	f.claim(t, 2)
	f.finish(t, r2.ID, store.RunSucceeded)
	r4 := f.createRun(t, "busy")
	f.claim(t, 1) // r3
	zero := 0
	for _, st := range []store.TaskRun{
		{Name: "build", Status: store.TaskSucceeded, Attempts: 1, ExitCode: &zero},
		{Name: "test", Status: store.TaskRunning, Attempts: 1},
	} {
		if err := f.s.SetTask(f.ctx, r1.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	const msg = "interrupted: the agent running it stopped"
	n, err := f.s.InterruptRuns(f.ctx, msg)
	if err != nil || n != 2 {
		t.Fatalf("InterruptRuns = %d, %v; want 2", n, err)
	}
	got := f.getRun(t, r1.ID)
	wantStatus(t, got, store.RunFailed)
	if got.Error != msg || got.FinishedAt == nil {
		t.Errorf("interrupted run = %+v, want error %q and finished", got, msg)
	}
	build, test := got.Tasks[0], got.Tasks[1]
	if build.Status != store.TaskSucceeded || test.Status != store.TaskFailed || test.Error != msg || test.FinishedAt == nil {
		t.Errorf("tasks of the interrupted run = %+v, want build succeeded, test failed with the message", got.Tasks)
	}
	got = f.getRun(t, r3.ID)
	if got.Status != store.RunFailed || got.Tasks[0].Status != store.TaskCancelled || got.Tasks[1].Status != store.TaskCancelled {
		t.Errorf("run %d = %+v, want failed with its pending tasks cancelled", r3.ID, got)
	}
	wantStatus(t, f.getRun(t, r2.ID), store.RunSucceeded)
	wantStatus(t, f.getRun(t, r4.ID), store.RunQueued)
	if n, err := f.s.InterruptRuns(f.ctx, msg); err != nil || n != 0 {
		t.Errorf("second InterruptRuns = %d, %v; want 0", n, err)
	}
	if err := f.s.SetTask(f.ctx, r1.ID, store.TaskRun{Name: "test", Status: store.TaskSucceeded}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetTask of the old executor after the interrupt: %v, want ErrConflict", err)
	}
}

func testListRuns(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t,
		create(runJob("a", 1, schema.ConcurrencySkip), provenance("git-main", "c1")),
		create(runJob("b", 100, schema.ConcurrencyQueue), provenance("git-main", "c1")),
	)
	var ids []int64 // creation order
	statuses := map[int64]store.RunStatus{}
	for i := range 60 {
		alias := "b"
		if i%4 == 0 {
			alias = "a" // the first is queued, the rest skipped
		}
		r := f.createRun(t, alias)
		ids = append(ids, r.ID)
		statuses[r.ID] = r.Status
	}
	list := func(filter store.RunFilter) []int64 {
		t.Helper()
		runs, err := f.s.ListRuns(f.ctx, filter)
		if err != nil {
			t.Fatalf("ListRuns(%+v): %v", filter, err)
		}
		for _, r := range runs {
			if r.Tasks != nil {
				t.Errorf("ListRuns filled the tasks of run %d", r.ID)
			}
		}
		return runIDs(runs)
	}
	newest := func(n int, keep func(id int64) bool) []int64 {
		var out []int64
		for i := len(ids) - 1; i >= 0 && len(out) < n; i-- {
			if keep(ids[i]) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	all := func(int64) bool { return true }
	tests := []struct {
		name   string
		filter store.RunFilter
		want   []int64
	}{
		{"default limit", store.RunFilter{}, newest(store.DefaultRunLimit, all)},
		{"limit", store.RunFilter{Limit: 3}, newest(3, all)},
		{"over the maximum", store.RunFilter{Limit: store.MaxRunLimit + 1}, newest(100, all)},
		{"next page", store.RunFilter{Limit: 5, BeforeID: ids[10]}, newest(5, func(id int64) bool { return id < ids[10] })},
		{"job", store.RunFilter{JobAlias: "a", Limit: 100}, newest(100, func(id int64) bool { return slices.Index(ids, id)%4 == 0 })},
		{"status", store.RunFilter{Status: store.RunSkipped, Limit: 100}, newest(100, func(id int64) bool { return statuses[id] == store.RunSkipped })},
		{"job and status", store.RunFilter{JobAlias: "a", Status: store.RunQueued}, []int64{ids[0]}},
		{"unknown job", store.RunFilter{JobAlias: "zzz"}, nil},
	}
	for _, tc := range tests {
		if got := list(tc.filter); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: ListRuns(%+v) = %v, want %v", tc.name, tc.filter, got, tc.want)
		}
	}
	if _, err := f.s.ListRuns(f.ctx, store.RunFilter{Status: "done"}); err == nil {
		t.Errorf("ListRuns with an unknown status succeeded")
	}
}

func testJobByHTTPPath(t *testing.T, backend string) {
	f := setup(t, backend)
	httpJob := func(alias, path string) *schema.Job {
		j := smallJob(alias)
		j.Trigger = schema.Trigger{Type: schema.TriggerHTTP, Configuration: schema.TriggerConfiguration{
			Path: path, Secret: "secret://env/HOOK", SignatureScheme: schema.SignatureHMACSHA256,
		}}
		schema.Normalize(j)
		return j
	}
	jobs := f.apply(t,
		create(httpJob("deploy", "/hooks/deploy"), provenance("git-main", "c1")),
		create(httpJob("old", "/hooks/old"), provenance("git-main", "c1")),
		create(genJob("cron", 1), provenance("git-main", "c1")),
	)
	got, err := f.s.JobByHTTPPath(f.ctx, "/hooks/deploy")
	if err != nil || got.ID != jobs[0].ID || got.Alias != "deploy" || len(got.Spec) == 0 {
		t.Fatalf("JobByHTTPPath(/hooks/deploy) = %+v, %v; want job deploy with its spec", got, err)
	}
	f.apply(t, remove(jobs[1]))
	for _, path := range []string{"/hooks/old", "/hooks/none", "", "*/15 * * * *"} {
		if _, err := f.s.JobByHTTPPath(f.ctx, path); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("JobByHTTPPath(%q) error = %v, want ErrNotFound", path, err)
		}
	}
	// Two sources may each apply a job on one path: refuse to guess.
	f.apply(t, create(httpJob("deploy-copy", "/hooks/deploy"), provenance("git-other", "c1")))
	if _, err := f.s.JobByHTTPPath(f.ctx, "/hooks/deploy"); !errors.Is(err, store.ErrConflict) ||
		!strings.Contains(err.Error(), "deploy-copy") {
		t.Errorf("JobByHTTPPath of a path two jobs have: %v, want ErrConflict naming both", err)
	}
}

// testRunsPurgeCascade: a soft delete keeps the runs; purging the job
// removes them and their tasks.
func testRunsPurgeCascade(t *testing.T, backend string) {
	f := setup(t, backend)
	jobs := f.apply(t,
		create(smallJob("purged"), provenance("git-main", "c1")),
		create(smallJob("kept"), provenance("git-main", "c1")),
	)
	gone := f.createRun(t, "purged")
	f.claim(t, 10)
	kept := f.createRun(t, "kept")
	f.apply(t, remove(jobs[0]))
	if got := f.getRun(t, gone.ID); len(got.Tasks) != 2 {
		t.Fatalf("run of a soft-deleted job = %+v, want it kept with its tasks", got)
	}
	if n, err := f.s.PurgeDeleted(f.ctx, f.clock.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("PurgeDeleted = %d, %v; want 1", n, err)
	}
	if _, err := f.s.GetRun(f.ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of a purged job's run: %v, want ErrNotFound", err)
	}
	runs, err := f.s.ListRuns(f.ctx, store.RunFilter{})
	if err != nil || fmt.Sprint(runIDs(runs)) != fmt.Sprint([]int64{kept.ID}) {
		t.Errorf("ListRuns after the purge = %v, %v; want [%d]", runIDs(runs), err, kept.ID)
	}
	// A new job on the alias starts its history afresh.
	f.apply(t, create(smallJob("purged"), provenance("git-main", "c2")))
	if r := f.createRun(t, "purged"); r.JobVersion != 1 || r.ID <= kept.ID {
		t.Errorf("run of the re-created job = %+v, want version 1 and a new id", r)
	}
}

// runWrites are the fenced writes, each under ctx, for the fencing tests.
func runWrites(s *store.Store, ctx context.Context, runID, queuedID int64) map[string]func() error {
	return map[string]func() error{
		"CreateRun": func() error {
			_, err := s.CreateRun(ctx, store.NewRun{JobAlias: "fenced", Trigger: schema.TriggerCron})
			return err
		},
		"ClaimRuns": func() error { _, err := s.ClaimRuns(ctx, 10); return err },
		"SetTask": func() error {
			return s.SetTask(ctx, runID, store.TaskRun{Name: "build", Status: store.TaskRunning})
		},
		"FinishRun":       func() error { return s.FinishRun(ctx, runID, store.RunSucceeded, "", nil) },
		"RecordCallbacks": func() error { return s.RecordCallbacks(ctx, runID, nil) },
		"RequestCancel":   func() error { _, err := s.RequestCancel(ctx, queuedID); return err },
		"InterruptRuns":   func() error { _, err := s.InterruptRuns(ctx, "new leader"); return err },
	}
}

// fencedRuns creates job "fenced" (maxRuns 1) with a running and a queued run.
func fencedRuns(t *testing.T, s *store.Store, ctx context.Context) (running, queued store.Run) {
	t.Helper()
	if _, err := s.ApplyChanges(ctx, []store.Change{create(runJob("fenced", 1, schema.ConcurrencyQueue), provenance("git-main", "c1"))}); err != nil {
		t.Fatal(err)
	}
	running, err := s.CreateRun(ctx, store.NewRun{JobAlias: "fenced", Trigger: schema.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if claimed, err := s.ClaimRuns(ctx, 10); err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimRuns under the lease = %v, %v", claimed, err)
	}
	queued, err = s.CreateRun(ctx, store.NewRun{JobAlias: "fenced", Trigger: schema.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	return running, queued
}

// assertFenced checks that every write under a refused lease fails with
// ErrNotLeader and that nothing changed.
func assertFenced(t *testing.T, s *store.Store, ctx, lctx context.Context, running, queued store.Run) {
	t.Helper()
	before, err := s.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range runWrites(s, lctx, running.ID, queued.ID) {
		if err := call(); !errors.Is(err, store.ErrNotLeader) {
			t.Errorf("%s under a refused lease: %v, want ErrNotLeader", name, err)
		}
	}
	after, err := s.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused writes changed the runs:\n%+v\nwant\n%+v", after, before)
	}
	got, err := s.GetRun(ctx, running.ID)
	if err != nil || got.Tasks[0].Status != store.TaskPending {
		t.Errorf("refused SetTask changed the task: %+v, %v", got.Tasks, err)
	}
}

func testRunsFenceEndedLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	first := lead(t, f.ctx, f.a, leaderOpts("agent-a"))
	lctx := store.WithLease(f.ctx, first)
	running, queued := fencedRuns(t, f.a, lctx)
	first.Resign()
	assertFenced(t, f.a, f.ctx, lctx, running, queued)

	second := lead(t, f.ctx, f.b, leaderOpts("agent-b"))
	if n, err := f.b.InterruptRuns(store.WithLease(f.ctx, second), "leader changed"); err != nil || n != 1 {
		t.Errorf("InterruptRuns under the new lease = %d, %v; want 1", n, err)
	}
}

func testRunsFenceSupersededLease(t *testing.T, backend string) {
	f := setupAgents(t, backend)
	opts := leaderOpts("agent-a")
	opts.CheckInterval = time.Hour
	stale := lead(t, f.ctx, f.a, opts)
	lctx := store.WithLease(f.ctx, stale)
	running, queued := fencedRuns(t, f.a, lctx)
	switch backend {
	case "postgres":
		terminateLeader(t, f.url)
	case "sqlite":
		if err := os.Remove(strings.TrimPrefix(f.url, "sqlite://") + ".leader-" + leaderName + ".lock"); err != nil {
			t.Fatal(err)
		}
	}
	successor := lead(t, f.ctx, f.b, leaderOpts("agent-b"))
	select {
	case <-stale.Done():
		t.Fatal("the stale lease noticed its loss; the test needs it not to")
	default:
	}
	assertFenced(t, f.a, f.ctx, lctx, running, queued)
	if n, err := f.b.InterruptRuns(store.WithLease(f.ctx, successor), "leader changed"); err != nil || n != 1 {
		t.Errorf("InterruptRuns under the successor's lease = %d, %v; want 1", n, err)
	}
	stale.Resign()
}

// testRunTextIsStorable: container output may hold NUL bytes and invalid
// UTF-8, which PostgreSQL's text refuses; the store replaces them.
func testRunTextIsStorable(t *testing.T, backend string) {
	f := setup(t, backend)
	f.apply(t, create(smallJob("binary"), provenance("git-main", "c1")))
	run := f.createRun(t, "binary")
	f.claim(t, 1)
	raw := "line\x00one\n\xff\xfeend ✓"
	want := "line\uFFFDone\n\uFFFDend ✓"
	if err := f.s.SetTask(f.ctx, run.ID, store.TaskRun{Name: "build", Status: store.TaskFailed, Output: raw, Error: raw}); err != nil {
		t.Fatalf("SetTask with binary output: %v", err)
	}
	cbs := []store.CallbackResult{{URL: "https://hooks.example.com", Event: "run.failed", Error: raw, Attempts: 1}}
	if err := f.s.FinishRun(f.ctx, run.ID, store.RunFailed, raw, cbs); err != nil {
		t.Fatalf("FinishRun with binary text: %v", err)
	}
	got := f.getRun(t, run.ID)
	if got.Tasks[0].Output != want || got.Tasks[0].Error != want || got.Error != want || got.Callbacks[0].Error != want {
		t.Errorf("stored text = output %q, task error %q, run error %q, callback error %q; want %q",
			got.Tasks[0].Output, got.Tasks[0].Error, got.Error, got.Callbacks[0].Error, want)
	}
}

func testRunsClosedStore(t *testing.T, backend string) {
	ctx := t.Context()
	s, err := store.Open(ctx, storetest.URL(t, backend), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := runWrites(s, ctx, 1, 2)
	calls["GetRun"] = func() error { _, err := s.GetRun(ctx, 1); return err }
	calls["ListRuns"] = func() error { _, err := s.ListRuns(ctx, store.RunFilter{}); return err }
	calls["CancelRequested"] = func() error { _, err := s.CancelRequested(ctx, []int64{1}); return err }
	calls["JobByHTTPPath"] = func() error { _, err := s.JobByHTTPPath(ctx, "/x"); return err }
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v, want ErrUnavailable", name, err)
		}
	}
}

// testInstallationID: every database gets its own random id at migration,
// and keeps it when reopened (and migrated again).
func testInstallationID(t *testing.T, backend string) {
	ctx := context.Background()
	url := storetest.URL(t, backend)
	if backend == "sqlite" {
		url = "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	}
	open := func() string {
		s, err := store.Open(ctx, url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		id, err := s.InstallationID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := open()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(first) {
		t.Fatalf("InstallationID = %q, want 32 lower-case hex digits", first)
	}
	if again := open(); again != first {
		t.Errorf("reopened: InstallationID = %q, want %q", again, first)
	}
	other, err := storetest.Open(t, backend).InstallationID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Errorf("two databases share the installation id %q", first)
	}
}

// testClaimFailsUnreadableSpec: a queued run whose pinned spec this agent
// cannot read (here: a concurrency strategy from a newer agent) is failed
// with the reason, and the other job's run is claimed as usual.
func testClaimFailsUnreadableSpec(t *testing.T, backend string) {
	ctx := context.Background()
	url := storetest.URL(t, backend)
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, alias := range []string{"future", "today"} {
		j := runJob(alias, 1, schema.ConcurrencyQueue)
		if _, err := s.ApplyChanges(ctx, []store.Change{create(j, provenance("git-main", "c1"))}); err != nil {
			t.Fatal(err)
		}
	}
	future, err := s.CreateRun(ctx, store.NewRun{JobAlias: "future", Trigger: schema.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	today, err := s.CreateRun(ctx, store.NewRun{JobAlias: "today", Trigger: schema.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	driver, dsn := "pgx", url
	if backend == "sqlite" {
		driver, dsn = "sqlite", strings.TrimPrefix(url, "sqlite://")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `UPDATE job_versions SET spec = replace(spec, '"strategy":"queue"', '"strategy":"teleport"') WHERE job_id = $1`
	if backend == "postgres" {
		q = `UPDATE job_versions SET spec = replace(spec::text, '"strategy":"queue"', '"strategy":"teleport"')::json WHERE job_id = $1`
	}
	if res, err := db.ExecContext(ctx, q, future.JobID); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("corrupted %d version rows, want 1", n)
	}

	claimed, err := s.ClaimRuns(ctx, 10)
	if err != nil {
		t.Fatalf("ClaimRuns with one unreadable run: %v", err)
	}
	if len(claimed) != 1 || claimed[0].ID != today.ID {
		t.Fatalf("claimed %v, want only run %d of today", runIDs(claimed), today.ID)
	}
	got, err := s.GetRun(ctx, future.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.RunFailed || got.FinishedAt == nil || !strings.Contains(got.Error, `unknown concurrency strategy "teleport"`) {
		t.Errorf("the unreadable run: %s %q, want failed naming the strategy", got.Status, got.Error)
	}
}
