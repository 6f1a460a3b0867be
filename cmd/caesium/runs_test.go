package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// runServer is the real API on an isolated store, without an agent: no
// runner claims the runs, so they stay queued until the test moves them on
// through the store, as a runner would.
type runServer struct {
	url   string
	token string
	store *store.Store
}

// twoStepJob is a job of two steps whose concurrency is maxRuns 1 with
// strategy.
func twoStepJob(alias, strategy string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n  concurrency:\n    maxRuns: 1\n    strategy: %s\n"+
		"steps:\n  - name: extract\n    image: alpine:3.20\n  - name: load\n    image: alpine:3.20\n", alias, strategy)
}

// startRunServer serves the API on backend with the jobs "etl" (queue) and
// "once" (skip), each of two steps, extract and load.
func startRunServer(t *testing.T, backend, token string) *runServer {
	t.Helper()
	st := storetest.Open(t, backend)
	srv := httptest.NewServer(api.New(st, api.Config{Token: token}).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(context.Background(), api.ApplyRequest{Documents: []api.Document{
		{Name: "etl.yaml", Content: twoStepJob("etl", "queue")}, {Name: "once.yaml", Content: twoStepJob("once", "skip")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &runServer{url: srv.URL, token: token, store: st}
}

func (s *runServer) cli(t *testing.T, args ...string) result {
	t.Helper()
	args = append(args, "--server", s.url)
	if s.token != "" {
		args = append(args, "--token", s.token)
	}
	return runCLI(t, nil, args...)
}

// startRun starts a run through the CLI and returns it.
func (s *runServer) startRun(t *testing.T, alias string) store.Run {
	t.Helper()
	res := s.cli(t, "run", "start", alias, "-o", "json")
	var run store.Run
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &run) != nil || run.Status != store.RunQueued {
		t.Fatalf("run start %s: exit %d\n%s%s", alias, res.code, res.stdout, res.stderr)
	}
	return run
}

// claim moves the queued runs to running, as the runner does.
func (s *runServer) claim(t *testing.T) []store.Run {
	t.Helper()
	runs, err := s.store.ClaimRuns(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// finish records the steps of a claimed run (extract succeeded, load as
// given) and ends it with status.
func (s *runServer) finish(t *testing.T, id int64, load store.TaskStatus, status store.RunStatus, errMsg string) {
	t.Helper()
	ctx := context.Background()
	zero, three := 0, 3
	start, mid, end := t0, t0.Add(1500*time.Millisecond), t0.Add(2*time.Minute+4*time.Second)
	if err := s.store.SetTask(ctx, id, store.TaskRun{Name: "extract", Status: store.TaskSucceeded, Attempts: 1, ExitCode: &zero,
		Output: "extracted 42 rows\n", StartedAt: &start, FinishedAt: &mid}); err != nil {
		t.Fatal(err)
	}
	load2 := store.TaskRun{Name: "load", Status: load, Attempts: 2, StartedAt: &mid, FinishedAt: &end}
	if load == store.TaskFailed {
		load2.ExitCode, load2.Error, load2.Output = &three, "exit status 3", "connecting to warehouse\ntimeout"
	}
	if err := s.store.SetTask(ctx, id, load2); err != nil {
		t.Fatal(err)
	}
	if err := s.store.FinishRun(ctx, id, status, errMsg, nil); err != nil {
		t.Fatal(err)
	}
}

// waitQueued waits until the store holds a queued run of alias, which a
// command running meanwhile created, and returns it.
func (s *runServer) waitQueued(t *testing.T, alias string) store.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard
	for {
		runs, err := s.store.ListRuns(context.Background(), store.RunFilter{JobAlias: alias, Status: store.RunQueued})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) > 0 {
			return runs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no queued run of %s", alias)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// background runs the command line in a goroutine; receive its result
// from the channel.
func (s *runServer) background(t *testing.T, args ...string) <-chan result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- s.cli(t, args...) }()
	return done
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startRunServer(t, backend, "s3cret")
			s.cli(t, "run", "list").want(t, 0, []string{"No runs.\n"})

			// start: queued, with the default actor.
			s.cli(t, "run", "start", "etl").want(t, 0, []string{"run 1 of etl (version 1) queued\n"})
			first := s.startRun(t, "etl")
			if first.Actor != "cli" || first.Trigger != "manual" || first.JobAlias != "etl" {
				t.Errorf("run start -o json = %+v", first)
			}
			var fromYAML map[string]any
			if err := yaml.Unmarshal([]byte(s.cli(t, "run", "start", "once", "--actor", "alice", "-o", "yaml").stdout), &fromYAML); err != nil ||
				fromYAML["actor"] != "alice" || fromYAML["status"] != "queued" {
				t.Errorf("run start -o yaml: %v %v", err, fromYAML)
			}
			// Refused by the job's concurrency: recorded as skipped, exit 1.
			skipped := s.cli(t, "run", "start", "once")
			skipped.want(t, 1, []string{"run 4 of once (version 1) skipped: not started: 1 runs of the job in flight, maxRuns 1 (concurrency strategy skip)\n"})
			if skipped.stderr != "" {
				t.Errorf("a skipped run printed %q on stderr", skipped.stderr)
			}
			s.cli(t, "run", "start", "nope").want(t, 1, nil, "caesium: job \"nope\" not found (HTTP 404)\n")

			// list: a table, newest first, and the filters.
			s.cli(t, "run", "list").want(t, 0, []string{
				"ID JOB VERSION STATUS TRIGGER ACTOR STARTED DURATION\n",
				"4 once 1 skipped manual cli - -\n" +
					"3 once 1 queued manual alice - -\n" +
					"2 etl 1 queued manual cli - -\n" +
					"1 etl 1 queued manual cli - -\n",
			})
			listJSON := func(args ...string) []int64 {
				t.Helper()
				res := s.cli(t, append([]string{"run", "list", "-o", "json"}, args...)...)
				var runs []store.Run
				if err := json.Unmarshal([]byte(res.stdout), &runs); err != nil {
					t.Fatalf("run list -o json %v: %v\n%s%s", args, err, res.stdout, res.stderr)
				}
				ids := []int64{}
				for _, r := range runs {
					ids = append(ids, r.ID)
				}
				return ids
			}
			for _, tt := range []struct {
				args []string
				want string
			}{
				{nil, "[4 3 2 1]"},
				{[]string{"--job", "etl"}, "[2 1]"},
				{[]string{"--status", "skipped"}, "[4]"},
				{[]string{"--job", "once", "--status", "queued"}, "[3]"},
				{[]string{"--limit", "2"}, "[4 3]"},
				{[]string{"--limit", "2", "--before", "3"}, "[2 1]"},
				{[]string{"--status", "failed"}, "[]"},
			} {
				if got := fmt.Sprint(listJSON(tt.args...)); got != tt.want {
					t.Errorf("run list %v = %s, want %s", tt.args, got, tt.want)
				}
			}
			if err := yaml.Unmarshal([]byte(s.cli(t, "run", "list", "--limit", "1", "-o", "yaml").stdout), &[]any{}); err != nil {
				t.Errorf("run list -o yaml: %v", err)
			}

			// get: a queued run has no steps yet; a finished one shows them.
			s.cli(t, "run", "get", "1").want(t, 0, []string{"Run: 1\n", "Job: etl (version 1)\n", "Status: queued\n", "Trigger: manual\n", "Actor: cli\n", "Started: -\n", "Duration: -\n"})
			claimed := s.claim(t) // runs 1 and 3: one per job (maxRuns 1)
			if len(claimed) != 2 {
				t.Fatalf("claimed %d runs, want 2", len(claimed))
			}
			s.cli(t, "run", "list", "--job", "etl").want(t, 0, []string{"2 etl 1 queued manual cli - -\n", "1 etl 1 running manual cli " + claimed[0].StartedAt.UTC().Format(time.RFC3339)})
			s.finish(t, 1, store.TaskFailed, store.RunFailed, "step load failed")
			got := s.cli(t, "run", "get", "1")
			got.want(t, 0, []string{
				"Status: failed\n", "Error: step load failed\n", "Steps:\n",
				"  STEP STATUS ATTEMPTS EXIT DURATION ERROR\n",
				"  extract succeeded 1 0 1.5s\n",
				"  load failed 2 3 2m3s exit status 3\n",
			})
			if strings.Contains(got.stdout, "extracted 42 rows") {
				t.Error("run get printed output without --logs")
			}
			s.cli(t, "run", "get", "1", "--logs").want(t, 0, []string{
				"--- extract (attempt 1): output tail ---\nextracted 42 rows\n",
				"--- load (attempt 2): output tail ---\nconnecting to warehouse\ntimeout\n",
			})
			var run store.Run
			if err := json.Unmarshal([]byte(s.cli(t, "run", "get", "1", "-o", "json").stdout), &run); err != nil || len(run.Tasks) != 2 || run.Tasks[1].Output == "" {
				t.Errorf("run get -o json: %v %+v", err, run)
			}
			s.cli(t, "run", "get", "999").want(t, 1, nil, "caesium: run 999 not found (HTTP 404)\n")

			// cancel: queued at once, running on request, finished refused.
			s.cli(t, "run", "cancel", "2").want(t, 0, []string{"run 2 cancelled\n"})
			s.cli(t, "run", "cancel", "3").want(t, 0, []string{"run 3 is running: the agent running it was asked to stop it (see caesium run get 3)\n"})
			s.cli(t, "run", "list", "--job", "once").want(t, 0, []string{"3 once 1 running (cancelling) manual alice"})
			s.cli(t, "run", "cancel", "2").want(t, 1, nil, "caesium: run 2 has already finished (HTTP 409)\n")
			s.cli(t, "run", "cancel", "999").want(t, 1, nil, "caesium: run 999 not found (HTTP 404)\n")
			if err := json.Unmarshal([]byte(s.cli(t, "run", "get", "2", "-o", "json").stdout), &run); err != nil || run.Status != store.RunCancelled {
				t.Errorf("run 2 after cancel: %v %+v", err, run)
			}

			// Without the token.
			runCLI(t, nil, "run", "list", "--server", s.url).want(t, 1, nil, "missing or invalid bearer token (HTTP 401)")
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	t.Parallel()
	// No server is needed: each mistake is caught before one is asked.
	tests := []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"run", "start"}, "caesium: accepts 1 arg(s), received 0 (see 'caesium run start --help')\n"},
		{[]string{"run", "start", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"run", "start", "etl", "--wait", "-1s"}, "caesium: --wait must not be negative, got -1s\n"},
		{[]string{"run", "start", "etl", "--wait", "soon"}, `invalid argument "soon" for "--wait"`},
		{[]string{"run", "start", "etl", "-o", "xml"}, "caesium: --output must be text, json or yaml, not \"xml\"\n"},
		{[]string{"run", "list", "--status", "done"}, "caesium: --status must be one of queued, running, succeeded, failed, cancelled, skipped, not \"done\"\n"},
		{[]string{"run", "list", "--limit", "0"}, "caesium: --limit must be between 1 and 1000, got 0\n"},
		{[]string{"run", "list", "--limit", "many"}, `invalid argument "many" for "--limit"`},
		{[]string{"run", "list", "extra"}, `unknown command "extra" for "caesium run list"`},
		{[]string{"run", "get", "abc"}, "caesium: run id \"abc\" is not a positive integer\n"},
		{[]string{"run", "cancel", "0"}, "caesium: run id \"0\" is not a positive integer\n"},
		{[]string{"run", "get", "1", "--log"}, "unknown flag: --log (see 'caesium run get --help')"},
		{[]string{"run", "restart"}, `unknown command "restart" for "caesium run"`},
		{[]string{"trigger"}, "accepts 1 arg(s), received 0"},
		{[]string{"trigger", "http://127.0.0.1:1/v1/triggers/x"}, "caesium: --secret-env must name the environment variable"},
		{[]string{"trigger", "http://127.0.0.1:1/v1/triggers/x", "--secret-env", "HOOK_SECRET"}, "caesium: environment variable HOOK_SECRET is unset or empty"},
		{[]string{"trigger", "127.0.0.1/v1/triggers/x", "--secret-env", "S"}, "must be an http or https URL"},
		{[]string{"trigger", "http://127.0.0.1:1/v1/triggers/x", "--secret-env", "S", "--scheme", "md5"}, "--scheme must be hmac-sha256 or bearer, not \"md5\""},
		{[]string{"trigger", "http://127.0.0.1:1/v1/triggers/x", "--secret-env", "S", "--secret", "x"}, "unknown flag: --secret"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, tt.args...)
			res.want(t, 2, nil, tt.wantStderr)
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}

func TestRunStartWait(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startRunServer(t, backend, "")

			// Succeeded: exit 0, the run and its steps.
			done := s.background(t, "run", "start", "etl", "--wait", "1m")
			r := s.waitQueued(t, "etl")
			s.claim(t)
			s.finish(t, r.ID, store.TaskSucceeded, store.RunSucceeded, "")
			res := <-done
			res.want(t, 0, []string{
				fmt.Sprintf("run %d of etl (version 1) queued\n", r.ID),
				fmt.Sprintf("Run: %d\n", r.ID), "Status: succeeded\n",
				"  extract succeeded 1 0 1.5s\n", "  load succeeded 2 - 2m3s\n",
			})

			// Failed: exit 1, and JSON output is the finished run alone.
			done = s.background(t, "run", "start", "etl", "--wait", "1m", "-o", "json")
			r = s.waitQueued(t, "etl")
			s.claim(t)
			s.finish(t, r.ID, store.TaskFailed, store.RunFailed, "step load failed")
			res = <-done
			res.want(t, 1, nil)
			var got store.Run
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || got.ID != r.ID || got.Status != store.RunFailed || len(got.Tasks) != 2 {
				t.Errorf("--wait -o json: %v\n%s", err, res.stdout)
			}
			if res.stderr != "" {
				t.Errorf("a failed run printed %q on stderr", res.stderr)
			}

			// Cancelled while waiting: exit 1.
			done = s.background(t, "run", "start", "etl", "--wait", "1m")
			r = s.waitQueued(t, "etl")
			s.cli(t, "run", "cancel", fmt.Sprint(r.ID)).want(t, 0, nil)
			(<-done).want(t, 1, []string{"Status: cancelled\n", "Error: cancelled before it started\n"})

			// Nobody runs it: the wait ends with a message, the run goes on.
			res = s.cli(t, "run", "start", "etl", "--wait", "300ms")
			queued := s.waitQueued(t, "etl")
			res.want(t, 1, []string{fmt.Sprintf("run %d of etl (version 1) queued\n", queued.ID)},
				fmt.Sprintf("caesium: run %d is still queued after waiting 300ms; it goes on: see caesium run get %d, or stop it with caesium run cancel %d\n", queued.ID, queued.ID, queued.ID))

			// Skipped at once: nothing to wait for.
			s.startRun(t, "once")
			s.cli(t, "run", "start", "once", "--wait", "1m").want(t, 1, []string{"of once (version 1) skipped: not started"})

			// Interrupted while waiting.
			ctx, cancel := context.WithCancel(context.Background())
			var stdout, stderr bytes.Buffer
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, []string{"run", "start", "etl", "--wait", "1m", "--server", s.url}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
			}()
			s.waitQueued(t, "etl")
			cancel()
			if code := exitCode(<-errc, &stderr); code != 130 || !strings.Contains(stderr.String(), "caesium: interrupted") {
				t.Errorf("interrupted wait: exit %d, stderr %q", code, stderr.String())
			}
		})
	}
}

const triggerSecret = "trigger-cli-secret-0f3b7c1e"

// startTriggerAgent runs an agent on SQLite with the file secret "hook" and
// two jobs with HTTP triggers: "deploy" (hmac-sha256, at /hooks/deploy) and
// "bearer" (bearer, at /hooks/bearer). Its runner cannot start their steps
// (the image is missing and is never pulled): the runs fail, which these
// tests do not look at.
func startTriggerAgent(t *testing.T) *testAgent {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t, "sqlite")
	cfg.Secrets.FileDir = t.TempDir()
	cfg.Executor.Docker.PullPolicy = "never"
	if err := os.WriteFile(filepath.Join(cfg.Secrets.FileDir, "hook"), []byte(triggerSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("agent.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	ta := &testAgent{url: "http://" + a.Addr().String()}
	job := func(alias, scheme string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n"+
			"trigger:\n  type: http\n  configuration:\n    path: /hooks/%s\n    secret: secret://file/hook\n    signatureScheme: %s\n"+
			"steps:\n  - name: main\n    image: caesium-test-missing:1\n", alias, alias, scheme)
	}
	ta.mustCLI(t, "job", "apply", "-f", manifests(t, job("deploy", "hmac-sha256"), job("bearer", "bearer")))
	return ta
}

// triggerCLI runs caesium trigger with env as the environment.
func triggerCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"trigger"}, args...), func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	code := exitCode(err, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func TestTrigger(t *testing.T) {
	t.Parallel()
	a := startTriggerAgent(t)
	env := map[string]string{"HOOK_SECRET": triggerSecret, "WRONG_SECRET": "not-the-secret"}
	deploy := a.url + "/v1/triggers/hooks/deploy"
	var outputs []string
	check := func(res result, code int, stdout []string, stderr ...string) {
		t.Helper()
		res.want(t, code, stdout, stderr...)
		outputs = append(outputs, res.stdout, res.stderr)
	}

	// Signed with HMAC-SHA256: queued, and recorded as an http run.
	res := triggerCLI(t, env, "", deploy, "--secret-env", "HOOK_SECRET", "--data", `{"reason":"release 1.4.2"}`)
	check(res, 0, []string{"run 1 of deploy queued\n"})
	var got store.Run
	if err := json.Unmarshal([]byte(a.mustCLI(t, "run", "get", "1", "-o", "json").stdout), &got); err != nil ||
		got.Trigger != "http" || !strings.HasPrefix(got.Actor, "http 127.0.0.1") || got.JobAlias != "deploy" {
		t.Errorf("triggered run: %v %+v", err, got)
	}

	// The body from a file and from standard input (each signed as sent;
	// different bodies, so neither is a replay of another).
	payload := filepath.Join(t.TempDir(), "payload.json")
	if err := os.WriteFile(payload, []byte(`{"reason":"from a file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	check(triggerCLI(t, env, "", deploy, "--secret-env", "HOOK_SECRET", "--data", "@"+payload, "-o", "json"), 0, []string{`"result": "queued"`, `"job": "deploy"`})
	check(triggerCLI(t, env, `{"reason":"from stdin"}`, deploy, "--secret-env", "HOOK_SECRET", "--data", "-"), 0, []string{"run 3 of deploy queued\n"})
	check(triggerCLI(t, env, "", deploy, "--secret-env", "HOOK_SECRET", "--data", "@"+payload+".missing"), 1, nil, "--data: open "+payload+".missing: no such file or directory")

	// Refused: a wrong secret, an unknown path, the wrong scheme.
	check(triggerCLI(t, env, "", deploy, "--secret-env", "WRONG_SECRET", "--data", "x"), 1, nil,
		"caesium: trigger refused: unauthorized: missing or invalid signature (HTTP 401)\n")
	check(triggerCLI(t, env, "", a.url+"/v1/triggers/hooks/nope", "--secret-env", "HOOK_SECRET"), 1, nil,
		"caesium: trigger refused: unknown: no job has an http trigger at this path (HTTP 404)\n")
	check(triggerCLI(t, env, "", a.url+"/v1/triggers/hooks/bearer", "--secret-env", "HOOK_SECRET", "--data", "y"), 1, nil, "trigger refused: unauthorized")
	check(triggerCLI(t, env, "", a.url+"/v1/triggers/hooks/bearer", "--secret-env", "HOOK_SECRET", "--scheme", "bearer"), 0, []string{"of bearer queued\n"})
	check(triggerCLI(t, env, "", a.url+"/v1/nope", "--secret-env", "HOOK_SECRET"), 1, nil,
		"caesium: trigger "+a.url+"/v1/nope: no such endpoint (HTTP 404)\n")

	// A JSON answer is printed whatever the status; the exit status says.
	res = triggerCLI(t, env, "", a.url+"/v1/triggers/hooks/nope", "--secret-env", "HOOK_SECRET", "-o", "json")
	check(res, 1, []string{`"result": "unknown"`})

	for _, out := range outputs {
		if strings.Contains(out, triggerSecret) {
			t.Errorf("the secret was printed:\n%s", out)
		}
	}
}

func TestWriteTriggerAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer triggerAnswer
		status int
		want   string
	}{
		{name: "queued", answer: triggerAnswer{Result: "queued", RunID: 7, Job: "deploy", Status: "queued"}, status: 202, want: "run 7 of deploy queued\n"},
		{
			name:   "skipped",
			answer: triggerAnswer{Result: "skipped", RunID: 8, Job: "deploy", Status: "skipped", Reason: "not started: 1 runs of the job in flight"},
			status: 409, want: "run 8 of deploy skipped: not started: 1 runs of the job in flight (HTTP 409)\n",
		},
		{name: "duplicate", answer: triggerAnswer{Result: "duplicate", Job: "deploy", Reason: "this signed request was already received"}, status: 409,
			want: "deploy: duplicate: this signed request was already received (HTTP 409)\n"},
		{name: "busy", answer: triggerAnswer{Result: "busy", Reason: "retry later"}, status: 503, want: "busy: retry later (HTTP 503)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			if err := writeTriggerAnswer(&b, tt.answer, tt.status); err != nil || b.String() != tt.want {
				t.Errorf("writeTriggerAnswer = %q, %v; want %q", b.String(), err, tt.want)
			}
		})
	}
}
