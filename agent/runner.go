package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/store"
)

// runStore is what the runner needs from the store.
type runStore interface {
	ClaimRuns(ctx context.Context, limit int) ([]store.Run, error)
	SetTask(ctx context.Context, runID int64, t store.TaskRun) error
	FinishRun(ctx context.Context, runID int64, status store.RunStatus, errMsg string, cbs []store.CallbackResult) error
	RecordCallbacks(ctx context.Context, runID int64, cbs []store.CallbackResult) error
	CancelRequested(ctx context.Context, ids []int64) ([]int64, error)
	InterruptRuns(ctx context.Context, msg string) (int, error)
	GetJobVersion(ctx context.Context, id, version int64) (store.Job, error)
}

// resolver resolves secret references and redacts the values it handed out.
type resolver interface {
	executor.Resolver
	Redact(s string) string
}

var (
	errCancelRequested = errors.New("cancelled on request")
	errAgentStopping   = errors.New("interrupted: the agent running it stopped")
)

// runner executes queued runs while this agent leads: it claims them from
// the store (so a run created through any agent is picked up), executes
// each with the executor, sends its callbacks and records the outcome.
//
// Dispatch is the store's queue: a run is a row, claimed by the leader
// under its lease. A run that was running when its agent died is failed
// by the next leader (InterruptRuns), never run twice.
type runner struct {
	cfg      config.Executor
	store    runStore
	engines  map[string]executor.Engine
	cleanup  func(ctx context.Context) (int, error) // removes containers a dead agent left; may be nil
	resolver resolver
	log      *slog.Logger
	wake     chan struct{}
	// retryDelay is the first wait before recording a run's end again
	// while the store is unavailable; it doubles up to maxRetryDelay.
	retryDelay time.Duration

	mu     sync.Mutex
	active map[int64]context.CancelCauseFunc

	finished *prometheus.CounterVec
	running  prometheus.Gauge
	duration prometheus.Histogram
}

func newRunner(cfg config.Executor, st runStore, engines map[string]executor.Engine, res resolver, reg prometheus.Registerer, log *slog.Logger) (*runner, error) {
	r := &runner{
		cfg: cfg, store: st, engines: engines, resolver: res, log: log,
		wake:       make(chan struct{}, 1),
		retryDelay: time.Second,
		active:     map[int64]context.CancelCauseFunc{},
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "caesium_runs_finished_total",
			Help: "Runs this agent finished, by status.",
		}, []string{"status"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "caesium_runs_running",
			Help: "Runs this agent is executing now.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "caesium_run_duration_seconds",
			Help:    "Time from a run's claim to its recorded end (before its callbacks are sent).",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{r.finished, r.running, r.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Queued wakes the runner: a run was just queued through this agent.
func (r *runner) Queued() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run executes runs until ctx ends; ctx carries the leader's lease, so
// every state change is fenced. On return every run it started has ended.
func (r *runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	tookOver := false
	for {
		if !tookOver {
			tookOver = r.takeOver(ctx)
		}
		if tookOver {
			r.claim(ctx, &wg)
			r.checkCancels(ctx)
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for _, cancel := range r.active {
				cancel(errAgentStopping)
			}
			r.mu.Unlock()
			return nil
		case <-r.wake:
		case <-tick.C:
		}
	}
}

// takeOver fails the runs a previous leader left running and removes the
// containers it left, and reports whether the runs were failed. Until they
// are, nothing is claimed: they hold their jobs' concurrency slots, and
// failing them later would fail this leader's own runs as well.
func (r *runner) takeOver(ctx context.Context) bool {
	n, err := r.store.InterruptRuns(ctx, errAgentStopping.Error())
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("fail interrupted runs; retrying", "err", err)
		}
		return false
	}
	if n > 0 {
		r.log.Warn("failed runs left running by a previous leader", "runs", n)
	}
	if r.cleanup != nil {
		if n, err := r.cleanup(ctx); err != nil {
			r.log.Warn("remove leftover containers", "err", err)
		} else if n > 0 {
			r.log.Info("removed leftover containers", "containers", n)
		}
	}
	return true
}

func (r *runner) claim(ctx context.Context, wg *sync.WaitGroup) {
	r.mu.Lock()
	free := r.cfg.MaxConcurrentRuns - len(r.active)
	r.mu.Unlock()
	if free <= 0 {
		return
	}
	runs, err := r.store.ClaimRuns(ctx, free)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("claim runs", "err", err)
		}
		return
	}
	for _, run := range runs {
		// Not ended by ctx itself, whose cause would read as a plain cancel:
		// Run ends it with errAgentStopping, checkCancels with
		// errCancelRequested.
		rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		r.mu.Lock()
		r.active[run.ID] = cancel
		r.mu.Unlock()
		r.running.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				r.mu.Lock()
				delete(r.active, run.ID)
				r.mu.Unlock()
				r.running.Dec()
				cancel(nil)
				r.Queued() // a slot is free
			}()
			r.execute(ctx, rctx, run)
		}()
	}
}

// checkCancels stops the runs someone asked to cancel, through any agent.
func (r *runner) checkCancels(ctx context.Context) {
	r.mu.Lock()
	ids := make([]int64, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	cancelled, err := r.store.CancelRequested(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("check cancel requests", "err", err)
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range cancelled {
		if cancel, ok := r.active[id]; ok {
			cancel(errCancelRequested)
		}
	}
}

// maxRetryDelay bounds the wait between attempts to record a run's end.
const maxRetryDelay = 30 * time.Second

// execute runs one claimed run to its end and records it; lead is the
// runner's context, which ends with leadership or the agent.
func (r *runner) execute(lead, ctx context.Context, run store.Run) {
	start := time.Now()
	log := r.log.With("run_id", run.ID, "job", run.JobAlias, "version", run.JobVersion)
	// Recording outlives a cancel, but not the lease: the store refuses a
	// write under a lease that is no longer the newest.
	rec := context.WithoutCancel(ctx)
	finish := func(status store.RunStatus, msg string) bool {
		if err := r.finishRun(lead, rec, run.ID, status, msg); err != nil {
			log.Error("record run end", "status", string(status), "err", err)
			return false
		}
		r.finished.WithLabelValues(string(status)).Inc()
		r.duration.Observe(time.Since(start).Seconds())
		log.Info("run finished", "status", string(status), "error", msg, "duration_ms", time.Since(start).Milliseconds())
		return true
	}
	job, err := r.store.GetJobVersion(rec, run.JobID, run.JobVersion)
	if err != nil {
		finish(store.RunFailed, fmt.Sprintf("load job version: %v", err))
		return
	}
	spec, err := job.Decode()
	if err != nil {
		finish(store.RunFailed, err.Error())
		return
	}
	log.Info("run started", "trigger", run.Trigger)
	res := executor.Execute(ctx, run.ID, spec, executor.Options{
		Engines:  r.engines,
		Resolver: r.resolver,
		Redact:   r.resolver.Redact,
		Logger:   log,
		OnTask: func(ts executor.TaskState) {
			if err := r.store.SetTask(rec, run.ID, taskRun(ts)); err != nil {
				log.Warn("record step", "step", ts.Name, "err", err)
			}
		},
	})
	status, msg := store.RunStatus(res.Status), res.Error
	// Only a run the end of ctx interrupted (the executor says cancelled)
	// takes the cause's status: a stop or cancel that arrives after the last
	// step finished changes nothing.
	if res.Status == executor.RunCancelled && errors.Is(context.Cause(ctx), errAgentStopping) {
		status, msg = store.RunFailed, errAgentStopping.Error()
	}
	// The run ends before its callbacks are sent, so slow receivers hold
	// neither the job's concurrency slot nor the run's status.
	if !finish(status, msg) || len(spec.Callbacks) == 0 {
		return
	}
	started := start
	if run.StartedAt != nil {
		started = *run.StartedAt
	}
	cctx, cancel := context.WithTimeout(rec, time.Duration(r.cfg.Callbacks.MaxAttempts)*(r.cfg.Callbacks.Timeout+5*time.Second))
	defer cancel()
	deliveries := executor.SendCallbacks(cctx, spec, executor.RunSummary{
		RunID: run.ID, Job: run.JobAlias, JobVersion: run.JobVersion, Status: string(status), Trigger: run.Trigger,
		Error: msg, StartedAt: started, FinishedAt: time.Now(), Tasks: res.Tasks,
	}, executor.CallbackOptions{
		Resolver: r.resolver, Redact: r.resolver.Redact, Timeout: r.cfg.Callbacks.Timeout,
		MaxAttempts: r.cfg.Callbacks.MaxAttempts, UserAgent: "caesium-agent",
	})
	if len(deliveries) == 0 {
		return
	}
	cbs := make([]store.CallbackResult, len(deliveries))
	for i, d := range deliveries {
		cbs[i] = store.CallbackResult{URL: d.URL, Event: d.Event, StatusCode: d.StatusCode, Attempts: d.Attempts, Error: d.Error, At: d.At}
		if d.Error != "" {
			log.Warn("callback failed", "url", d.URL, "err", d.Error)
		}
	}
	if err := r.store.RecordCallbacks(rec, run.ID, cbs); err != nil {
		log.Warn("record callbacks", "err", err)
	}
}

// finishRun records the end of a run, again and again while the store is
// unavailable and lead lasts: a run left running holds its job's
// concurrency slot until the next leader fails it.
func (r *runner) finishRun(lead, rec context.Context, id int64, status store.RunStatus, msg string) error {
	delay := r.retryDelay
	for {
		err := r.store.FinishRun(rec, id, status, msg, nil)
		if err == nil || !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		r.log.Warn("record run end; retrying", "run_id", id, "in", delay, "err", err)
		select {
		case <-lead.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

func taskRun(ts executor.TaskState) store.TaskRun {
	t := store.TaskRun{
		Name: ts.Name, Position: ts.Position, Status: store.TaskStatus(ts.Status), Attempts: ts.Attempts,
		ExitCode: ts.ExitCode, Error: ts.Error, Output: ts.Output,
	}
	if !ts.StartedAt.IsZero() {
		s := ts.StartedAt
		t.StartedAt = &s
	}
	if !ts.FinishedAt.IsZero() {
		f := ts.FinishedAt
		t.FinishedAt = &f
	}
	return t
}
