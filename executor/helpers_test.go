package executor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/schema"
)

// parseJob parses one manifest the way the agent does (strict decoding,
// defaults, validation) and fails the test on any error.
func parseJob(t testing.TB, manifest string) *schema.Job {
	t.Helper()
	docs, diags := schema.Parse("job.yaml", []byte(manifest), schema.Limits{})
	if len(diags) != 0 || len(docs) != 1 {
		t.Fatalf("parse: %d documents, %v", len(docs), diags)
	}
	if schema.HasErrors(docs[0].Diagnostics) {
		t.Fatalf("parse: %v", docs[0].Diagnostics)
	}
	return docs[0].Job
}

// script is what the engine does for one attempt.
type script func(ctx context.Context, t executor.Task, out io.Writer) (int, error)

// engine is a scripted executor.Engine. Engine is this package's own
// interface (an attempt in; output and an exit code out), so an in-memory
// implementation exercises the executor against the real contract: it is
// not a stand-in for an outside system. The Docker engine is tested against
// the real daemon in executor/docker.
type engine struct {
	started chan string // when set, receives the step name as each attempt starts

	mu      sync.Mutex
	scripts map[string]script // by step name; none: exit 0
	tasks   []executor.Task   // every attempt, in start order
	ended   []string          // step names in the order their attempts ended
	running int
	peak    int
}

func newEngine(scripts map[string]script) *engine {
	if scripts == nil {
		scripts = map[string]script{}
	}
	return &engine{scripts: scripts}
}

func (e *engine) Run(ctx context.Context, t executor.Task, out io.Writer) (int, error) {
	e.mu.Lock()
	e.tasks = append(e.tasks, t)
	e.running++
	e.peak = max(e.peak, e.running)
	fn := e.scripts[t.Step]
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running--
		e.ended = append(e.ended, t.Step)
		e.mu.Unlock()
	}()
	if e.started != nil {
		e.started <- t.Step
	}
	if fn == nil {
		return 0, nil
	}
	return fn(ctx, t, out)
}

func (e *engine) attempts() []executor.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]executor.Task(nil), e.tasks...)
}

func (e *engine) steps() []string {
	var out []string
	for _, t := range e.attempts() {
		out = append(out, t.Step)
	}
	return out
}

func (e *engine) endOrder() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ended...)
}

func (e *engine) maxConcurrent() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peak
}

func exit(code int) script {
	return func(context.Context, executor.Task, io.Writer) (int, error) { return code, nil }
}

func say(text string, code int) script {
	return func(_ context.Context, _ executor.Task, out io.Writer) (int, error) {
		_, _ = io.WriteString(out, text)
		return code, nil
	}
}

// block runs until the attempt's context ends, as a real engine does for a
// process that does not exit, and returns the context's error.
func block(ctx context.Context, _ executor.Task, _ io.Writer) (int, error) {
	<-ctx.Done()
	return -1, ctx.Err()
}

// byAttempt runs the n-th script on the n-th attempt (the last one after).
func byAttempt(scripts ...script) script {
	return func(ctx context.Context, t executor.Task, out io.Writer) (int, error) {
		return scripts[min(t.Attempt, len(scripts))-1](ctx, t, out)
	}
}

// clock is an executor.Clock: Now moves one second per call, so timestamps
// are strictly ordered; After records the delay and fires at once, or never
// when hold is set (then waits, if set, receives the delay).
type clock struct {
	hold  bool
	waits chan time.Duration

	mu     sync.Mutex
	now    time.Time
	delays []time.Duration
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	if c.waits != nil {
		c.waits <- d
	}
	ch := make(chan time.Time, 1)
	if !c.hold {
		ch <- c.Now()
	}
	return ch
}

func (c *clock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// resolver is an executor.Resolver over a map, recording each reference it
// is asked for. A missing reference fails the way providers/secrets does:
// the error names the reference, never a value.
type resolver struct {
	mu     sync.Mutex
	values map[string]string
	calls  []string
}

func newResolver(values map[string]string) *resolver { return &resolver{values: values} }

func (r *resolver) Resolve(_ context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ref)
	v, ok := r.values[ref]
	if !ok {
		return "", fmt.Errorf("%s: secret not found", ref)
	}
	return v, nil
}

func (r *resolver) set(ref, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[ref] = value
}

func (r *resolver) asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// recorder collects OnTask calls and notices if two overlap.
type recorder struct {
	busy    atomic.Bool
	overlap atomic.Bool

	mu     sync.Mutex
	states []executor.TaskState
}

func (r *recorder) onTask(ts executor.TaskState) {
	if !r.busy.CompareAndSwap(false, true) {
		r.overlap.Store(true)
	}
	defer r.busy.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, ts)
}

func (r *recorder) all() []executor.TaskState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]executor.TaskState(nil), r.states...)
}

// of returns the transitions of one task, as "status/attempts".
func (r *recorder) of(name string) []string {
	var out []string
	for _, s := range r.all() {
		if s.Name == name {
			out = append(out, fmt.Sprintf("%s/%d", s.Status, s.Attempts))
		}
	}
	return out
}

// statuses maps step names to their final status.
func statuses(res executor.Result) map[string]string {
	out := map[string]string{}
	for _, t := range res.Tasks {
		out[t.Name] = t.Status
	}
	return out
}

func task(t testing.TB, res executor.Result, name string) executor.TaskState {
	t.Helper()
	for _, ts := range res.Tasks {
		if ts.Name == name {
			return ts
		}
	}
	t.Fatalf("no task %q in %+v", name, res.Tasks)
	return executor.TaskState{}
}

// testContext bounds a test that could hang on a bug (a scheduler that never
// starts a step): it is a guard, not a timing assertion.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for a value from ch, failing the test if ctx ends first.
func recv[T any](t testing.TB, ctx context.Context, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("waiting: %v", ctx.Err())
	}
	var zero T
	return zero
}

// leaks reports where a value appears in a result or in OnTask states.
func leaks(value string, res executor.Result, states []executor.TaskState) []string {
	var out []string
	check := func(where string, ts executor.TaskState) {
		if strings.Contains(ts.Output, value) {
			out = append(out, where+" output of "+ts.Name)
		}
		if strings.Contains(ts.Error, value) {
			out = append(out, where+" error of "+ts.Name)
		}
	}
	if strings.Contains(res.Error, value) {
		out = append(out, "result error")
	}
	for _, ts := range res.Tasks {
		check("result", ts)
	}
	for _, ts := range states {
		check("OnTask", ts)
	}
	return out
}

// syncBuffer is a bytes.Buffer that several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
