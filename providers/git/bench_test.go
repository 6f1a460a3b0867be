package git_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/git"
)

const (
	benchFiles = 10_000
	benchDirs  = 4
)

// benchManifest is a job manifest of about 600 bytes.
func benchManifest(i int, rev string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: caesium.io/v1\nkind: Job\nmetadata:\n  alias: job-%05d\n  labels:\n    team: team-%d\n    rev: %q\n", i, i%17, rev)
	fmt.Fprintf(&b, "trigger:\n  type: cron\n  configuration:\n    cron: \"%d * * * *\"\n    timezone: UTC\n", i%60)
	b.WriteString("steps:\n")
	for s := range 4 {
		fmt.Fprintf(&b, "  - name: step-%d\n    engine: docker\n    image: registry.example.com/team/tool:1.%d.%d\n    command: [\"run\", \"--job\", \"%05d\"]\n", s, s, i%10, i)
	}
	for b.Len() < 600 {
		b.WriteString("# padding to a realistic size\n")
	}
	return b.String()
}

// benchRepo makes a repository of benchFiles manifests in benchDirs
// directories with the git CLI, served by git daemon.
func benchRepo(b *testing.B) (work string, d *gitDaemon) {
	b.Helper()
	root := b.TempDir()
	work = filepath.Join(root, "big")
	for i := range benchFiles {
		p := filepath.Join(work, "jobs", fmt.Sprintf("team-%d", i%benchDirs), fmt.Sprintf("job-%05d.yaml", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(benchManifest(i, "0")), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	gitRun(b, work, "init", "-q")
	gitRun(b, work, "add", "-A")
	gitRun(b, work, "commit", "-q", "-m", "10k manifests")
	// As a served repository would be: packed.
	gitRun(b, work, "repack", "-a", "-d", "-q")
	return work, startGitDaemon(b, root)
}

func reportMS(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkSync measures the agent's Git paths on a repository of 10,000
// manifests served by git daemon on loopback, against git's own shallow bare
// clone. See docs/benchmarks.md.
func BenchmarkSync(b *testing.B) {
	work, d := benchRepo(b)
	url := d.url("big")
	ctx := context.Background()

	b.Run("cli-clone-bare-depth1", func(b *testing.B) {
		parent := b.TempDir()
		for i := 0; b.Loop(); i++ {
			dst := filepath.Join(parent, fmt.Sprintf("c%d.git", i))
			cmd := exec.Command("git", "clone", "-q", "--bare", "--depth", "1", url, dst)
			cmd.Env = gitEnv
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git clone: %v\n%s", err, out)
			}
		}
		reportMS(b)
	})

	b.Run("cold-head-fetch-manifests", func(b *testing.B) {
		parent := b.TempDir()
		for i := 0; b.Loop(); i++ {
			r, err := git.New(git.Config{URL: url, Dir: filepath.Join(parent, fmt.Sprint(i))}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			head, err := r.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Fetch(ctx, head); err != nil {
				b.Fatal(err)
			}
			files, err := r.Manifests(ctx, head)
			if err != nil {
				b.Fatal(err)
			}
			if len(files) != benchFiles || len(files[0].Data) < 500 {
				b.Fatalf("%d manifests", len(files))
			}
			_ = r.Close()
		}
		reportMS(b)
	})

	// A warm source: one fetched revision.
	r, err := git.New(git.Config{URL: url, Dir: b.TempDir()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	head, err := r.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Fetch(ctx, head); err != nil {
		b.Fatal(err)
	}

	b.Run("head-no-change", func(b *testing.B) {
		for b.Loop() {
			h, err := r.Head(ctx)
			if err != nil || h != head {
				b.Fatalf("Head = %s, %v", h, err)
			}
		}
		reportMS(b)
	})

	b.Run("manifests-warm", func(b *testing.B) {
		for b.Loop() {
			files, err := r.Manifests(ctx, head)
			if err != nil || len(files) != benchFiles {
				b.Fatalf("%d manifests, %v", len(files), err)
			}
		}
		reportMS(b)
	})

	// edits numbers the changes made to the served repository, so that
	// every commit changes content even across -count runs.
	edits := 0
	b.Run("incremental-one-file", func(b *testing.B) {
		prev, err := r.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Fetch(ctx, prev); err != nil {
			b.Fatal(err)
		}
		var steps [4]time.Duration
		for {
			// The commit is made outside the timer; b.Loop times the rest.
			b.StopTimer()
			edits++
			i := edits
			n := (i * 7919) % benchFiles
			rel := fmt.Sprintf("jobs/team-%d/job-%05d.yaml", n%benchDirs, n)
			if err := os.WriteFile(filepath.Join(work, rel), []byte(benchManifest(n, fmt.Sprint(i))), 0o644); err != nil {
				b.Fatal(err)
			}
			gitRun(b, work, "commit", "-q", "-a", "-m", "one change")
			b.StartTimer()
			if !b.Loop() {
				break
			}
			t0 := time.Now()
			next, err := r.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := r.Fetch(ctx, next); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			changed, err := r.Changed(ctx, prev, next)
			if err != nil || len(changed) != 1 || changed[0] != rel {
				b.Fatalf("Changed = %v, %v; want [%s]", changed, err, rel)
			}
			t3 := time.Now()
			files, err := r.Files(ctx, next, changed)
			if err != nil || len(files) != 1 || !strings.Contains(string(files[0].Data), fmt.Sprintf("rev: \"%d\"", i)) {
				b.Fatalf("Files = %v, %v", paths(files), err)
			}
			t4 := time.Now()
			steps[0] += t1.Sub(t0)
			steps[1] += t2.Sub(t1)
			steps[2] += t3.Sub(t2)
			steps[3] += t4.Sub(t3)
			prev = next
		}
		reportMS(b)
		for i, name := range []string{"head-ms", "fetch-ms", "changed-ms", "files-ms"} {
			b.ReportMetric(float64(steps[i].Microseconds())/1000/float64(b.N), name)
		}
	})

	// The repack that runs once past ~6,700 loose objects, with the fetch
	// that triggers it.
	b.Run("compaction-and-fetch", func(b *testing.B) {
		git.CompactOnEveryFetch(r)
		for {
			b.StopTimer()
			edits++
			n := (edits * 7919) % benchFiles
			rel := fmt.Sprintf("jobs/team-%d/job-%05d.yaml", n%benchDirs, n)
			if err := os.WriteFile(filepath.Join(work, rel), []byte(benchManifest(n, fmt.Sprint(edits))), 0o644); err != nil {
				b.Fatal(err)
			}
			gitRun(b, work, "commit", "-q", "-a", "-m", "one change")
			next, err := r.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if !b.Loop() {
				break
			}
			if err := r.Fetch(ctx, next); err != nil {
				b.Fatal(err)
			}
		}
		reportMS(b)
	})
}
