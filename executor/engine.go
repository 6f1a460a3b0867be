package executor

import (
	"context"
	"errors"
	"io"
	"time"
)

// Task is one attempt of one step, with everything resolved: the executor
// hands an engine literal environment values, never secret references.
type Task struct {
	RunID   int64
	Job     string // job alias
	Step    string // step name
	Attempt int    // 1 for the first attempt
	Image   string
	Command []string // empty: the image's default command
	Env     map[string]string
	Workdir string
}

// Engine runs one attempt of a step to completion.
//
// Run blocks until the attempt ends and returns its exit code. It writes
// the attempt's combined output to out as it is produced. A non-zero exit
// code is a step failure, not an error: err is reserved for failures of the
// engine itself (image not found, daemon unreachable, container could not
// be created), which the executor records on the step as its error. When
// ctx ends (a step timeout, a run timeout, a cancel) Run stops the attempt,
// cleans up what it created (using context.WithoutCancel for that) and
// returns ctx's error. An engine never logs or returns environment values.
type Engine interface {
	Run(ctx context.Context, t Task, out io.Writer) (exitCode int, err error)
}

// ErrEngineUnavailable marks engine errors that are not the step's fault
// (the daemon is down); errors.Is lets callers tell them apart.
var ErrEngineUnavailable = errors.New("engine unavailable")

// Clock is the time the executor reads; tests inject one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}
