package schema

import (
	"fmt"
	"strings"
	"testing"
)

// realisticJob is a four-step manifest of the size teams write: cron
// trigger, callbacks, labels, secrets in env, a fan-out and fan-in.
const realisticJob = `# yaml-language-server: $schema=../schema/job.v1.json
apiVersion: v1
kind: Job
metadata:
  alias: %s
  labels:
    team: data-platform
    tier: critical
    app.kubernetes.io/part-of: data-warehouse
  annotations:
    owner: data-platform@example.com
    runbook: https://runbooks.example.com/data-platform/nightly-etl
  taskTimeout: 45m
  runTimeout: 3h
  concurrency:
    maxRuns: 1
    strategy: skip
trigger:
  type: cron
  configuration:
    expression: "0 2 * * *"
    timezone: Europe/Berlin
callbacks:
  - url: https://hooks.example.com/data-platform
    on: [failure]
    headers:
      Authorization: secret://vault/kv/hooks/data-platform#token
steps:
  - name: extract
    image: registry.example.com/data-platform/etl:1.14.2
    workdir: /app
    command: [python, -m, etl.extract, --source=orders, --since=yesterday]
    env:
      SOURCE_DSN: secret://vault/kv/oltp-replica#dsn
      AWS_REGION: eu-central-1
    retries: 3
    retryDelay: 2m
    timeout: 30m
    next: [transform-orders, transform-customers]
  - name: transform-orders
    image: registry.example.com/data-platform/etl:1.14.2
    command: ["python", "-m", "etl.transform", "--model=reporting.orders_v3"]
    env: {ETL_WORKERS: "8"}
  - name: transform-customers
    image: registry.example.com/data-platform/etl:1.14.2
    command: ["python", "-m", "etl.transform", "--model=reporting.customers_v2"]
  - name: load
    dependsOn: [transform-orders, transform-customers]
    image: postgres:16-alpine
    command: [psql, --set=ON_ERROR_STOP=1, "--command=CALL reporting.load_orders(current_date - 1)"]
    env:
      PGHOST: dwh.internal.example.com
      PGPASSWORD: secret://vault/kv/data-warehouse#password
    retries: 2
    retryDelay: 1m
    timeout: 1h
`

func BenchmarkParse(b *testing.B) {
	b.Run("4-step-manifest", func(b *testing.B) {
		data := []byte(fmt.Sprintf(realisticJob, "nightly-etl"))
		docs, diags := Parse("job.yaml", data, Limits{})
		if len(diags) != 0 || len(docs) != 1 || !docs[0].Valid() || len(docs[0].Diagnostics) != 0 {
			b.Fatalf("benchmark input is not a clean job: %v %v", diags, docs[0].Diagnostics)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Parse("job.yaml", data, Limits{})
		}
	})

	// A large repository: 10,000 jobs in 100 files of 100 documents, parsed
	// and then checked as one set, as a sync does.
	b.Run("10000-documents-in-100-files", func(b *testing.B) {
		const files, perFile = 100, 100
		inputs := make([][]byte, files)
		var size int64
		for f := range files {
			var sb strings.Builder
			for d := range perFile {
				sb.WriteString("---\n")
				fmt.Fprintf(&sb, realisticJob, fmt.Sprintf("job-%d-%d", f, d))
			}
			inputs[f] = []byte(sb.String())
			size += int64(sb.Len())
		}
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			all := make([]*Document, 0, files*perFile)
			for f, data := range inputs {
				docs, diags := Parse(fmt.Sprintf("jobs/%d.yaml", f), data, Limits{})
				if len(diags) != 0 || len(docs) != perFile {
					b.Fatalf("file %d: %d documents, %v", f, len(docs), diags)
				}
				all = append(all, docs...)
			}
			if diags := CheckSet(all); len(diags) != 0 {
				b.Fatal(diags)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*files*perFile), "ns/doc")
	})
}
