package agent

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// TriggerPathPrefix is where HTTP triggers are served: a job whose trigger
// path is /hooks/deploy is started by POST /v1/triggers/hooks/deploy.
const TriggerPathPrefix = "/v1/triggers"

var (
	errTriggerUnsigned = errors.New("missing or invalid signature")
	errTriggerStale    = errors.New("timestamp outside the allowed clock skew")
)

// verifyTrigger checks that a request proves it knows secret under scheme.
// For hmac-sha256 it returns the signature, the request's replay key.
func verifyTrigger(scheme, secret string, h http.Header, body []byte, now time.Time, skew time.Duration) (string, error) {
	switch scheme {
	case schema.SignatureBearer:
		got, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			return "", errTriggerUnsigned
		}
		return "", nil
	case schema.SignatureHMACSHA256, "":
		tsText, sig := h.Get(api.HeaderTriggerTimestamp), h.Get(api.HeaderTriggerSignature)
		// Only the canonical decimal form: the signature covers the text
		// SignTrigger writes, so "+17…" or "017…" could not match anyway.
		sec, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil || sig == "" || strconv.FormatInt(sec, 10) != tsText {
			return "", errTriggerUnsigned
		}
		want := api.SignTrigger(secret, time.Unix(sec, 0), body)
		if !hmac.Equal([]byte(sig), []byte(want)) {
			return "", errTriggerUnsigned
		}
		// Checked after the signature, so an unsigned request learns
		// nothing about the clock.
		if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
			return "", errTriggerStale
		}
		return sig, nil
	default:
		return "", fmt.Errorf("unknown signature scheme %q", scheme)
	}
}

// triggerStore is what HTTP triggers need from the store.
type triggerStore interface {
	JobByHTTPPath(ctx context.Context, path string) (store.Job, error)
	CreateRun(ctx context.Context, r store.NewRun) (store.Run, error)
	SeenReplay(ctx context.Context, keys []string, window time.Duration) (bool, error)
	ForgetReplay(ctx context.Context, keys []string) error
}

// triggers serves POST /v1/triggers/{path}: find the job whose http trigger
// has that path, resolve its secret (per request), verify, and queue a run.
// Any agent answers, leader or not: the run is a row the leader claims.
type triggers struct {
	cfg      config.Triggers
	window   time.Duration // replay ledger window
	resolver interface {
		Resolve(ctx context.Context, ref string) (string, error)
	}
	store    triggerStore
	queued   func() // wakes this agent's runner
	recent   *replayCache
	inFlight chan struct{}

	// secrets holds resolved trigger secrets for secretTTL: the endpoint is
	// unauthenticated until the signature is checked, and without it every
	// request with a made-up signature would cost a Vault read.
	secretsMu sync.Mutex
	secrets   map[string]cachedSecret
	log       *slog.Logger
	now       func() time.Time
	requests  *prometheus.CounterVec
}

func newTriggers(cfg config.Triggers, a *Agent, reg prometheus.Registerer, queued func(), log *slog.Logger) (*triggers, error) {
	// A signature is valid for the clock skew either side of its timestamp;
	// its key must outlive that. The ledger purges each namespace ("trigger")
	// by its own callers' window, so the webhooks' window does not matter.
	window := 2 * cfg.ClockSkew
	t := &triggers{
		cfg: cfg, window: window, resolver: a.resolver, store: a.store, queued: queued, log: log, now: time.Now,
		recent:   newReplayCache(replayMemory, 2*cfg.ClockSkew),
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "caesium_http_trigger_requests_total",
			Help: "HTTP trigger requests by result.",
		}, []string{"result"}),
	}
	if err := reg.Register(t.requests); err != nil {
		return nil, err
	}
	return t, nil
}

// secretTTL is how long a resolved trigger secret is used before it is
// resolved again: a rotated secret takes effect within it. A failure to
// resolve is remembered for failureTTL, so that while Vault is down a flood
// of requests does not become a flood of Vault requests either.
const (
	secretTTL  = 10 * time.Second
	failureTTL = time.Second
)

type cachedSecret struct {
	value string
	err   error
	at    time.Time
}

// secret resolves ref, from the cache when it was resolved within secretTTL
// (or failed within failureTTL).
func (t *triggers) secret(ctx context.Context, ref string) (string, error) {
	now := t.now()
	t.secretsMu.Lock()
	c, ok := t.secrets[ref]
	t.secretsMu.Unlock()
	switch {
	case ok && c.err == nil && now.Sub(c.at) < secretTTL:
		return c.value, nil
	case ok && c.err != nil && now.Sub(c.at) < failureTTL:
		return "", c.err
	}
	v, err := t.resolver.Resolve(ctx, ref)
	if err != nil && ctx.Err() != nil {
		return "", err // the caller went away: nothing learned about the secret
	}
	t.secretsMu.Lock()
	if t.secrets == nil || len(t.secrets) >= maxCachedSecrets {
		t.secrets = map[string]cachedSecret{} // bounded: one entry per http-triggered job
	}
	t.secrets[ref] = cachedSecret{value: v, err: err, at: now}
	t.secretsMu.Unlock()
	return v, err
}

// maxCachedSecrets bounds the trigger secret cache.
const maxCachedSecrets = 4096

// unknownPath answers a path no live job's http trigger has.
var unknownPath = TriggerAnswer{Result: "unknown", Reason: "no job has an http trigger at this path"}

// TriggerAnswer is the JSON body of every trigger response.
type TriggerAnswer struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	RunID  int64  `json:"runId,omitempty"`
	Job    string `json:"job,omitempty"`
	Status string `json:"status,omitempty"`
}

func (t *triggers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, a TriggerAnswer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(a)
		t.requests.WithLabelValues(a.Result).Inc()
	}
	select {
	case t.inFlight <- struct{}{}:
		defer func() { <-t.inFlight }()
	default:
		answer(http.StatusServiceUnavailable, TriggerAnswer{Result: "busy", Reason: "too many trigger requests at once; retry later"})
		return
	}
	ctx := r.Context()
	path := "/" + strings.TrimPrefix(r.PathValue("path"), "/")
	job, err := t.store.JobByHTTPPath(ctx, path)
	if errors.Is(err, store.ErrNotFound) {
		answer(http.StatusNotFound, unknownPath)
		return
	}
	if errors.Is(err, store.ErrConflict) {
		// Two sources declare the path; which job to start is not for the
		// caller to learn, nor to guess. The log names both.
		t.log.Error("trigger: ambiguous path", "path", path, "err", err)
		answer(http.StatusConflict, TriggerAnswer{Result: "ambiguous", Reason: "more than one job has an http trigger at this path; the agent's log names them"})
		return
	}
	if err != nil {
		t.log.Error("trigger: find job", "path", path, "err", err)
		answer(http.StatusServiceUnavailable, TriggerAnswer{Result: "unavailable", Reason: "the database is unavailable"})
		return
	}
	spec, err := job.Decode()
	if err != nil {
		t.log.Error("trigger: decode job", "job", job.Alias, "err", err)
		answer(http.StatusInternalServerError, TriggerAnswer{Result: "unavailable", Reason: "internal error"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, t.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		answer(http.StatusRequestEntityTooLarge, TriggerAnswer{Result: "too_large", Reason: fmt.Sprintf("body larger than %d bytes", t.cfg.MaxBodyBytes)})
		return
	}
	if err != nil {
		answer(http.StatusBadRequest, TriggerAnswer{Result: "malformed", Reason: "could not read the body"})
		return
	}
	ref := spec.Trigger.Configuration.Secret
	secret, err := t.secret(ctx, ref)
	if err != nil {
		// The error names the reference, never a value.
		t.log.Error("trigger: resolve secret", "job", job.Alias, "err", err)
		answer(http.StatusServiceUnavailable, TriggerAnswer{Result: "unavailable", Reason: "the trigger's secret cannot be resolved right now"})
		return
	}
	now := t.now()
	sig, err := verifyTrigger(spec.Trigger.Configuration.SignatureScheme, secret, r.Header, body, now, t.cfg.ClockSkew)
	if err != nil {
		t.log.Debug("trigger rejected", "job", job.Alias, "err", err)
		answer(http.StatusUnauthorized, TriggerAnswer{Result: "unauthorized", Reason: err.Error()})
		return
	}
	var keys []string
	if sig != "" {
		keys = []string{"trigger:" + sig}
		dup := TriggerAnswer{Result: "duplicate", Reason: "this signed request was already received", Job: job.Alias}
		if t.recent.seen(keys, now) {
			answer(http.StatusConflict, dup)
			return
		}
		seen, err := t.store.SeenReplay(ctx, keys, t.window)
		if err != nil {
			t.log.Error("trigger: replay check", "err", err)
			answer(http.StatusServiceUnavailable, TriggerAnswer{Result: "unavailable", Reason: "the database is unavailable"})
			return
		}
		t.recent.add(keys, now)
		if seen {
			answer(http.StatusConflict, dup)
			return
		}
	}
	run, err := t.store.CreateRun(context.WithoutCancel(ctx), store.NewRun{JobAlias: job.Alias, Trigger: schema.TriggerHTTP, Actor: "http " + clientAddr(r)})
	if err != nil {
		// The request took no effect: its retry must not be a duplicate.
		t.recent.remove(keys)
		if ferr := t.store.ForgetReplay(context.WithoutCancel(ctx), keys); ferr != nil {
			t.log.Warn("trigger: forget replay key", "err", ferr)
		}
		if errors.Is(err, store.ErrNotFound) { // deleted since the lookup
			answer(http.StatusNotFound, unknownPath)
			return
		}
		t.log.Error("trigger: create run", "job", job.Alias, "err", err)
		answer(http.StatusServiceUnavailable, TriggerAnswer{Result: "unavailable", Reason: "the run could not be queued"})
		return
	}
	a := TriggerAnswer{Result: "queued", RunID: run.ID, Job: run.JobAlias, Status: string(run.Status), Reason: run.Error}
	if run.Status != store.RunQueued {
		a.Result = string(run.Status)
		answer(http.StatusConflict, a)
		return
	}
	t.queued()
	answer(http.StatusAccepted, a)
}

// clientAddr is the peer's address; proxies' headers are not trusted.
func clientAddr(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return r.RemoteAddr[:i]
	}
	return r.RemoteAddr
}
