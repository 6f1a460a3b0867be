package executor_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/schema"
)

// hook is a real HTTP server on loopback that records what it receives and
// answers each request with the next status of its script (the last one
// repeats).
type hook struct {
	srv     *httptest.Server
	answers []int
	body    string // response body

	mu   sync.Mutex
	reqs []received
}

type received struct {
	method string
	header http.Header
	body   []byte
}

func newHook(t testing.TB, answers ...int) *hook {
	t.Helper()
	if len(answers) == 0 {
		answers = []int{http.StatusNoContent}
	}
	h := &hook{answers: answers}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.reqs)
		h.reqs = append(h.reqs, received{method: r.Method, header: r.Header.Clone(), body: body})
		resp := h.body
		h.mu.Unlock()
		code := h.answers[min(n, len(h.answers)-1)]
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		io.WriteString(w, resp)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.reqs...)
}

func callbackJob(t testing.TB, callbacks string) *schema.Job {
	t.Helper()
	return parseJob(t, `
apiVersion: v1
kind: Job
metadata: {alias: nightly-etl}
callbacks:
`+callbacks+`
steps:
  - {name: extract, image: busybox}
`)
}

func summary(status string) executor.RunSummary {
	code := 1
	start := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	return executor.RunSummary{
		RunID: 42, Job: "nightly-etl", JobVersion: 3, Status: status, Trigger: "cron",
		Error:     "step extract failed",
		StartedAt: start, FinishedAt: start.Add(time.Minute),
		Tasks: []executor.TaskState{{
			Name: "extract", Status: executor.TaskFailed, Attempts: 1, ExitCode: &code,
			Error: "exit code 1", Output: "the output stays home",
			StartedAt: start, FinishedAt: start.Add(time.Minute),
		}},
	}
}

func TestSendCallbacksFiltering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    string
		wantSent  []string // which hooks receive it
		wantEvent string
	}{
		{executor.RunSucceeded, []string{"success", "both"}, executor.EventRunSucceeded},
		{executor.RunFailed, []string{"failure", "both"}, executor.EventRunFailed},
		{executor.RunCancelled, []string{"failure", "both"}, executor.EventRunCancelled},
		{"skipped", nil, ""},
		{"running", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			t.Parallel()
			hooks := map[string]*hook{"success": newHook(t), "failure": newHook(t), "both": newHook(t)}
			job := callbackJob(t, `
  - {url: "`+hooks["success"].srv.URL+`/s", on: [success]}
  - {url: "`+hooks["failure"].srv.URL+`/f", on: [failure]}
  - {url: "`+hooks["both"].srv.URL+`/b"}
`)
			ds := executor.SendCallbacks(testContext(t), job, summary(tt.status), executor.CallbackOptions{Clock: newClock()})
			var sent []string
			for _, name := range []string{"success", "failure", "both"} {
				if n := len(hooks[name].requests()); n > 0 {
					sent = append(sent, name)
				}
			}
			if !slices.Equal(sent, tt.wantSent) {
				t.Errorf("sent to %v, want %v", sent, tt.wantSent)
			}
			if len(ds) != len(tt.wantSent) {
				t.Fatalf("%d deliveries, want %d: %+v", len(ds), len(tt.wantSent), ds)
			}
			for i, d := range ds {
				if !strings.HasPrefix(d.URL, hooks[tt.wantSent[i]].srv.URL) || d.Event != tt.wantEvent ||
					d.Error != "" || d.StatusCode != http.StatusNoContent || d.Attempts != 1 || d.At.IsZero() {
					t.Errorf("delivery %d = %+v", i, d)
				}
			}
		})
	}
}

func TestSendCallbacksRequest(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	job := callbackJob(t, `
  - url: "`+h.srv.URL+`/v1/notify?team=sre"
    headers:
      X-Team: sre
      X-Relay-Token: secret://file/slack/webhook-token
      X-Caesium-Event: forged
      Idempotency-Key: forged
`)
	res := newResolver(map[string]string{"secret://file/slack/webhook-token": "relay-token-5b1f"})
	ds := executor.SendCallbacks(testContext(t), job, summary(executor.RunFailed), executor.CallbackOptions{
		Resolver:  res,
		Redact:    func(s string) string { return strings.ReplaceAll(s, "extract", "[x]") },
		UserAgent: "caesium-agent/1.2.3",
		Clock:     newClock(),
	})
	if len(ds) != 1 || ds[0].Error != "" {
		t.Fatalf("deliveries %+v", ds)
	}
	reqs := h.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	wantHeaders := map[string]string{
		"Content-Type":     "application/json",
		"User-Agent":       "caesium-agent/1.2.3",
		"X-Caesium-Event":  "run.failed",
		"X-Caesium-Run-Id": "42",
		"Idempotency-Key":  "caesium-run-42-run.failed",
		"X-Team":           "sre",
		"X-Relay-Token":    "relay-token-5b1f",
	}
	if r.method != http.MethodPost {
		t.Errorf("method %s", r.method)
	}
	for k, v := range wantHeaders {
		if got := r.header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	want := map[string]any{
		"event": "run.failed", "runId": 42.0, "job": "nightly-etl", "jobVersion": 3.0, "status": "failed",
		"trigger": "cron", "error": "step [x] failed",
		"startedAt": "2026-11-27T02:00:00Z", "finishedAt": "2026-11-27T02:01:00Z",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body %s = %v, want %v", k, body[k], v)
		}
	}
	tasks, _ := body["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("tasks %v", body["tasks"])
	}
	tk := tasks[0].(map[string]any)
	if _, ok := tk["output"]; ok {
		t.Errorf("task output was sent: %v", tk)
	}
	if tk["name"] != "extract" || tk["exitCode"] != 1.0 || tk["status"] != "failed" {
		t.Errorf("task %v", tk)
	}
	if strings.Contains(string(r.body), "the output stays home") {
		t.Error("the body carries task output")
	}
}

func TestSendCallbacksHeaderResolvedAtSendTime(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	job := callbackJob(t, `
  - url: "`+h.srv.URL+`/hook"
    headers: {Authorization: secret://vault/kv/sre/oncall#authorization}
`)
	const ref = "secret://vault/kv/sre/oncall#authorization"
	res := newResolver(map[string]string{})
	opts := executor.CallbackOptions{Resolver: res, Clock: newClock()}
	// The secret is created (then rotated) after the job was loaded: only
	// the value at send time counts.
	res.set(ref, "Bearer first-8c2d")
	executor.SendCallbacks(testContext(t), job, summary(executor.RunSucceeded), opts)
	res.set(ref, "Bearer second-4e7a")
	executor.SendCallbacks(testContext(t), job, summary(executor.RunSucceeded), opts)
	var got []string
	for _, r := range h.requests() {
		got = append(got, r.header.Get("Authorization"))
	}
	if want := []string{"Bearer first-8c2d", "Bearer second-4e7a"}; !slices.Equal(got, want) {
		t.Errorf("Authorization sent %q, want %q", got, want)
	}
	if n := len(res.asked()); n != 2 {
		t.Errorf("resolved %d times, want once per send", n)
	}
}

func TestSendCallbacksMissingHeaderSecret(t *testing.T) {
	t.Parallel()
	broken, fine := newHook(t), newHook(t)
	job := callbackJob(t, `
  - url: "`+broken.srv.URL+`/hook"
    headers:
      X-Team: sre
      X-Relay-Token: secret://file/slack/webhook-token
  - url: "`+fine.srv.URL+`/hook"
`)
	ds := executor.SendCallbacks(testContext(t), job, summary(executor.RunFailed), executor.CallbackOptions{
		Resolver: newResolver(map[string]string{}), Clock: newClock(),
	})
	if n := len(broken.requests()); n != 0 {
		t.Errorf("%d requests sent without the header's secret", n)
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v", ds)
	}
	want := "header X-Relay-Token: secret://file/slack/webhook-token: secret not found"
	if d := ds[0]; d.Error != want || d.Attempts != 0 || d.StatusCode != 0 || d.At.IsZero() {
		t.Errorf("delivery = %+v, want error %q and no attempt", d, want)
	}
	if d := ds[1]; d.Error != "" || len(fine.requests()) != 1 {
		t.Errorf("the other callback = %+v, %d requests", d, len(fine.requests()))
	}
}

func TestSendCallbacksRetries(t *testing.T) {
	t.Parallel()
	const backoff = 2 * time.Second
	tests := []struct {
		name         string
		answers      []int
		body         string
		wantAttempts int
		wantCode     int
		wantError    string
		wantDelays   []time.Duration
	}{
		{"503 then success", []int{503, 200}, "", 2, 200, "", []time.Duration{backoff}},
		{"429 and 500 then success", []int{429, 500, 202}, "", 3, 202, "", []time.Duration{backoff, 2 * backoff}},
		{"503 until attempts run out", []int{503}, "", 3, 503, "HTTP 503 Service Unavailable", []time.Duration{backoff, 2 * backoff}},
		{"400 is not retried", []int{400, 200}, "unknown channel\n", 1, 400, "HTTP 400 Bad Request: unknown channel", nil},
		{"404 is not retried", []int{404, 200}, "", 1, 404, "HTTP 404 Not Found", nil},
		{"a redirect is not followed", []int{302, 200}, "", 1, 302, "HTTP 302 Found", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHook(t, tt.answers...)
			h.body = tt.body
			clk := newClock()
			ds := executor.SendCallbacks(testContext(t), callbackJob(t, `  - url: "`+h.srv.URL+`/hook"`), summary(executor.RunFailed),
				executor.CallbackOptions{Backoff: backoff, Clock: clk})
			if len(ds) != 1 {
				t.Fatalf("deliveries %+v", ds)
			}
			d := ds[0]
			if d.Attempts != tt.wantAttempts || d.StatusCode != tt.wantCode || d.Error != tt.wantError {
				t.Errorf("delivery = %+v, want %d attempts, status %d, error %q", d, tt.wantAttempts, tt.wantCode, tt.wantError)
			}
			if n := len(h.requests()); n != tt.wantAttempts {
				t.Errorf("server saw %d requests, want %d", n, tt.wantAttempts)
			}
			if got := clk.recorded(); !slices.Equal(got, tt.wantDelays) {
				t.Errorf("backoff %v, want %v", got, tt.wantDelays)
			}
		})
	}
}

func TestSendCallbacksTimeout(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		select { // never answers in time
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: unblocks handlers before Close waits for them
	ds := executor.SendCallbacks(testContext(t), callbackJob(t, `  - url: "`+srv.URL+`/slow"`), summary(executor.RunFailed),
		executor.CallbackOptions{Timeout: 50 * time.Millisecond, MaxAttempts: 2, Clock: newClock()})
	if len(ds) != 1 {
		t.Fatalf("deliveries %+v", ds)
	}
	if d := ds[0]; d.Attempts != 2 || d.StatusCode != 0 || d.Error != "no response within 50ms" {
		t.Errorf("delivery = %+v", d)
	}
	// The client gives up after 50ms whether or not the handler has been
	// reached yet, so the server may count fewer requests than attempts.
	mu.Lock()
	defer mu.Unlock()
	if calls < 1 || calls > 2 {
		t.Errorf("server saw %d requests, want 1 or 2", calls)
	}
}

func TestSendCallbacksNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	clk := newClock()
	ds := executor.SendCallbacks(testContext(t), callbackJob(t, `  - url: "`+url+`/gone"`), summary(executor.RunSucceeded),
		executor.CallbackOptions{MaxAttempts: 2, Clock: clk})
	if len(ds) != 1 {
		t.Fatalf("deliveries %+v", ds)
	}
	if d := ds[0]; d.Attempts != 2 || d.StatusCode != 0 || !strings.Contains(d.Error, "connection refused") {
		t.Errorf("delivery = %+v", d)
	}
	if got := clk.recorded(); len(got) != 1 {
		t.Errorf("backoff %v, want one wait", got)
	}
}

func TestSendCallbacksRedactsErrors(t *testing.T) {
	t.Parallel()
	const token = "relay-token-3f9a2b7c"
	h := newHook(t, http.StatusUnauthorized)
	h.body = "token " + token + " is not valid for this channel"
	res := newResolver(map[string]string{"secret://env/RELAY_TOKEN": token})
	ds := executor.SendCallbacks(testContext(t), callbackJob(t, `
  - url: "`+h.srv.URL+`/hook"
    headers: {X-Relay-Token: secret://env/RELAY_TOKEN}
`), summary(executor.RunFailed), executor.CallbackOptions{Resolver: res, Clock: newClock()})
	if len(ds) != 1 {
		t.Fatalf("deliveries %+v", ds)
	}
	if got, want := ds[0].Error, "HTTP 401 Unauthorized: token [REDACTED] is not valid for this channel"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// TestSendCallbacksRedactsCutSecret: an answer echoing the secret past the
// part that is read (after a run of whitespace, which the error collapses)
// shows no part of it.
func TestSendCallbacksRedactsCutSecret(t *testing.T) {
	t.Parallel()
	const token = "relay-token-3f9a2b7c"
	h := newHook(t, http.StatusBadRequest)
	h.body = "bad request:" + strings.Repeat(" ", 1020) + "token " + token + " refused"
	res := newResolver(map[string]string{"secret://env/RELAY_TOKEN": token})
	ds := executor.SendCallbacks(testContext(t), callbackJob(t, `
  - url: "`+h.srv.URL+`/hook"
    headers: {X-Relay-Token: secret://env/RELAY_TOKEN}
`), summary(executor.RunFailed), executor.CallbackOptions{Resolver: res, Clock: newClock()})
	if len(ds) != 1 || !strings.HasPrefix(ds[0].Error, "HTTP 400 Bad Request") {
		t.Fatalf("deliveries %+v", ds)
	}
	for i := 0; i+4 <= len(token); i++ {
		if part := token[i : i+4]; strings.Contains(ds[0].Error, part) {
			t.Fatalf("error %q holds %q, part of the secret", ds[0].Error, part)
		}
	}
}

func TestSendCallbacksCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	h := newHook(t, http.StatusServiceUnavailable)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	clk := newClock()
	clk.hold = true
	clk.waits = make(chan time.Duration, 1)
	done := make(chan []executor.Delivery, 1)
	go func() {
		done <- executor.SendCallbacks(ctx, callbackJob(t, `  - url: "`+h.srv.URL+`/hook"`), summary(executor.RunFailed),
			executor.CallbackOptions{Backoff: time.Hour, Clock: clk})
	}()
	recv(t, ctx, clk.waits)
	cancel()
	ds := <-done
	if len(ds) != 1 || ds[0].Attempts != 1 || ds[0].Error != "HTTP 503 Service Unavailable" {
		t.Errorf("deliveries %+v", ds)
	}
}
