package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/schema"
)

// fixture is the bundle most tests need, built by setup: an engine, a clock and a recorder
// wired into Options.
type fixture struct {
	eng   *engine
	clock *clock
	rec   *recorder
	opts  executor.Options
}

func setup(t testing.TB, scripts map[string]script) *fixture {
	t.Helper()
	f := &fixture{eng: newEngine(scripts), clock: newClock(), rec: &recorder{}}
	f.opts = executor.Options{
		Engines: map[string]executor.Engine{schema.EngineDocker: f.eng},
		OnTask:  f.rec.onTask,
		Clock:   f.clock,
	}
	return f
}

func (f *fixture) run(t testing.TB, ctx context.Context, manifest string) executor.Result {
	t.Helper()
	res := executor.Execute(ctx, 7, parseJob(t, manifest), f.opts)
	if f.rec.overlap.Load() {
		t.Error("OnTask was called concurrently")
	}
	return res
}

func TestExecuteLinear(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: etl}
steps:
  - name: extract
    image: busybox:1.36.1
    command: ["sh", "-c", "echo extract"]
    workdir: /data
  - name: transform
    image: busybox:1.36.1
  - name: load
    image: busybox:1.36.1
`)
	if res.Status != executor.RunSucceeded || res.Error != "" {
		t.Fatalf("result = %s %q, want succeeded", res.Status, res.Error)
	}
	if got, want := f.eng.steps(), []string{"extract", "transform", "load"}; !slices.Equal(got, want) {
		t.Errorf("attempts ran %v, want file order %v", got, want)
	}
	first := f.eng.attempts()[0]
	if first.RunID != 7 || first.Job != "etl" || first.Step != "extract" || first.Attempt != 1 ||
		first.Image != "busybox:1.36.1" || !slices.Equal(first.Command, []string{"sh", "-c", "echo extract"}) || first.Workdir != "/data" {
		t.Errorf("task = %+v", first)
	}
	for i, ts := range res.Tasks {
		if ts.Position != i || ts.Status != executor.TaskSucceeded || ts.Attempts != 1 || ts.ExitCode == nil || *ts.ExitCode != 0 {
			t.Errorf("task %d = %+v", i, ts)
		}
		if ts.StartedAt.IsZero() || !ts.FinishedAt.After(ts.StartedAt) {
			t.Errorf("task %s: started %v, finished %v", ts.Name, ts.StartedAt, ts.FinishedAt)
		}
		if got, want := f.rec.of(ts.Name), []string{"running/1", "succeeded/1"}; !slices.Equal(got, want) {
			t.Errorf("OnTask for %s: %v, want %v", ts.Name, got, want)
		}
	}
}

func TestExecuteDiamond(t *testing.T) {
	t.Parallel()
	// b and c each wait until the other has started: the test only ends if
	// the fan-out really runs them at the same time.
	var inFlight = make(chan struct{}, 2)
	var both = make(chan struct{})
	meet := func(ctx context.Context, _ executor.Task, _ io.Writer) (int, error) {
		inFlight <- struct{}{}
		if len(inFlight) == 2 {
			select {
			case <-both:
			default:
				close(both)
			}
		}
		select {
		case <-both:
			return 0, nil
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	f := setup(t, map[string]script{"b": meet, "c": meet})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: diamond}
steps:
  - {name: a, image: busybox, next: [b, c]}
  - {name: b, image: busybox}
  - {name: c, image: busybox}
  - {name: d, image: busybox, dependsOn: [b, c]}
`)
	if res.Status != executor.RunSucceeded {
		t.Fatalf("result = %s %q", res.Status, res.Error)
	}
	started, ended := f.eng.steps(), f.eng.endOrder()
	if started[0] != "a" || started[3] != "d" {
		t.Errorf("start order %v: want a first and d last", started)
	}
	if slices.Index(ended, "d") != 3 {
		t.Errorf("end order %v: d must start after b and c ended", ended)
	}
	if f.eng.maxConcurrent() != 2 {
		t.Errorf("peak concurrency %d, want 2 (b and c)", f.eng.maxConcurrent())
	}
}

func TestExecuteTriggerRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule       string
		u1, u2     int // exit codes of the two upstream steps
		wantX      string
		wantStatus string
	}{
		{schema.RuleAllSuccess, 0, 0, executor.TaskSucceeded, executor.RunSucceeded},
		{schema.RuleAllSuccess, 0, 1, executor.TaskSkipped, executor.RunFailed},
		{schema.RuleAllDone, 0, 0, executor.TaskSucceeded, executor.RunSucceeded},
		{schema.RuleAllDone, 1, 1, executor.TaskSucceeded, executor.RunFailed},
		{schema.RuleOneSuccess, 1, 0, executor.TaskSucceeded, executor.RunFailed},
		{schema.RuleOneSuccess, 1, 1, executor.TaskSkipped, executor.RunFailed},
		{schema.RuleAllFailed, 1, 1, executor.TaskSucceeded, executor.RunFailed},
		{schema.RuleAllFailed, 0, 1, executor.TaskSkipped, executor.RunFailed},
		{schema.RuleAllFailed, 0, 0, executor.TaskSkipped, executor.RunSucceeded},
		{schema.RuleAlways, 1, 1, executor.TaskSucceeded, executor.RunFailed},
		{schema.RuleAlways, 0, 0, executor.TaskSucceeded, executor.RunSucceeded},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s u1=%d u2=%d", tt.rule, tt.u1, tt.u2), func(t *testing.T) {
			t.Parallel()
			f := setup(t, map[string]script{"u1": exit(tt.u1), "u2": exit(tt.u2)})
			res := f.run(t, testContext(t), fmt.Sprintf(`
apiVersion: v1
kind: Job
metadata: {alias: rules}
steps:
  - {name: u1, image: busybox, next: x}
  - {name: u2, image: busybox, next: x}
  - {name: x, image: busybox, triggerRule: %s}
`, tt.rule))
			if res.Status != tt.wantStatus {
				t.Errorf("run status %s (%q), want %s", res.Status, res.Error, tt.wantStatus)
			}
			x := task(t, res, "x")
			if x.Status != tt.wantX {
				t.Fatalf("x = %s (%q), want %s", x.Status, x.Error, tt.wantX)
			}
			ran := slices.Contains(f.eng.steps(), "x")
			if ran != (tt.wantX == executor.TaskSucceeded) {
				t.Errorf("x ran = %v with status %s", ran, x.Status)
			}
			if x.Status == executor.TaskSkipped {
				if !strings.HasPrefix(x.Error, "triggerRule "+tt.rule+" not met: upstream ") {
					t.Errorf("skip reason %q", x.Error)
				}
				if x.Attempts != 0 || !x.StartedAt.IsZero() || x.FinishedAt.IsZero() {
					t.Errorf("skipped task %+v", x)
				}
				if got := f.rec.of("x"); !slices.Equal(got, []string{"skipped/0"}) {
					t.Errorf("OnTask for x: %v", got)
				}
			}
		})
	}
}

func TestExecuteFailurePropagation(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]script{"extract": exit(2)})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: etl}
steps:
  - {name: extract, image: busybox, next: transform}
  - {name: transform, image: busybox, next: load}
  - {name: load, image: busybox}
  - name: cleanup
    image: busybox
    dependsOn: [extract, transform, load]
    triggerRule: all_done
`)
	want := map[string]string{"extract": "failed", "transform": "skipped", "load": "skipped", "cleanup": "succeeded"}
	if got := statuses(res); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if res.Status != executor.RunFailed || res.Error != "step extract failed" {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
	extract := task(t, res, "extract")
	if extract.ExitCode == nil || *extract.ExitCode != 2 || extract.Error != "exit code 2" {
		t.Errorf("extract = %+v", extract)
	}
	if got, want := task(t, res, "load").Error, "triggerRule all_success not met: upstream transform skipped"; got != want {
		t.Errorf("load error %q, want %q", got, want)
	}
	if got := f.eng.steps(); !slices.Equal(got, []string{"extract", "cleanup"}) {
		t.Errorf("ran %v", got)
	}
}

func TestExecuteSkipReasonsOutOfFileOrder(t *testing.T) {
	t.Parallel()
	// load comes first in the file but last in the DAG: its reason must
	// still name transform as skipped.
	f := setup(t, map[string]script{"extract": exit(1)})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: etl}
steps:
  - {name: load, image: busybox, dependsOn: transform}
  - {name: transform, image: busybox, dependsOn: extract}
  - {name: extract, image: busybox}
`)
	if got, want := task(t, res, "load").Error, "triggerRule all_success not met: upstream transform skipped"; got != want {
		t.Errorf("load error %q, want %q", got, want)
	}
	if got, want := task(t, res, "transform").Error, "triggerRule all_success not met: upstream extract failed"; got != want {
		t.Errorf("transform error %q, want %q", got, want)
	}
}

func TestExecuteMaxParallelTasks(t *testing.T) {
	t.Parallel()
	const manifest = `
apiVersion: v1
kind: Job
metadata: {alias: wide, maxParallelTasks: %d}
steps:
  - {name: s1, image: busybox, next: join}
  - {name: s2, image: busybox, next: join}
  - {name: s3, image: busybox, next: join}
  - {name: s4, image: busybox, next: join}
  - {name: s5, image: busybox, next: join}
  - {name: join, image: busybox}
`
	t.Run("capped", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		release := make(chan struct{})
		wait := func(ctx context.Context, _ executor.Task, _ io.Writer) (int, error) {
			select {
			case <-release:
				return 0, nil
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
		f := setup(t, map[string]script{"s1": wait, "s2": wait, "s3": wait, "s4": wait, "s5": wait, "join": wait})
		f.eng.started = make(chan string, 6)
		done := make(chan executor.Result, 1)
		go func() { done <- f.run(t, ctx, fmt.Sprintf(manifest, 2)) }()
		// Two start; then each release lets exactly one more in.
		recv(t, ctx, f.eng.started)
		recv(t, ctx, f.eng.started)
		for range 3 {
			release <- struct{}{}
			recv(t, ctx, f.eng.started)
		}
		// s4 and s5 remain; join starts once both are done.
		release <- struct{}{}
		release <- struct{}{}
		if got := recv(t, ctx, f.eng.started); got != "join" {
			t.Errorf("started %s, want join", got)
		}
		release <- struct{}{}
		res := recv(t, ctx, done)
		if res.Status != executor.RunSucceeded {
			t.Fatalf("result = %s %q", res.Status, res.Error)
		}
		if got := f.eng.maxConcurrent(); got != 2 {
			t.Errorf("peak concurrency %d, want 2", got)
		}
		if got := f.eng.steps(); got[len(got)-1] != "join" {
			t.Errorf("start order %v", got)
		}
	})
	t.Run("zero means no cap", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		// Every root waits until all five have started.
		all := make(chan struct{})
		started := make(chan struct{}, 5)
		wait := func(ctx context.Context, _ executor.Task, _ io.Writer) (int, error) {
			started <- struct{}{}
			if len(started) == 5 {
				close(all)
			}
			select {
			case <-all:
				return 0, nil
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
		f := setup(t, map[string]script{"s1": wait, "s2": wait, "s3": wait, "s4": wait, "s5": wait})
		res := f.run(t, ctx, fmt.Sprintf(manifest, 0))
		if res.Status != executor.RunSucceeded {
			t.Fatalf("result = %s %q", res.Status, res.Error)
		}
		if got := f.eng.maxConcurrent(); got != 5 {
			t.Errorf("peak concurrency %d, want 5", got)
		}
	})
}

func TestExecuteRetries(t *testing.T) {
	t.Parallel()
	attempt := func(code int) script {
		return func(_ context.Context, t executor.Task, out io.Writer) (int, error) {
			fmt.Fprintf(out, "attempt %d\n", t.Attempt)
			return code, nil
		}
	}
	tests := []struct {
		name         string
		step         string
		script       script
		wantStatus   string
		wantAttempts int
		wantDelays   []time.Duration
		wantError    string
	}{
		{
			name:         "succeeds on the third attempt",
			step:         "retries: 3\n    retryDelay: 30s",
			script:       byAttempt(attempt(1), attempt(1), attempt(0)),
			wantStatus:   executor.TaskSucceeded,
			wantAttempts: 3,
			wantDelays:   []time.Duration{30 * time.Second, 30 * time.Second},
		},
		{
			name:         "exhausts its retries",
			step:         "retries: 2\n    retryDelay: 1m",
			script:       attempt(4),
			wantStatus:   executor.TaskFailed,
			wantAttempts: 3,
			wantDelays:   []time.Duration{time.Minute, time.Minute},
			wantError:    "exit code 4",
		},
		{
			name:         "no delay retries at once",
			step:         "retries: 1",
			script:       byAttempt(attempt(1), attempt(0)),
			wantStatus:   executor.TaskSucceeded,
			wantAttempts: 2,
		},
		{
			name:         "no retries",
			step:         "retries: 0",
			script:       attempt(1),
			wantStatus:   executor.TaskFailed,
			wantAttempts: 1,
			wantError:    "exit code 1",
		},
		{
			name: "engine errors are retried",
			step: "retries: 1",
			script: byAttempt(func(context.Context, executor.Task, io.Writer) (int, error) {
				return -1, fmt.Errorf("%w: cannot connect to the daemon", executor.ErrEngineUnavailable)
			}, attempt(0)),
			wantStatus:   executor.TaskSucceeded,
			wantAttempts: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, map[string]script{"flaky": tt.script})
			res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: retry}
steps:
  - name: flaky
    image: busybox
    `+tt.step+`
`)
			ts := task(t, res, "flaky")
			if ts.Status != tt.wantStatus || ts.Attempts != tt.wantAttempts || ts.Error != tt.wantError {
				t.Errorf("flaky = %s after %d attempts (%q), want %s after %d (%q)", ts.Status, ts.Attempts, ts.Error, tt.wantStatus, tt.wantAttempts, tt.wantError)
			}
			if want := fmt.Sprintf("attempt %d\n", tt.wantAttempts); ts.Output != want {
				t.Errorf("output %q, want the last attempt's %q", ts.Output, want)
			}
			if got := f.clock.recorded(); !slices.Equal(got, tt.wantDelays) {
				t.Errorf("retry delays %v, want %v", got, tt.wantDelays)
			}
			var envAttempts []string
			for _, a := range f.eng.attempts() {
				envAttempts = append(envAttempts, a.Env[executor.EnvAttempt])
			}
			var want, transitions []string
			for n := 1; n <= tt.wantAttempts; n++ {
				want = append(want, fmt.Sprint(n))
				transitions = append(transitions, fmt.Sprintf("running/%d", n))
			}
			if !slices.Equal(envAttempts, want) {
				t.Errorf("CAESIUM_ATTEMPT per attempt %v, want %v", envAttempts, want)
			}
			transitions = append(transitions, fmt.Sprintf("%s/%d", tt.wantStatus, tt.wantAttempts))
			if got := f.rec.of("flaky"); !slices.Equal(got, transitions) {
				t.Errorf("OnTask %v, want %v", got, transitions)
			}
		})
	}
}

func TestExecuteCancelDuringRetryDelay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	f := setup(t, map[string]script{"flaky": exit(1)})
	f.clock.hold = true
	f.clock.waits = make(chan time.Duration, 1)
	done := make(chan executor.Result, 1)
	go func() {
		done <- f.run(t, ctx, `
apiVersion: v1
kind: Job
metadata: {alias: retry}
steps:
  - {name: flaky, image: busybox, retries: 5, retryDelay: 1h}
  - {name: after, image: busybox}
`)
	}()
	if d := recv(t, ctx, f.clock.waits); d != time.Hour {
		t.Errorf("retry delay %v, want 1h", d)
	}
	cancel()
	res := <-done
	if res.Status != executor.RunCancelled || res.Error != "run cancelled" {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
	flaky := task(t, res, "flaky")
	if flaky.Status != executor.TaskCancelled || flaky.Attempts != 1 || flaky.Error != "run cancelled" {
		t.Errorf("flaky = %+v", flaky)
	}
	if after := task(t, res, "after"); after.Status != executor.TaskCancelled {
		t.Errorf("after = %+v", after)
	}
	if n := len(f.eng.attempts()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestExecuteStepTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]script{"slow": func(ctx context.Context, tk executor.Task, out io.Writer) (int, error) {
		if _, ok := ctx.Deadline(); !ok {
			return 99, errors.New("the attempt has no deadline")
		}
		io.WriteString(out, "working\n")
		return block(ctx, tk, out)
	}})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: slow}
steps:
  - {name: slow, image: busybox, timeout: 20ms, retries: 1, next: after}
  - {name: after, image: busybox}
  - {name: other, image: busybox}
`)
	slow := task(t, res, "slow")
	if slow.Status != executor.TaskFailed || slow.Attempts != 2 || slow.Error != "timeout 20ms exceeded" || slow.ExitCode != nil {
		t.Errorf("slow = %+v", slow)
	}
	if slow.Output != "working\n" {
		t.Errorf("slow output %q: the stopped attempt's output is kept", slow.Output)
	}
	if got := statuses(res); got["after"] != executor.TaskSkipped || got["other"] != executor.TaskSucceeded {
		t.Errorf("statuses %v", got)
	}
	if res.Status != executor.RunFailed || res.Error != "step slow failed" {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
}

func TestExecuteRunTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]script{"slow": block})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: slow, runTimeout: 50ms}
steps:
  - {name: slow, image: busybox, retries: 3}
  - {name: after, image: busybox, triggerRule: always}
`)
	if res.Status != executor.RunFailed || res.Error != "run timeout 50ms exceeded" {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
	if slow := task(t, res, "slow"); slow.Status != executor.TaskFailed || slow.Error != "run timeout 50ms exceeded" || slow.Attempts > 1 {
		t.Errorf("slow = %+v: the run timeout is not retried", slow)
	}
	if after := task(t, res, "after"); after.Status != executor.TaskCancelled || after.Error != "run timeout 50ms exceeded" {
		t.Errorf("after = %+v: nothing new starts once the run timed out, whatever its rule", after)
	}
	if got := f.eng.steps(); slices.Contains(got, "after") {
		t.Errorf("ran %v", got)
	}
}

func TestExecuteCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cause     error
		wantError string
	}{
		{"plain cancel", nil, "run cancelled"},
		{"cancel with a cause", errors.New("replaced by run 43"), "run cancelled: replaced by run 43"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancelCause(testContext(t))
			defer cancel(nil)
			f := setup(t, map[string]script{"a": block, "c": block, "done": exit(0)})
			f.eng.started = make(chan string, 3)
			done := make(chan executor.Result, 1)
			go func() {
				done <- f.run(t, ctx, `
apiVersion: v1
kind: Job
metadata: {alias: cancel}
steps:
  - {name: done, image: busybox}
  - {name: a, image: busybox, next: b}
  - {name: b, image: busybox, triggerRule: always}
  - {name: c, image: busybox}
`)
			}()
			// Once started, "done" exits 0 at once: it succeeds whenever
			// the cancel lands.
			for range 3 {
				recv(t, ctx, f.eng.started)
			}
			cancel(tt.cause)
			res := <-done
			if res.Status != executor.RunCancelled || res.Error != tt.wantError {
				t.Errorf("result = %s %q, want cancelled %q", res.Status, res.Error, tt.wantError)
			}
			want := map[string]string{"done": "succeeded", "a": "cancelled", "b": "cancelled", "c": "cancelled"}
			if got := statuses(res); !maps.Equal(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
			if a := task(t, res, "a"); a.Error != tt.wantError || a.ExitCode != nil || a.FinishedAt.IsZero() {
				t.Errorf("a = %+v", a)
			}
			if slices.Contains(f.eng.steps(), "b") {
				t.Error("b started after the cancel")
			}
		})
	}
}

func TestExecuteEnvSecrets(t *testing.T) {
	t.Parallel()
	const token = "tok-7f3a9c1e55d04b2a"
	const rotated = "tok-rotated-0c4e21aa"
	res := newResolver(map[string]string{
		"secret://env/TOKEN":         token,
		"secret://file/retry/token":  "tok-first-9e8d7c6b5a",
		"secret://vault/kv/app#user": "svc-user",
	})
	f := setup(t, map[string]script{
		"use": func(_ context.Context, tk executor.Task, out io.Writer) (int, error) {
			fmt.Fprintf(out, "connecting with %s as %s\n", tk.Env["TOKEN"], tk.Env["USER"])
			return 0, nil
		},
		"leak": func(_ context.Context, tk executor.Task, _ io.Writer) (int, error) {
			return -1, fmt.Errorf("create container: bad env TOKEN=%s", tk.Env["TOKEN"])
		},
		"rotate": byAttempt(func(_ context.Context, tk executor.Task, out io.Writer) (int, error) {
			res.set("secret://file/retry/token", rotated) // rotated between attempts
			return 1, nil
		}, exit(0)),
	})
	f.opts.Resolver = res
	var logs syncBuffer
	f.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	result := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: secrets}
steps:
  - name: use
    image: busybox
    next: after
    env:
      PLAIN: visible
      TOKEN: secret://env/TOKEN
      USER: secret://vault/kv/app#user
      CAESIUM_STEP: spoofed
  - name: leak
    image: busybox
    env: {TOKEN: secret://env/TOKEN}
  - name: missing
    image: busybox
    env:
      API_KEY: secret://vault/kv/app#api_key
      PLAIN: visible
  - name: rotate
    image: busybox
    retries: 1
    env: {TOKEN: secret://file/retry/token}
  - {name: after, image: busybox}
`)
	want := map[string]string{"use": "succeeded", "leak": "failed", "missing": "failed", "rotate": "succeeded", "after": "succeeded"}
	if got := statuses(result); !maps.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	byStep := map[string][]executor.Task{}
	for _, a := range f.eng.attempts() {
		byStep[a.Step] = append(byStep[a.Step], a)
	}
	use := byStep["use"][0]
	wantEnv := map[string]string{
		"PLAIN": "visible", "TOKEN": token, "USER": "svc-user",
		"CAESIUM_RUN_ID": "7", "CAESIUM_JOB": "secrets", "CAESIUM_STEP": "use", "CAESIUM_ATTEMPT": "1",
	}
	if !maps.Equal(use.Env, wantEnv) {
		t.Errorf("use env %v, want %v", use.Env, wantEnv)
	}
	if got := byStep["rotate"]; len(got) != 2 || got[1].Env["TOKEN"] != rotated {
		t.Errorf("rotate attempts %v: each attempt resolves again", got)
	}
	if len(byStep["missing"]) != 0 {
		t.Error("the engine ran a step whose secret could not be resolved")
	}
	missing := task(t, result, "missing")
	if missing.Attempts != 1 || missing.Error != "env API_KEY: secret://vault/kv/app#api_key: secret not found" {
		t.Errorf("missing = %+v", missing)
	}
	// Every resolved value is scrubbed, the user name as much as the token.
	if got, want := task(t, result, "use").Output, "connecting with [REDACTED] as [REDACTED]\n"; got != want {
		t.Errorf("use output %q, want %q", got, want)
	}
	if got, want := task(t, result, "leak").Error, "create container: bad env TOKEN=[REDACTED]"; got != want {
		t.Errorf("leak error %q, want %q", got, want)
	}
	for _, v := range []string{token, rotated, "tok-first-9e8d7c6b5a"} {
		if where := leaks(v, result, f.rec.all()); len(where) > 0 {
			t.Errorf("a secret value appears in %v", where)
		}
		if strings.Contains(logs.String(), v) {
			t.Errorf("a secret value appears in the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "attempt started") {
		t.Errorf("no debug lines logged:\n%s", logs.String())
	}
	if n := strings.Count(strings.Join(res.asked(), " "), "secret://file/retry/token"); n != 2 {
		t.Errorf("rotate's reference resolved %d times, want once per attempt", n)
	}

	t.Run("no resolver", func(t *testing.T) {
		t.Parallel()
		f := setup(t, nil)
		result := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: secrets}
steps:
  - {name: needs, image: busybox, env: {TOKEN: secret://env/TOKEN}}
`)
		needs := task(t, result, "needs")
		if needs.Status != executor.TaskFailed || needs.Error != "env TOKEN: secret://env/TOKEN: no secret resolver is configured" {
			t.Errorf("needs = %+v", needs)
		}
	})
}

func TestExecuteRedact(t *testing.T) {
	t.Parallel()
	const value = "hunter2-from-the-image"
	f := setup(t, map[string]script{
		"prints": say("password is "+value+"\n", 0),
		"fails": func(context.Context, executor.Task, io.Writer) (int, error) {
			return -1, errors.New("pull: auth " + value + " refused")
		},
	})
	f.opts.Redact = func(s string) string { return strings.ReplaceAll(s, value, "[REDACTED]") }
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: redact}
steps:
  - {name: prints, image: busybox}
  - {name: fails, image: busybox}
`)
	if got := task(t, res, "prints").Output; got != "password is [REDACTED]\n" {
		t.Errorf("output %q", got)
	}
	if got := task(t, res, "fails").Error; got != "pull: auth [REDACTED] refused" {
		t.Errorf("error %q", got)
	}
	if where := leaks(value, res, f.rec.all()); len(where) > 0 {
		t.Errorf("the value appears in %v", where)
	}
}

func TestExecuteOutputTail(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-0123456789abcdef"
	chunks := func(parts ...string) script {
		return func(_ context.Context, _ executor.Task, out io.Writer) (int, error) {
			for _, p := range parts {
				io.WriteString(out, p)
			}
			return 0, nil
		}
	}
	tests := []struct {
		name   string
		limit  int
		script script
		want   string
	}{
		{"short output kept whole", 16, chunks("hello\n"), "hello\n"},
		{"the tail of many writes", 16, chunks(strings.Repeat("0123456", 15), "end"), "1234560123456end"},
		{"cut on a rune boundary", 5, chunks("ééééé"), "éé"},
		{"NUL and invalid bytes become text", 16, chunks("a\x00b\xffc"), "a\uFFFDb\uFFFDc"},
		{"a secret cut by the limit is still scrubbed", 16, chunks("prefix ", secret, " end"), "x [REDACTED] end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, map[string]script{"s": tt.script})
			f.opts.OutputLimit = tt.limit
			f.opts.Resolver = newResolver(map[string]string{"secret://env/KEY": secret})
			res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: out}
steps:
  - {name: s, image: busybox, env: {KEY: secret://env/KEY}}
`)
			got := task(t, res, "s").Output
			if got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
			if len(got) > tt.limit || !utf8.ValidString(got) {
				t.Errorf("output %q: %d bytes (limit %d), valid UTF-8 %v", got, len(got), tt.limit, utf8.ValidString(got))
			}
			if strings.Contains(got, "cdef") {
				t.Errorf("output %q holds part of the secret", got)
			}
		})
	}
}

// TestExecuteOutputTailRepeatedSecret: a secret printed over and over
// shrinks the output when it is scrubbed, which must not bring the end of a
// secret cut off at the front of the kept bytes into the tail.
func TestExecuteOutputTailRepeatedSecret(t *testing.T) {
	t.Parallel()
	const secret = "sk-live-0123456789abcdef"
	const limit = 8 << 10
	f := setup(t, map[string]script{"s": say(strings.Repeat(secret+"\n", 600), 0)})
	f.opts.OutputLimit = limit
	f.opts.Resolver = newResolver(map[string]string{"secret://env/KEY": secret})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: out}
steps:
  - {name: s, image: busybox, env: {KEY: secret://env/KEY}}
`)
	got := task(t, res, "s").Output
	if len(got) > limit || !strings.HasSuffix(got, "[REDACTED]\n") {
		t.Errorf("output of %d bytes (limit %d) ends %q, want redacted lines", len(got), limit, got[max(0, len(got)-40):])
	}
	for i := 0; i+6 <= len(secret); i++ {
		if part := secret[i : i+6]; strings.Contains(got, part) {
			t.Fatalf("output holds %q, part of the secret: it starts %q", part, got[:min(len(got), 40)])
		}
	}
}

func TestExecuteMissingEngine(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: engines}
steps:
  - {name: pod, engine: podman, image: busybox}
  - {name: box, image: busybox, next: report}
  - {name: report, image: busybox}
`)
	pod := task(t, res, "pod")
	if pod.Status != executor.TaskFailed || pod.Attempts != 0 || pod.Error != `engine "podman" is not available on this agent` {
		t.Errorf("pod = %+v", pod)
	}
	if box := task(t, res, "box"); box.Status != executor.TaskSucceeded {
		t.Errorf("box = %+v", box)
	}
	if res.Status != executor.RunFailed || res.Error != "step pod failed" {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
}

func TestExecuteEnginePanic(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]script{"boom": func(context.Context, executor.Task, io.Writer) (int, error) {
		panic("nil map")
	}})
	res := f.run(t, testContext(t), `
apiVersion: v1
kind: Job
metadata: {alias: panics}
steps:
  - {name: boom, image: busybox}
  - {name: fine, image: busybox, next: report}
  - {name: report, image: busybox}
`)
	if got := statuses(res); got["boom"] != executor.TaskFailed || got["fine"] != executor.TaskSucceeded {
		t.Errorf("statuses %v", got)
	}
	if got := task(t, res, "boom").Error; got != "engine panicked: nil map" {
		t.Errorf("error %q", got)
	}
}

func TestExecuteInvalidJob(t *testing.T) {
	t.Parallel()
	// A job that bypassed validation: a cycle.
	job := &schema.Job{APIVersion: "v1", Kind: "Job", Metadata: schema.Metadata{Alias: "loop"}, Steps: []schema.Step{
		{Name: "a", Image: "busybox", Next: schema.StringList{"b"}},
		{Name: "b", Image: "busybox", Next: schema.StringList{"a"}},
	}}
	f := setup(t, nil)
	res := executor.Execute(testContext(t), 1, job, f.opts)
	if res.Status != executor.RunFailed || !strings.HasPrefix(res.Error, "invalid job: steps form a cycle") {
		t.Errorf("result = %s %q", res.Status, res.Error)
	}
	if got := statuses(res); got["a"] != executor.TaskCancelled || got["b"] != executor.TaskCancelled {
		t.Errorf("statuses %v", got)
	}
	if len(f.eng.attempts()) != 0 {
		t.Error("an invalid job ran")
	}
}
