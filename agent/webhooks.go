package agent

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
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
	resultBusy         = "busy"
)

// webhookStore is what webhooks need from the store.
type webhookStore interface {
	RecordDelivery(ctx context.Context, d store.Delivery) (int64, error)
	SeenReplay(ctx context.Context, keys []string, window time.Duration) (bool, error)
}

// webhooks serves POST /v1/webhooks/{provider}: verify, match the push to
// sources, check for a replay and nudge them. The payload only says which
// sources to look at; the sync fetches from the source's own remote.
type webhooks struct {
	cfg       config.Webhooks
	providers map[webhook.Provider]string // the configured secret (a reference or a value)
	resolver  *secrets.Router
	store     webhookStore
	agent     *Agent
	sources   []hookSource
	recent    *replayCache
	inFlight  chan struct{} // bounds the requests being read at once
	log       *slog.Logger
	now       func() time.Time

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// hookSource is a source with its repository normalised for matching.
type hookSource struct {
	*Source
	repo string // webhook.NormalizeRepoURL of its URL; "" never matches
}

// maxInFlight is how many webhook requests may be read at once:
// webhooks.maxInFlight, default 64.
func maxInFlight(cfg config.Webhooks) int {
	if cfg.MaxInFlight > 0 {
		return cfg.MaxInFlight
	}
	return 64
}

// replayMemory bounds the replay keys an agent remembers in memory: two per
// delivery, about 200 bytes each. Forgetting early costs little: a matched
// push is still checked against the store's ledger, and a repeated ping or
// ignored delivery is answered as before, just not as a duplicate.
const replayMemory = 1 << 14

func newWebhooks(cfg config.Webhooks, resolver *secrets.Router, st webhookStore, a *Agent, reg prometheus.Registerer, log *slog.Logger) (*webhooks, error) {
	h := &webhooks{
		cfg: cfg, providers: map[webhook.Provider]string{}, resolver: resolver, store: st, agent: a, log: log, now: time.Now,
		recent:   newReplayCache(replayMemory, cfg.ReplayWindow),
		inFlight: make(chan struct{}, maxInFlight(cfg)),
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
	for _, s := range a.sources {
		h.sources = append(h.sources, hookSource{Source: s, repo: webhook.NormalizeRepoURL(s.cfg.Repo)})
	}
	if err := reg.Register(h.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(h.duration); err != nil {
		return nil, err
	}
	return h, nil
}

// check resolves every configured secret once at start-up: a missing,
// empty or blank secret is refused (it would reject every delivery), and so
// is a body limit the verifier cannot use; a backend that is down only
// warns, since secrets are resolved again per request.
func (h *webhooks) check(ctx context.Context) error {
	if err := (webhook.Config{Secret: "-", MaxBodyBytes: h.cfg.MaxBodyBytes}).Validate(); err != nil {
		return fmt.Errorf("webhooks.maxBodyBytes: %w", err)
	}
	for p, ref := range h.providers {
		secret, err := h.secret(ctx, ref)
		if err != nil {
			if errors.Is(err, secrets.ErrNotFound) || errors.Is(err, secrets.ErrNoBackend) {
				return fmt.Errorf("webhooks.%s: %w", p, err)
			}
			h.log.Warn("webhook secret not resolvable yet", "provider", string(p), "err", err)
			continue
		}
		if err := (webhook.Config{Secret: secret}).Validate(); err != nil {
			return fmt.Errorf("webhooks.%s: %w", p, err)
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
	// Bodies are buffered before their signature can be checked, so the
	// number of requests being read at once is bounded: memory stays under
	// about maxInFlight × 2 × maxBodyBytes whatever an unauthenticated
	// client sends.
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		answer(http.StatusServiceUnavailable, webhookAnswer{Result: resultBusy, Reason: "too many webhook requests at once; retry later"})
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
	// Verified from here on: record what happens, except replays, which are
	// only counted: a captured delivery replayed in a loop must not push
	// real deliveries out of the bounded record.
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
	if a.Result != resultDuplicate {
		if _, err := h.store.RecordDelivery(context.WithoutCancel(ctx), rec); err != nil {
			h.log.Warn("record webhook delivery", "err", err)
		}
	}
	answer(status, a)
}

// dispatch decides what a verified delivery does.
//
// Replays are caught in two places. Every delivery answered 2xx leaves its
// keys in this agent's memory, which answers repeats without a database
// write. Only a delivery that would nudge sources goes on to the store's
// ledger, which is atomic across the agents sharing the database. A
// delivery answered 503 (not the leader, queue full, database down) leaves
// no key anywhere: the forge's retry, or the leader, must still act on it.
func (h *webhooks) dispatch(ctx context.Context, p webhook.Provider, d *webhook.Delivery) (int, webhookAnswer) {
	now := h.now()
	keys := []string{"sig:" + d.SignatureHash}
	if d.DeliveryID != "" {
		keys = append(keys, "id:"+string(p)+":"+d.DeliveryID)
	}
	duplicate := webhookAnswer{Result: resultDuplicate, Reason: "this delivery was already received"}
	if h.recent.seen(keys, now) {
		return http.StatusOK, duplicate
	}
	var (
		matched []*Source
		a       webhookAnswer
	)
	switch {
	case d.Ping:
		a = webhookAnswer{Result: resultPing, Reason: "pong"}
	case d.Ignored != "":
		a = webhookAnswer{Result: resultIgnored, Reason: "ignored: " + d.Ignored}
	default:
		if matched = h.match(d.Pushes); len(matched) == 0 {
			a = webhookAnswer{Result: resultIgnored, Reason: "no source tracks this repository and ref"}
		}
	}
	if len(matched) == 0 {
		h.recent.add(keys, now)
		return http.StatusOK, a
	}
	ids := make([]string, len(matched))
	for i, s := range matched {
		ids[i] = s.ID()
	}
	if !h.agent.IsLeader() {
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultNotLeader, Reason: "this agent is not the leader; the next poll applies the push", Sources: ids}
	}
	// Checked before the ledger, so that a refused delivery keeps its keys.
	// Deliveries in flight together may overshoot the bound by as many
	// sources; what the ledger accepted is always nudged.
	if !h.agent.fits(matched, h.cfg.QueueSize) {
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultQueueFull, Reason: "too many sources are waiting for a sync; retry later", Sources: ids}
	}
	seen, err := h.store.SeenReplay(ctx, keys, h.cfg.ReplayWindow)
	if err != nil {
		h.log.Error("webhook replay check", "err", err)
		return http.StatusServiceUnavailable, webhookAnswer{Result: resultUnavailable, Reason: "the database is unavailable"}
	}
	h.recent.add(keys, now)
	if seen {
		return http.StatusOK, duplicate
	}
	for _, s := range matched {
		s.Nudge()
	}
	return http.StatusAccepted, webhookAnswer{Result: resultQueued, Sources: ids}
}

// match returns the sources that track a pushed repository and ref.
func (h *webhooks) match(pushes []webhook.Push) []*Source {
	var out []*Source
	for _, s := range h.sources {
		for _, push := range pushes {
			if refMatches(s.cfg.Ref, push.Ref) && repoMatches(s.repo, push.RepoURLs) {
				out = append(out, s.Source)
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

// replayCache remembers replay keys for a window, up to max keys, forgetting
// the oldest first. It is safe for concurrent use.
type replayCache struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	keys  map[string]*list.Element // of replayEntry
	order *list.List               // oldest first
}

type replayEntry struct {
	key  string
	seen time.Time
}

func newReplayCache(max int, window time.Duration) *replayCache {
	return &replayCache{max: max, window: window, keys: map[string]*list.Element{}, order: list.New()}
}

// seen reports whether any of keys was added within the window before now.
func (c *replayCache) seen(keys []string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.keys[k]; ok && now.Sub(e.Value.(replayEntry).seen) < c.window {
			return true
		}
	}
	return false
}

// remove forgets keys.
func (c *replayCache) remove(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.keys[k]; ok {
			delete(c.keys, k)
			c.order.Remove(e)
		}
	}
}

// add remembers keys as seen at now, and drops expired and surplus keys.
func (c *replayCache) add(keys []string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.keys[k]; ok {
			e.Value = replayEntry{key: k, seen: now}
			c.order.MoveToBack(e)
			continue
		}
		c.keys[k] = c.order.PushBack(replayEntry{key: k, seen: now})
	}
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		if c.order.Len() <= c.max && now.Sub(e.Value.(replayEntry).seen) < c.window {
			break
		}
		delete(c.keys, e.Value.(replayEntry).key)
		c.order.Remove(e)
	}
}
