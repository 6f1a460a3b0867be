package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// benchManifest is a realistic job: four steps with edges, env holding
// secret references, a cron trigger, labels and a callback; about 1.3 KB.
// variant changes one env value, as a one-line edit of the file would.
func benchManifest(i int, variant string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: job-%05[1]d
  labels:
    team: team-%[2]d
    tier: critical
    app.kubernetes.io/part-of: data-warehouse
  annotations:
    owner: team-%[2]d@example.com
  taskTimeout: 45m
  runTimeout: 3h
  concurrency:
    strategy: skip
trigger:
  type: cron
  configuration:
    expression: "%[3]d %[4]d * * *"
    timezone: Europe/Berlin
callbacks:
  - url: https://hooks.example.com/jobs/job-%05[1]d
    on: [failure]
    headers:
      X-Token: secret://env/HOOK_TOKEN
steps:
  - name: extract
    image: registry.example.com/etl:1.14.%[5]d
    workdir: /app
    command: [python, -m, etl.extract, --shard=%[1]d]
    env:
      SOURCE_DSN: secret://vault/kv/oltp-replica#dsn
      AWS_ACCESS_KEY_ID: secret://vault/kv/staging-s3#access_key_id
      AWS_REGION: %[6]s
    retries: 3
    retryDelay: 2m
    next: [transform, validate]
  - name: transform
    image: registry.example.com/etl:1.14.%[5]d
    command: [python, -m, etl.transform, --shard=%[1]d]
    env:
      ETL_WORKERS: "8"
  - name: validate
    image: registry.example.com/dq:3.2.0
    command: [dq, check, --suite=orders]
    triggerRule: all_done
  - name: load
    image: postgres:16-alpine
    command: [psql, --set=ON_ERROR_STOP=1, --command=CALL load(%[1]d)]
    env:
      PGPASSWORD: secret://vault/kv/warehouse#password
    dependsOn: [transform, validate]
    timeout: 1h
`, i, i%20, i%60, i%24, i%10, variant)
}

func benchManifests(n int, variant func(i int) string) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = benchManifest(i, variant(i))
	}
	return out
}

// parseDesired is the agent's parse step: schema.Parse per file, then the
// canonical spec and hash of each job.
func parseDesired(tb testing.TB, manifests []string) []Desired {
	tb.Helper()
	out := make([]Desired, 0, len(manifests))
	for i, m := range manifests {
		path := fmt.Sprintf("jobs/job-%05d.yaml", i)
		docs, diags := schema.Parse(path, []byte(m), schema.Limits{})
		if len(docs) != 1 || !docs[0].Valid() || schema.HasErrors(diags) {
			tb.Fatalf("%s does not parse: %v %v", path, diags, docs[0].Diagnostics)
		}
		d, err := NewDesired(docs[0].Job, store.Provenance{Repo: testRepo, Ref: testRef, Path: path, Commit: commitA})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// timings is one run of the agent's path, by phase.
type timings struct{ list, plan, apply time.Duration }

// run is the path the agent takes for one revision: list the live jobs, plan
// against them, apply.
func run(b *testing.B, st *store.Store, desired []Desired) (*Report, timings) {
	b.Helper()
	ctx := b.Context()
	var tm timings
	start := time.Now()
	actual, err := st.ListJobs(ctx, store.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tm.list = time.Since(start)
	start = time.Now()
	cs, err := Plan(desired, actual, Options{SourceID: srcPlatform, Prune: true})
	if err != nil {
		b.Fatal(err)
	}
	tm.plan = time.Since(start)
	start = time.Now()
	rep, err := Apply(ctx, st, cs, ApplyOptions{Actor: "bench", Revision: commitA})
	if err != nil {
		b.Fatal(err)
	}
	tm.apply = time.Since(start)
	if rep.Summary.Failed > 0 || rep.Summary.Conflicts > 0 || rep.PruneRefused != "" {
		b.Fatalf("apply failed: %+v %s", rep.Summary, rep.PruneRefused)
	}
	return rep, tm
}

func (tm *timings) add(o timings) {
	tm.list += o.list
	tm.plan += o.plan
	tm.apply += o.apply
}

func (tm timings) report(b *testing.B, jobs int) {
	n := float64(b.N)
	b.ReportMetric(float64(jobs)*n/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(tm.list.Milliseconds())/n, "list-ms/op")
	b.ReportMetric(float64(tm.plan.Milliseconds())/n, "plan-ms/op")
	b.ReportMetric(float64(tm.apply.Milliseconds())/n, "apply-ms/op")
}

// BenchmarkPlanApply measures what the agent does per revision: ListJobs,
// Plan and Apply, against real stores. Parsing is measured on its own.
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./reconcile
func BenchmarkPlanApply(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		manifests := benchManifests(n, func(int) string { return "eu-central-1" })
		b.Run(fmt.Sprintf("parse/jobs=%d", n), func(b *testing.B) {
			for range b.N {
				parseDesired(b, manifests)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
		desired := parseDesired(b, manifests)

		for _, backend := range storetest.Backends() {
			b.Run(fmt.Sprintf("%s/jobs=%d/cold", backend, n), func(b *testing.B) {
				var tm timings
				for range b.N {
					b.StopTimer()
					st := storetest.Open(b, backend)
					b.StartTimer()
					rep, t := run(b, st, desired)
					tm.add(t)
					if rep.Summary.Created != n {
						b.Fatalf("created %d of %d", rep.Summary.Created, n)
					}
				}
				tm.report(b, n)
			})

			b.Run(fmt.Sprintf("%s/jobs=%d/noop", backend, n), func(b *testing.B) {
				st := storetest.Open(b, backend)
				run(b, st, desired)
				b.ResetTimer()
				var tm timings
				for range b.N {
					before := st.Stats()
					rep, t := run(b, st, desired)
					tm.add(t)
					if rep.Summary.Unchanged != n || st.Stats().Writes != before.Writes {
						b.Fatalf("no-op: %+v, %d writes", rep.Summary, st.Stats().Writes-before.Writes)
					}
				}
				tm.report(b, n)
			})

			b.Run(fmt.Sprintf("%s/jobs=%d/change1pct", backend, n), func(b *testing.B) {
				st := storetest.Open(b, backend)
				run(b, st, desired)
				b.ResetTimer()
				var tm timings
				for i := range b.N {
					b.StopTimer()
					// Every 100th job gets a new value, another one each time.
					edited := benchManifests(n, func(j int) string {
						if j%100 == 0 {
							return fmt.Sprintf("region-%d", i)
						}
						return "eu-central-1"
					})
					revision := parseDesired(b, edited)
					b.StartTimer()
					rep, t := run(b, st, revision)
					tm.add(t)
					if rep.Summary.Updated != n/100 || rep.Summary.Unchanged != n-n/100 {
						b.Fatalf("1%% change: %+v", rep.Summary)
					}
				}
				tm.report(b, n)
			})
		}
	}
}

// The benchmark's manifests are valid and realistic: checked in the tests so
// that a broken template fails fast, not after minutes of benchmarking.
func TestBenchManifest(t *testing.T) {
	t.Parallel()
	desired := parseDesired(t, benchManifests(3, func(int) string { return "eu-central-1" }))
	j := desired[2].Job
	if len(j.Steps) != 4 || len(j.Edges()) != 4 || len(j.Callbacks) != 1 || j.Trigger.Type != schema.TriggerCron || len(j.Metadata.Labels) != 3 {
		t.Errorf("job: %d steps, %d edges, %d callbacks, trigger %s, %d labels", len(j.Steps), len(j.Edges()), len(j.Callbacks), j.Trigger.Type, len(j.Metadata.Labels))
	}
	if n := len(desired[2].Spec); n < 1000 || n > 2500 {
		t.Errorf("spec is %d bytes", n)
	}
	if !strings.Contains(string(desired[2].Spec), "secret://vault/") {
		t.Errorf("no secret reference in %s", desired[2].Spec)
	}
}

// BenchmarkPlan measures the planner alone, against actual state in memory:
// the part of a no-op that is not the database's.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		desired := parseDesired(b, benchManifests(n, func(int) string { return "eu-central-1" }))
		actual := make([]store.Job, n)
		for i, d := range desired {
			p := d.Provenance
			p.SourceID = srcPlatform
			actual[i] = store.Job{ID: int64(i + 1), Alias: d.Job.Metadata.Alias, Version: 1, Hash: d.Hash, Spec: d.Spec, Labels: d.Job.Metadata.Labels, Provenance: p}
		}
		edited := parseDesired(b, benchManifests(n, func(j int) string {
			if j%100 == 0 {
				return "region-x"
			}
			return "eu-central-1"
		}))
		for _, bc := range []struct {
			name    string
			desired []Desired
			updates int
		}{{"noop", desired, 0}, {"change1pct", edited, n / 100}} {
			b.Run(fmt.Sprintf("jobs=%d/%s", n, bc.name), func(b *testing.B) {
				for b.Loop() {
					cs, err := Plan(bc.desired, actual, Options{SourceID: srcPlatform, Prune: true})
					if err != nil {
						b.Fatal(err)
					}
					if got := cs.Counts().Updated; got != bc.updates {
						b.Fatalf("%d updates, want %d", got, bc.updates)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}
