package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caesium-io/caesium/schema"
)

// Resolver resolves secret:// references (providers/secrets.Router fits).
//
// Resolve returns the value of ref. Its errors name the reference and never
// contain a value; the executor adds the name of the variable or header.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// TaskState is a step of a run as the executor reports it: the step's
// status, its number of attempts and the outcome of its last attempt.
// Error and Output have been through Options.Redact.
type TaskState struct {
	Name       string    `json:"name"`
	Position   int       `json:"position"` // index of the step in the job
	Status     string    `json:"status"`   // TaskPending ... TaskCancelled
	Attempts   int       `json:"attempts"`
	ExitCode   *int      `json:"exitCode,omitempty"` // nil: the last attempt produced none
	Error      string    `json:"error,omitempty"`
	Output     string    `json:"output,omitempty"` // tail of the last attempt's output
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Result is the outcome of a run: RunSucceeded, RunFailed or RunCancelled,
// and every step in position order.
type Result struct {
	Status string
	Error  string
	Tasks  []TaskState
}

// DefaultOutputLimit is the tail of each attempt's output that is kept.
const DefaultOutputLimit = 64 << 10

// Options configure Execute. Only Engines is required.
type Options struct {
	// Engines by schema engine name (schema.EngineDocker, ...). A step
	// whose engine is missing fails without an attempt.
	Engines map[string]Engine
	// Resolver resolves secret:// env values. nil: such a value fails its
	// step, naming the variable and the reference.
	Resolver Resolver
	// Redact is applied to Output and Error before they leave Execute
	// (result and OnTask). nil: only the attempt's own resolved secret
	// values are scrubbed.
	Redact func(string) string
	// OnTask is called at each task transition: when an attempt starts
	// (status running, Attempts counting up) and when the task reaches its
	// final status (including skipped and cancelled tasks that never ran).
	// Calls are never concurrent, and the calls for one task are in order.
	OnTask func(TaskState)
	// Clock stamps StartedAt and FinishedAt and times retry delays. nil:
	// real time. Timeouts are context deadlines on real time.
	Clock Clock
	// OutputLimit is how many bytes of each attempt's output are kept (the
	// tail). 0: DefaultOutputLimit.
	OutputLimit int
	// Logger receives debug lines per attempt and step, in the group
	// "executor"; the caller adds the run's attributes. nil: discarded.
	Logger *slog.Logger
}

// Execute runs job as the run runID and returns its outcome. It returns
// when every started attempt has ended.
//
// Cancelling ctx cancels the run: running attempts are stopped, nothing new
// starts, and the result is RunCancelled. metadata.runTimeout ends the run
// the same way, with RunFailed. Execute works on a normalized copy of job,
// so a job that skipped schema.Normalize still gets its defaults.
func Execute(ctx context.Context, runID int64, job *schema.Job, opts Options) Result {
	if job == nil {
		return Result{Status: RunFailed, Error: "invalid job: no job"}
	}
	j := job.Clone()
	schema.Normalize(j)
	r := &runner{id: runID, job: j, opts: opts.withDefaults()}
	r.log = r.opts.Logger.WithGroup("executor")
	r.tasks = make([]TaskState, len(j.Steps))
	for i, s := range j.Steps {
		r.tasks[i] = TaskState{Name: s.Name, Position: i, Status: TaskPending}
	}
	d, err := newDAG(j)
	if err != nil {
		now := r.opts.Clock.Now()
		msg := "invalid job: " + err.Error()
		for i := range r.tasks {
			r.finish(i, TaskCancelled, msg, now)
		}
		return Result{Status: RunFailed, Error: msg, Tasks: r.tasks}
	}
	r.dag = d
	return r.run(ctx)
}

func (o Options) withDefaults() Options {
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.OutputLimit <= 0 {
		o.OutputLimit = DefaultOutputLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// runTimeoutError is the cause of the run context when metadata.runTimeout
// expires, which tells a timeout from a cancel.
type runTimeoutError struct{ d time.Duration }

func (e *runTimeoutError) Error() string { return fmt.Sprintf("run timeout %s exceeded", e.d) }

// stepTimeoutError is the cause of an attempt's context when the step's
// timeout expires.
type stepTimeoutError struct{ d time.Duration }

func (e *stepTimeoutError) Error() string { return fmt.Sprintf("timeout %s exceeded", e.d) }

type runner struct {
	id   int64
	job  *schema.Job
	dag  *dag
	opts Options
	log  *slog.Logger

	// tasks is owned by the scheduling goroutine, except that a running
	// task's entry belongs to its worker until the worker reports back.
	tasks []TaskState

	emitMu sync.Mutex
}

type stepDone struct {
	i       int
	ts      TaskState
	stopped bool // the run's end (cancel, run timeout) stopped the step
}

func (r *runner) run(ctx context.Context) Result {
	runCtx := ctx
	if rt := r.job.Metadata.RunTimeout.D(); rt > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, rt, &runTimeoutError{d: rt})
		defer cancel()
	}
	limit := r.job.Metadata.MaxParallelTasks
	status := make([]string, len(r.tasks))
	for i := range status {
		status[i] = TaskPending
	}
	done := make(chan stepDone)
	running := 0
	interrupted := false
	for {
		if runCtx.Err() == nil {
			run, skip := r.dag.decide(status)
			now := r.opts.Clock.Now()
			// Mark every skip first: a step skipped because of another
			// skip in the same pass (in any position order) names it.
			for _, i := range skip {
				status[i] = TaskSkipped
			}
			for _, i := range skip {
				r.finish(i, TaskSkipped, r.dag.skipReason(status, i), now)
			}
			for _, i := range run {
				if limit > 0 && running >= limit {
					break
				}
				status[i] = TaskRunning
				r.tasks[i].Status = TaskRunning
				r.tasks[i].StartedAt = r.opts.Clock.Now()
				running++
				go func(ts TaskState) {
					ts, stopped := r.step(runCtx, ts)
					done <- stepDone{i: i, ts: ts, stopped: stopped}
				}(r.tasks[i])
			}
		}
		if running == 0 {
			break
		}
		res := <-done
		running--
		interrupted = interrupted || res.stopped
		res.ts.FinishedAt = r.opts.Clock.Now()
		r.tasks[res.i] = res.ts
		status[res.i] = res.ts.Status
		r.emit(res.ts)
		r.log.Debug("step finished", slog.String("step", res.ts.Name), slog.String("status", res.ts.Status), slog.Int("attempts", res.ts.Attempts))
	}

	if runCtx.Err() != nil {
		_, msg := r.stopped(runCtx)
		now := r.opts.Clock.Now()
		for i := range r.tasks {
			if r.tasks[i].Status == TaskPending {
				interrupted = true
				r.finish(i, TaskCancelled, msg, now)
			}
		}
	}
	return r.result(runCtx, interrupted)
}

// result derives the run's status. A run that the end of its context
// interrupted (a step stopped, a step never started) is cancelled, or
// failed on a run timeout. Otherwise it failed when any step failed and
// succeeded when none did: skipped steps are fine. A cancel that arrives
// after the last step finished changes nothing.
func (r *runner) result(runCtx context.Context, interrupted bool) Result {
	res := Result{Status: RunSucceeded, Tasks: r.tasks}
	if interrupted {
		status, msg := r.stopped(runCtx)
		res.Status, res.Error = RunCancelled, msg
		if status == TaskFailed {
			res.Status = RunFailed
		}
		return res
	}
	var failed []string
	for _, t := range r.tasks {
		if t.Status == TaskFailed {
			failed = append(failed, t.Name)
		}
	}
	switch {
	case len(failed) == 1:
		res.Status, res.Error = RunFailed, "step "+failed[0]+" failed"
	case len(failed) > 1:
		res.Status, res.Error = RunFailed, "steps "+strings.Join(failed, ", ")+" failed"
	}
	return res
}

// stopped says what a run stop means for a task that it interrupts: a run
// timeout fails it, a cancel cancels it; msg is the reason.
func (r *runner) stopped(runCtx context.Context) (status, msg string) {
	cause := context.Cause(runCtx)
	var rt *runTimeoutError
	if errors.As(cause, &rt) {
		return TaskFailed, rt.Error()
	}
	if cause == nil || cause == context.Canceled {
		return TaskCancelled, "run cancelled"
	}
	return TaskCancelled, "run cancelled: " + r.opts.Redact(cause.Error())
}

// finish gives a task that is not running its final status.
func (r *runner) finish(i int, status, msg string, now time.Time) {
	r.tasks[i].Status = status
	r.tasks[i].Error = msg
	r.tasks[i].FinishedAt = now
	r.emit(r.tasks[i])
}

func (r *runner) emit(ts TaskState) {
	if r.opts.OnTask == nil {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.opts.OnTask(ts)
}

// step runs the attempts of one step and returns its final state; stopped
// reports that the run's end (cancel, run timeout) stopped it.
func (r *runner) step(ctx context.Context, ts TaskState) (_ TaskState, stopped bool) {
	s := &r.job.Steps[ts.Position]
	eng := r.opts.Engines[s.Engine]
	if eng == nil {
		ts.Status = TaskFailed
		ts.Error = fmt.Sprintf("engine %q is not available on this agent", s.Engine)
		return ts, false
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			ts.Status, ts.Error = r.stopped(ctx)
			return ts, true
		}
		ts.Attempts = attempt
		ts.Status = TaskRunning
		ts.ExitCode, ts.Error, ts.Output = nil, "", ""
		r.emit(ts)
		r.log.Debug("attempt started", slog.String("step", s.Name), slog.Int("attempt", attempt))
		a := r.attempt(ctx, eng, s, attempt)
		ts.ExitCode, ts.Error, ts.Output = a.exitCode, a.err, a.output
		switch {
		case a.ok:
			ts.Status = TaskSucceeded
			return ts, false
		case ctx.Err() != nil:
			ts.Status, ts.Error = r.stopped(ctx)
			return ts, true
		case attempt > s.Retries:
			ts.Status = TaskFailed
			return ts, false
		}
		if d := s.RetryDelay.D(); d > 0 {
			select {
			case <-r.opts.Clock.After(d):
			case <-ctx.Done():
				ts.Status, ts.Error = r.stopped(ctx)
				return ts, true
			}
		}
	}
}

type attemptResult struct {
	ok       bool
	exitCode *int
	err      string
	output   string
}

// attempt runs one attempt of step s. The resolved environment exists only
// in the Task handed to the engine; the values are kept just long enough to
// scrub them from the attempt's output and error.
func (r *runner) attempt(ctx context.Context, eng Engine, s *schema.Step, n int) attemptResult {
	env, secrets, err := r.environment(ctx, s, n)
	if err != nil {
		return attemptResult{err: r.clean(err.Error(), secrets)}
	}
	actx := ctx
	if t := s.Timeout.D(); t > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeoutCause(ctx, t, &stepTimeoutError{d: t})
		defer cancel()
	}
	slack := 4 << 10
	for _, v := range secrets {
		slack = max(slack, len(v)+(4<<10))
	}
	out := newTail(r.opts.OutputLimit + slack)
	task := Task{
		RunID:   r.id,
		Job:     r.job.Metadata.Alias,
		Step:    s.Name,
		Attempt: n,
		Image:   s.Image,
		Command: slices.Clone([]string(s.Command)),
		Env:     env,
		Workdir: s.Workdir,
	}
	code, runErr := safeRun(actx, eng, task, out)
	res := attemptResult{output: r.tailText(out.String(), out.cut(), slack, secrets)}
	switch {
	case runErr == nil && code == 0:
		res.ok = true
		res.exitCode = &code
	case actx.Err() != nil:
		// Stopped: by the step timeout, or by the run (the caller looks at
		// the run's context for that).
		var st *stepTimeoutError
		if errors.As(context.Cause(actx), &st) {
			res.err = st.Error()
		} else {
			res.err = "stopped"
		}
	case runErr != nil:
		res.err = r.clean(runErr.Error(), secrets)
	default:
		res.exitCode = &code
		res.err = "exit code " + strconv.Itoa(code)
	}
	return res
}

// safeRun calls the engine; an engine that panics fails the attempt, not
// the agent.
func safeRun(ctx context.Context, eng Engine, t Task, out io.Writer) (code int, err error) {
	defer func() {
		if p := recover(); p != nil {
			code, err = -1, fmt.Errorf("engine panicked: %v", p)
		}
	}()
	return eng.Run(ctx, t, out)
}

// Environment variables the executor sets on every attempt. They override
// variables of the same name in the step's env.
const (
	EnvRunID   = "CAESIUM_RUN_ID"
	EnvJob     = "CAESIUM_JOB"
	EnvStep    = "CAESIUM_STEP"
	EnvAttempt = "CAESIUM_ATTEMPT"
)

// environment builds the attempt's environment, resolving secret:// values.
// It returns the resolved values (for scrubbing) even on error. The error
// names each variable and reference that failed, never a value.
func (r *runner) environment(ctx context.Context, s *schema.Step, n int) (map[string]string, []string, error) {
	env := make(map[string]string, len(s.Env)+4)
	var secrets []string
	var errs []string
	byRef := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(s.Env)) {
		v := s.Env[name]
		if !schema.IsSecretRef(v) {
			env[name] = v
			continue
		}
		if val, ok := byRef[v]; ok {
			env[name] = val
			continue
		}
		val, err := resolve(ctx, r.opts.Resolver, v)
		if err != nil {
			errs = append(errs, "env "+name+": "+err.Error())
			continue
		}
		byRef[v] = val
		env[name] = val
		secrets = append(secrets, val)
	}
	if len(errs) > 0 {
		return nil, secrets, errors.New(strings.Join(errs, "; "))
	}
	env[EnvRunID] = strconv.FormatInt(r.id, 10)
	env[EnvJob] = r.job.Metadata.Alias
	env[EnvStep] = s.Name
	env[EnvAttempt] = strconv.Itoa(n)
	return env, secrets, nil
}

// resolve resolves one reference; its error names the reference once.
func resolve(ctx context.Context, res Resolver, ref string) (string, error) {
	if res == nil {
		return "", fmt.Errorf("%s: no secret resolver is configured", ref)
	}
	v, err := res.Resolve(ctx, ref)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, ref) {
			return "", err
		}
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return v, nil
}

// minScrubLen is the shortest resolved value scrubbed by the executor
// itself: replacing every "1" or "on" would wreck the output and hide
// nothing (the secrets router uses the same bound).
const minScrubLen = 4

// redacted replaces a resolved secret in text.
const redacted = "[REDACTED]"

// clean scrubs the attempt's resolved values, then applies Options.Redact.
func (r *runner) clean(s string, secrets []string) string {
	return r.opts.Redact(scrub(s, secrets))
}

func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minScrubLen {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

// tailText turns the kept bytes of an attempt's output into the stored
// tail: scrubbed and redacted first, then cut to OutputLimit bytes on a rune
// boundary, as valid UTF-8 without NUL bytes so any database text column
// takes it. When the output was cut at the front (cut), the first slack
// bytes may end a secret whose start was dropped, which no scrubbing finds:
// they are never kept, even when scrubbing shortened what follows them.
func (r *runner) tailText(s string, cut bool, slack int, secrets []string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	s = r.clean(s, secrets)
	keep := r.opts.OutputLimit
	if cut {
		keep = min(keep, max(len(s)-slack, 0))
	}
	if len(s) <= keep {
		return s
	}
	s = s[len(s)-keep:]
	for i := 0; i < len(s) && i < utf8.UTFMax; i++ { // drop a partial rune at the front
		if utf8.RuneStart(s[i]) {
			return s[i:]
		}
	}
	return s
}
