package main

import (
	"bufio"
	"bytes"
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
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// serveGit serves the repositories below root at /git/NAME with git's smart
// HTTP server (git http-backend) on loopback, behind basic auth, until the
// test ends.
func serveGit(t *testing.T, root, user, pass string) *httptest.Server {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git http-backend: %v", err)
		}
		t.Skipf("git http-backend: %v", err)
	}
	backend := &cgi.Handler{
		Path: gitHTTPBackend, Root: "/git", Stderr: io.Discard,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	t.Cleanup(srv.Close)
	return srv
}

// TestWebhookBinary runs the built caesium-agent with a configuration file:
// a GitHub webhook whose secret comes from the environment and one source on
// a loopback git server, polled hourly. A commit followed by the signed
// push that GitHub would send is applied at once, not at the next poll.
func TestWebhookBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "caesium-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const (
				secret   = "gh-e2e-secret-0b7c41d9"
				password = "git-e2e-pw-93fa1c"
			)
			c := newCheckout(t)
			c.write("jobs/a.yaml", jobManifest("a", "1"))
			c1 := c.commit("first")
			git := serveGit(t, filepath.Dir(c.dir), "caesium", password)
			repoURL := git.URL + "/git/" + filepath.Base(c.dir)

			dir := t.TempDir()
			cfgFile := filepath.Join(dir, "caesium.yaml")
			cfg := fmt.Sprintf(`dataDir: %s
database:
  url: %q
log:
  level: debug
webhooks:
  github:
    secret: secret://env/CAESIUM_E2E_GITHUB_WEBHOOK_SECRET
sources:
  - id: jobs
    repo: %s
    ref: main
    path: jobs
    interval: 1h
    auth:
      username: caesium
      password: secret://env/CAESIUM_E2E_GIT_PASSWORD
`, filepath.Join(dir, "data"), storetest.URL(t, backend), repoURL)
			if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			d := startWebhookDaemon(t, bin, []string{"CAESIUM_E2E_GITHUB_WEBHOOK_SECRET=" + secret, "CAESIUM_E2E_GIT_PASSWORD=" + password},
				"--config", cfgFile)
			waitImage(t, d, "registry.example.com/etl:1") // the first poll
			if src := getSource(t, d.url); src.LastAppliedCommit != c1 {
				t.Fatalf("applied %s, want %s", src.LastAppliedCommit, c1)
			}

			c.write("jobs/a.yaml", jobManifest("a", "2"))
			c2 := c.commit("second")
			raw, err := os.ReadFile("../../agent/testdata/webhooks/github/push.json")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(repoURL)
			body := []byte(strings.NewReplacer("{{URL}}", repoURL, "{{HOST}}", u.Hostname(), "{{PATH}}", strings.TrimPrefix(u.Path, "/"),
				"{{REF}}", "refs/heads/main", "{{AFTER}}", c2).Replace(string(raw)))
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write(body)
			req, err := http.NewRequest(http.MethodPost, d.url+"/v1/webhooks/github", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "e2e-"+c2[:12])
			req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(answer), `"sources":["jobs"]`) {
				t.Fatalf("POST /v1/webhooks/github: %d %s, want 202 for jobs", resp.StatusCode, answer)
			}

			// Applied now; the next poll is an hour away.
			waitImage(t, d, "registry.example.com/etl:2")
			if src := getSource(t, d.url); src.LastAppliedCommit != c2 {
				t.Errorf("applied %s, want %s", src.LastAppliedCommit, c2)
			}
			var list struct{ Deliveries []store.Delivery }
			getJSON(t, d.url+"/v1/webhooks/deliveries", &list)
			if len(list.Deliveries) != 1 || list.Deliveries[0].Result != "queued" || list.Deliveries[0].After != c2 {
				t.Errorf("deliveries: %+v", list.Deliveries)
			}
			for _, s := range []string{secret, password} {
				if strings.Contains(d.stderr.String(), s) {
					t.Errorf("the agent's log shows a secret:\n%s", d.stderr.String())
				}
			}
		})
	}
}

// startWebhookDaemon runs the binary with args and env (besides PATH and
// HOME) and waits for the line saying where it serves.
func startWebhookDaemon(t *testing.T, bin string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: newSyncBuffer(), exited: make(chan struct{})}
	d.cmd = exec.Command(bin, append(args, "--http-addr", "127.0.0.1:0", "--log-format", "json")...)
	d.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(d.exited)
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`serving on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = d.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.exited
	})
	select {
	case d.url = <-addr:
	case <-d.exited:
		t.Fatalf("the agent exited; stderr:\n%s", d.stderr.String())
	case <-time.After(60 * time.Second): // a hang guard
		_ = d.cmd.Process.Kill()
		t.Fatalf("the agent did not say where it serves; stderr:\n%s", d.stderr.String())
	}
	return d
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func getSource(t *testing.T, base string) store.Source {
	t.Helper()
	var src store.Source
	if status := getJSON(t, base+"/v1/sources/jobs", &src); status != http.StatusOK {
		t.Fatalf("GET /v1/sources/jobs: %d", status)
	}
	return src
}

// waitImage waits until job a's first step runs image, read through the API.
func waitImage(t *testing.T, d *daemon, image string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard, not a timing assertion
	for {
		var j store.Job
		if getJSON(t, d.url+"/v1/jobs/a", &j) == http.StatusOK && strings.Contains(string(j.Spec), `"image":"`+image+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job a does not run %s; the agent's log:\n%s", image, d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
