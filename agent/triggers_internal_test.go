package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestVerifyTrigger(t *testing.T) {
	t.Parallel()
	const secret = "shared-secret-0123456789"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"reason":"deploy"}`)
	signed := func(ts time.Time, key string, b []byte) http.Header {
		h := http.Header{}
		h.Set(api.HeaderTriggerTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(api.HeaderTriggerSignature, api.SignTrigger(key, ts, b))
		return h
	}
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	tests := []struct {
		name    string
		scheme  string
		header  http.Header
		body    []byte
		wantErr error
	}{
		{name: "signed now", scheme: schema.SignatureHMACSHA256, header: signed(now, secret, body), body: body},
		{name: "empty scheme is hmac", scheme: "", header: signed(now, secret, body), body: body},
		{name: "within the skew, past", scheme: "hmac-sha256", header: signed(now.Add(-4*time.Minute), secret, body), body: body},
		{name: "within the skew, future", scheme: "hmac-sha256", header: signed(now.Add(4*time.Minute), secret, body), body: body},
		{name: "too old", scheme: "hmac-sha256", header: signed(now.Add(-6*time.Minute), secret, body), body: body, wantErr: errTriggerStale},
		{name: "too far ahead", scheme: "hmac-sha256", header: signed(now.Add(6*time.Minute), secret, body), body: body, wantErr: errTriggerStale},
		{name: "other secret", scheme: "hmac-sha256", header: signed(now, "other", body), body: body, wantErr: errTriggerUnsigned},
		{name: "body changed", scheme: "hmac-sha256", header: signed(now, secret, body), body: []byte(`{"reason":"deploy!"}`), wantErr: errTriggerUnsigned},
		{name: "timestamp changed", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, strconv.FormatInt(now.Unix()+1, 10)), body: body, wantErr: errTriggerUnsigned},
		{name: "timestamp with a plus sign", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, "+"+strconv.FormatInt(now.Unix(), 10)), body: body, wantErr: errTriggerUnsigned},
		{name: "timestamp not a number", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, "soon"), body: body, wantErr: errTriggerUnsigned},
		{name: "no signature", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerSignature, ""), body: body, wantErr: errTriggerUnsigned},
		{name: "signature without prefix", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerSignature, api.SignTrigger(secret, now, body)[len("sha256="):]), body: body, wantErr: errTriggerUnsigned},
		{name: "nothing", scheme: "hmac-sha256", header: http.Header{}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"Bearer " + secret}}, body: body},
		{name: "bearer wrong", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"Bearer " + secret + "x"}}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer lower-case scheme word", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"bearer " + secret}}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer job given an hmac signature", scheme: schema.SignatureBearer, header: signed(now, secret, body), body: body, wantErr: errTriggerUnsigned},
		{name: "hmac job given the bearer token", scheme: "hmac-sha256", header: http.Header{"Authorization": {"Bearer " + secret}}, body: body, wantErr: errTriggerUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := verifyTrigger(tt.scheme, secret, tt.header, tt.body, now, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("verifyTrigger: %v, want %v", err, tt.wantErr)
			}
			if err == nil && tt.scheme != schema.SignatureBearer && sig != tt.header.Get(api.HeaderTriggerSignature) {
				t.Errorf("replay key %q, want the signature", sig)
			}
		})
	}
	if _, err := verifyTrigger("md5", secret, signed(now, secret, body), body, now, time.Minute); err == nil {
		t.Error("an unknown scheme was accepted")
	}
}

// FuzzVerifyTrigger: whatever the headers and body, verification never
// panics and accepts only what was signed with the secret.
func FuzzVerifyTrigger(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("1800000000", api.SignTrigger("k", now, []byte("x")), []byte("x"))
	f.Add("", "", []byte{})
	f.Add("-9223372036854775808", "sha256=", []byte("{}"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(api.HeaderTriggerTimestamp, ts)
		h.Set(api.HeaderTriggerSignature, sig)
		if _, err := verifyTrigger("hmac-sha256", "k", h, body, now, 5*time.Minute); err == nil {
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || strconv.FormatInt(sec, 10) != ts || sig != api.SignTrigger("k", time.Unix(sec, 0), body) {
				t.Fatalf("accepted ts=%q sig=%q", ts, sig)
			}
		}
	})
}

// failingCreate is the real store, but its next CreateRun fails as if the
// database had gone away for that one statement: a fault no real database
// produces on cue.
type failingCreate struct {
	*store.Store
	fail atomic.Bool
}

func (f *failingCreate) CreateRun(ctx context.Context, r store.NewRun) (store.Run, error) {
	if f.fail.CompareAndSwap(true, false) {
		return store.Run{}, fmt.Errorf("create run: %w", store.ErrUnavailable)
	}
	return f.Store.CreateRun(ctx, r)
}

type staticSecret string

func (s staticSecret) Resolve(context.Context, string) (string, error) { return string(s), nil }

// triggerFixture is the trigger handler on a real store holding one job,
// deploy, whose http trigger is at /hooks/deploy.
type triggerFixture struct {
	tr     *triggers
	st     *failingCreate
	queued int
}

func newTriggerFixture(t *testing.T, backend string, res interface {
	Resolve(context.Context, string) (string, error)
}) *triggerFixture {
	t.Helper()
	st := &failingCreate{Store: storetest.Open(t, backend)}
	docs, diags := schema.Parse("deploy.yaml", []byte(`apiVersion: v1
kind: Job
metadata: {alias: deploy}
trigger:
  type: http
  configuration: {path: /hooks/deploy, secret: "secret://env/DEPLOY_SECRET"}
steps:
  - {name: roll, image: busybox}
`), schema.DefaultLimits)
	if schema.CountErrors(diags) > 0 {
		t.Fatalf("manifest: %v", diags)
	}
	job := docs[0].Job
	if _, err := st.ApplyChanges(context.Background(), []store.Change{{Op: store.OpCreate, Alias: "deploy", Job: job, Hash: job.Hash(), Provenance: store.Provenance{SourceID: "manual"}}}); err != nil {
		t.Fatal(err)
	}
	f := &triggerFixture{st: st}
	cfg := config.Default().Triggers
	f.tr = &triggers{
		cfg: cfg, window: time.Hour, resolver: res, store: st, queued: func() { f.queued++ },
		recent: newReplayCache(16, 2*cfg.ClockSkew), inFlight: make(chan struct{}, 1),
		log: slog.New(slog.DiscardHandler), now: time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"result"}),
	}
	return f
}

// post sends body to /hooks/deploy signed with secret at ts.
func (f *triggerFixture) post(secret string, ts time.Time, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, TriggerPathPrefix+"/hooks/deploy", bytes.NewReader(body))
	req.SetPathValue("path", "/hooks/deploy")
	req.Header.Set(api.HeaderTriggerTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(api.HeaderTriggerSignature, api.SignTrigger(secret, ts, body))
	w := httptest.NewRecorder()
	f.tr.ServeHTTP(w, req)
	return w
}

// TestTriggerRetryAfterFailedCreate: a signed request whose run could not
// be created (503) took no effect, so the sender's retry of the very same
// request queues the run instead of being refused as a replay.
func TestTriggerRetryAfterFailedCreate(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const secret = "trigger-secret-0123456789"
			f := newTriggerFixture(t, backend, staticSecret(secret))
			ts, body := time.Now(), []byte(`{"n":1}`)
			f.st.fail.Store(true)
			if w := f.post(secret, ts, body); w.Code != http.StatusServiceUnavailable {
				t.Fatalf("with CreateRun failing: %d %s, want 503", w.Code, w.Body)
			}
			if w := f.post(secret, ts, body); w.Code != http.StatusAccepted {
				t.Fatalf("the retry: %d %s, want 202", w.Code, w.Body)
			}
			if w := f.post(secret, ts, body); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "duplicate") {
				t.Fatalf("a replay of the accepted request: %d %s, want 409 duplicate", w.Code, w.Body)
			}
			if f.queued != 1 {
				t.Errorf("runner woken %d times, want 1", f.queued)
			}
		})
	}
}

// countingSecret resolves to a value (or an error) that can change,
// counting resolves.
type countingSecret struct {
	mu    sync.Mutex
	value string
	err   error
	n     int
}

func (c *countingSecret) Resolve(context.Context, string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.value, c.err
}

func (c *countingSecret) set(value string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.value, c.err = value, err
}

func (c *countingSecret) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestTriggerSecretFailureCache: while the secret cannot be resolved
// (Vault down), requests answer 503 and cost one backend read per
// failureTTL, not one each; once it resolves again, triggers work.
func TestTriggerSecretFailureCache(t *testing.T) {
	t.Parallel()
	const secret = "back-secret-0123456789"
	res := &countingSecret{err: errors.New("secret://env/DEPLOY_SECRET: vault unavailable")}
	f := newTriggerFixture(t, "sqlite", res)
	now := time.Now()
	var mu sync.Mutex
	f.tr.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for i := range 10 {
		if w := f.post(secret, time.Now(), []byte(fmt.Sprint(i))); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("with the secret unresolvable: %d %s, want 503", w.Code, w.Body)
		}
	}
	if n := res.count(); n != 1 {
		t.Errorf("10 requests while the secret failed resolved it %d times, want 1", n)
	}
	res.set(secret, nil)
	mu.Lock()
	now = now.Add(failureTTL)
	mu.Unlock()
	if w := f.post(secret, time.Now(), []byte("ok")); w.Code != http.StatusAccepted {
		t.Errorf("after failureTTL with the secret back: %d %s, want 202", w.Code, w.Body)
	}
}

// TestTriggerSecretCache: requests with made-up signatures do not each
// cost a secret backend read; a rotated secret is picked up once the cached
// one is older than secretTTL.
func TestTriggerSecretCache(t *testing.T) {
	t.Parallel()
	res := &countingSecret{value: "first-secret-0123456789"}
	f := newTriggerFixture(t, "sqlite", res)
	now := time.Now()
	var mu sync.Mutex
	f.tr.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for i := range 20 {
		if w := f.post("guess", time.Now(), []byte(fmt.Sprint(i))); w.Code != http.StatusUnauthorized {
			t.Fatalf("made-up signature: %d %s", w.Code, w.Body)
		}
	}
	if n := res.count(); n != 1 {
		t.Errorf("20 unsigned requests resolved the secret %d times, want 1", n)
	}
	res.set("second-secret-0123456789", nil)
	if w := f.post("second-secret-0123456789", time.Now(), []byte("a")); w.Code != http.StatusUnauthorized {
		t.Errorf("the rotated secret within secretTTL: %d, want 401 (the cached one still holds)", w.Code)
	}
	mu.Lock()
	now = now.Add(secretTTL)
	mu.Unlock()
	if w := f.post("second-secret-0123456789", time.Now(), []byte("b")); w.Code != http.StatusAccepted {
		t.Errorf("the rotated secret after secretTTL: %d %s, want 202", w.Code, w.Body)
	}
	if n := res.count(); n != 2 {
		t.Errorf("resolved %d times, want 2", n)
	}
}
