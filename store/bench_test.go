package store_test

import (
	"fmt"
	"testing"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// BenchmarkApplyChanges measures ApplyChanges on each backend:
//
//   - cold: n new jobs into an empty database, one call (the first sync of a
//     repository). Each job is ~10 rows: the job, its version, a cron
//     trigger, 4 tasks, 4 edges and a callback.
//   - update-1%: n/100 of n stored jobs change their images (a typical
//     commit): new versions, child rows replaced.
//
// jobs/s counts the jobs of the call; writes/op the INSERT, UPDATE and DELETE
// statements it sent. Run with -benchtime=Nx: every cold iteration needs a
// fresh database, which is set up off the clock.
func BenchmarkApplyChanges(b *testing.B) {
	for _, backend := range storetest.Backends() {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/jobs=%d/cold", backend, n), func(b *testing.B) {
				benchCold(b, backend, n)
			})
			b.Run(fmt.Sprintf("%s/jobs=%d/update-1%%", backend, n), func(b *testing.B) {
				benchUpdate(b, backend, n, n/100)
			})
		}
	}
}

func genCreates(n int) []store.Change {
	changes := make([]store.Change, n)
	for i := range changes {
		changes[i] = create(genJob(fmt.Sprintf("job-%05d", i), 1), provenance("git-main", "c1"))
	}
	return changes
}

func benchCold(b *testing.B, backend string, n int) {
	changes := genCreates(n)
	var writes int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := storetest.Open(b, backend)
		b.StartTimer()
		if _, err := s.ApplyChanges(b.Context(), changes); err != nil {
			b.Fatalf("ApplyChanges: %v", err)
		}
		b.StopTimer()
		writes += s.Stats().Writes
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

func benchUpdate(b *testing.B, backend string, n, changed int) {
	s := storetest.Open(b, backend)
	jobs, err := s.ApplyChanges(b.Context(), genCreates(n))
	if err != nil {
		b.Fatalf("ApplyChanges: %v", err)
	}
	stride := n / changed
	variant := 1
	var writes int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		variant++
		changes := make([]store.Change, changed)
		idx := make([]int, changed)
		for k := range changes {
			idx[k] = (k*stride + i) % n
			cur := jobs[idx[k]]
			changes[k] = update(cur, genJob(cur.Alias, variant), provenance("git-main", fmt.Sprintf("c%d", variant)))
		}
		before := s.Stats().Writes
		b.StartTimer()
		out, err := s.ApplyChanges(b.Context(), changes)
		if err != nil {
			b.Fatalf("ApplyChanges: %v", err)
		}
		b.StopTimer()
		writes += s.Stats().Writes - before
		for k, j := range out {
			jobs[idx[k]] = j
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(changed*b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}
