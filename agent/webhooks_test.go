package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/providers/webhook"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// Fixtures: each forge's real payloads from providers/webhook/testdata, with
// the repository, ref and commit replaced by placeholders, so that a
// delivery names the test's own git server:
//
//	{{URL}}    http://127.0.0.1:PORT/git/NAME (clone and web URLs)
//	{{HOST}}   127.0.0.1 (ssh and scp-like URLs)
//	{{PATH}}   git/NAME
//	{{REF}}    refs/heads/main
//	{{BRANCH}} main (Bitbucket Cloud names branches without refs/heads/)
//	{{AFTER}}  the pushed commit

// forge is what one provider sends.
type forge struct {
	provider webhook.Provider
	// push is the push event and its fixture.
	pushEvent, pushFixture string
	// ping is the connectivity check, if the forge has one.
	pingEvent, pingFixture string
	// otherEvent is an event the agent ignores.
	otherEvent string
	// idHeader carries the delivery id.
	idHeader string
}

var forges = []forge{
	{provider: webhook.GitHub, pushEvent: "push", pushFixture: "push.json", pingEvent: "ping", pingFixture: "ping.json", otherEvent: "issues", idHeader: "X-GitHub-Delivery"},
	{provider: webhook.GitLab, pushEvent: "Push Hook", pushFixture: "push.json", otherEvent: "Issue Hook", idHeader: "Idempotency-Key"},
	{provider: webhook.Bitbucket, pushEvent: "repo:push", pushFixture: "push.json", otherEvent: "pullrequest:created", idHeader: "X-Request-UUID"},
	{provider: webhook.BitbucketServer, pushEvent: "repo:refs_changed", pushFixture: "refs_changed.json", pingEvent: "diagnostics:ping", pingFixture: "ping.json", otherEvent: "pr:opened", idHeader: "X-Request-Id"},
	{provider: webhook.Gitea, pushEvent: "push", pushFixture: "push.json", otherEvent: "issues", idHeader: "X-Gitea-Delivery"},
	{provider: webhook.Generic, pushEvent: "push", pushFixture: "push.json", pingEvent: "ping", pingFixture: "ping.json", otherEvent: "build", idHeader: "X-Delivery-Id"},
}

// hookSecret is the shared secret of provider p in every test agent. Each
// provider has its own, so a delivery signed for one provider is wrong for
// every other.
func hookSecret(p webhook.Provider) string { return "whsec-" + string(p) + "-5c1e9a7f3d2b8e40" }

// allSecrets are every secret the tests use, for leak checks.
func allSecrets() []string {
	var out []string
	for _, f := range forges {
		out = append(out, hookSecret(f.provider))
	}
	return append(out, gitPassword)
}

const (
	gitUser     = "caesium"
	gitPassword = "git-pw-7d4b1f9e2a6c"
)

// render fills in a fixture for a push of ref to after in the repository at
// repoURL.
func render(tb testing.TB, p webhook.Provider, fixture, repoURL, ref, after string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "webhooks", string(p), fixture))
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(repoURL)
	if err != nil {
		tb.Fatal(err)
	}
	branch := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	return []byte(strings.NewReplacer(
		"{{URL}}", repoURL, "{{HOST}}", u.Hostname(), "{{PATH}}", strings.TrimPrefix(u.Path, "/"),
		"{{REF}}", ref, "{{BRANCH}}", branch, "{{AFTER}}", after,
	).Replace(string(raw)))
}

func hexMAC(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signatureHeader is the credential header of each provider.
var signatureHeader = map[webhook.Provider]string{
	webhook.GitHub:          "X-Hub-Signature-256",
	webhook.GitLab:          "X-Gitlab-Token",
	webhook.Bitbucket:       "X-Hub-Signature",
	webhook.BitbucketServer: "X-Hub-Signature",
	webhook.Gitea:           "X-Gitea-Signature",
	webhook.Generic:         "X-Signature",
}

// signature is the credential a forge sends for body under key.
func signature(p webhook.Provider, key string, body []byte) string {
	switch p {
	case webhook.GitLab:
		return key // GitLab sends the token itself
	case webhook.Gitea:
		return hexMAC(key, body)
	}
	return "sha256=" + hexMAC(key, body)
}

// delivery is one webhook request as a forge would send it.
type delivery struct {
	provider webhook.Provider
	event    string
	id       string
	body     []byte
	// key signs the body; "" sends no credential at all.
	key string
}

// header is what the forge sends with the delivery, following each forge's
// documented header set.
func (d delivery) header() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch d.provider {
	case webhook.GitHub:
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
		h.Set("X-GitHub-Event", d.event)
		h.Set("X-GitHub-Hook-ID", "468213077")
	case webhook.GitLab:
		h.Set("User-Agent", "GitLab/17.9.1")
		h.Set("X-Gitlab-Event", d.event)
		h.Set("X-Gitlab-Instance", "http://127.0.0.1")
	case webhook.Bitbucket:
		h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
		h.Set("X-Event-Key", d.event)
		h.Set("X-Hook-UUID", "{4e5f6071-8293-44b5-a6c7-d8e9f0a1b2c3}")
		h.Set("X-Attempt-Number", "1")
	case webhook.BitbucketServer:
		h.Set("User-Agent", "Atlassian HttpClient 4.2.0 / Bitbucket-8.19.1 (8019001) / Default")
		h.Set("X-Event-Key", d.event)
	case webhook.Gitea:
		h.Set("X-Gitea-Event", d.event)
		h.Set("X-Gitea-Event-Type", d.event)
		h.Set("X-GitHub-Event", d.event)
	case webhook.Generic:
		h.Set("X-Event", d.event)
	}
	if d.id != "" {
		for _, f := range forges {
			if f.provider == d.provider {
				h.Set(f.idHeader, d.id)
			}
		}
	}
	if d.key != "" {
		h.Set(signatureHeader[d.provider], signature(d.provider, d.key, d.body))
	}
	return h
}

// answer is a webhook response.
type answer struct {
	status int
	raw    string
	Result string   `json:"result"`
	Reason string   `json:"reason"`
	Srcs   []string `json:"sources"`
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(a.raw)) }

var deliverySeq atomic.Int64

// newID is a fresh delivery id.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), deliverySeq.Add(1))
}

// post sends a request to base/v1/webhooks/provider and decodes the answer.
// With chunked set the body goes without a Content-Length.
func post(tb testing.TB, base string, provider string, h http.Header, body []byte, chunked bool) answer {
	tb.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks/"+provider, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /v1/webhooks/%s: %v", provider, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &a); err != nil {
		tb.Errorf("POST /v1/webhooks/%s answered %d with a body that is not JSON: %v\n%s", provider, resp.StatusCode, err, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		tb.Errorf("POST /v1/webhooks/%s answered with Content-Type %q", provider, ct)
	}
	for _, s := range allSecrets() {
		if strings.Contains(string(raw), s) {
			tb.Errorf("the answer shows a secret: %s", raw)
		}
	}
	return a
}

// send posts a delivery.
func (d delivery) send(tb testing.TB, base string) answer {
	tb.Helper()
	return post(tb, base, string(d.provider), d.header(), d.body, false)
}

// gitFront serves a git server's repositories on a port of its own and
// counts what the agent asks of it. A sync lists the remote's refs once
// (GET info/refs) and, when there is a new commit, fetches it (one more
// listing and one upload-pack POST), so syncs = listings - fetches. The gate
// holds ref listings while closed, to keep a sync in progress.
type gitFront struct {
	srv      *httptest.Server
	listings atomic.Int64
	fetches  atomic.Int64
	held     atomic.Int64

	mu   sync.Mutex
	gate chan struct{} // nil when open
}

func newGitFront(tb testing.TB, git *gitServer) *gitFront {
	tb.Helper()
	f := &gitFront{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			f.listings.Add(1)
			f.mu.Lock()
			gate := f.gate
			f.mu.Unlock()
			if gate != nil {
				f.held.Add(1)
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			f.fetches.Add(1)
		}
		git.handler.ServeHTTP(w, r)
	}))
	f.srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	tb.Cleanup(func() {
		f.open()
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *gitFront) url(repo string) string { return f.srv.URL + "/git/" + repo }

// syncs counts the syncs that reached the server so far.
func (f *gitFront) syncs() int64 { return f.listings.Load() - f.fetches.Load() }

// close holds ref listings from now on.
func (f *gitFront) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate == nil {
		f.gate = make(chan struct{})
	}
}

// open lets held and future listings through.
func (f *gitFront) open() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// hookRepo is a repository of jobs served over HTTP with basic auth, as a
// forge would serve it.
type hookRepo struct {
	*workRepo
	front *gitFront
	url   string // the repository's URL: what sources fetch and payloads name
}

// newHookRepo commits job "a" at variant 1 and serves the repository.
func newHookRepo(tb testing.TB) (*hookRepo, string) {
	tb.Helper()
	w := newWorkRepo(tb)
	w.write("jobs/a.yaml", manifest("a", "1"))
	c1 := w.commit("first")
	git := startGitServer(tb, filepath.Dir(w.Dir), gitUser, gitPassword)
	front := newGitFront(tb, git)
	return &hookRepo{workRepo: w, front: front, url: front.url(filepath.Base(w.Dir))}, c1
}

// change commits a new variant of job a and returns the commit.
func (r *hookRepo) change(variant string) string {
	r.tb.Helper()
	r.write("jobs/a.yaml", manifest("a", variant))
	return r.commit("a at " + variant)
}

// hookAgent is a running agent with every webhook provider configured and
// sources on a hookRepo.
type hookAgent struct {
	*running
	cfg    config.Config
	client *client.Client
	logs   *logBuffer
}

// hookConfig is an agent configuration on dbURL with every provider
// configured (secrets in files, resolved per request) and one source, "jobs",
// on repo, polling hourly: every sync in a test comes from the first poll or
// a webhook.
func hookConfig(t testing.TB, dbURL string, repo *hookRepo) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = dbURL
	cfg.Secrets.FileDir = t.TempDir()
	writeSecret(t, cfg.Secrets.FileDir, "git-password", gitPassword)
	for _, f := range forges {
		writeSecret(t, cfg.Secrets.FileDir, "webhooks/"+string(f.provider), hookSecret(f.provider))
	}
	ref := func(p webhook.Provider) *config.WebhookProvider {
		return &config.WebhookProvider{Secret: "secret://file/webhooks/" + string(p)}
	}
	cfg.Webhooks.GitHub = ref(webhook.GitHub)
	cfg.Webhooks.GitLab = &config.WebhookProvider{Token: "secret://file/webhooks/gitlab"}
	cfg.Webhooks.Bitbucket = ref(webhook.Bitbucket)
	cfg.Webhooks.BitbucketServer = ref(webhook.BitbucketServer)
	cfg.Webhooks.Gitea = ref(webhook.Gitea)
	cfg.Webhooks.Generic = ref(webhook.Generic)
	if repo != nil {
		cfg.Sources = []config.Source{hookSource("jobs", repo)}
	}
	return cfg
}

// hookSource is a source on repo's main branch that polls hourly.
func hookSource(id string, repo *hookRepo) config.Source {
	src := sourceConfig(id, repo.url)
	src.Ref = "main"
	src.Path = "jobs"
	src.Interval = time.Hour
	src.Timeout = 2 * time.Minute
	src.Auth = config.SourceAuth{Username: gitUser, Password: "secret://file/git-password"}
	return src
}

func writeSecret(tb testing.TB, dir, name, value string) {
	tb.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// startHookAgent validates cfg and runs an agent on it, logging at debug
// level, until the test ends.
func startHookAgent(t testing.TB, cfg config.Config) *hookAgent {
	t.Helper()
	log, logs := debugLogger()
	return startHookAgentLog(t, cfg, log, logs)
}

// startHookAgentLog is startHookAgent with a logger; logs, when set, holds
// what it wrote.
func startHookAgentLog(t testing.TB, cfg config.Config, log *slog.Logger, logs *logBuffer) *hookAgent {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = &logBuffer{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	r := &running{url: "http://" + a.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		for _, s := range allSecrets() {
			if strings.Contains(logs.String(), s) {
				t.Errorf("the agent's log shows a secret")
			}
		}
	})
	c, err := client.New(r.url, "")
	if err != nil {
		t.Fatal(err)
	}
	return &hookAgent{running: r, cfg: cfg, client: c, logs: logs}
}

// variant is job a's variant label as the API shows it, "" without the job.
func (h *hookAgent) variant(t testing.TB) string {
	t.Helper()
	j, err := h.client.GetJob(context.Background(), "a")
	if client.StatusOf(err) == http.StatusNotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("GET /v1/jobs/a: %v", err)
	}
	return j.Labels["variant"]
}

// waitApplied waits until source id has applied commit.
func (h *hookAgent) waitApplied(t testing.TB, id, commit string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("source %s to apply %s", id, abbrev(commit)), func() bool {
		src, err := h.client.GetSource(context.Background(), id)
		return err == nil && src.LastAppliedCommit == commit
	})
}

// history is source id's sync history, oldest first, as "commit result".
func (h *hookAgent) history(t testing.TB, id string) []string {
	t.Helper()
	src, err := h.client.GetSource(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.DecodeStatus()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(st.History) - 1; i >= 0; i-- {
		out = append(out, abbrev(st.History[i].Commit)+" "+st.History[i].Result)
	}
	return out
}

func (h *hookAgent) deliveries(t testing.TB) []store.Delivery {
	t.Helper()
	ds, err := h.client.ListDeliveries(context.Background(), store.MaxDeliveries)
	if err != nil {
		t.Fatalf("GET /v1/webhooks/deliveries: %v", err)
	}
	return ds
}

// counters reads caesium_webhook_requests_total from GET /metrics, by
// "provider/result".
func (h *hookAgent) counters(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `caesium_webhook_requests_total{provider="`)
		if !ok {
			continue
		}
		provider, rest, _ := strings.Cut(rest, `",result="`)
		result, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[provider+"/"+result] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// histogramCount is caesium_webhook_request_duration_seconds_count of
// provider.
func (h *hookAgent) histogramCount(t testing.TB, provider string) float64 {
	t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := `caesium_webhook_request_duration_seconds_count{provider="` + provider + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// diff is the change of each counter between two readings.
func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// sha1Signature is GitHub's legacy X-Hub-Signature value.
func sha1Signature(key string, body []byte) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// abbrev shortens a commit SHA for messages.
func abbrev(commit string) string { return commit[:min(12, len(commit))] }

// TestWebhookProviders drives every provider through a running agent with
// its real payloads, signed here, naming the test's git server: rejected
// requests do nothing and are not recorded; verified ones are recorded and
// counted; a push syncs the source at once (it polls hourly); replays and
// pushes elsewhere do not sync.
func TestWebhookProviders(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		for _, f := range forges {
			t.Run(backend+"/"+string(f.provider), func(t *testing.T) {
				t.Parallel()
				testWebhookProvider(t, backend, f)
			})
		}
	}
}

func testWebhookProvider(t *testing.T, backend string, f forge) {
	p, secret := f.provider, hookSecret(f.provider)
	repo, c1 := newHookRepo(t)
	a := startHookAgent(t, hookConfig(t, storetest.URL(t, backend), repo))
	a.waitApplied(t, "jobs", c1)
	syncs := repo.front.syncs()
	recorded := len(a.deliveries(t))
	before := a.counters(t)
	requests := a.histogramCount(t, string(p))

	push := func(repoURL, ref, after string) delivery {
		return delivery{provider: p, event: f.pushEvent, id: newID("push"), body: render(t, p, f.pushFixture, repoURL, ref, after), key: secret}
	}
	sent := 0
	want := func(name string, got answer, status int, result string) {
		t.Helper()
		sent++
		if got.status != status || got.Result != result {
			t.Errorf("%s: %s, want %d %s", name, got, status, result)
		}
	}

	// Rejected before anything is parsed: neither recorded nor acted on.
	body := render(t, p, f.pushFixture, repo.url, "refs/heads/main", c1)
	valid := push(repo.url, "refs/heads/main", c1).header()
	sig := valid.Get(signatureHeader[p])
	rejected := []rejection{
		{name: "no signature", header: func(h http.Header) { h.Del(signatureHeader[p]) }},
		{name: "empty signature", header: func(h http.Header) { h.Set(signatureHeader[p], "") }},
		{name: "wrong secret", header: func(h http.Header) { h.Set(signatureHeader[p], signature(p, secret+"x", body)) }},
		{name: "another provider's secret", header: func(h http.Header) {
			other := webhook.GitHub
			if p == webhook.GitHub {
				other = webhook.GitLab
			}
			h.Set(signatureHeader[p], signature(p, hookSecret(other), body))
		}},
		{name: "truncated signature", header: func(h http.Header) { h.Set(signatureHeader[p], sig[:len(sig)/2]) }},
		{name: "short signature", header: func(h http.Header) { h.Set(signatureHeader[p], sig[:len(sig)-1]) }},
		{name: "signature sent twice", header: func(h http.Header) { h.Add(signatureHeader[p], signature(p, secret+"x", body)) }},
	}
	if p != webhook.GitLab { // GitLab's token signs nothing
		rejected = append(rejected, rejection{name: "signature of another body", body: append(append([]byte(nil), body...), ' ')})
	}
	if p == webhook.GitHub {
		rejected = append(rejected,
			rejection{name: "SHA-1 signature only", header: func(h http.Header) {
				h.Del("X-Hub-Signature-256")
				h.Set("X-Hub-Signature", sha1Signature(secret, body))
			}},
			rejection{name: "good SHA-1 and bad SHA-256", header: func(h http.Header) {
				h.Set("X-Hub-Signature", sha1Signature(secret, body))
				h.Set("X-Hub-Signature-256", signature(p, "wrong", body))
			}},
		)
	}
	for _, r := range rejected {
		h := valid.Clone()
		if r.header != nil {
			r.header(h)
		}
		b := body
		if r.body != nil {
			b = r.body
		}
		got := post(t, a.url, string(p), h, b, false)
		want(r.name, got, http.StatusUnauthorized, "unauthorized")
		if got.Reason != "missing or invalid signature" {
			t.Errorf("%s: reason %q says more than that the signature is missing or invalid", r.name, got.Reason)
		}
	}
	if f.pingEvent != "" {
		ping := delivery{provider: p, event: f.pingEvent, id: newID("ping"), body: render(t, p, f.pingFixture, repo.url, "", "")}
		want("unsigned ping", ping.send(t, a.url), http.StatusUnauthorized, "unauthorized")
	}
	// Over the limit (1 MiB): a real push padded with white space,
	// correctly signed, with a Content-Length and chunked.
	big := append(append([]byte(nil), body...), bytes.Repeat([]byte{' '}, int(a.cfg.Webhooks.MaxBodyBytes)+1-len(body))...)
	bigHeader := delivery{provider: p, event: f.pushEvent, id: newID("big"), body: big, key: secret}.header()
	want("over the limit", post(t, a.url, string(p), bigHeader, big, false), http.StatusRequestEntityTooLarge, "too_large")
	want("over the limit, chunked", post(t, a.url, string(p), bigHeader, big, true), http.StatusRequestEntityTooLarge, "too_large")
	malformed := []byte(`{"ref": "refs/heads/main", "after": "` + c1 + `", "repository": {`)
	want("malformed JSON", delivery{provider: p, event: f.pushEvent, id: newID("bad"), body: malformed, key: secret}.send(t, a.url), http.StatusBadRequest, "malformed")
	if got := len(a.deliveries(t)); got != recorded {
		t.Errorf("%d rejected requests were recorded", got-recorded)
	}

	// Verified but nothing to do: recorded, no sync.
	verified := 0
	other := delivery{provider: p, event: f.otherEvent, id: newID("other"), body: body, key: secret}
	want("another event", other.send(t, a.url), http.StatusOK, "ignored")
	want("another branch", push(repo.url, "refs/heads/feature", c1).send(t, a.url), http.StatusOK, "ignored")
	unknown := strings.TrimSuffix(repo.url, "/work") + "/elsewhere"
	want("unknown repository", push(unknown, "refs/heads/main", c1).send(t, a.url), http.StatusOK, "ignored")
	verified += 3
	if f.pingEvent != "" {
		ping := delivery{provider: p, event: f.pingEvent, id: newID("ping"), body: render(t, p, f.pingFixture, repo.url, "", ""), key: secret}
		want("ping", ping.send(t, a.url), http.StatusOK, "ping")
		verified++
	}

	// The push: queued, and applied without waiting for the poll.
	if v := a.variant(t); v != "1" {
		t.Fatalf("job a is at variant %q before the push", v)
	}
	c2 := repo.change("2")
	first := push(repo.url, "refs/heads/main", c2)
	got := first.send(t, a.url)
	want("push", got, http.StatusAccepted, "queued")
	if len(got.Srcs) != 1 || got.Srcs[0] != "jobs" {
		t.Errorf("push: sources %v, want [jobs]", got.Srcs)
	}
	a.waitApplied(t, "jobs", c2)
	if v := a.variant(t); v != "2" {
		t.Errorf("job a is at variant %q after the push, want 2", v)
	}

	// Replays: the same delivery, the same body and signature under
	// another id, another body under the same id.
	want("the same delivery again", first.send(t, a.url), http.StatusOK, "duplicate")
	again := first
	again.id = newID("retry")
	want("the same body and signature, another id", again.send(t, a.url), http.StatusOK, "duplicate")
	reused := push(repo.url, "refs/heads/main", c2)
	reused.id = first.id
	reused.body = append(reused.body, '\n')
	want("the same id, another body", reused.send(t, a.url), http.StatusOK, "duplicate")

	// A new push after those: its sync is the only other one.
	c3 := repo.change("3")
	want("next push", push(repo.url, "refs/heads/main", c3).send(t, a.url), http.StatusAccepted, "queued")
	a.waitApplied(t, "jobs", c3)
	verified += 2 // the three replays are counted in metrics, not recorded
	if got := repo.front.syncs() - syncs; got != 2 {
		t.Errorf("%d syncs after the rejected, ignored, replayed and two new pushes, want 2 (one per new push)", got)
	}
	if h := a.history(t, "jobs"); len(h) != 3 || h[1] != abbrev(c2)+" applied" || h[2] != abbrev(c3)+" applied" {
		t.Errorf("sync history %v, want c1, c2 and c3 applied", h)
	}

	// Recorded: every verified delivery but replays, newest first.
	ds := a.deliveries(t)
	if got := len(ds) - recorded; got != verified {
		t.Errorf("%d deliveries recorded, want %d (the verified ones)", got, verified)
	}
	results := map[string]int{}
	for _, d := range ds[:len(ds)-recorded] {
		results[d.Result]++
		if d.Provider != string(p) {
			t.Errorf("delivery %d: provider %q, want %q", d.ID, d.Provider, p)
		}
	}
	wantResults := map[string]int{"ignored": 3, "queued": 2}
	if f.pingEvent != "" {
		wantResults["ping"] = 1
	}
	if fmt.Sprint(results) != fmt.Sprint(wantResults) {
		t.Errorf("recorded results %v, want %v", results, wantResults)
	}
	var queued *store.Delivery
	for i := range ds {
		if ds[i].DeliveryID == first.id && ds[i].Result == "queued" {
			queued = &ds[i]
		}
	}
	if queued == nil {
		t.Fatalf("the push %s is not recorded: %+v", first.id, ds)
	}
	if queued.Event != f.pushEvent || queued.Ref != "refs/heads/main" || queued.After != c2 || queued.Status != http.StatusAccepted ||
		fmt.Sprint(queued.MatchedSources) != "[jobs]" || webhook.NormalizeRepoURL(queued.Repository) != webhook.NormalizeRepoURL(repo.url) ||
		queued.ReceivedAt.IsZero() || queued.DurationUS <= 0 {
		t.Errorf("recorded push: %+v", *queued)
	}

	// Counted, by provider and result.
	counted := diff(before, a.counters(t))
	wantCounted := map[string]float64{
		string(p) + "/unauthorized": float64(len(rejected)),
		string(p) + "/too_large":    2,
		string(p) + "/malformed":    1,
		string(p) + "/ignored":      3,
		string(p) + "/queued":       2,
		string(p) + "/duplicate":    3,
	}
	if f.pingEvent != "" {
		wantCounted[string(p)+"/unauthorized"]++
		wantCounted[string(p)+"/ping"] = 1
	}
	if fmt.Sprint(counted) != fmt.Sprint(wantCounted) {
		t.Errorf("caesium_webhook_requests_total moved by\n%v, want\n%v", counted, wantCounted)
	}
	if got := a.histogramCount(t, string(p)) - requests; got != float64(sent) {
		t.Errorf("caesium_webhook_request_duration_seconds counted %v requests, want %d", got, sent)
	}
}

// rejection is a request changed so that it must fail verification.
type rejection struct {
	name   string
	header func(http.Header) // changes the signed headers
	body   []byte            // replaces the signed body
}

// TestWebhookBurst: 50 pushes, each with a new commit, while the source's
// sync is held at its ref listing are all queued and cause at most one more
// sync; a push after that gets a sync of its own.
func TestWebhookBurst(t *testing.T) {
	t.Parallel()
	repo, c1 := newHookRepo(t)
	a := startHookAgent(t, hookConfig(t, storetest.URL(t, "sqlite"), repo))
	a.waitApplied(t, "jobs", c1)
	secret := hookSecret(webhook.GitHub)
	push := func(after string) answer {
		body := render(t, webhook.GitHub, "push.json", repo.url, "refs/heads/main", after)
		return delivery{provider: webhook.GitHub, event: "push", id: newID("burst"), body: body, key: secret}.send(t, a.url)
	}
	syncs := repo.front.syncs()

	repo.front.close()
	if got := push(repo.change("2")); got.status != http.StatusAccepted {
		t.Fatalf("first push: %s", got)
	}
	waitFor(t, "the sync to reach the git server", func() bool { return repo.front.held.Load() == 1 })
	var last string
	for i := range 50 {
		last = repo.change(strconv.Itoa(3 + i))
		if got := push(last); got.status != http.StatusAccepted || got.Result != "queued" {
			t.Fatalf("push %d during the sync: %s", i+1, got)
		}
	}
	repo.front.open()
	a.waitApplied(t, "jobs", last) // the held sync lists the refs after the burst
	waitFor(t, "the one sync the burst queued", func() bool { return repo.front.syncs()-syncs >= 2 })

	after := repo.change("after")
	if got := push(after); got.status != http.StatusAccepted {
		t.Fatalf("push after the burst: %s", got)
	}
	a.waitApplied(t, "jobs", after)
	if got := repo.front.syncs() - syncs; got != 3 {
		t.Errorf("%d syncs for a push, 50 pushes during its sync and one push after, want 3", got)
	}
	if h := a.history(t, "jobs"); len(h) != 3 || h[1] != abbrev(last)+" applied" || h[2] != abbrev(after)+" applied" {
		t.Errorf("sync history %v, want c1, the last burst commit and the one after applied", h)
	}
}

// TestWebhookQueueFull: a push that would leave more sources waiting than
// webhooks.queueSize is refused with 503, recorded and counted, syncs
// nothing, and is refused again when retried (not taken for a replay).
func TestWebhookQueueFull(t *testing.T) {
	t.Parallel()
	repo, c1 := newHookRepo(t)
	repo.write("more/b.yaml", manifest("b", "1"))
	c1 = repo.commit("b")
	cfg := hookConfig(t, storetest.URL(t, "sqlite"), repo)
	more := hookSource("more-jobs", repo)
	more.Path = "more"
	cfg.Sources = append(cfg.Sources, more)
	cfg.Webhooks.QueueSize = 1
	a := startHookAgent(t, cfg)
	a.waitApplied(t, "jobs", c1)
	a.waitApplied(t, "more-jobs", c1)
	before := a.counters(t)
	syncs := repo.front.syncs()

	c2 := repo.change("2")
	body := render(t, webhook.GitHub, "push.json", repo.url, "refs/heads/main", c2)
	d := delivery{provider: webhook.GitHub, event: "push", id: newID("full"), body: body, key: hookSecret(webhook.GitHub)}
	for _, name := range []string{"push", "retry"} {
		got := d.send(t, a.url)
		if got.status != http.StatusServiceUnavailable || got.Result != "queue_full" || fmt.Sprint(got.Srcs) != "[jobs more-jobs]" {
			t.Errorf("%s: %s, want 503 queue_full for [jobs more-jobs]", name, got)
		}
	}
	if got := diff(before, a.counters(t)); fmt.Sprint(got) != "map[github/queue_full:2]" {
		t.Errorf("counters moved by %v", got)
	}
	ds := a.deliveries(t)
	if len(ds) != 2 || ds[0].Result != "queue_full" || ds[0].Status != http.StatusServiceUnavailable || ds[0].DeliveryID != d.id {
		t.Errorf("recorded: %+v", ds)
	}
	if v := a.variant(t); v != "1" || repo.front.syncs() != syncs {
		t.Errorf("a refused push synced: variant %q, %d syncs", v, repo.front.syncs()-syncs)
	}
}

// TestWebhookFollower: two agents share a database; the one that does not
// lead answers a push 503 without syncing and without using up the
// delivery, so that the same delivery sent to the leader is applied.
func TestWebhookFollower(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testWebhookFollower(t, backend)
		})
	}
}

func testWebhookFollower(t *testing.T, backend string) {
	repo, c1 := newHookRepo(t)
	dbURL := storetest.URL(t, backend)
	leader := startHookAgent(t, hookConfig(t, dbURL, repo))
	leader.waitApplied(t, "jobs", c1)
	follower := startHookAgent(t, hookConfig(t, dbURL, repo))
	before := follower.counters(t)

	c2 := repo.change("2")
	body := render(t, webhook.GitHub, "push.json", repo.url, "refs/heads/main", c2)
	d := delivery{provider: webhook.GitHub, event: "push", id: newID("follower"), body: body, key: hookSecret(webhook.GitHub)}
	got := d.send(t, follower.url)
	if got.status != http.StatusServiceUnavailable || got.Result != "not_leader" || fmt.Sprint(got.Srcs) != "[jobs]" {
		t.Fatalf("push to the follower: %s, want 503 not_leader", got)
	}
	if got := diff(before, follower.counters(t)); fmt.Sprint(got) != "map[github/not_leader:1]" {
		t.Errorf("the follower's counters moved by %v", got)
	}
	if v := leader.variant(t); v != "1" {
		t.Errorf("job a is at variant %q after a push to the follower", v)
	}
	// The forge retries (or a load balancer resends) to the leader.
	if got := d.send(t, leader.url); got.status != http.StatusAccepted || got.Result != "queued" {
		t.Fatalf("the same delivery to the leader: %s, want 202 queued", got)
	}
	leader.waitApplied(t, "jobs", c2)
	if got := d.send(t, leader.url); got.Result != "duplicate" {
		t.Errorf("the delivery a third time: %s, want duplicate", got)
	}
	ds := leader.deliveries(t) // one database: both agents' records
	var results []string
	for _, d := range ds {
		results = append(results, fmt.Sprintf("%d %s", d.Status, d.Result))
	}
	if fmt.Sprint(results) != "[202 queued 503 not_leader]" { // the replay is counted, not recorded
		t.Errorf("recorded: %v", results)
	}
}

// TestWebhookRouting: the endpoint sits outside the API token, answers 404
// for providers that are not configured and 405 for other methods, and
// resolves its secret per request, so a rotated secret works at once.
func TestWebhookRouting(t *testing.T) {
	t.Parallel()
	cfg := hookConfig(t, storetest.URL(t, "sqlite"), nil)
	cfg.Webhooks = config.Webhooks{
		GitHub:       cfg.Webhooks.GitHub,
		Generic:      &config.WebhookProvider{Secret: "literal-generic-secret-2f9a"}, // a value, not a reference
		MaxBodyBytes: 1 << 20, QueueSize: 8, ReplayWindow: time.Hour,
	}
	cfg.HTTP.Token = "api-token-8e2f"
	a := startHookAgent(t, cfg)
	before := a.counters(t)
	pings := 0
	ping := func() []byte { // a new hook each time: pings that are not replays
		pings++
		return render(t, webhook.GitHub, "ping.json", fmt.Sprintf("https://github.com/acme/jobs-%d", pings), "", "")
	}
	gh := func(key string) answer {
		return delivery{provider: webhook.GitHub, event: "ping", id: newID("ping"), body: ping(), key: key}.send(t, a.url)
	}

	if got := gh(hookSecret(webhook.GitHub)); got.status != http.StatusOK || got.Result != "ping" {
		t.Errorf("a signed ping without the API token: %s, want 200 ping", got)
	}
	for _, path := range []string{"gitlab", "gitea", "forgejo", "nope", "deliveries"} {
		body := render(t, webhook.GitLab, "push.json", "https://gitlab.example/acme/jobs", "refs/heads/main", strings.Repeat("a", 40))
		h := delivery{provider: webhook.GitLab, event: "Push Hook", body: body, key: hookSecret(webhook.GitLab)}.header()
		if got := post(t, a.url, path, h, body, false); got.status != http.StatusNotFound || got.Result != "unconfigured" {
			t.Errorf("POST /v1/webhooks/%s: %s, want 404 unconfigured", path, got)
		}
	}
	upper := delivery{provider: webhook.GitHub, event: "ping", id: newID("case"), body: ping(), key: hookSecret(webhook.GitHub)}
	if got := post(t, a.url, "GitHub", upper.header(), upper.body, false); got.Result != "ping" {
		t.Errorf("POST /v1/webhooks/GitHub: %s, want the github endpoint", got)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		status, body := do(t, method, a.url+"/v1/webhooks/github", "application/json", "{}")
		if status != http.StatusMethodNotAllowed || !strings.Contains(body, "method not allowed") {
			t.Errorf("%s /v1/webhooks/github: %d %s, want 405", method, status, body)
		}
	}

	// Rotate the secret: the old one fails from the next request on.
	writeSecret(t, cfg.Secrets.FileDir, "webhooks/github", "rotated-secret-41c7")
	if got := gh(hookSecret(webhook.GitHub)); got.status != http.StatusUnauthorized {
		t.Errorf("the old secret after rotation: %s, want 401", got)
	}
	if got := gh("rotated-secret-41c7"); got.status != http.StatusOK {
		t.Errorf("the new secret: %s, want 200", got)
	}
	generic := delivery{provider: webhook.Generic, event: "ping", id: newID("generic"), body: []byte(`{"from":"ci"}`), key: "literal-generic-secret-2f9a"}
	if got := generic.send(t, a.url); got.status != http.StatusOK || got.Result != "ping" {
		t.Errorf("generic ping signed with the literal secret: %s", got)
	}
	// A blank secret can verify nothing: refused as an error of the agent.
	writeSecret(t, cfg.Secrets.FileDir, "webhooks/github", "   ")
	if got := gh("   "); got.status != http.StatusInternalServerError || got.Result != "unavailable" {
		t.Errorf("with a blank secret: %s, want 500 unavailable", got)
	}
	// The secret is gone: 503, the endpoint cannot verify anything.
	if err := os.Remove(filepath.Join(cfg.Secrets.FileDir, "webhooks", "github")); err != nil {
		t.Fatal(err)
	}
	if got := gh("rotated-secret-41c7"); got.status != http.StatusServiceUnavailable || got.Result != "unavailable" {
		t.Errorf("with the secret file gone: %s, want 503 unavailable", got)
	}

	want := "map[generic/ping:1 github/ping:3 github/unauthorized:1 github/unavailable:2 unknown/unconfigured:2 gitea/unconfigured:2 gitlab/unconfigured:1]"
	got := diff(before, a.counters(t))
	if len(got) != 7 || got["generic/ping"] != 1 || got["github/ping"] != 3 || got["github/unauthorized"] != 1 || got["github/unavailable"] != 2 ||
		got["unknown/unconfigured"] != 2 || got["gitea/unconfigured"] != 2 || got["gitlab/unconfigured"] != 1 {
		t.Errorf("counters moved by %v, want %s", got, want)
	}
	ds, err := client.New(a.url, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.ListDeliveries(context.Background(), 10); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("GET /v1/webhooks/deliveries without the token: %v, want 401", err)
	}
	authed, _ := client.New(a.url, cfg.HTTP.Token)
	list, err := authed.ListDeliveries(context.Background(), 10)
	if err != nil || len(list) != 4 {
		t.Errorf("deliveries: %v %+v, want the 4 pings only", err, list)
	}
}

// TestWebhookSecretsAtStartup: a configured provider whose secret cannot be
// used is refused when the agent starts, naming the key and never a value.
func TestWebhookSecretsAtStartup(t *testing.T) {
	t.Parallel()
	empty := "CAESIUM_TEST_WEBHOOK_EMPTY_" + strconv.Itoa(os.Getpid())
	if err := os.Setenv(empty, ""); err != nil { // a name of its own: safe beside parallel tests
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Unsetenv(empty) })
	tests := []struct {
		name    string
		mutate  func(c *config.Config, dir string)
		wantErr string
	}{
		{name: "env var not set", mutate: func(c *config.Config, _ string) {
			c.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://env/CAESIUM_TEST_WEBHOOK_UNSET_" + strconv.Itoa(os.Getpid())}
		}, wantErr: "webhooks.github"},
		{name: "env var empty", mutate: func(c *config.Config, _ string) {
			c.Webhooks.Gitea = &config.WebhookProvider{Secret: "secret://env/" + empty}
		}, wantErr: "webhooks.gitea"},
		{name: "file missing", mutate: func(c *config.Config, _ string) {
			c.Webhooks.GitLab = &config.WebhookProvider{Token: "secret://file/webhooks/nope"}
		}, wantErr: "webhooks.gitlab"},
		{name: "file empty", mutate: func(c *config.Config, dir string) {
			writeSecret(t, dir, "blank", "")
			c.Webhooks.Generic = &config.WebhookProvider{Secret: "secret://file/blank"}
		}, wantErr: "webhooks.generic"},
		{name: "file of white space", mutate: func(c *config.Config, dir string) {
			writeSecret(t, dir, "spaces", "   \t ")
			c.Webhooks.BitbucketServer = &config.WebhookProvider{Secret: "secret://file/spaces"}
		}, wantErr: "webhooks.bitbucket-server"},
		{name: "backend not configured", mutate: func(c *config.Config, _ string) {
			c.Webhooks.Bitbucket = &config.WebhookProvider{Secret: "secret://vault/kv/webhooks#bitbucket"}
		}, wantErr: "webhooks.bitbucket"},
		{name: "body limit over the ceiling", mutate: func(c *config.Config, _ string) {
			c.Webhooks.MaxBodyBytes = webhook.MaxBodyBytesCeiling + 1
		}, wantErr: "webhooks.maxBodyBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := hookConfig(t, storetest.URL(t, "sqlite"), nil)
			tt.mutate(&cfg, cfg.Secrets.FileDir)
			a, err := agent.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = a.Run(ctx) // closes what New opened
				t.Fatalf("New succeeded, want an error naming %s", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name %s", err, tt.wantErr)
			}
			for _, s := range allSecrets() {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
	// The same configuration with every secret in place starts.
	cfg := hookConfig(t, storetest.URL(t, "sqlite"), nil)
	a := startHookAgent(t, cfg)
	if status, _ := do(t, http.MethodGet, a.url+"/readyz", "", ""); status != http.StatusOK {
		t.Errorf("readyz: %d", status)
	}
}

// TestWebhookRefs: a push nudges exactly the sources that follow its
// repository and ref: a branch by short or full name, a tag, the default
// branch (any branch push), never a pinned commit or a local path.
func TestWebhookRefs(t *testing.T) {
	t.Parallel()
	repo, _ := newHookRepo(t)
	names := []string{"default", "branch", "full", "tag", "pinned", "dev", "local"}
	for _, n := range names {
		repo.write(n+"/job.yaml", manifest(n, "1"))
	}
	c1 := repo.commit("one job per source")
	gitRun(t, repo.Dir, nil, "tag", "v1")
	gitRun(t, repo.Dir, nil, "branch", "dev")
	cfg := hookConfig(t, storetest.URL(t, "sqlite"), repo)
	cfg.Sources = nil
	for _, n := range names {
		src := hookSource(n, repo)
		src.Path = n
		switch n {
		case "default":
			src.Ref = ""
		case "full":
			src.Ref = "refs/heads/main"
		case "tag":
			src.Ref = "v1"
		case "pinned":
			src.Ref = c1
		case "dev":
			src.Ref = "dev"
		case "local":
			src.Repo, src.Auth = repo.Dir, config.SourceAuth{}
		}
		cfg.Sources = append(cfg.Sources, src)
	}
	a := startHookAgent(t, cfg)
	for _, n := range names {
		a.waitApplied(t, n, c1)
	}
	tests := []struct {
		ref  string
		want string // the sources queued, "" for ignored
	}{
		{ref: "refs/heads/main", want: "[branch default full]"},
		{ref: "refs/heads/dev", want: "[default dev]"},
		{ref: "refs/heads/feature", want: "[default]"},
		{ref: "refs/tags/v1", want: "[tag]"},
		{ref: "refs/tags/v2"},
		{ref: "refs/heads/v1", want: "[default tag]"}, // a short ref is a branch or a tag of that name
	}
	for _, tt := range tests {
		body := render(t, webhook.GitHub, "push.json", repo.url, tt.ref, c1)
		got := delivery{provider: webhook.GitHub, event: "push", id: newID("ref"), body: body, key: hookSecret(webhook.GitHub)}.send(t, a.url)
		switch {
		case tt.want == "" && (got.status != http.StatusOK || got.Result != "ignored"):
			t.Errorf("push to %s: %s, want 200 ignored", tt.ref, got)
		case tt.want != "" && (got.status != http.StatusAccepted || fmt.Sprint(got.Srcs) != tt.want):
			t.Errorf("push to %s: %s, want 202 for %s", tt.ref, got, tt.want)
		}
	}
}

// TestWebhookReplayWindow: a delivery is a replay only within
// webhooks.replayWindow; after it, the same delivery counts again, whether
// it nudged sources (the store's ledger) or not (the agent's memory).
func TestWebhookReplayWindow(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	repo, c1 := newHookRepo(t)
	cfg := hookConfig(t, storetest.URL(t, "sqlite"), repo)
	cfg.Webhooks.ReplayWindow = window
	a := startHookAgent(t, cfg)
	a.waitApplied(t, "jobs", c1)
	secret := hookSecret(webhook.GitHub)
	push := delivery{provider: webhook.GitHub, event: "push", id: newID("window"), key: secret,
		body: render(t, webhook.GitHub, "push.json", repo.url, "refs/heads/main", c1)}
	other := delivery{provider: webhook.GitHub, event: "push", id: newID("window"), key: secret,
		body: render(t, webhook.GitHub, "push.json", "https://github.com/acme/other", "refs/heads/main", c1)}

	for round := range 2 {
		start := time.Now()
		first, second := push.send(t, a.url), other.send(t, a.url)
		if first.Result != "queued" || second.Result != "ignored" {
			t.Errorf("round %d: %s, %s; want queued and ignored", round, first, second)
		}
		again, otherAgain := push.send(t, a.url), other.send(t, a.url)
		// On a machine too slow to send four requests within the window,
		// the replays are new again: nothing to check then.
		if time.Since(start) < window && (again.Result != "duplicate" || otherAgain.Result != "duplicate") {
			t.Errorf("round %d: the replays within the window: %s, %s; want duplicate twice", round, again, otherAgain)
		}
		time.Sleep(2 * window) // past the window: the next round is new again
	}
}
