package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The CLI's client keeps connections alive, as a client should; the
	// agents are gone by now, so close them before looking for leaks.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testAgent is a real agent, in process, on an isolated database.
type testAgent struct {
	url string
}

// startAgent runs an agent on backend until the test ends, then stops it
// through its context and checks that it shut down cleanly.
func startAgent(t *testing.T, backend string) *testAgent {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t, backend)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("agent.New on %s: %v", backend, err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	return &testAgent{url: "http://" + a.Addr().String()}
}

// forEachBackend runs fn as a parallel subtest per database, each with an
// agent of its own.
func forEachBackend(t *testing.T, fn func(t *testing.T, a *testAgent)) {
	t.Helper()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, startAgent(t, backend))
		})
	}
}

// cli runs the command line against the agent.
func (a *testAgent) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t, nil, append(args, "--server", a.url)...)
}

// cliStdin runs the command line against the agent with stdin.
func (a *testAgent) cliStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCLI(t, strings.NewReader(stdin), append(args, "--server", a.url)...)
}

// mustCLI runs the command line and fails unless it exits 0.
func (a *testAgent) mustCLI(t *testing.T, args ...string) result {
	t.Helper()
	res := a.cli(t, args...)
	if res.code != 0 {
		t.Fatalf("caesium %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// jobs reads the live jobs through `caesium job get -o json`.
func (a *testAgent) jobs(t *testing.T, args ...string) []store.Job {
	t.Helper()
	res := a.mustCLI(t, append([]string{"job", "get", "-o", "json"}, args...)...)
	var jobs []store.Job
	if err := json.Unmarshal([]byte(res.stdout), &jobs); err != nil {
		t.Fatalf("job get -o json: %v\n%s", err, res.stdout)
	}
	return jobs
}

// job reads one job through `caesium job get ALIAS -o json`.
func (a *testAgent) job(t *testing.T, alias string) store.Job {
	t.Helper()
	res := a.mustCLI(t, "job", "get", alias, "-o", "json")
	var j store.Job
	if err := json.Unmarshal([]byte(res.stdout), &j); err != nil {
		t.Fatalf("job get %s -o json: %v\n%s", alias, err, res.stdout)
	}
	return j
}

func (a *testAgent) live(t *testing.T) []string {
	t.Helper()
	out := []string{}
	for _, j := range a.jobs(t) {
		out = append(out, j.Alias)
	}
	return out
}

// applies reads the apply history: the CLI has no command for it yet.
func (a *testAgent) applies(t *testing.T, source string) []store.ApplyRecord {
	t.Helper()
	c, err := client.New(a.url, "")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.ListApplies(context.Background(), source, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// manifest is a valid job; labels are "key=value" pairs.
func manifest(alias string, labels ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n", alias)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	b.WriteString("steps:\n  - name: main\n    image: alpine:3.20\n")
	return b.String()
}

// manifests writes one file per manifest into a new dir and returns it.
func manifests(t *testing.T, ms ...string) string {
	t.Helper()
	files := map[string]string{}
	for i, m := range ms {
		files[fmt.Sprintf("job-%02d.yaml", i)] = m
	}
	return writeFiles(t, files)
}

func numberedManifests(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = manifest(fmt.Sprintf("%s-%02d", prefix, i))
	}
	return out
}

// wantOutput checks the exit code and that stdout and stderr hold the
// given parts.
func (res result) want(t *testing.T, code int, stdout []string, stderr ...string) {
	t.Helper()
	if res.code != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, code, res.stdout, res.stderr)
	}
	for _, s := range stdout {
		// Tables are aligned by tabwriter: a run of spaces in either matches
		// a run of spaces in the other.
		if !strings.Contains(res.stdout, s) && !strings.Contains(collapse(res.stdout), collapse(s)) {
			t.Errorf("stdout does not contain %q:\n%s", s, res.stdout)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(res.stderr, s) {
			t.Errorf("stderr does not contain %q:\n%s", s, res.stderr)
		}
	}
}

var blanks = regexp.MustCompile(`[ \t]+`)

func collapse(s string) string { return blanks.ReplaceAllString(s, " ") }

var aliasLine = regexp.MustCompile(`(?m)^  alias: (\S+)$`)

// writeManifestDir makes dir hold exactly the manifests, one file per alias, as
// a checkout of a source would from one revision to the next: a job keeps
// its path, so only what the manifests change shows. No manifests leave
// one file without jobs.
func writeManifestDir(t *testing.T, dir string, ms ...string) string {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		ms = []string{"# every job was removed\n"}
	}
	for i, m := range ms {
		name := fmt.Sprintf("empty-%d", i)
		if a := aliasLine.FindStringSubmatch(m); a != nil {
			name = a[1]
		}
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exampleJobs parses ../../examples for the jobs an apply must produce.
func exampleJobs(t *testing.T) map[string]*schema.Job {
	t.Helper()
	res, err := lint(context.Background(), []string{"../../examples"}, nil, schema.DefaultLimits)
	if err != nil || schema.HasErrors(res.diags) {
		t.Fatalf("examples do not lint: %v %v", err, res.diags)
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	want := map[string]*schema.Job{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, _ := schema.Parse(f, data, schema.DefaultLimits)
		for _, d := range docs {
			want[d.Job.Metadata.Alias] = d.Job
		}
	}
	if len(want) == 0 {
		t.Fatal("no example jobs")
	}
	return want
}

// checkExampleJobs checks that jobs are exactly the examples, each with its
// labels, annotations and provenance.
func checkExampleJobs(t *testing.T, jobs []store.Job, want map[string]*schema.Job) {
	t.Helper()
	if len(jobs) != len(want) {
		t.Errorf("%d jobs, want %d", len(jobs), len(want))
	}
	for _, j := range jobs {
		w, ok := want[j.Alias]
		if !ok {
			t.Errorf("unexpected job %s", j.Alias)
			continue
		}
		if len(j.Labels) == 0 || !equalMaps(j.Labels, w.Metadata.Labels) {
			t.Errorf("%s: labels %v, want %v", j.Alias, j.Labels, w.Metadata.Labels)
		}
		if len(j.Annotations) == 0 || !equalMaps(j.Annotations, w.Metadata.Annotations) {
			t.Errorf("%s: annotations %v, want %v", j.Alias, j.Annotations, w.Metadata.Annotations)
		}
		if j.Provenance.SourceID != "manual" || !strings.HasPrefix(j.Provenance.Path, "../../examples/") || !strings.HasSuffix(j.Provenance.Path, ".yaml") {
			t.Errorf("%s: provenance %+v, want source manual and its examples file", j.Alias, j.Provenance)
		}
		if j.Version != 1 || j.Hash == "" || len(j.Spec) == 0 {
			t.Errorf("%s: version %d, hash %q, %d bytes of spec", j.Alias, j.Version, j.Hash, len(j.Spec))
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// TestJobApplyExamples: apply examples/, read every job back, re-apply (all
// unchanged, nothing written, no history), and diff (no changes).
func TestJobApplyExamples(t *testing.T) {
	t.Parallel()
	want := exampleJobs(t)
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		res := a.mustCLI(t, "job", "apply", "-f", "../../examples")
		res.want(t, 0, []string{fmt.Sprintf("%d created, 0 updated, 0 unchanged, 0 deleted, 0 conflicts, 0 failed\n", len(want))})
		for alias := range want {
			if !regexp.MustCompile(`(?m)^created\s+` + alias + `\s*$`).MatchString(res.stdout) {
				t.Errorf("apply output has no line for %s:\n%s", alias, res.stdout)
			}
		}
		first := a.jobs(t)
		checkExampleJobs(t, first, want)
		for alias := range want {
			checkExampleJobs(t, []store.Job{a.job(t, alias)}, map[string]*schema.Job{alias: want[alias]})
		}

		res = a.mustCLI(t, "job", "apply", "-f", "../../examples")
		res.want(t, 0, []string{fmt.Sprintf("0 created, 0 updated, %d unchanged, 0 deleted, 0 conflicts, 0 failed\n", len(want))})
		if n := strings.Count(res.stdout, "unchanged  "); n != len(want) {
			t.Errorf("%d unchanged lines, want %d:\n%s", n, len(want), res.stdout)
		}
		again := a.jobs(t)
		for i := range again {
			if again[i].Version != first[i].Version || !again[i].UpdatedAt.Equal(first[i].UpdatedAt) {
				t.Errorf("%s rewritten by a no-op: version %d -> %d, updated %s -> %s", again[i].Alias,
					first[i].Version, again[i].Version, first[i].UpdatedAt, again[i].UpdatedAt)
			}
		}
		if n := len(a.applies(t, "")); n != 1 {
			t.Errorf("%d applies in the history, want 1: a no-op records nothing", n)
		}

		res = a.cli(t, "job", "diff", "-f", "../../examples")
		res.want(t, 0, []string{fmt.Sprintf("No changes: %d job(s) up to date.\n", len(want))})

		// YAML output, one job.
		res = a.mustCLI(t, "job", "get", "orders-db-backup", "-o", "yaml")
		var y struct {
			Alias      string            `yaml:"alias"`
			Labels     map[string]string `yaml:"labels"`
			Provenance struct {
				SourceID string `yaml:"sourceId"`
			} `yaml:"provenance"`
		}
		if err := yaml.Unmarshal([]byte(res.stdout), &y); err != nil || y.Alias != "orders-db-backup" || y.Labels["caesium.io/prune"] != "disabled" || y.Provenance.SourceID != "manual" {
			t.Errorf("job get -o yaml: %v %+v\n%s", err, y, res.stdout)
		}
	})
}

func TestJobGet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		a.cli(t, "job", "get").want(t, 0, []string{"No jobs.\n"})
		a.cli(t, "job", "get", "-o", "json").want(t, 0, []string{"[]\n"})
		a.mustCLI(t, "job", "apply", "-f", manifests(t, manifest("etl", "team=data", "tier=batch"), manifest("web", "team=web")), "--source-id", "team-a")
		a.mustCLI(t, "job", "apply", "-f", manifests(t, manifest("bare")))

		tests := []struct {
			name       string
			args       []string
			wantCode   int
			wantStdout []string
			notStdout  []string
			wantStderr string
		}{
			{name: "table", args: []string{"job", "get"}, wantStdout: []string{"ALIAS", "TRIGGER", "SOURCE", "bare", "etl", "web", "team-a", "manual"}},
			{name: "selector", args: []string{"job", "get", "-l", "team=data"}, wantStdout: []string{"etl"}, notStdout: []string{"web", "bare"}},
			{name: "selector in", args: []string{"job", "get", "-l", "team in (web,ops)"}, wantStdout: []string{"web"}, notStdout: []string{"etl", "bare"}},
			{name: "selector !exists", args: []string{"job", "get", "--selector", "!team"}, wantStdout: []string{"bare"}, notStdout: []string{"etl", "web"}},
			{name: "selector matches none", args: []string{"job", "get", "-l", "team=nobody"}, wantStdout: []string{"No jobs.\n"}},
			{name: "one job", args: []string{"job", "get", "etl"}, wantStdout: []string{"etl manual 1 team-a 1"}, notStdout: []string{"web"}},
			{name: "unknown job", args: []string{"job", "get", "nope"}, wantCode: 1, wantStderr: "caesium: job \"nope\" not found (HTTP 404)\n"},
			{name: "bad selector", args: []string{"job", "get", "-l", "team in web"}, wantCode: 1, wantStderr: "in needs a parenthesised list"},
			{name: "alias and selector", args: []string{"job", "get", "etl", "-l", "team=data"}, wantCode: 1, wantStderr: "give an alias or a selector, not both"},
			{name: "bad output", args: []string{"job", "get", "-o", "xml"}, wantCode: 1, wantStderr: "--output must be text, json or yaml"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res := a.cli(t, tt.args...)
				res.want(t, tt.wantCode, tt.wantStdout, tt.wantStderr)
				for _, s := range tt.notStdout {
					if strings.Contains(res.stdout, s) {
						t.Errorf("stdout contains %q:\n%s", s, res.stdout)
					}
				}
			})
		}
	})
}

func TestJobApplyConflict(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		dir := manifests(t, manifest("shared"))
		a.mustCLI(t, "job", "apply", "-f", dir, "--source-id", "team-a")
		for _, from := range [][]string{{"--source-id", "team-b"}, nil} {
			changed := manifests(t, manifest("shared", "edited=yes"), manifest(fmt.Sprintf("bystander-%d", len(from))))
			args := append([]string{"job", "apply", "-f", changed}, from...)
			a.cli(t, args...).want(t, 1, []string{
				`conflict shared job "shared" is owned by source "team-a" (` + dir,
				"apply with --force to take it over\n",
				"1 created, 0 updated, 0 unchanged, 0 deleted, 1 conflicts, 0 failed\n",
			})
			a.cli(t, append([]string{"job", "diff", "-f", changed}, from...)...).want(t, 1, []string{
				`! shared (conflict: job "shared" is owned by source "team-a"`,
			})
			res := a.cli(t, append(args, "-o", "json")...)
			var rep struct {
				Changes []struct{ Alias, Action, Reason string }
			}
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 1 || len(rep.Changes) != 2 || rep.Changes[1].Action != "conflict" {
				t.Errorf("apply -o json: exit %d, %v\n%s", res.code, err, res.stdout)
			}
		}
		j := a.job(t, "shared")
		if j.Provenance.SourceID != "team-a" || j.Labels["edited"] != "" || j.Version != 1 {
			t.Errorf("a conflict changed the job: %+v, labels %v, version %d", j.Provenance, j.Labels, j.Version)
		}
		// The job without a conflict was applied, by both.
		if got := a.live(t); !slices.Equal(got, []string{"bystander-0", "bystander-2", "shared"}) {
			t.Errorf("live = %v", got)
		}
	})
}

func TestJobApplyForce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		dir := manifests(t, manifest("shared"))
		a.mustCLI(t, "job", "apply", "-f", dir, "--source-id", "team-a")

		a.cli(t, "job", "diff", "-f", dir, "--source-id", "team-b", "--force").want(t, 2, []string{
			"~ shared (update)\n    ownership: team-a -> team-b\n    ~ provenance.sourceId: team-a -> team-b\n",
		})
		a.cli(t, "job", "apply", "-f", dir, "--source-id", "team-b", "--force").want(t, 0, []string{
			"updated  shared  1 field(s) changed; ownership team-a -> team-b\n",
		})
		j := a.job(t, "shared")
		if j.Provenance.SourceID != "team-b" || j.Version != 1 {
			t.Errorf("after --force: provenance %+v, version %d; want team-b, version 1", j.Provenance, j.Version)
		}
		recs := a.applies(t, "team-b")
		want := []store.OwnershipTransfer{{Alias: "shared", From: "team-a", To: "team-b"}}
		if len(recs) != 1 || !recs[0].Force || !slices.Equal(recs[0].Transfers, want) {
			t.Errorf("apply history of team-b = %+v, want one forced apply with transfers %v", recs, want)
		}

		// By hand, with a change: the transfer and the change in one update.
		a.cli(t, "job", "apply", "-f", manifests(t, manifest("shared", "owner=me")), "--force").want(t, 0, []string{
			"ownership team-b -> manual",
		})
		j = a.job(t, "shared")
		if j.Provenance.SourceID != "manual" || j.Version != 2 || j.Labels["owner"] != "me" {
			t.Errorf("after a manual --force: provenance %+v, version %d, labels %v", j.Provenance, j.Version, j.Labels)
		}
		recs = a.applies(t, "manual")
		if len(recs) != 1 || len(recs[0].Transfers) != 1 || recs[0].Transfers[0].From != "team-b" {
			t.Errorf("manual history = %+v", recs)
		}
	})
}

// TestJobApplyPrune runs every prune guard end to end on both databases.
func TestJobApplyPrune(t *testing.T) {
	t.Parallel()
	type seed struct {
		source    string
		manifests []string
	}
	modified := strings.Replace(manifest("team-00"), "alpine:3.20", "alpine:3.21", 1)
	tests := []struct {
		name       string
		seeds      []seed
		manifests  []string // the final apply; none: an empty file
		args       []string
		diff       bool // job diff instead of job apply
		wantCode   int
		wantStdout []string
		wantLive   []string // nil: check wantLiveN
		wantLiveN  int
	}{
		{
			name:       "deletes only the pruning source's jobs",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}, {"team-b", []string{manifest("b1")}}, {"", []string{manifest("m1")}}},
			manifests:  []string{manifest("a1")},
			args:       []string{"--source-id", "team-a", "--prune"},
			wantStdout: []string{"deleted    a2  no longer declared by source \"team-a\"", "0 created, 0 updated, 1 unchanged, 1 deleted"},
			wantLive:   []string{"a1", "b1", "m1"},
		},
		{
			name:       "never deletes a job labelled caesium.io/prune: disabled",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2"), manifest("keep", "caesium.io/prune=disabled")}}},
			manifests:  []string{manifest("a1")},
			args:       []string{"--source-id", "team-a", "--prune"},
			wantStdout: []string{"unchanged  keep  no longer declared, kept: labelled caesium.io/prune: disabled", "deleted    a2"},
			wantLive:   []string{"a1", "keep"},
		},
		{
			name:       "an empty set is refused",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}, {"team-b", []string{manifest("b1")}}},
			args:       []string{"--source-id", "team-a", "--prune"},
			wantCode:   1,
			wantStdout: []string{`prune refused: refusing to prune all 2 jobs of source "team-a": the revision declares no jobs (an emptied directory or a wrong path?); set allowEmpty to permit it`, "0 deleted"},
			wantLive:   []string{"a1", "a2", "b1"},
		},
		{
			name:       "an empty set is refused even with --force",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}},
			args:       []string{"--source-id", "team-a", "--prune", "--force"},
			wantCode:   1,
			wantStdout: []string{"prune refused: refusing to prune all 2 jobs", "declares no jobs"},
			wantLive:   []string{"a1", "a2"},
		},
		{
			name:       "an empty set with --allow-empty",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}, {"team-b", []string{manifest("b1")}}},
			args:       []string{"--source-id", "team-a", "--prune", "--allow-empty"},
			wantStdout: []string{"deleted  a1", "deleted  a2", "2 deleted"},
			wantLive:   []string{"b1"},
		},
		{
			name:       "more than maxDeletions (10) is refused",
			seeds:      []seed{{"team-a", numberedManifests("team", 12)}},
			manifests:  numberedManifests("team", 1),
			args:       []string{"--source-id", "team-a", "--prune"},
			wantCode:   1,
			wantStdout: []string{`prune refused: refusing to prune 11 of 12 jobs of source "team-a": more than maxDeletions (10); apply with --force if this is intended`, "0 deleted"},
			wantLiveN:  12,
		},
		{
			name:       "--force lifts maxDeletions",
			seeds:      []seed{{"team-a", numberedManifests("team", 12)}},
			manifests:  numberedManifests("team", 1),
			args:       []string{"--source-id", "team-a", "--prune", "--force"},
			wantStdout: []string{"11 deleted"},
			wantLive:   []string{"team-00"},
		},
		{
			name:       "an explicit --max-deletions allows",
			seeds:      []seed{{"team-a", numberedManifests("team", 12)}},
			manifests:  numberedManifests("team", 1),
			args:       []string{"--source-id", "team-a", "--prune", "--max-deletions", "11"},
			wantStdout: []string{"11 deleted"},
			wantLive:   []string{"team-00"},
		},
		{
			name:       "an explicit --max-deletions refuses",
			seeds:      []seed{{"team-a", numberedManifests("team", 4)}},
			manifests:  numberedManifests("team", 1),
			args:       []string{"--source-id", "team-a", "--prune", "--max-deletions", "2"},
			wantCode:   1,
			wantStdout: []string{`refusing to prune 3 of 4 jobs of source "team-a": more than maxDeletions (2)`},
			wantLiveN:  4,
		},
		{
			name:       "25% of a large source",
			seeds:      []seed{{"team-a", numberedManifests("team", 60)}},
			manifests:  numberedManifests("team", 40),
			args:       []string{"--source-id", "team-a", "--prune"},
			wantCode:   1,
			wantStdout: []string{`refusing to prune 20 of 60 jobs of source "team-a": more than maxDeletions (15)`},
			wantLiveN:  60,
		},
		{
			name:       "a refused prune still applies creates and updates",
			seeds:      []seed{{"team-a", numberedManifests("team", 12)}},
			manifests:  []string{modified, manifest("fresh")},
			args:       []string{"--source-id", "team-a", "--prune"},
			wantCode:   1,
			wantStdout: []string{"created  fresh", "updated  team-00  1 field(s) changed", "prune refused: refusing to prune 11 of 13 jobs", "1 created, 1 updated, 0 unchanged, 0 deleted"},
			wantLiveN:  13,
		},
		{
			name:       "jobs applied by hand are never pruned",
			seeds:      []seed{{"", []string{manifest("m1"), manifest("m2")}}},
			manifests:  []string{manifest("m1")},
			args:       []string{"--prune", "--force", "--allow-empty"},
			wantCode:   1,
			wantStdout: []string{"prune refused: refusing to prune 1 jobs applied by hand"},
			wantLive:   []string{"m1", "m2"},
		},
		{
			name:       "--dry-run deletes nothing",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}},
			manifests:  []string{manifest("a1")},
			args:       []string{"--source-id", "team-a", "--prune", "--dry-run"},
			wantStdout: []string{"would delete  a2", "1 deleted, 0 conflicts, 0 failed (dry run)"},
			wantLive:   []string{"a1", "a2"},
		},
		{
			name:       "diff shows a prune",
			seeds:      []seed{{"team-a", []string{manifest("a1"), manifest("a2")}}},
			manifests:  []string{manifest("a1")},
			args:       []string{"--source-id", "team-a", "--prune"},
			diff:       true,
			wantCode:   2,
			wantStdout: []string{"- a2 (delete: no longer declared by source \"team-a\")", "Plan: 0 to create, 0 to update, 1 to delete, 1 unchanged."},
			wantLive:   []string{"a1", "a2"},
		},
		{
			name:       "diff shows a refused prune",
			seeds:      []seed{{"team-a", numberedManifests("team", 12)}},
			manifests:  numberedManifests("team", 1),
			args:       []string{"--source-id", "team-a", "--prune"},
			diff:       true,
			wantCode:   1,
			wantStdout: []string{"prune refused: refusing to prune 11 of 12 jobs", "No changes: 1 job(s) up to date."},
			wantLiveN:  12,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, a *testAgent) {
				// One directory per source, rewritten by each apply.
				root := t.TempDir()
				for _, s := range tt.seeds {
					args := []string{"job", "apply", "-f", writeManifestDir(t, filepath.Join(root, s.source+"manual"), s.manifests...)}
					if s.source != "" {
						args = append(args, "--source-id", s.source)
					}
					a.mustCLI(t, args...)
				}
				source := ""
				if i := slices.Index(tt.args, "--source-id"); i >= 0 {
					source = tt.args[i+1]
				}
				path := writeManifestDir(t, filepath.Join(root, source+"manual"), tt.manifests...)
				cmd := "apply"
				if tt.diff {
					cmd = "diff"
				}
				res := a.cli(t, append([]string{"job", cmd, "-f", path}, tt.args...)...)
				res.want(t, tt.wantCode, tt.wantStdout)
				live := a.live(t)
				if tt.wantLive != nil && !slices.Equal(live, tt.wantLive) {
					t.Errorf("live = %v, want %v", live, tt.wantLive)
				}
				if tt.wantLiveN != 0 && len(live) != tt.wantLiveN {
					t.Errorf("%d jobs live, want %d", len(live), tt.wantLiveN)
				}
				if tt.name == "a refused prune still applies creates and updates" {
					if j := a.job(t, "team-00"); j.Version != 2 || !strings.Contains(string(j.Spec), "alpine:3.21") {
						t.Errorf("team-00 not updated: version %d", j.Version)
					}
				}
			})
		})
	}
}

func TestJobDeleteAndGC(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		a.mustCLI(t, "job", "apply", "-f", manifests(t, manifest("by-hand")))
		a.mustCLI(t, "job", "apply", "-f", manifests(t, manifest("from-git")), "--source-id", "team-a")

		a.cli(t, "job", "delete", "by-hand").want(t, 0, []string{"deleted by-hand\n"})
		a.cli(t, "job", "get", "by-hand").want(t, 1, nil, "caesium: job \"by-hand\" not found (HTTP 404)\n")
		a.cli(t, "job", "delete", "by-hand").want(t, 1, nil, "caesium: job \"by-hand\" not found (HTTP 404)\n")
		a.cli(t, "job", "delete", "from-git").want(t, 1, nil,
			`caesium: job "from-git" is owned by source "team-a" and would be recreated by its next sync; remove its manifest instead, or delete with --force (HTTP 409)`)
		if got := a.live(t); !slices.Equal(got, []string{"from-git"}) {
			t.Fatalf("live = %v", got)
		}
		a.cli(t, "job", "delete", "from-git", "--force").want(t, 0, []string{"deleted from-git\n"})
		if got := a.live(t); len(got) != 0 {
			t.Fatalf("live = %v, want none", got)
		}

		// Soft: the rows stay until gc. Recently deleted jobs survive a gc
		// with a long cut-off.
		a.cli(t, "job", "gc", "--older-than", "720h").want(t, 0, []string{"purged 0 job(s) deleted more than 720h0m0s ago\n"})
		// Re-applying a deleted alias makes a new job.
		a.cli(t, "job", "apply", "-f", manifests(t, manifest("by-hand"))).want(t, 0, []string{"created  by-hand"})
		if j := a.job(t, "by-hand"); j.Version != 1 {
			t.Errorf("re-created job at version %d", j.Version)
		}

		// Let the deletions age past a short cut-off (a precondition, not a
		// timing assertion).
		time.Sleep(20 * time.Millisecond)
		a.cli(t, "job", "gc", "--older-than", "10ms").want(t, 0, []string{"purged 2 job(s) deleted more than 10ms ago\n"})
		a.cli(t, "job", "gc", "--older-than", "10ms").want(t, 0, []string{"purged 0 job(s)"})
		if got := a.live(t); !slices.Equal(got, []string{"by-hand"}) {
			t.Errorf("gc touched a live job: live = %v", got)
		}

		a.cli(t, "job", "gc", "--older-than", "0s").want(t, 1, nil, "--older-than must be a positive duration")
		a.cli(t, "job", "gc").want(t, 1, nil, `required flag(s) "older-than" not set`)
		a.cli(t, "job", "delete").want(t, 1, nil, "accepts 1 arg(s)")
	})
}

// richJob exercises every part of a manifest that the diff must see.
const richJob = `apiVersion: v1
kind: Job
metadata:
  alias: rich
  labels:
    team: data
  annotations:
    owner: data@example.com
  taskTimeout: 30m
  concurrency:
    strategy: skip
trigger:
  type: cron
  configuration:
    expression: "0 2 * * *"
    timezone: UTC
callbacks:
  - url: https://hooks.example.com/a
    on: [failure]
steps:
  - name: extract
    image: alpine:3.20
    command: ["echo", "extract"]
    env:
      MODE: full
    retries: 2
    retryDelay: 30s
    next: [load]
  - name: load
    image: alpine:3.20
    timeout: 10m
  - name: report
    image: busybox:1.36
    dependsOn: [extract]
`

func TestJobDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string // replaced in richJob; both "" for richJob itself
		content  string // instead of richJob, when set
		wantCode int
		want     []string
	}{
		{name: "no change", wantCode: 0, want: []string{"No changes: 1 job(s) up to date.\n"}},
		{name: "comments and layout only", old: "    on: [failure]", new: "    # page nobody\n    on:\n      - failure", wantCode: 0, want: []string{"No changes"}},
		{name: "command as a JSON string", old: `command: ["echo", "extract"]`, new: `command: '["echo", "extract"]'`, wantCode: 0, want: []string{"No changes"}},
		{name: "step env changed", old: "MODE: full", new: "MODE: delta", wantCode: 2, want: []string{"~ steps[extract].env.MODE: full -> delta\n"}},
		{name: "step env added", old: "      MODE: full\n", new: "      MODE: full\n      BATCH: \"500\"\n", wantCode: 2, want: []string{"+ steps[extract].env.BATCH: 500\n"}},
		{name: "step env removed", old: "    env:\n      MODE: full\n", new: "", wantCode: 2, want: []string{"- steps[extract].env: {\"MODE\":\"full\"}\n"}},
		{name: "edge moved", old: "dependsOn: [extract]", new: "dependsOn: [load]", wantCode: 2, want: []string{`~ steps[report].dependsOn: ["extract"] -> ["load"]` + "\n"}},
		{name: "edge added", old: "dependsOn: [extract]", new: "dependsOn: [extract, load]", wantCode: 2, want: []string{`~ steps[report].dependsOn: ["extract"] -> ["extract","load"]` + "\n"}},
		{name: "edge removed", old: "    next: [load]\n", new: "", wantCode: 2, want: []string{`- steps[extract].next: ["load"]` + "\n"}},
		{name: "retries", old: "retries: 2", new: "retries: 3", wantCode: 2, want: []string{"~ steps[extract].retries: 2 -> 3\n"}},
		{name: "retry delay", old: "retryDelay: 30s", new: "retryDelay: 1m", wantCode: 2, want: []string{"~ steps[extract].retryDelay: 30s -> 1m0s\n"}},
		{name: "step timeout", old: "timeout: 10m", new: "timeout: 20m", wantCode: 2, want: []string{"~ steps[load].timeout: 10m0s -> 20m0s\n"}},
		{name: "image", old: "busybox:1.36", new: "busybox:1.37", wantCode: 2, want: []string{"~ steps[report].image: busybox:1.36 -> busybox:1.37\n"}},
		{name: "command", old: `["echo", "extract"]`, new: `["echo", "extract", "--all"]`, wantCode: 2, want: []string{`~ steps[extract].command: ["echo","extract"] -> ["echo","extract","--all"]`}},
		{name: "step added", old: "    dependsOn: [extract]\n", new: "    dependsOn: [extract]\n  - name: notify\n    image: busybox:1.36\n    dependsOn: [report]\n", wantCode: 2, want: []string{"+ steps[notify]: {"}},
		{name: "trigger expression", old: `"0 2 * * *"`, new: `"30 1 * * *"`, wantCode: 2, want: []string{"~ trigger.configuration.expression: 0 2 * * * -> 30 1 * * *\n"}},
		{name: "trigger timezone", old: "timezone: UTC", new: "timezone: Europe/Berlin", wantCode: 2, want: []string{"~ trigger.configuration.timezone: UTC -> Europe/Berlin\n"}},
		{name: "trigger catchup", old: "    timezone: UTC\n", new: "    timezone: UTC\n    catchup: true\n", wantCode: 2, want: []string{"+ trigger.configuration.catchup: true\n"}},
		{name: "label changed", old: "team: data", new: "team: web", wantCode: 2, want: []string{"~ metadata.labels.team: data -> web\n"}},
		{name: "label added", old: "    team: data\n", new: "    team: data\n    app.kubernetes.io/name: etl\n", wantCode: 2, want: []string{`+ metadata.labels["app.kubernetes.io/name"]: etl` + "\n"}},
		{name: "annotation changed", old: "owner: data@example.com", new: "owner: platform@example.com", wantCode: 2, want: []string{"~ metadata.annotations.owner: data@example.com -> platform@example.com\n"}},
		{name: "task timeout", old: "taskTimeout: 30m", new: "taskTimeout: 1h", wantCode: 2, want: []string{"~ metadata.taskTimeout: 30m0s -> 1h0m0s\n"}},
		{name: "concurrency", old: "strategy: skip", new: "strategy: queue", wantCode: 2, want: []string{"~ metadata.concurrency.strategy: skip -> queue\n"}},
		{name: "callback events", old: "on: [failure]", new: "on: [failure, success]", wantCode: 2, want: []string{`~ callbacks[0].on: ["failure"] -> ["failure","success"]` + "\n"}},
		{name: "callback url", old: "https://hooks.example.com/a", new: "https://hooks.example.com/b", wantCode: 2, want: []string{"~ callbacks[0].url: https://hooks.example.com/a -> https://hooks.example.com/b\n"}},
		{name: "callback header", old: "    on: [failure]\n", new: "    on: [failure]\n    headers:\n      X-Team: data\n", wantCode: 2, want: []string{"+ callbacks[0].headers: {\"X-Team\":\"data\"}\n"}},
		{name: "a new job", content: richJob + "---\n" + manifest("other"), wantCode: 2, want: []string{"+ other (create)\n", "Plan: 1 to create, 0 to update, 0 to delete, 1 unchanged.\n"}},
		{name: "invalid manifest", old: "image: busybox:1.36", new: "imagee: busybox:1.36", wantCode: 1, want: []string{
			"<stdin>:33:5: steps[2].imagee: unknown field \"imagee\"; did you mean \"image\"?\n",
		}},
		{name: "an edge declared twice", old: "    next: [load]", new: "    next: [load, report]", wantCode: 1, want: []string{
			"<stdin>:34:17: steps[2].dependsOn[0]: edge extract -> report is declared twice (also at steps[0].next[1])\n",
		}},
		{name: "invalid cron", old: `"0 2 * * *"`, new: `"61 * * * *"`, wantCode: 1, want: []string{
			"<stdin>:15:17: trigger.configuration.expression: cron expression \"61 * * * *\" does not parse",
		}},
	}
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		// Through standard input, so every variant has the same provenance
		// path and only the manifest differs.
		if res := a.cliStdin(t, richJob, "job", "apply", "-f", "-"); res.code != 0 {
			t.Fatalf("apply: %+v", res)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				content := tt.content
				if content == "" {
					if !strings.Contains(richJob, tt.old) {
						t.Fatalf("richJob has no %q", tt.old)
					}
					content = strings.Replace(richJob, tt.old, tt.new, 1)
				}
				res := a.cliStdin(t, content, "job", "diff", "-f", "-")
				res.want(t, tt.wantCode, tt.want)
				if tt.wantCode == 2 && !strings.HasPrefix(res.stdout, "~ rich (update)\n") && !strings.Contains(res.stdout, "(create)") {
					t.Errorf("diff does not start with the job:\n%s", res.stdout)
				}
				if tt.wantCode == 2 && strings.Contains(res.stdout, "provenance") {
					t.Errorf("diff shows a provenance change:\n%s", res.stdout)
				}
				if tt.wantCode == 1 && !strings.Contains(res.stderr, "invalid manifest(s)") {
					t.Errorf("stderr = %q", res.stderr)
				}
			})
		}
	})
}

// TestJobApplyInvalid: invalid manifests are reported with file:line and
// nothing is applied, not even the valid jobs beside them.
func TestJobApplyInvalid(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, a *testAgent) {
		dir := writeFiles(t, map[string]string{
			"good.yaml": manifest("good"),
			"bad.yaml":  strings.Replace(manifest("bad"), "image:", "imagee:", 1),
		})
		bad := filepath.ToSlash(filepath.Join(dir, "bad.yaml"))
		for _, cmd := range []string{"apply", "diff"} {
			res := a.cli(t, "job", cmd, "-f", dir)
			res.want(t, 1, []string{bad + ":7:5: steps[0].imagee: unknown field \"imagee\"; did you mean \"image\"?\n"},
				"caesium: 1 invalid manifest(s); nothing was applied (HTTP 422)\n")
		}
		res := a.cli(t, "job", "apply", "-f", dir, "-o", "json")
		var diags []schema.Diagnostic
		if err := json.Unmarshal([]byte(res.stdout), &diags); err != nil || res.code != 1 || len(diags) != 1 || diags[0].File != bad || diags[0].Line != 7 {
			t.Errorf("apply -o json: exit %d, %v, %+v", res.code, err, diags)
		}
		if got := a.live(t); len(got) != 0 {
			t.Errorf("live = %v, want nothing applied", got)
		}
		a.cli(t, "job", "apply", "-f", filepath.Join(dir, "missing.yaml")).want(t, 1, nil, "missing.yaml:1:1: (document): cannot read: no such file or directory")
		a.cli(t, "job", "apply").want(t, 1, nil, `required flag(s) "filename" not set`)
		a.cli(t, "job", "apply", "-f", dir, "-o", "xml").want(t, 1, nil, "--output must be text or json")
	})
}

func TestJobAgentUnreachable(t *testing.T) {
	t.Parallel()
	dir := manifests(t, manifest("a"))
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "nothing listening", args: []string{"job", "apply", "-f", dir, "--server", "http://127.0.0.1:1"},
			stderr: "caesium: cannot reach the agent at http://127.0.0.1:1 (is caesium-agent running there? set --server or CAESIUM_SERVER): dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{name: "not a URL", args: []string{"job", "get", "--server", "127.0.0.1:8080"}, stderr: "must be an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, nil, tt.args...).want(t, 1, nil, tt.stderr)
		})
	}
}

// TestBinaries builds caesium and caesium-agent and runs them as an operator
// would: start the agent, apply the examples twice, read the jobs, stop the
// agent with SIGTERM.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := t.TempDir()
	build := exec.Command(goBin, "build", "-o", bin+string(filepath.Separator), ".", "../caesium-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := exampleJobs(t)

	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			dbURL := "sqlite://caesium.db" // relative: below --data-dir
			if backend == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			agentCmd := exec.Command(filepath.Join(bin, "caesium-agent"),
				"--http-addr", "127.0.0.1:0", "--database-url", dbURL, "--data-dir", dataDir, "--log-format", "json")
			agentCmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			var agentErr bytes.Buffer
			agentCmd.Stderr = &agentErr
			stdout, err := agentCmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := agentCmd.Start(); err != nil {
				t.Fatal(err)
			}
			addr := make(chan string, 1)
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				sc := bufio.NewScanner(stdout)
				re := regexp.MustCompile(`serving on (http://\S+)`)
				for sc.Scan() {
					if m := re.FindStringSubmatch(sc.Text()); m != nil {
						addr <- m[1]
					}
				}
			}()
			stopped := false
			stop := func() error {
				if stopped {
					return nil
				}
				stopped = true
				if err := agentCmd.Process.Signal(syscall.SIGTERM); err != nil {
					return err
				}
				<-drained
				return agentCmd.Wait()
			}
			t.Cleanup(func() {
				if err := stop(); err != nil {
					t.Logf("stop agent: %v", err)
				}
			})
			var url string
			select {
			case url = <-addr:
			case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
				_ = agentCmd.Process.Kill()
				t.Fatalf("the agent did not say where it serves; stderr:\n%s", agentErr.String())
			}

			caesium := func(args ...string) result {
				t.Helper()
				var out, errOut bytes.Buffer
				cmd := exec.Command(filepath.Join(bin, "caesium"), args...)
				cmd.Env = []string{"CAESIUM_SERVER=" + url}
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return result{stdout: out.String(), stderr: errOut.String(), code: code}
			}

			caesium("job", "apply", "-f", "../../examples").want(t, 0,
				[]string{fmt.Sprintf("%d created, 0 updated, 0 unchanged, 0 deleted, 0 conflicts, 0 failed\n", len(want))})
			caesium("job", "apply", "-f", "../../examples").want(t, 0,
				[]string{fmt.Sprintf("0 created, 0 updated, %d unchanged, 0 deleted, 0 conflicts, 0 failed\n", len(want))})
			res := caesium("job", "get", "-o", "json")
			var jobs []store.Job
			if err := json.Unmarshal([]byte(res.stdout), &jobs); err != nil || res.code != 0 {
				t.Fatalf("job get -o json: exit %d, %v\n%s%s", res.code, err, res.stdout, res.stderr)
			}
			checkExampleJobs(t, jobs, want)
			caesium("job", "diff", "-f", "../../examples").want(t, 0, []string{"No changes"})

			if err := stop(); err != nil {
				t.Errorf("agent exit after SIGTERM: %v; want exit 0\nstderr:\n%s", err, agentErr.String())
			}
			if !strings.Contains(agentErr.String(), `"msg":"stopped"`) {
				t.Errorf("the agent did not log its shutdown:\n%s", agentErr.String())
			}
			if backend == "sqlite" {
				if _, err := os.Stat(filepath.Join(dataDir, "caesium.db")); err != nil {
					t.Errorf("no database in --data-dir: %v", err)
				}
			}
		})
	}
}

// TestReportApply covers the answers an agent gives rarely: a database lost
// in the middle of an apply (503 with the partial report), and an error
// without a report.
func TestReportApply(t *testing.T) {
	t.Parallel()
	partial := api.ApplyResponse{Report: reconcile.Report{
		Outcomes: []reconcile.Outcome{
			{Change: reconcile.Change{Action: reconcile.ActionCreate, Alias: "a"}, Applied: true},
			{Change: reconcile.Change{Action: reconcile.ActionCreate, Alias: "b"}, Error: "not attempted: store: database unavailable"},
		},
		Summary: reconcile.Summary{Counts: reconcile.Counts{Created: 1}, Failed: 1},
	}}
	unavailable := &client.Error{Status: http.StatusServiceUnavailable, Message: "apply changes: store: database unavailable"}
	tests := []struct {
		name       string
		resp       api.ApplyResponse
		err        error
		diff       bool
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{name: "partial apply shows what was written", resp: partial, err: unavailable, wantCode: 1,
			wantStdout: []string{"created a\n", "failed b not attempted: store: database unavailable\n", "1 created, 0 updated, 0 unchanged, 0 deleted, 0 conflicts, 1 failed\n"},
			wantStderr: "caesium: apply changes: store: database unavailable (HTTP 503)\n"},
		{name: "unavailable before anything was written", err: unavailable, wantCode: 1,
			wantStderr: "caesium: apply changes: store: database unavailable (HTTP 503)\n"},
		{name: "failed writes exit 1", resp: partial, wantCode: 1, wantStdout: []string{"1 failed"}},
		{name: "diff with changes exits 2", resp: api.ApplyResponse{Report: reconcile.Report{Summary: reconcile.Summary{Counts: reconcile.Counts{Created: 1}}}}, diff: true, wantCode: 2},
		{name: "diff without changes exits 0", resp: api.ApplyResponse{Report: reconcile.Report{Summary: reconcile.Summary{Counts: reconcile.Counts{Unchanged: 3}}}}, diff: true,
			wantStdout: []string{"No changes: 3 job(s) up to date.\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := reportApply(&stdout, &stderr, "text", tt.resp, tt.err, tt.diff)
			res := result{stdout: stdout.String(), code: exitCode(err, &stderr)}
			res.stderr = stderr.String()
			res.want(t, tt.wantCode, tt.wantStdout)
			if res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
		})
	}
}
