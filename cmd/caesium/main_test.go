package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/schema"
)

// result is what one run of the command line printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the command line as main does, with stdin as standard input.
func runCLI(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, stdin, &stdout, &stderr)
	code := exitCode(err, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// writeFiles creates files (path relative to a new temp dir -> content) and
// returns the dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const validJob = `apiVersion: v1
kind: Job
metadata:
  alias: %s
steps:
  - name: greet
    image: alpine:3.20
`

func job(alias string) string { return fmt.Sprintf(validJob, alias) }

func TestLint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		args     []string // relative to the temp dir; none means the dir itself
		wantCode int
		want     []string // lines or parts of lines of stdout
		notWant  []string
	}{
		{
			name:  "valid file",
			files: map[string]string{"hello.yaml": job("hello")},
			want:  []string{"1 file, 1 job: ok\n"},
		},
		{
			name:     "typo names the line and suggests the field",
			files:    map[string]string{"typo.yaml": strings.Replace(job("typo"), "image:", "imagee:", 1)},
			wantCode: 1,
			want:     []string{"typo.yaml:7:5: steps[0].imagee: unknown field \"imagee\"; did you mean \"image\"?", "1 file, 1 job: 1 error\n"},
		},
		{
			name: "cycle",
			files: map[string]string{"cycle.yaml": `apiVersion: v1
kind: Job
metadata:
  alias: cycle
steps:
  - {name: a, image: x, next: b}
  - {name: b, image: x, next: c}
  - {name: c, image: x, next: a}
`},
			wantCode: 1,
			want:     []string{"cycle.yaml:6:5: steps[0]: steps form a cycle: a -> b -> c -> a"},
		},
		{
			name:     "bad cron expression",
			files:    map[string]string{"cron.yaml": job("cron") + "trigger:\n  type: cron\n  configuration:\n    expression: \"61 * * * *\"\n"},
			wantCode: 1,
			want:     []string{"cron.yaml:11:17: trigger.configuration.expression: cron expression \"61 * * * *\" does not parse"},
		},
		{
			name:     "unknown time zone",
			files:    map[string]string{"tz.yaml": job("tz") + "trigger:\n  type: cron\n  configuration:\n    expression: \"@daily\"\n    timezone: Mars/Olympus\n"},
			wantCode: 1,
			want:     []string{"tz.yaml:12:15: trigger.configuration.timezone: unknown time zone \"Mars/Olympus\""},
		},
		{
			name:  "warnings alone pass",
			files: map[string]string{"warn.yaml": job("warn") + "    retryDelay: 10s\n"},
			want:  []string{"warn.yaml:8:17: steps[0].retryDelay: warning: retryDelay has no effect without retries", "1 file, 1 job: ok, 1 warning\n"},
		},
		{
			name:     "alias used in two files",
			files:    map[string]string{"a.yaml": job("same"), "b.yaml": job("same")},
			wantCode: 1,
			want:     []string{"b.yaml:4:10: metadata.alias: alias \"same\" is already defined at ", "2 files, 2 jobs: 1 error\n"},
		},
		{
			name: "walks subdirectories, skips hidden ones and other extensions",
			files: map[string]string{
				"a.yaml":              job("a"),
				"sub/deeper/b.yml":    job("b"),
				".git/config.yaml":    "not: a job",
				".hidden.yaml":        "not: a job",
				"README.md":           "# jobs",
				"sub/values.json":     "{}",
				"sub/.github/ci.yaml": "on: push",
			},
			want: []string{"2 files, 2 jobs: ok\n"},
		},
		{
			name: "multi-document file",
			files: map[string]string{
				"jobs.yaml": job("one") + "---\n" + job("two") + "---\n",
			},
			want: []string{"1 file, 2 jobs: ok\n"},
		},
		{
			name:     "file named twice is read once",
			files:    map[string]string{"a.yaml": job("a")},
			args:     []string{"a.yaml", "./a.yaml", "."},
			want:     []string{"1 file, 1 job: ok\n"},
			notWant:  []string{"already defined"},
			wantCode: 0,
		},
		{
			name:     "a file named explicitly is read whatever its extension",
			files:    map[string]string{"job.txt": job("txt")},
			args:     []string{"job.txt"},
			want:     []string{"1 file, 1 job: ok\n"},
			wantCode: 0,
		},
		{
			name:     "missing path is a diagnostic, the rest is linted",
			files:    map[string]string{"a.yaml": job("a"), "b.yaml": strings.Replace(job("b"), "v1", "v2", 1)},
			args:     []string{"missing.yaml", "a.yaml", "b.yaml"},
			wantCode: 1,
			want: []string{
				"missing.yaml:1:1: (document): cannot read: no such file or directory",
				"b.yaml:1:13: apiVersion: apiVersion \"v2\" is not supported; use v1",
				"2 files, 2 jobs: 2 errors\n",
			},
		},
		{
			name:     "directory without manifests",
			files:    map[string]string{"empty/README.md": "nothing here"},
			args:     []string{"empty"},
			wantCode: 1,
			want:     []string{"empty:1:1: (document): directory holds no *.yaml or *.yml files", "0 files, 0 jobs: 1 error\n"},
		},
		{
			name:     "file over the size limit",
			files:    map[string]string{"big.yaml": job("big") + "# " + strings.Repeat("x", 2<<20) + "\n"},
			wantCode: 1,
			want:     []string{"big.yaml:1:1: (document): file is 2.0 MiB; the limit is 1.0 MiB", "1 file, 0 jobs: 1 error\n"},
		},
		{
			name:     "invalid YAML",
			files:    map[string]string{"broken.yaml": "apiVersion: v1\nkind: [Job\n"},
			wantCode: 1,
			want:     []string{"broken.yaml:", "invalid YAML"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tt.files)
			args := []string{"job", "lint"}
			if len(tt.args) == 0 {
				args = append(args, dir)
			}
			for _, a := range tt.args {
				args = append(args, filepath.Join(dir, a))
			}
			res := runCLI(t, nil, args...)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, tt.wantCode, res.stdout, res.stderr)
			}
			if res.stderr != "" {
				t.Errorf("stderr = %q, want nothing: lint reports on stdout", res.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, res.stdout)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(res.stdout, w) {
					t.Errorf("stdout contains %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}

func TestLintOutputIsSortedAndComplete(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"b.yaml": strings.Replace(job("b"), "kind: Job", "kind: Jobs", 1),
		"a.yaml": strings.Replace(job("a"), "image:", "imagee:", 1) + "    retries: -1\n",
	})
	res := runCLI(t, nil, "job", "lint", filepath.Join(dir, "b.yaml"), filepath.Join(dir, "a.yaml"))
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	prefixes := []string{
		filepath.Join(dir, "a.yaml") + ":7:5: steps[0].imagee:",
		filepath.Join(dir, "a.yaml") + ":8:14: steps[0].retries:",
		filepath.Join(dir, "b.yaml") + ":2:7: kind:",
		"2 files, 2 jobs: 3 errors",
	}
	if len(lines) != len(prefixes) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(prefixes), res.stdout)
	}
	for i, p := range prefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], p)
		}
	}
}

func TestLintJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		wantCode int
		want     []schema.Diagnostic
	}{
		{
			name:  "clean is an empty array",
			files: map[string]string{"ok.yaml": job("ok")},
			want:  []schema.Diagnostic{},
		},
		{
			name:     "errors and warnings",
			files:    map[string]string{"bad.yaml": strings.Replace(job("bad"), "image:", "imagee:", 1) + "    retryDelay: 5s\n"},
			wantCode: 1,
			want: []schema.Diagnostic{
				{File: "bad.yaml", Line: 7, Column: 5, Path: "steps[0].imagee", Severity: schema.SeverityError, Message: `unknown field "imagee"; did you mean "image"?`},
				{File: "bad.yaml", Line: 8, Column: 17, Path: "steps[0].retryDelay", Severity: schema.SeverityWarning, Message: "retryDelay has no effect without retries"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tt.files)
			res := runCLI(t, nil, "job", "lint", "--format", "json", dir)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr: %s", res.code, tt.wantCode, res.stderr)
			}
			var raw []map[string]any
			if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil || raw == nil {
				t.Fatalf("stdout is not a JSON array (%v):\n%s", err, res.stdout)
			}
			fields := []string{"file", "line", "column", "path", "severity", "message"}
			for _, d := range raw {
				if len(d) != len(fields) {
					t.Errorf("diagnostic has fields %v, want %v", d, fields)
				}
				for _, f := range fields {
					if _, ok := d[f]; !ok {
						t.Errorf("diagnostic %v has no %q", d, f)
					}
				}
			}
			var got []schema.Diagnostic
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%s", len(got), len(tt.want), res.stdout)
			}
			for i := range got {
				got[i].File = strings.TrimPrefix(got[i].File, dir+string(filepath.Separator))
				if got[i] != tt.want[i] {
					t.Errorf("diagnostic %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLintStdin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		wantCode int
		want     string
	}{
		{name: "valid", stdin: job("piped"), want: "1 file, 1 job: ok\n"},
		{name: "invalid", stdin: strings.Replace(job("piped"), "alias: piped", "alias: Piped", 1), wantCode: 1, want: "<stdin>:4:10: metadata.alias: alias \"Piped\" may hold only"},
		{name: "empty", stdin: "", want: "1 file, 0 jobs: ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, strings.NewReader(tt.stdin), "job", "lint", "-")
			if res.code != tt.wantCode || !strings.Contains(res.stdout, tt.want) {
				t.Errorf("code %d, stdout:\n%s\nwant code %d and %q", res.code, res.stdout, tt.wantCode, tt.want)
			}
		})
	}
}

// endless is a reader that never ends, like a device or a hostile pipe.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '#'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestLintReadsAtMostTheLimit(t *testing.T) {
	t.Parallel()
	in := &endless{}
	res := runCLI(t, in, "job", "lint", "-")
	if res.code != 1 || !strings.Contains(res.stdout, "<stdin>:1:1: (document): input is larger than 1.0 MiB, the limit") {
		t.Errorf("code %d, stdout:\n%s", res.code, res.stdout)
	}
	if in.n > schema.DefaultLimits.MaxFileBytes+64<<10 {
		t.Errorf("read %d bytes from an endless input; the limit is %d", in.n, schema.DefaultLimits.MaxFileBytes)
	}
}

func TestLintDoesNotFollowDirectoryLinks(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"jobs/a.yaml": job("a"), "other/b.yaml": job("b")})
	links := map[string]string{
		"jobs/loop":      ".",                                // a loop
		"jobs/loop.yaml": ".",                                // a loop with a manifest's name
		"jobs/away":      filepath.Join(dir, "other"),        // a directory elsewhere
		"jobs/c.yaml":    filepath.Join(dir, "other/b.yaml"), // a link to a file is read
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("symlinks: %v", err)
		}
	}
	res := runCLI(t, nil, "job", "lint", filepath.Join(dir, "jobs"))
	if res.code != 0 || !strings.HasSuffix(res.stdout, "2 files, 2 jobs: ok\n") {
		t.Errorf("code %d, stdout:\n%s", res.code, res.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "lint without a path", args: []string{"job", "lint"}, wantStderr: "caesium: job lint needs a path: a file, a directory, or - for standard input\n"},
		{name: "unknown format", args: []string{"job", "lint", "--format", "xml", "."}, wantStderr: "caesium: --format must be text or json, not \"xml\"\n"},
		{name: "unknown flag", args: []string{"job", "lint", "--strict", "."}, wantStderr: "caesium: unknown flag: --strict (see 'caesium job lint --help')\n"},
		{name: "unknown command", args: []string{"deploy"}, wantStderr: "caesium: unknown command \"deploy\" for \"caesium\"\n"},
		{name: "extra argument", args: []string{"version", "now"}, wantStderr: "caesium: unknown command \"now\" for \"caesium version\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, tt.args...)
			if res.code != 1 {
				t.Errorf("exit code = %d, want 1", res.code)
			}
			if res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q (printed once, no usage)", res.stderr, tt.wantStderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		want       int
		wantStderr string
	}{
		{name: "success", err: nil, want: 0},
		{name: "already reported", err: fmt.Errorf("lint: %w", exitError{code: 1}), want: 1},
		{name: "other code", err: exitError{code: 3}, want: 3},
		{name: "error", err: errors.New("boom"), want: 1, wantStderr: "caesium: boom\n"},
		{name: "interrupted", err: fmt.Errorf("read: %w", context.Canceled), want: 130, wantStderr: "caesium: interrupted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if got := exitCode(tt.err, &stderr); got != tt.want || stderr.String() != tt.wantStderr {
				t.Errorf("exitCode = %d, stderr %q; want %d, %q", got, stderr.String(), tt.want, tt.wantStderr)
			}
		})
	}
}

func TestLintStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"a.yaml": job("a")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"job", "lint", dir}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSchemaCommand(t *testing.T) {
	t.Parallel()
	res := runCLI(t, nil, "schema")
	if res.code != 0 || res.stdout != string(schema.JSONSchema()) {
		t.Errorf("code %d; stdout is not schema.JSONSchema()", res.code)
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	res := runCLI(t, nil, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "caesium dev (go") || !strings.HasSuffix(res.stdout, ")\n") {
		t.Errorf("code %d, stdout %q", res.code, res.stdout)
	}
}

// TestBinary builds the real binary and runs it as a user would: exit
// codes and streams come from main, not from run.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "caesium")
	build := exec.Command(goBin, "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // exact
	}{
		{name: "valid fixtures", args: []string{"job", "lint", "testdata/valid"}, wantStdout: "2 files, 3 jobs: ok\n"},
		{name: "invalid fixture", args: []string{"job", "lint", "testdata/invalid"}, wantCode: 1,
			wantStdout: "testdata/invalid/typo.yaml:7:5: steps[0].imagee: unknown field \"imagee\"; did you mean \"image\"?\n"},
		{name: "examples", args: []string{"job", "lint", "../../examples"}, wantStdout: ": ok"},
		{name: "usage error", args: []string{"job", "lint"}, wantCode: 1, wantStderr: "caesium: job lint needs a path: a file, a directory, or - for standard input\n"},
		{name: "version from ldflags", args: []string{"version"}, wantStdout: "caesium v0.0.0-test (go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || stderr.String() != tt.wantStderr {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr %q",
					code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
