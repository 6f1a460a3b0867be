package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// runBenchBacklog is how many runs wait in the backlog variants.
const runBenchBacklog = 1000

// BenchmarkRuns measures the run path's store calls on each backend, with
// genJob's realistic 4-step job (a ~1 KB pinned spec). See
// docs/benchmarks.md ("Runs").
//
//   - create: CreateRun of a job with no run in flight, as a trigger of an
//     idle job; each run is cancelled off the clock.
//   - create/backlog=1000: the same with 1,000 runs of the job queued
//     (concurrency queue, maxRuns 1), as in a burst of triggers.
//   - lifecycle: one run's whole store path, one run at a time: CreateRun,
//     then under a leader's lease (as the agent's runner) ClaimRuns(1),
//     SetTask ×4 (each step's final state) and FinishRun. runs/s, and the
//     mean µs of each call.
//   - lifecycle/backlog=1000: the same while another job has one run
//     running and 1,000 queued behind it (maxRuns 1), which every claim
//     reads past.
//
// writes/op counts the INSERT, UPDATE and DELETE statements of one
// iteration, queries/op every statement (BEGIN and COMMIT included).
func BenchmarkRuns(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend+"/create", func(b *testing.B) { benchCreateRun(b, backend, 0) })
		b.Run(fmt.Sprintf("%s/create/backlog=%d", backend, runBenchBacklog), func(b *testing.B) {
			benchCreateRun(b, backend, runBenchBacklog)
		})
		b.Run(backend+"/claim-idle", func(b *testing.B) { benchClaimIdle(b, backend) })
		b.Run(backend+"/lifecycle", func(b *testing.B) { benchRunLifecycle(b, backend, 0) })
		b.Run(fmt.Sprintf("%s/lifecycle/backlog=%d", backend, runBenchBacklog), func(b *testing.B) {
			benchRunLifecycle(b, backend, runBenchBacklog)
		})
	}
}

// runBenchStore opens a store with the given jobs applied.
func runBenchStore(b *testing.B, backend string, jobs ...*schema.Job) (*store.Store, context.Context) {
	b.Helper()
	s := storetest.Open(b, backend)
	ctx := b.Context()
	changes := make([]store.Change, len(jobs))
	for i, j := range jobs {
		changes[i] = create(j, provenance("git-main", "c1"))
	}
	if _, err := s.ApplyChanges(ctx, changes); err != nil {
		b.Fatalf("ApplyChanges: %v", err)
	}
	return s, ctx
}

// queueRuns creates n runs of alias, all queued.
func queueRuns(b *testing.B, ctx context.Context, s *store.Store, alias string, n int) {
	b.Helper()
	for range n {
		r, err := s.CreateRun(ctx, store.NewRun{JobAlias: alias, Trigger: schema.TriggerHTTP, Actor: "http 127.0.0.1"})
		if err != nil {
			b.Fatalf("CreateRun: %v", err)
		}
		if r.Status != store.RunQueued {
			b.Fatalf("run %d is %s, want queued", r.ID, r.Status)
		}
	}
}

func benchCreateRun(b *testing.B, backend string, backlog int) {
	s, ctx := runBenchStore(b, backend, genJob("etl", 1))
	queueRuns(b, ctx, s, "etl", backlog)
	var writes, queries int64
	b.ResetTimer()
	for range b.N {
		before := s.Stats()
		r, err := s.CreateRun(ctx, store.NewRun{JobAlias: "etl", Trigger: schema.TriggerHTTP, Actor: "http 127.0.0.1"})
		if err != nil {
			b.Fatalf("CreateRun: %v", err)
		}
		b.StopTimer()
		after := s.Stats()
		writes += after.Writes - before.Writes
		queries += after.Queries - before.Queries
		if r.Status != store.RunQueued {
			b.Fatalf("run %d is %s, want queued", r.ID, r.Status)
		}
		// Keep the number of runs in flight constant.
		if _, err := s.RequestCancel(ctx, r.ID); err != nil {
			b.Fatalf("RequestCancel: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
}

func benchRunLifecycle(b *testing.B, backend string, backlog int) {
	s, ctx := runBenchStore(b, backend, genJob("etl", 1), genJob("blocked", 1))
	if backlog > 0 {
		queueRuns(b, ctx, s, "blocked", backlog+1)
		if got, err := s.ClaimRuns(ctx, 1); err != nil || len(got) != 1 {
			b.Fatalf("ClaimRuns: %d runs, %v; want the first blocked run", len(got), err)
		}
	}
	lease, err := s.Campaign(ctx, store.LeaderOptions{Name: "reconciler", Identity: "bench"})
	if err != nil {
		b.Fatalf("Campaign: %v", err)
	}
	b.Cleanup(lease.Resign)
	lctx := store.WithLease(ctx, lease)

	steps := genJob("etl", 1).Steps
	zero := 0
	var create, claim, setTask, finish time.Duration
	var writes, queries int64
	b.ResetTimer()
	for range b.N {
		before := s.Stats()
		t0 := time.Now()
		r, err := s.CreateRun(ctx, store.NewRun{JobAlias: "etl", Trigger: schema.TriggerHTTP, Actor: "http 127.0.0.1"})
		if err != nil {
			b.Fatalf("CreateRun: %v", err)
		}
		t1 := time.Now()
		claimed, err := s.ClaimRuns(lctx, 1)
		if err != nil || len(claimed) != 1 || claimed[0].ID != r.ID {
			b.Fatalf("ClaimRuns: %v, %v; want run %d", claimed, err, r.ID)
		}
		t2 := time.Now()
		for i, st := range steps {
			start, end := time.Now(), time.Now()
			err := s.SetTask(lctx, r.ID, store.TaskRun{
				Name: st.Name, Position: i, Status: store.TaskSucceeded, Attempts: 1, ExitCode: &zero,
				Output: st.Name + " done\n", StartedAt: &start, FinishedAt: &end,
			})
			if err != nil {
				b.Fatalf("SetTask: %v", err)
			}
		}
		t3 := time.Now()
		if err := s.FinishRun(lctx, r.ID, store.RunSucceeded, "", nil); err != nil {
			b.Fatalf("FinishRun: %v", err)
		}
		t4 := time.Now()
		create += t1.Sub(t0)
		claim += t2.Sub(t1)
		setTask += t3.Sub(t2)
		finish += t4.Sub(t3)
		after := s.Stats()
		writes += after.Writes - before.Writes
		queries += after.Queries - before.Queries
	}
	b.StopTimer()
	us := func(d time.Duration, calls int) float64 {
		return float64(d.Microseconds()) / float64(b.N*calls)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(us(create, 1), "create-µs")
	b.ReportMetric(us(claim, 1), "claim-µs")
	b.ReportMetric(us(setTask, len(steps)), "settask-µs")
	b.ReportMetric(us(finish, 1), "finish-µs")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
}

// benchClaimIdle: ClaimRuns under a lease with nothing queued, what the
// leader's runner does on every poll of an idle installation.
func benchClaimIdle(b *testing.B, backend string) {
	s, ctx := runBenchStore(b, backend, runJob("idle", 1, schema.ConcurrencyQueue))
	lease, err := s.Campaign(ctx, store.LeaderOptions{Name: "reconciler", Identity: "bench"})
	if err != nil {
		b.Fatalf("Campaign: %v", err)
	}
	defer lease.Resign()
	lctx := store.WithLease(ctx, lease)
	b.ResetTimer()
	for b.Loop() {
		runs, err := s.ClaimRuns(lctx, 4)
		if err != nil || len(runs) != 0 {
			b.Fatalf("ClaimRuns = %d runs, %v", len(runs), err)
		}
	}
}
