package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store/storetest"
)

const (
	benchJobs = 10_000
	benchDirs = 20
)

// benchManifest is a realistic job of four steps in a chain, with a cron
// trigger, labels and secret references: 800–850 bytes. rev lands in one
// env value, as a one-line edit would.
func benchManifest(i int, rev string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: job-%05[1]d
  labels:
    team: team-%02[2]d
    tier: standard
  annotations:
    owner: team-%02[2]d@example.com
trigger:
  type: cron
  configuration:
    expression: "%[3]d %[4]d * * *"
    timezone: Europe/Berlin
steps:
  - name: extract
    image: registry.example.com/etl:1.14.%[5]d
    command: [python, -m, etl.extract, --shard=%[1]d]
    env:
      SOURCE_DSN: secret://env/SOURCE_DSN
      REVISION: "%[6]s"
    retries: 2
  - name: transform
    image: registry.example.com/etl:1.14.%[5]d
    command: [python, -m, etl.transform, --shard=%[1]d]
    dependsOn: [extract]
  - name: load
    image: postgres:16-alpine
    command: [psql, --set=ON_ERROR_STOP=1, --command=CALL load(%[1]d)]
    env:
      PGPASSWORD: secret://env/PGPASSWORD
    dependsOn: [transform]
  - name: notify
    image: curlimages/curl:8.8.0
    command: [curl, -fsS, "https://hooks.example.com/done/%[1]d"]
    dependsOn: [load]
`, i, i%benchDirs, i%60, i%24, i%10, rev)
}

func benchPath(i int) string {
	return fmt.Sprintf("jobs/team-%02d/job-%05d.yaml", i%benchDirs, i)
}

// gitDaemon runs `git daemon` serving root on a free loopback port.
type gitDaemon struct {
	addr string
}

func startGitDaemon(tb testing.TB, root string) *gitDaemon {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
		"--base-path="+root, "--listen=127.0.0.1", "--port="+strconv.Itoa(port), root)
	cmd.Env = gitEnv
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	d := &gitDaemon{addr: "127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", d.addr)
		if err == nil {
			_ = c.Close()
			return d
		}
		if time.Now().After(deadline) {
			tb.Fatalf("git daemon did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *gitDaemon) url(repo string) string { return "git://" + d.addr + "/" + repo }

// benchRepo commits benchJobs manifests in benchDirs directories with the
// git CLI, packed as a served repository would be, and serves it with git
// daemon.
func benchRepo(b *testing.B) (*workRepo, string) {
	b.Helper()
	requireTool(b, "git")
	if docs, diags := schema.Parse("x.yaml", []byte(benchManifest(1, "0")), schema.DefaultLimits); len(docs) != 1 || schema.HasErrors(append(diags, docs[0].Diagnostics...)) {
		b.Fatalf("the benchmark manifest is invalid: %v %v", diags, docs)
	}
	w := newWorkRepo(b)
	for i := range benchJobs {
		w.write(benchPath(i), benchManifest(i, "0"))
	}
	w.commit("10,000 jobs")
	gitRun(b, w.Dir, nil, "repack", "-a", "-d", "-q")
	d := startGitDaemon(b, filepath.Dir(w.Dir))
	return w, d.url(filepath.Base(w.Dir))
}

func reportMS(b *testing.B, d time.Duration, name string) {
	b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), name)
}

// BenchmarkSync measures a source's sync of a repository of 10,000 realistic
// manifests served by git daemon on loopback: git's own shallow bare clone
// for reference, a cold sync (new source, empty store and data dir: clone,
// parse and apply every job) and an incremental one (a commit changing one
// file), on both databases. See docs/benchmarks.md.
func BenchmarkSync(b *testing.B) {
	w, url := benchRepo(b)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	b.Run("git-clone-bare-depth1", func(b *testing.B) {
		parent := b.TempDir()
		for i := 0; i < b.N; i++ {
			dst := filepath.Join(parent, fmt.Sprintf("c%d.git", i))
			cmd := exec.Command("git", "clone", "-q", "--bare", "--depth", "1", url, dst)
			cmd.Env = gitEnv
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git clone: %v\n%s", err, out)
			}
		}
		reportMS(b, b.Elapsed(), "ms/op")
	})

	edits := 0
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			if backend == "postgres" {
				storetest.AdminURL(b) // skip (or fail under CI) without PostgreSQL
			}
			newSource := func(b *testing.B) *agent.Source {
				f := &fixture{st: storetest.Open(b, backend), dataDir: b.TempDir()}
				s, err := agent.NewSource(sourceConfig("bench", url), f.dataDir, f.st, nil, log)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				return s
			}
			sync := func(b *testing.B, s *agent.Source, wantCreated, wantUpdated int) {
				res := s.Sync(ctx, false)
				if res.Failed() || res.Jobs != benchJobs || res.Report.Summary.Created != wantCreated || res.Report.Summary.Updated != wantUpdated {
					b.Fatalf("sync: %s: %s; %d jobs, %s", res.Reason, res.Error, res.Jobs, summary(res))
				}
			}

			b.Run("cold", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					s := newSource(b) // an empty store and data dir
					b.StartTimer()
					sync(b, s, benchJobs, 0)
				}
				reportMS(b, b.Elapsed(), "ms/op")
				b.ReportMetric(float64(benchJobs*b.N)/b.Elapsed().Seconds(), "jobs/s")
			})

			b.Run("incremental-one-file", func(b *testing.B) {
				b.StopTimer()
				s := newSource(b)
				sync(b, s, benchJobs, 0)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					edits++
					n := (edits * 7919) % benchJobs
					w.write(benchPath(n), benchManifest(n, strconv.Itoa(edits)))
					w.commit("one change")
					b.StartTimer()
					sync(b, s, 0, 1)
				}
				reportMS(b, b.Elapsed(), "ms/op")
			})
		})
	}
}
