package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/providers/webhook"
	"github.com/caesium-io/caesium/store"
)

// Webhook results, as answered, recorded and counted.
const (
	resultQueued       = "queued"
	resultIgnored      = "ignored"
	resultDuplicate    = "duplicate"
	resultPing         = "ping"
	resultUnauthorized = "unauthorized"
	resultMalformed    = "malformed"
	resultTooLarge     = "too_large"
	resultUnconfigured = "unconfigured"
	resultUnavailable  = "unavailable"
	resultQueueFull    = "queue_full"
	resultNotLeader    = "not_leader"
)

// webhookStore is what webhooks need from the store.
type webhookStore interface {
	RecordDelivery(ctx context.Context, d store.Delivery) (int64, error)
	SeenReplay(ctx context.Context, keys []string, window time.Duration) (bool, error)
}

// webhooks serves POST /v1/webhooks/{provider}: verify, check for a replay,
// match the push to sources and nudge them. The payload only says which
// sources to look at; the sync fetches from the source's own remote.
type webhooks struct {
	cfg       config.Webhooks
	providers map[webhook.Provider]string // the configured secret (a reference or a value)
	resolver  *secrets.Router
	store     webhookStore
	agent     *Agent
	log       *slog.Logger
	now       func() time.Time

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newWebhooks(cfg config.Webhooks, resolver *secrets.Router, st webhookStore, a *Agent, reg prometheus.Registerer, log *slog.Logger) (*webhooks, error) {
	h := &webhooks{
		cfg: cfg, providers: map[webhook.Provider]string{}, resolver: resolver, store: st, agent: a, log: log, now: time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "caesium_webhook_requests_total",
			Help: "Webhook requests by provider and result.",
		}, []string{"provider", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "caesium_webhook_request_duration_seconds",
			Help:    "Time to answer a webhook request, by provider.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"provider"}),
	}
	for name, p := range cfg.Providers() {
		prov, ok := webhook.ParseProvider(name)
		if !ok {
			return nil, fmt.Errorf("webhooks: unknown provider %q", name)
		}
		h.providers[prov] = p.Value()
	}
	if err := reg.Register(h.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(h.duration); err != nil {
		return nil, err
	}
	return h, nil
}

// check resolves every configured secret once at start-up: a missing or
// empty secret is refused (it would reject every delivery); a backend that
// is down only warns, since secrets are resolved again per request.
func (h *webhooks) check(ctx context.Context) error {
	for p, ref := range h.providers {
		if _, err := h.secret(ctx, ref); err != nil {
			if errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrNoBackend) {
				return fmt.Errorf("webhooks.%s: %w", p, err)
			}
			h.log.Warn("webhook secret not resolvable yet", "provider", string(p), "err", err)
		}
	}
	return nil
}

func (h *webhooks) secret(ctx context.Context, ref string) (string, error) {
	if !strings.HasPrefix(ref, "secret://") {
		return ref, nil
	}
	return h.resolver.Resolve(ctx, ref)
}

// webhookAnswer is the JSON body of every webhook response.
type webhookAnswer struct {
	Result  string   `json:"result"`
	Reason  string   `json:"reason,omitempty"`
	Sources []string `json:"sources,omitempty"`
}

func (h *webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	name := r.PathValue("provider")
	p, known := webhook.ParseProvider(name)
	label := string(p)
	if !known {
		label = "unknown" // never a label per arbitrary path
	}
	answer := func(status int, a webhookAnswer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(a)
		h.requests.WithLabelValues(label, a.Result).Inc()
		h.duration.WithLabelValues(label).Observe(h.now().Sub(start).Seconds())
	}
	ref, configured := h.providers[p]
	if !known || !configured {
		answer(http.StatusNotFound, webhookAnswer{Result: resultUnconfigured, Reason: "no such webhook provider is configured"})
		return
	}
	ctx := r.Context()
	secret, err := h.secret(ctx, ref)
	if err != nil {
		h.log.Error("resolve webhook secret", "provider", label, "err", err)
		answer(http.StatusServiceUnavailable, webhookAnswer{Result: resultUnavailable, Reason: "the webhook secret cannot be resolved right now"})
		return
	}
	d, err := webhook.HandleRequest(p, webhook.Config{Secret: secret, MaxBodyBytes: h.cfg.MaxBodyBytes}, r)
	switch {
	case errors.Is(err, webhook.ErrTooLarge):
		limit := h.cfg.MaxBodyBytes
		if limit <= 0 {
			limit = webhook.DefaultMaxBodyBytes
		}
		answer(http.StatusRequestEntityTooLarge, webhookAnswer{Result: resultTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", limit)})
		return
	case errors.Is(err, webhook.ErrUnauthorized):
		h.log.Debug("webhook rejected", "provider", label, "err", err)
		answer(http.StatusUnauthorized, webhookAnswer{Result: resultUnauthorized, Reason: "missing or invalid signature"})
		return
	case errors.Is(err, webhook.ErrMalformed):
		answer(http.StatusBadRequest, webhookAnswer{Result: resultMalformed, Reason: err.Error()})
		return
	case err != nil:
		h.log.Error("webhook", "provider", label, "err", err)
		answer(http.StatusInternalServerError, webhookAnswer{Result: resultUnavailable, Reason: "internal error"})
		return
	}
	// Verified from here on: record what happens.
	rec := store.Delivery{Provider: label, Event: d.Event, DeliveryID: d.DeliveryID, ReceivedAt: start}
	if len(d.Pushes) > 0 {
		first := d.Pushes[0]
		rec.Ref, rec.After = first.Ref, first.After
		if len(first.RepoURLs) > 0 {
			rec.Repository = first.RepoURLs[0]
		}
	}
	status, a := h.dispatch(ctx, p, d)
	rec.Result, rec.Reason, rec.MatchedSources, rec.Status = a.Result, a.Reason, a.Sources, status
	rec.DurationUS = h.now().Sub(start).Microseconds()
	if _, err := h.store.RecordDelivery(context.WithoutCancel(ctx), rec); err != nil {
		h.log.Warn("record webhook delivery", "err", err)
	}
	answer(status, a)
}

// dispatch decides what a verified delivery does.
func (h *webhooks) dispatch(ctx context.Context, p webhook.Provider, d *webhook.Delivery) (int, webhookAnswer) {
	keys := []string{"sig:" + d.SignatureHash}
	if d.DeliveryID != "" {
		keys = append(keys, "id:"+string(p)+":"+d.DeliveryID)
	}
	seen, err := h.store.SeenReplay(ctx, keys, h.cfg.ReplayWindow)
	if err != nil {
		h.log.Error("webhook replay check", "err", err)
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultUnavailable, Reason: "the database is unavailable"}
	}
	switch {
	case seen:
		return http.StatusOK, webhookAnswer{Result: resultDuplicate, Reason: "this delivery was already received"}
	case d.Ping:
		return http.StatusOK, webhookAnswer{Result: resultPing, Reason: "pong"}
	case d.Ignored != "":
		return http.StatusOK, webhookAnswer{Result: resultIgnored, Reason: "ignored: " + d.Ignored}
	}
	matched := h.match(d.Pushes)
	if len(matched) == 0 {
		return http.StatusOK, webhookAnswer{Result: resultIgnored, Reason: "no source tracks this repository and ref"}
	}
	ids := make([]string, len(matched))
	for i, s := range matched {
		ids[i] = s.ID()
	}
	if !h.agent.IsLeader() {
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultNotLeader, Reason: "this agent is not the leader; the next poll applies the push", Sources: ids}
	}
	if !h.agent.queue(matched, h.cfg.QueueSize) {
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultQueueFull, Reason: "too many sources are waiting for a sync; retry later", Sources: ids}
	}
	return http.StatusAccepted, webhookAnswer{Result: resultQueued, Sources: ids}
}

// match returns the sources that track a pushed repository and ref.
func (h *webhooks) match(pushes []webhook.Push) []*Source {
	var out []*Source
	for _, s := range h.agent.sources {
		repo := webhook.NormalizeRepoURL(s.cfg.Repo)
		for _, push := range pushes {
			if refMatches(s.cfg.Ref, push.Ref) && repoMatches(repo, push.RepoURLs) {
				out = append(out, s)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// repoMatches compares a source's normalised repository with the URLs a
// push names. A source that has no network URL (a local path normalises to
// "") never matches: webhooks are for remote repositories.
func repoMatches(normalized string, urls []string) bool {
	if normalized == "" {
		return false
	}
	for _, u := range urls {
		if webhook.NormalizeRepoURL(u) == normalized {
			return true
		}
	}
	return false
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// refMatches says whether a push of pushed (refs/heads/x or refs/tags/x)
// concerns a source tracking ref. A source without a ref follows the
// default branch, which a push payload does not name: any branch push
// nudges it, and the sync finds nothing to do if the default did not move.
// A source pinned to a commit is never nudged.
func refMatches(ref, pushed string) bool {
	switch {
	case ref == "" || ref == "HEAD":
		return strings.HasPrefix(pushed, "refs/heads/")
	case fullSHA.MatchString(ref):
		return false
	case strings.HasPrefix(ref, "refs/"):
		return pushed == ref
	}
	return pushed == "refs/heads/"+ref || pushed == "refs/tags/"+ref
}
