package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor/docker/dockertest"
	"github.com/caesium-io/caesium/providers/vault/vaulttest"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// runAgent starts an agent on a fresh store of backend, with no sources,
// whose steps run on the real Docker Engine.
func runAgent(t *testing.T, backend string, log *slog.Logger, mutate ...func(*config.Config)) *running {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t, backend)
	cfg.Executor.PollInterval = 100 * time.Millisecond
	cfg.Executor.Docker.PullPolicy = "never"
	cfg.Executor.Docker.StopTimeout = time.Second
	cfg.Executor.Callbacks.Timeout = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := startSecretsAgent(t, cfg, log)
	st, err := store.Open(context.Background(), cfg.Database.URL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r.installation, err = st.InstallationID(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func applyYAML(t *testing.T, base, manifests string) {
	t.Helper()
	if code, body := do(t, http.MethodPost, base+"/v1/jobdefs/apply", "application/yaml", manifests); code != http.StatusOK {
		t.Fatalf("apply: %d %s", code, body)
	}
}

// startRun starts a manual run and returns it as the API answered.
func startRun(t *testing.T, base, alias string, wantCode int) store.Run {
	t.Helper()
	code, body := do(t, http.MethodPost, base+"/v1/jobs/"+alias+"/runs", "", "")
	if code != wantCode {
		t.Fatalf("start %s: %d %s, want %d", alias, code, body, wantCode)
	}
	var r store.Run
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("start %s: %v\n%s", alias, err, body)
	}
	return r
}

func getRun(t *testing.T, base string, id int64) (store.Run, string) {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/v1/runs/"+strconv.FormatInt(id, 10), "", "")
	if code != http.StatusOK {
		t.Fatalf("GET run %d: %d %s", id, code, body)
	}
	var r store.Run
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("GET run %d: %v\n%s", id, err, body)
	}
	return r, body
}

// waitRun waits until run id has finished and returns it with its steps.
func waitRun(t *testing.T, base string, id int64) store.Run {
	t.Helper()
	var r store.Run
	waitFor(t, fmt.Sprintf("run %d to finish", id), func() bool {
		r, _ = getRun(t, base, id)
		return r.Status.Finished()
	})
	return r
}

func task(t *testing.T, r store.Run, name string) store.TaskRun {
	t.Helper()
	for _, tr := range r.Tasks {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("run %d has no step %q: %+v", r.ID, name, r.Tasks)
	return store.TaskRun{}
}

// wantSteps checks each step's status.
func wantSteps(t *testing.T, r store.Run, want map[string]store.TaskStatus) {
	t.Helper()
	for name, st := range want {
		if got := task(t, r, name); got.Status != st {
			t.Errorf("run %d step %s: %s (error %q, output %q), want %s", r.ID, name, got.Status, got.Error, got.Output, st)
		}
	}
}

// noContainersLeft checks that the agent removed every container of a run.
// Run ids repeat across the tests' databases; the installation label tells
// them apart.
func noContainersLeft(t *testing.T, r *running, id int64) {
	t.Helper()
	labels := map[string]string{"io.caesium.run-id": strconv.FormatInt(id, 10), agent.LabelInstallation: r.installation}
	if left := dockertest.Containers(t, labels); len(left) > 0 {
		t.Errorf("run %d left containers %v", id, left)
	}
}

const dagJobs = `apiVersion: v1
kind: Job
metadata:
  alias: diamond
steps:
  - name: prepare
    image: %[1]s
    command: ["sh", "-c", "echo prepared run=$CAESIUM_RUN_ID step=$CAESIUM_STEP"]
    next: [left, right]
  - name: left
    image: %[1]s
    command: ["sh", "-c", "echo left; echo to-stderr >&2"]
    next: join
  - name: right
    image: %[1]s
    env: {GREETING: hello}
    command: ["sh", "-c", "echo right says $GREETING"]
    next: join
  - name: join
    image: %[1]s
    command: ["sh", "-c", "echo joined"]
---
apiVersion: v1
kind: Job
metadata:
  alias: broken
steps:
  - name: fail
    image: %[1]s
    command: ["sh", "-c", "echo about to fail; exit 3"]
    retries: 1
    next: [after, cleanup]
  - name: after
    image: %[1]s
    command: ["true"]
  - name: cleanup
    image: %[1]s
    triggerRule: all_done
    command: ["sh", "-c", "echo cleaned"]
`

// TestRunsOnDocker: manual runs of a diamond DAG and of a failing job go
// through the store's queue, the leader's runner and real containers; each
// step's outcome, exit code and output land in the run history.
func TestRunsOnDocker(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			r := runAgent(t, backend, nil)
			applyYAML(t, r.url, fmt.Sprintf(dagJobs, img))

			ok := startRun(t, r.url, "diamond", http.StatusAccepted)
			if ok.Status != store.RunQueued || ok.Trigger != "manual" || ok.JobVersion != 1 {
				t.Errorf("started run: %+v, want queued, manual, version 1", ok)
			}
			bad := startRun(t, r.url, "broken", http.StatusAccepted)

			got := waitRun(t, r.url, ok.ID)
			if got.Status != store.RunSucceeded {
				t.Fatalf("diamond: %s %q, steps %+v", got.Status, got.Error, got.Tasks)
			}
			wantSteps(t, got, map[string]store.TaskStatus{"prepare": store.TaskSucceeded, "left": store.TaskSucceeded, "right": store.TaskSucceeded, "join": store.TaskSucceeded})
			if out := task(t, got, "prepare").Output; !strings.Contains(out, fmt.Sprintf("prepared run=%d step=prepare", ok.ID)) {
				t.Errorf("prepare output %q lacks the run id and step name from CAESIUM_*", out)
			}
			if out := task(t, got, "left").Output; !strings.Contains(out, "left") || !strings.Contains(out, "to-stderr") {
				t.Errorf("left output %q: want stdout and stderr", out)
			}
			if out := task(t, got, "right").Output; !strings.Contains(out, "right says hello") {
				t.Errorf("right output %q: want the step's env", out)
			}
			if got.StartedAt == nil || got.FinishedAt == nil || got.FinishedAt.Before(*got.StartedAt) {
				t.Errorf("diamond times: started %v finished %v", got.StartedAt, got.FinishedAt)
			}

			failed := waitRun(t, r.url, bad.ID)
			if failed.Status != store.RunFailed {
				t.Fatalf("broken: %s, want failed", failed.Status)
			}
			wantSteps(t, failed, map[string]store.TaskStatus{"fail": store.TaskFailed, "after": store.TaskSkipped, "cleanup": store.TaskSucceeded})
			f := task(t, failed, "fail")
			if f.Attempts != 2 || f.ExitCode == nil || *f.ExitCode != 3 || !strings.Contains(f.Output, "about to fail") {
				t.Errorf("fail step: attempts %d, exit %v, output %q; want 2 attempts, exit 3 and the output", f.Attempts, f.ExitCode, f.Output)
			}
			if !strings.Contains(failed.Error, "fail") {
				t.Errorf("run error %q does not name the failed step", failed.Error)
			}
			noContainersLeft(t, r, ok.ID)
			noContainersLeft(t, r, bad.ID)

			code, body := do(t, http.MethodGet, r.url+"/v1/jobs/broken/runs", "", "")
			var list api.RunList
			if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list.Runs) != 1 || list.Runs[0].ID != bad.ID {
				t.Errorf("GET /v1/jobs/broken/runs: %d %s", code, body)
			}
			code, body = do(t, http.MethodGet, r.url+"/metrics", "", "")
			for _, want := range []string{`caesium_runs_finished_total{status="succeeded"} 1`, `caesium_runs_finished_total{status="failed"} 1`} {
				if code != http.StatusOK || !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

// TestRunMissingSecret: a step whose env names a secret that does not
// exist fails with the reference named, while a run of another job at the
// same time succeeds.
func TestRunMissingSecret(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	r := runAgent(t, "sqlite", nil)
	applyYAML(t, r.url, fmt.Sprintf(`apiVersion: v1
kind: Job
metadata: {alias: needs-secret}
steps:
  - name: use
    image: %[1]s
    env: {TOKEN: "secret://env/CAESIUM_RUNTEST_NEVER_SET"}
    command: ["true"]
---
apiVersion: v1
kind: Job
metadata: {alias: fine}
steps:
  - name: ok
    image: %[1]s
    command: ["true"]
`, img))
	missing := startRun(t, r.url, "needs-secret", http.StatusAccepted)
	fine := startRun(t, r.url, "fine", http.StatusAccepted)
	got := waitRun(t, r.url, missing.ID)
	use := task(t, got, "use")
	if got.Status != store.RunFailed || use.Status != store.TaskFailed ||
		!strings.Contains(use.Error, "secret://env/CAESIUM_RUNTEST_NEVER_SET") || !strings.Contains(use.Error, "TOKEN") {
		t.Errorf("needs-secret: run %s, step %s %q; want failed naming TOKEN and its reference", got.Status, use.Status, use.Error)
	}
	if got := waitRun(t, r.url, fine.ID); got.Status != store.RunSucceeded {
		t.Errorf("fine: %s %q, want succeeded", got.Status, got.Error)
	}
}

// TestRunCancel: a cancel through the API stops a running step's container
// and records the run as cancelled.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	r := runAgent(t, "sqlite", nil)
	applyYAML(t, r.url, fmt.Sprintf(`apiVersion: v1
kind: Job
metadata: {alias: sleeper}
steps:
  - name: sleep
    image: %s
    command: ["sleep", "600"]
`, img))
	run := startRun(t, r.url, "sleeper", http.StatusAccepted)
	waitFor(t, "the step to run", func() bool {
		got, _ := getRun(t, r.url, run.ID)
		return len(got.Tasks) == 1 && got.Tasks[0].Status == store.TaskRunning
	})
	if code, body := do(t, http.MethodPost, r.url+"/v1/runs/"+strconv.FormatInt(run.ID, 10)+"/cancel", "", ""); code != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", code, body)
	}
	got := waitRun(t, r.url, run.ID)
	if got.Status != store.RunCancelled || task(t, got, "sleep").Status != store.TaskCancelled {
		t.Errorf("after cancel: run %s, step %s; want cancelled", got.Status, task(t, got, "sleep").Status)
	}
	noContainersLeft(t, r, run.ID)
}

// TestRunInterruptedByStop: an agent that stops while a run is in flight
// stops its container, records the run as failed, interrupted, and sends
// its failure callback before it exits; it is not run again by the next
// agent.
func TestRunInterruptedByStop(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	sink := newCallbackSink(t)
	dbURL := storetest.URL(t, "postgres")
	r := runAgent(t, "postgres", nil, func(c *config.Config) { c.Database.URL = dbURL })
	applyYAML(t, r.url, fmt.Sprintf(`apiVersion: v1
kind: Job
metadata: {alias: long}
callbacks:
  - url: %s/done
steps:
  - name: sleep
    image: %s
    command: ["sleep", "600"]
`, sink.URL, img))
	run := startRun(t, r.url, "long", http.StatusAccepted)
	waitFor(t, "the step to run", func() bool {
		got, _ := getRun(t, r.url, run.ID)
		return len(got.Tasks) == 1 && got.Tasks[0].Status == store.TaskRunning
	})
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	noContainersLeft(t, r, run.ID)
	// Recorded by the agent that stopped, before any other agent starts.
	st, err := store.Open(context.Background(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := st.GetRun(context.Background(), run.ID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != store.RunFailed || !strings.Contains(stopped.Error, "interrupted") ||
		len(stopped.Tasks) != 1 || stopped.Tasks[0].Status == store.TaskRunning {
		t.Errorf("after a graceful stop: run %s %q, steps %+v; want failed, interrupted, no step running", stopped.Status, stopped.Error, stopped.Tasks)
	}
	if reqs := sink.requests(); len(reqs) != 1 || reqs[0].header.Get("X-Caesium-Event") != "run.failed" {
		t.Errorf("after a graceful stop: %d callback requests, want one run.failed", len(reqs))
	}
	next := runAgent(t, "postgres", nil, func(c *config.Config) { c.Database.URL = dbURL })
	got := waitRun(t, next.url, run.ID)
	if got.Status != store.RunFailed || !strings.Contains(got.Error, "interrupted") {
		t.Errorf("after the agent stopped: %s %q, want failed, interrupted", got.Status, got.Error)
	}
	if n := task(t, got, "sleep").Attempts; n != 1 {
		t.Errorf("the step ran %d times, want 1: an interrupted run is not run again", n)
	}
}

// callbackSink records the callback requests it receives.
type callbackSink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []sunkRequest
}

type sunkRequest struct {
	header http.Header
	body   string
}

func newCallbackSink(t *testing.T) *callbackSink {
	s := &callbackSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, sunkRequest{header: r.Header.Clone(), body: string(b)})
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *callbackSink) requests() []sunkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkRequest(nil), s.reqs...)
}

// signedTrigger posts body to an HTTP trigger path, signed with secret at ts.
func signedTrigger(t *testing.T, base, path, secret string, ts time.Time, body string) (int, agent.TriggerAnswer, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+agent.TriggerPathPrefix+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.HeaderTriggerTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(api.HeaderTriggerSignature, api.SignTrigger(secret, ts, []byte(body)))
	return sendTrigger(t, req)
}

func sendTrigger(t *testing.T, req *http.Request) (int, agent.TriggerAnswer, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a agent.TriggerAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("trigger answer %q: %v", b, err)
	}
	return resp.StatusCode, a, string(b)
}

// TestHTTPTriggerAndCallbacks: a signed request starts a run of the job
// whose http trigger has that path; unsigned, badly signed, stale and
// replayed requests start nothing. The run's callback carries its header
// secret, resolved when sent, and its delivery is recorded on the run.
func TestHTTPTriggerAndCallbacks(t *testing.T) {
	img := dockertest.Image(t)
	const secretEnv, tokenEnv = "CAESIUM_RUNTEST_TRIGGER_SECRET", "CAESIUM_RUNTEST_CALLBACK_TOKEN"
	secret, token := secretValue(t, "trigger"), secretValue(t, "callback")
	t.Setenv(secretEnv, secret)
	t.Setenv(tokenEnv, token)
	sink := newCallbackSink(t)
	r := runAgent(t, "sqlite", nil)
	applyYAML(t, r.url, fmt.Sprintf(`apiVersion: v1
kind: Job
metadata: {alias: deploy}
trigger:
  type: http
  configuration: {path: /hooks/deploy, secret: "secret://env/%[2]s"}
callbacks:
  - url: %[3]s/done
    headers: {Authorization: "secret://env/%[4]s", X-Team: platform}
steps:
  - name: roll
    image: %[1]s
    command: ["sh", "-c", "echo rolled"]
---
apiVersion: v1
kind: Job
metadata: {alias: bearer}
trigger:
  type: http
  configuration: {path: /hooks/bearer, secret: "secret://env/%[2]s", signatureScheme: bearer}
steps:
  - name: go
    image: %[1]s
    command: ["true"]
`, img, secretEnv, sink.URL, tokenEnv))

	now := time.Now()
	code, a, body := signedTrigger(t, r.url, "/hooks/deploy", secret, now, `{"reason":"test"}`)
	if code != http.StatusAccepted || a.Result != "queued" || a.RunID == 0 || a.Job != "deploy" {
		t.Fatalf("signed trigger: %d %s", code, body)
	}
	run := waitRun(t, r.url, a.RunID)
	if run.Status != store.RunSucceeded || run.Trigger != "http" || !strings.HasPrefix(run.Actor, "http 127.0.0.1") {
		t.Errorf("triggered run: %s trigger %q actor %q", run.Status, run.Trigger, run.Actor)
	}
	if code, a, body := signedTrigger(t, r.url, "/hooks/deploy", secret, now, `{"reason":"test"}`); code != http.StatusConflict || a.Result != "duplicate" {
		t.Errorf("replayed request: %d %s, want 409 duplicate", code, body)
	}
	for name, c := range map[string]struct {
		path, secret string
		ts           time.Time
		want         int
	}{
		"wrong secret":     {"/hooks/deploy", "not-" + secret, time.Now(), http.StatusUnauthorized},
		"stale timestamp":  {"/hooks/deploy", secret, time.Now().Add(-time.Hour), http.StatusUnauthorized},
		"unknown path":     {"/hooks/nothing", secret, time.Now(), http.StatusNotFound},
		"bearer job, hmac": {"/hooks/bearer", secret, time.Now(), http.StatusUnauthorized},
	} {
		if code, _, body := signedTrigger(t, r.url, c.path, c.secret, c.ts, `{"n":"`+name+`"}`); code != c.want {
			t.Errorf("%s: %d %s, want %d", name, code, body, c.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.url+agent.TriggerPathPrefix+"/hooks/deploy", strings.NewReader("{}"))
	if code, _, body := sendTrigger(t, req); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d %s, want 401", code, body)
	}
	req, _ = http.NewRequest(http.MethodPost, r.url+agent.TriggerPathPrefix+"/hooks/bearer", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	code, a, body = sendTrigger(t, req)
	if code != http.StatusAccepted {
		t.Fatalf("bearer trigger: %d %s", code, body)
	}
	if got := waitRun(t, r.url, a.RunID); got.Status != store.RunSucceeded {
		t.Errorf("bearer run: %s", got.Status)
	}

	var delivered store.Run
	waitFor(t, "the callback to be recorded", func() bool {
		delivered, _ = getRun(t, r.url, run.ID)
		return len(delivered.Callbacks) == 1
	})
	if cb := delivered.Callbacks[0]; cb.StatusCode != http.StatusNoContent || cb.Error != "" || cb.Event != "run.succeeded" {
		t.Errorf("callback record %+v, want 204 run.succeeded", cb)
	}
	reqs := sink.requests()
	if len(reqs) != 1 {
		t.Fatalf("callback requests: %d, want 1", len(reqs))
	}
	if got := reqs[0].header.Get("Authorization"); got != token {
		t.Errorf("callback Authorization header is not the resolved secret")
	}
	if reqs[0].header.Get("X-Team") != "platform" || !strings.Contains(reqs[0].body, `"status":"succeeded"`) || !strings.Contains(reqs[0].body, `"job":"deploy"`) {
		t.Errorf("callback request: %v %s", reqs[0].header, reqs[0].body)
	}
	_, m := do(t, http.MethodGet, r.url+"/metrics", "", "")
	for _, want := range []string{`caesium_http_trigger_requests_total{result="queued"} 2`, `caesium_http_trigger_requests_total{result="unauthorized"} 4`, `caesium_http_trigger_requests_total{result="duplicate"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRunVaultDown: with Vault answering 503 (sealed), a run whose step
// needs a Vault secret fails naming the reference, a run of a job without
// Vault secrets succeeds at the same time, and once Vault is back the next
// run of the first job gets its value.
func TestRunVaultDown(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	const ref = "secret://vault/kv/app#token"
	value := secretValue(t, "vault-step")
	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	vs.Put("kv", "app", map[string]any{"token": value})
	tokenFile := filepath.Join(t.TempDir(), "vault-token")
	writeSecretFile(t, tokenFile, vs.CreateToken(vaulttest.TokenOptions{})+"\n")
	r := runAgent(t, "sqlite", nil, func(c *config.Config) {
		c.Secrets.Vault = &config.Vault{Address: vs.URL, MaxRetries: -1, Auth: config.VaultAuth{Method: "token", TokenFile: tokenFile}}
	})
	sum := sha256.Sum256([]byte(value))
	applyYAML(t, r.url, fmt.Sprintf(`apiVersion: v1
kind: Job
metadata: {alias: vaulted}
steps:
  - name: use
    image: %[1]s
    env: {TOKEN: %[2]q}
    command: ["sh", "-c", "printf %%s \"$TOKEN\" | sha256sum"]
---
apiVersion: v1
kind: Job
metadata: {alias: plain}
steps:
  - name: ok
    image: %[1]s
    command: ["true"]
`, img, ref))

	vs.Fail(http.StatusServiceUnavailable)
	down := startRun(t, r.url, "vaulted", http.StatusAccepted)
	plain := startRun(t, r.url, "plain", http.StatusAccepted)
	got := waitRun(t, r.url, down.ID)
	t.Logf("step error with Vault down: %s", task(t, got, "use").Error)
	if use := task(t, got, "use"); got.Status != store.RunFailed || !strings.Contains(use.Error, ref) || !strings.Contains(use.Error, "TOKEN") {
		t.Errorf("with Vault down: run %s, step %s %q; want failed naming TOKEN and %s", got.Status, use.Status, use.Error, ref)
	}
	if got := waitRun(t, r.url, plain.ID); got.Status != store.RunSucceeded {
		t.Errorf("a job without Vault secrets: %s %q, want succeeded", got.Status, got.Error)
	}

	vs.Fail(0)
	up := waitRun(t, r.url, startRun(t, r.url, "vaulted", http.StatusAccepted).ID)
	if out := task(t, up, "use").Output; up.Status != store.RunSucceeded || !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Errorf("with Vault back: %s, output %q; want succeeded with the value's hash", up.Status, out)
	}
}
