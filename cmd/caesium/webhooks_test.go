package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

const webhookSecret = "gh-cli-secret-6a0d2e93"

// serveRepos serves the git repositories below root over HTTP with git
// http-backend on loopback until the test ends.
func serveRepos(t *testing.T, root string) string {
	t.Helper()
	const backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git http-backend: %v", err)
		}
		t.Skipf("git http-backend: %v", err)
	}
	srv := httptest.NewServer(&cgi.Handler{
		Path: backend, Root: "/git", Stderr: io.Discard,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	})
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	t.Cleanup(srv.Close)
	return srv.URL
}

// startWebhookAgent runs an agent on backend with the GitHub webhook and
// one source, "platform", on repoURL (polled hourly), behind an API token.
func startWebhookAgent(t *testing.T, backend, repoURL, token string) *testAgent {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.HTTP.Token = token
	cfg.Database.URL = storetest.URL(t, backend)
	cfg.Secrets.FileDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.Secrets.FileDir, "github"), []byte(webhookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://file/github"}
	cfg.Sources = []config.Source{{
		ID: "platform", Repo: repoURL, Ref: "main", Globs: config.DefaultGlobs, Interval: time.Hour,
		Timeout: time.Minute, OnInvalid: config.OnInvalidFail,
	}}
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
	return &testAgent{url: "http://" + a.Addr().String()}
}

// githubPush POSTs a signed GitHub push of after to ref of repoURL and
// returns the status.
func githubPush(t *testing.T, agentURL, event, id, repoURL, ref, after string) int {
	t.Helper()
	payload := map[string]any{
		"ref": ref, "before": strings.Repeat("0", 40), "after": after,
		"repository": map[string]any{"full_name": "acme/platform", "clone_url": repoURL + ".git", "html_url": repoURL},
		"pusher":     map[string]any{"name": "ada"},
	}
	if event != "push" {
		payload = map[string]any{"action": "opened", "repository": payload["repository"]}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, agentURL+"/v1/webhooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebhookDeliveries drives caesium webhook deliveries against an agent
// that received real, signed webhooks: a push it queued and applied, its
// replay, a push for another repository, another event, and a request with
// a bad signature, which is not listed.
func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			repo := newJobsRepo(t)
			c1 := repo.commit(map[string]string{"hello.yaml": manifest("hello", "rev=1")})
			repoURL := serveRepos(t, filepath.Dir(repo.dir)) + "/git/" + filepath.Base(repo.dir)
			const token = "cli-token-51b0"
			a := startWebhookAgent(t, backend, repoURL, token)
			cli := func(args ...string) result {
				return a.cli(t, append(args, "--token", token)...)
			}
			deadline := time.Now().Add(60 * time.Second) // a hang guard
			for a.appliedCommit(t, token) != c1 {
				if time.Now().After(deadline) {
					t.Fatal("the first poll did not happen")
				}
				time.Sleep(50 * time.Millisecond)
			}

			cli("webhook", "deliveries").want(t, 0, []string{"No deliveries.\n"})
			cli("webhook", "deliveries", "-o", "json").want(t, 0, []string{"[]\n"})

			c2 := repo.commit(map[string]string{"hello.yaml": manifest("hello", "rev=2")})
			for _, d := range []struct {
				event, id, repo, ref, after string
				want                        int
			}{
				{"push", "d-1", "https://github.com/acme/elsewhere", "refs/heads/main", c2, http.StatusOK},
				{"issues", "d-2", repoURL, "refs/heads/main", c2, http.StatusOK},
				{"push", "d-3", repoURL, "refs/heads/main", c2, http.StatusAccepted},
				{"push", "d-3", repoURL, "refs/heads/main", c2, http.StatusOK},
			} {
				if got := githubPush(t, a.url, d.event, d.id, d.repo, d.ref, d.after); got != d.want {
					t.Errorf("delivery %s: %d, want %d", d.id, got, d.want)
				}
			}
			// Unsigned: refused and never listed.
			if resp, err := http.Post(a.url+"/v1/webhooks/github", "application/json", strings.NewReader("{}")); err != nil {
				t.Fatal(err)
			} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("unsigned: %d, want 401", resp.StatusCode)
			}
			for deadline := time.Now().Add(60 * time.Second); a.appliedCommit(t, token) != c2; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the push was not applied")
				}
			}

			// The replay of d-3 was answered "duplicate" and counted, not
			// recorded: a replayed capture must not crowd out real deliveries.
			res := cli("webhook", "deliveries")
			res.want(t, 0, []string{
				"RECEIVED PROVIDER EVENT REF AFTER RESULT STATUS SOURCES REASON",
				fmt.Sprintf("github push refs/heads/main %s queued 202 [platform]", c2[:12]),
				fmt.Sprintf(`github issues - - ignored 200 [] ignored: event "issues"`),
				fmt.Sprintf("github push refs/heads/main %s ignored 200 [] no source tracks this repository and ref", c2[:12]),
			})
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			if len(lines) != 4 || strings.Contains(res.stdout, "duplicate") || !strings.Contains(lines[1], "queued") || !strings.Contains(lines[3], "no source tracks") {
				t.Errorf("want a header and 3 deliveries, newest first, no replay:\n%s", res.stdout)
			}
			if strings.Contains(res.stdout, webhookSecret) {
				t.Error("the listing shows the webhook secret")
			}

			cli("webhook", "deliveries", "--limit", "1").want(t, 0, []string{"queued"})
			if got := strings.Count(cli("webhook", "deliveries", "--limit", "2").stdout, "\n"); got != 3 {
				t.Errorf("--limit 2: %d lines, want a header and 2", got)
			}
			var ds []store.Delivery
			out := cli("webhook", "deliveries", "-o", "json")
			if err := json.Unmarshal([]byte(out.stdout), &ds); err != nil || len(ds) != 3 {
				t.Fatalf("-o json: %v\n%s", err, out.stdout)
			}
			q := ds[0]
			if q.Provider != "github" || q.Event != "push" || q.DeliveryID != "d-3" || q.Repository != repoURL+".git" || q.Ref != "refs/heads/main" ||
				q.After != c2 || q.Result != "queued" || q.Status != http.StatusAccepted || fmt.Sprint(q.MatchedSources) != "[platform]" || q.ReceivedAt.IsZero() {
				t.Errorf("the queued delivery as JSON: %+v", q)
			}

			cli("webhook", "deliveries", "-o", "yaml").want(t, 1, nil, "--output must be text or json")
			cli("webhook", "deliveries", "--limit", "0").want(t, 1, nil, "limit must be between 1 and 1000")
			a.cli(t, "webhook", "deliveries").want(t, 1, nil, "missing or invalid bearer token")
			cli("webhook", "deliveries", "extra").want(t, 1, nil, "unknown command")
		})
	}
}

// appliedCommit is the platform source's applied commit, read with
// caesium source get.
func (a *testAgent) appliedCommit(t *testing.T, token string) string {
	t.Helper()
	res := a.cli(t, "source", "get", "platform", "-o", "json", "--token", token)
	var src store.Source
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &src) != nil {
		return ""
	}
	return src.LastAppliedCommit
}
