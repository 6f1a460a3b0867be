package executor_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/schema"
)

// instant is an executor.Engine whose attempts succeed at once, writing
// one line of output: what is left is the executor's own cost.
type instant struct{}

func (instant) Run(_ context.Context, t executor.Task, out io.Writer) (int, error) {
	_, _ = io.WriteString(out, t.Step+" done\n")
	return 0, nil
}

// diamondManifest is the 4-step diamond of the examples: prepare fans out
// to left and right, which join.
const diamondManifest = `apiVersion: v1
kind: Job
metadata: {alias: diamond}
steps:
  - name: prepare
    image: busybox:1.36.1
    command: ["sh", "-c", "echo prepared"]
    env: {STAGE: prepare, LOG_LEVEL: info}
    next: [left, right]
  - name: left
    image: busybox:1.36.1
    command: ["sh", "-c", "echo left"]
    next: join
  - name: right
    image: busybox:1.36.1
    command: ["sh", "-c", "echo right"]
    env: {GREETING: hello}
    next: join
  - name: join
    image: busybox:1.36.1
    command: ["sh", "-c", "echo joined"]
`

// fanOutManifest is one root step and n-1 steps that depend on it: the
// widest job the schema allows at n = 256 (schema.DefaultLimits.MaxSteps).
func fanOutManifest(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Job\nmetadata: {alias: fanout}\nsteps:\n")
	b.WriteString("  - name: root\n    image: busybox:1.36.1\n    command: [\"true\"]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - name: shard-%03d\n    image: busybox:1.36.1\n    command: [\"sh\", \"-c\", \"echo %d\"]\n    env: {SHARD: \"%d\"}\n    dependsOn: [root]\n", i, i, i)
	}
	return b.String()
}

// BenchmarkExecute measures Execute's own cost (DAG decisions, a goroutine
// per step, environment and output handling, one OnTask call per
// transition as the agent records them) with an engine that finishes every
// attempt at once. ns/step is ns/op divided by the steps of the job. See
// docs/benchmarks.md ("Runs").
func BenchmarkExecute(b *testing.B) {
	for _, c := range []struct {
		name     string
		manifest string
	}{
		{"diamond-4", diamondManifest},
		{"fanout-256", fanOutManifest(256)},
	} {
		b.Run(c.name, func(b *testing.B) {
			job := parseJob(b, c.manifest)
			transitions := 0
			opts := executor.Options{
				Engines: map[string]executor.Engine{schema.EngineDocker: instant{}},
				OnTask:  func(executor.TaskState) { transitions++ }, // never concurrent
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if res := executor.Execute(ctx, 1, job, opts); res.Status != executor.RunSucceeded {
					b.Fatalf("run %s: %s", res.Status, res.Error)
				}
			}
			steps := len(job.Steps)
			if want := 2 * steps * b.N; transitions != want {
				b.Fatalf("OnTask called %d times, want %d (two per step)", transitions, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps), "ns/step")
		})
	}
}
