package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// fakeRunStore hands out one run of a one-step job and records how it ends;
// onTask sees every step transition the runner records. The store is this
// package's own interface, so the fake exercises the runner against its
// real contract; the real store is behind it in runs_test.go.
type fakeRunStore struct {
	run    store.Run
	job    store.Job
	onTask func(store.TaskRun)

	mu             sync.Mutex
	claimed        bool
	failFinish     int // FinishRun answers ErrUnavailable this many times first
	finishCalls    int
	failInterrupt  int // InterruptRuns answers ErrUnavailable this many times first
	interruptCalls int
	claimedEarly   bool // ClaimRuns was called before InterruptRuns succeeded
	status         store.RunStatus
	errMsg         string
	finished       bool
	recorded       chan struct{} // closed when FinishRun records the run
}

func (f *fakeRunStore) ClaimRuns(context.Context, int) ([]store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.interruptCalls <= f.failInterrupt {
		f.claimedEarly = true
	}
	if f.claimed {
		return nil, nil
	}
	f.claimed = true
	return []store.Run{f.run}, nil
}

func (f *fakeRunStore) SetTask(_ context.Context, _ int64, t store.TaskRun) error {
	if f.onTask != nil {
		f.onTask(t)
	}
	return nil
}

func (f *fakeRunStore) FinishRun(_ context.Context, _ int64, status store.RunStatus, errMsg string, _ []store.CallbackResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finishCalls++; f.finishCalls <= f.failFinish {
		return fmt.Errorf("finish run: %w", store.ErrUnavailable)
	}
	f.status, f.errMsg, f.finished = status, errMsg, true
	close(f.recorded)
	return nil
}

func (f *fakeRunStore) RecordCallbacks(context.Context, int64, []store.CallbackResult) error {
	return nil
}

func (f *fakeRunStore) CancelRequested(_ context.Context, ids []int64) ([]int64, error) {
	return ids, nil
}

func (f *fakeRunStore) InterruptRuns(context.Context, string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.interruptCalls++; f.interruptCalls <= f.failInterrupt {
		return 0, fmt.Errorf("interrupt runs: %w", store.ErrUnavailable)
	}
	return 0, nil
}

func (f *fakeRunStore) GetJobVersion(context.Context, int64, int64) (store.Job, error) {
	return f.job, nil
}

type okEngine struct{}

func (okEngine) Run(context.Context, executor.Task, io.Writer) (int, error) { return 0, nil }

type noSecrets struct{}

func (noSecrets) Resolve(context.Context, string) (string, error) { return "", io.EOF }
func (noSecrets) Redact(s string) string                          { return s }

// setupRunner returns a runner whose store is st, handing out one run of a
// one-step job whose attempts succeed at once.
func setupRunner(t *testing.T, st *fakeRunStore, cfg config.Executor) *runner {
	t.Helper()
	spec, err := json.Marshal(schema.Job{
		APIVersion: "v1", Kind: "Job", Metadata: schema.Metadata{Alias: "one"},
		Steps: []schema.Step{{Name: "only", Engine: schema.EngineDocker, Image: "busybox"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st.run = store.Run{ID: 7, JobID: 1, JobAlias: "one", JobVersion: 1, Status: store.RunRunning, StartedAt: &now}
	st.job = store.Job{ID: 1, Alias: "one", Version: 1, Spec: spec}
	st.recorded = make(chan struct{})
	r, err := newRunner(cfg, st, map[string]executor.Engine{schema.EngineDocker: okEngine{}}, noSecrets{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.retryDelay = time.Millisecond
	return r
}

// TestRunnerLateStop: a cancel request or an agent stop that arrives after
// the run's last step finished (while the runner records it) changes
// nothing: the run keeps the status its steps gave it.
func TestRunnerLateStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stop func(r *runner, id int64)
	}{
		{name: "cancel requested", stop: func(r *runner, _ int64) { r.checkCancels(context.Background()) }},
		{name: "agent stopping", stop: func(r *runner, id int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.active[id](errAgentStopping)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeRunStore{}
			r := setupRunner(t, st, config.Default().Executor)
			st.onTask = func(tr store.TaskRun) {
				if tr.Status == store.TaskSucceeded { // the last step has finished
					tt.stop(r, st.run.ID)
				}
			}
			var wg sync.WaitGroup
			r.claim(t.Context(), &wg)
			wg.Wait()
			st.mu.Lock()
			defer st.mu.Unlock()
			if !st.finished || st.status != store.RunSucceeded {
				t.Errorf("run ended %s %q (finished %v), want succeeded", st.status, st.errMsg, st.finished)
			}
		})
	}
}

// TestRunnerRetriesFinish: a run whose end cannot be recorded at once (the
// database is briefly unavailable) is recorded when it is back, rather than
// left running, holding its job's concurrency slot, until another leader.
func TestRunnerRetriesFinish(t *testing.T) {
	t.Parallel()
	st := &fakeRunStore{failFinish: 2}
	r := setupRunner(t, st, config.Default().Executor)
	var wg sync.WaitGroup
	r.claim(t.Context(), &wg)
	wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.finished || st.status != store.RunSucceeded || st.finishCalls != 3 {
		t.Errorf("run ended %s (finished %v) after %d calls, want succeeded after 3", st.status, st.finished, st.finishCalls)
	}
}

// TestRunnerRetriesInterrupt: a new leader that cannot fail the runs its
// predecessor left running (the database is briefly unavailable) tries
// again, and claims nothing until it has: those runs would hold their
// jobs' concurrency slots, and failing them later would fail its own runs.
func TestRunnerRetriesInterrupt(t *testing.T) {
	t.Parallel()
	st := &fakeRunStore{failInterrupt: 2}
	cfg := config.Default().Executor
	cfg.PollInterval = time.Millisecond
	r := setupRunner(t, st, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-st.recorded:
	case <-time.After(30 * time.Second): // a guard against a hang, not a timing assertion
		t.Error("the run was never recorded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.interruptCalls != 3 || st.claimedEarly {
		t.Errorf("InterruptRuns called %d times (want 3), claimed before it succeeded %v", st.interruptCalls, st.claimedEarly)
	}
}
