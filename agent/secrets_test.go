package agent_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor/docker/dockertest"
	"github.com/caesium-io/caesium/providers/vault/vaulttest"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// secretValue returns a long random value that occurs nowhere by chance:
// finding it anywhere is a leak.
func secretValue(t testing.TB, what string) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + what + "-" + hex.EncodeToString(b)
}

// leaks holds the secret values of a test and every text that must not
// contain any of them.
type leaks struct {
	secrets map[string]string // what -> value
	places  map[string]string // where -> text
}

func newLeaks() *leaks { return &leaks{secrets: map[string]string{}, places: map[string]string{}} }

func (l *leaks) secret(what, value string) { l.secrets[what] = value }

func (l *leaks) seen(where, text string) {
	if _, dup := l.places[where]; dup {
		where += fmt.Sprintf(" (%d)", len(l.places))
	}
	l.places[where] = text
}

// check fails the test for every secret found in every place. The failure
// shows the surroundings with the value replaced by its name.
func (l *leaks) check(t *testing.T) {
	t.Helper()
	wheres := make([]string, 0, len(l.places))
	for w := range l.places {
		wheres = append(wheres, w)
	}
	sort.Strings(wheres)
	for _, where := range wheres {
		text := l.places[where]
		for what, value := range l.secrets {
			if !strings.Contains(text, value) {
				continue
			}
			shown := text
			for w, v := range l.secrets {
				shown = strings.ReplaceAll(shown, v, "<"+w+">")
			}
			i := strings.Index(shown, "<"+what+">")
			t.Errorf("%s shows the %s:\n…%s…", where, what, shown[max(0, i-200):min(len(shown), i+len(what)+202)])
		}
	}
}

// startSecretsAgent runs agent.New and Run with log, as caesium-agent does, and
// stops it when the test ends.
func startSecretsAgent(t *testing.T, cfg config.Config, log *slog.Logger) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	r := &running{url: "http://" + a.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// sourceViaAPI reads a source and its status through the API.
func sourceViaAPI(t *testing.T, base, id string) (store.Source, store.SourceStatus) {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/v1/sources/"+id, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/sources/%s: %d %s", id, code, body)
	}
	var src store.Source
	if err := json.Unmarshal([]byte(body), &src); err != nil {
		t.Fatalf("GET /v1/sources/%s: %v\n%s", id, err, body)
	}
	st, err := src.DecodeStatus()
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return src, st
}

// waitSourceApplied waits until the agent has applied commit from source id.
func waitSourceApplied(t *testing.T, base, id, commit string) {
	t.Helper()
	waitFor(t, id+" to apply "+short(commit), func() bool {
		src, _ := sourceViaAPI(t, base, id)
		return src.LastAppliedCommit == commit
	})
}

// waitSourceStalled waits until source id is Stalled with reason and an error
// containing every one of want, and returns that error.
func waitSourceStalled(t *testing.T, base, id, reason string, want ...string) string {
	t.Helper()
	var last string
	waitFor(t, fmt.Sprintf("%s to stall with %s naming %q", id, reason, want), func() bool {
		_, st := sourceViaAPI(t, base, id)
		c, _ := st.Condition(store.ConditionStalled)
		last = st.LastError
		if !c.Status || c.Reason != reason {
			return false
		}
		for _, w := range want {
			if !strings.Contains(st.LastError, w) {
				return false
			}
		}
		return true
	})
	return last
}

// nudgeSource asks the agent to sync a source now.
func nudgeSource(t *testing.T, base, id string) {
	t.Helper()
	if code, body := do(t, http.MethodPost, base+"/v1/sources/"+id+"/sync", "", ""); code != http.StatusAccepted {
		t.Fatalf("POST /v1/sources/%s/sync: %d %s", id, code, body)
	}
}

// short abbreviates a commit SHA for messages.
func short(commit string) string { return commit[:min(12, len(commit))] }

// postSignedGitHub sends a GitHub webhook delivery signed with secret.
func postSignedGitHub(t *testing.T, base, event, delivery, secret, body string) (int, string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks/github", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/webhooks/github: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /v1/webhooks/github: %v", err)
	}
	return resp.StatusCode, string(b)
}

func writeSecretFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Environment variables of TestSecretsNeverLeak, set with t.Setenv.
const (
	envWebhookSecret = "CAESIUM_LEAKTEST_GITHUB_WEBHOOK_SECRET"
	envStepToken     = "CAESIUM_LEAKTEST_STEP_TOKEN"
	envTriggerSecret = "CAESIUM_LEAKTEST_TRIGGER_SECRET"
)

// leakJob references a secret of every kind, in every field that takes one.
// Its step prints every value it receives, and its SHA-256: the recorded
// output must show neither value, while the hashes prove the values arrived.
// Format arguments: a variant, the image, the callback receiver's URL.
const leakJob = `apiVersion: v1
kind: Job
metadata:
  alias: app
trigger:
  type: http
  configuration:
    path: /hooks/app
    secret: secret://env/` + envTriggerSecret + `
callbacks:
  - url: %[3]s/app
    headers:
      Authorization: secret://file/hooks/token
steps:
  - name: main
    image: %[2]s
    command: ["sh", "-c", "for v in \"$FROM_ENV\" \"$FROM_FILE\" \"$FROM_VAULT\" \"$FROM_VAULT_V1\"; do echo \"value: $v\"; printf %%s \"$v\" | sha256sum; done"]
    env:
      FROM_ENV: secret://env/` + envStepToken + `
      FROM_FILE: secret://file/app/db-password
      FROM_VAULT: secret://vault/kv/app#field
      FROM_VAULT_V1: secret://vault/kv/app#field?version=1
      PLAIN: %[1]s
`

// leakRefs are the references of leakJob, which the store, the API and plans
// show instead of values.
var leakRefs = []string{
	"secret://env/" + envTriggerSecret,
	"secret://file/hooks/token",
	"secret://env/" + envStepToken,
	"secret://file/app/db-password",
	"secret://vault/kv/app#field",
	"secret://vault/kv/app#field?version=1",
}

// TestSecretsNeverLeak is the leak scan of the secrets issue. An agent on a
// real store syncs, over HTTP with basic auth, a repository whose password
// is in Vault (AppRole login with the secret id in a file); its GitHub
// webhook secret comes from the environment; its manifests reference a
// secret of every kind (env, file, Vault latest and pinned) in step env,
// callback headers and the http trigger, with every one of those secrets
// present. After a full sync, a signed push webhook and the sync it starts,
// a rejected and a ping delivery, a fetch failing on a wrong password and
// its recovery, a dry-run diff of a changed manifest and a read of every
// API endpoint, the agent is stopped, and no secret value, Vault credential
// or token appears in any log line (debug level), API response, metric,
// error, database row or file in the data directory.
//
// Then a request signed with the http trigger's secret (resolved per
// request) starts a run on the real Docker Engine whose step receives the
// env, file and Vault (latest and pinned) secrets, resolved at the
// attempt's start, and prints them; the run's callback is sent with its
// header secret from a file. The step's output must reach the run history
// with every value redacted, and the callback receiver must get the header's
// value, the only place besides the container it may go. The CLI's lint
// --check-secrets is scanned in cmd/caesium/secrets_leak_test.go (this
// package cannot call its run).
func TestSecretsNeverLeak(t *testing.T) {
	// Not parallel: t.Setenv. The agent reads secret://env from its process
	// environment, as in production.
	webhookSecret := secretValue(t, "webhook")
	t.Setenv(envWebhookSecret, webhookSecret)
	stepToken := secretValue(t, "env-step")
	t.Setenv(envStepToken, stepToken)
	triggerSecret := secretValue(t, "env-trigger")
	t.Setenv(envTriggerSecret, triggerSecret)

	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			l := newLeaks()
			l.secret("webhook secret (env)", webhookSecret)
			l.secret("step token (env)", stepToken)
			l.secret("trigger secret (env)", triggerSecret)
			leakScan(t, backend, l, envValues{webhook: webhookSecret, step: stepToken, trigger: triggerSecret})
		})
	}
}

// envValues are the secrets TestSecretsNeverLeak puts in the environment.
type envValues struct{ webhook, step, trigger string }

// leakScan is TestSecretsNeverLeak on one store backend.
func leakScan(t *testing.T, backend string, l *leaks, env envValues) {
	webhookSecret := env.webhook
	img := dockertest.Image(t)
	sink := newCallbackSink(t)
	const gitUser = "caesium"
	var (
		gitPassword = secretValue(t, "git-password")
		appV1       = secretValue(t, "vault-app-v1")
		appV2       = secretValue(t, "vault-app-v2")
		filePass    = secretValue(t, "file-db-password")
		hookToken   = secretValue(t, "file-hook-token")
		roleID      = secretValue(t, "approle-role-id")
		secretID    = secretValue(t, "approle-secret-id")
	)
	l.secret("git password (vault)", gitPassword)
	l.secret("git basic auth credentials", base64.StdEncoding.EncodeToString([]byte(gitUser+":"+gitPassword)))
	l.secret("vault kv/app#field version 1", appV1)
	l.secret("vault kv/app#field version 2", appV2)
	l.secret("db password (file)", filePass)
	l.secret("callback token (file)", hookToken)
	l.secret("approle role id", roleID)
	l.secret("approle secret id", secretID)

	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	vs.Put("kv", "git", map[string]any{"password": gitPassword})
	vs.Put("kv", "app", map[string]any{"field": appV1})
	vs.Put("kv", "app", map[string]any{"field": appV2})
	vs.AddAppRole(vaulttest.AppRole{RoleID: roleID, SecretID: secretID})

	creds := t.TempDir()
	writeSecretFile(t, filepath.Join(creds, "role-id"), roleID+"\n")
	writeSecretFile(t, filepath.Join(creds, "secret-id"), secretID+"\n")
	secretsDir := t.TempDir()
	writeSecretFile(t, filepath.Join(secretsDir, "hooks", "token"), hookToken+"\n")
	writeSecretFile(t, filepath.Join(secretsDir, "app", "db-password"), filePass+"\n")

	w := newWorkRepo(t)
	w.write("jobs/app.yaml", fmt.Sprintf(leakJob, "one", img, sink.URL))
	w.write("jobs/plain.yaml", manifest("plain", "1"))
	c1 := w.commit("first")
	gs := startGitServer(t, filepath.Dir(w.Dir), gitUser, gitPassword)

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t, backend)
	if backend == "sqlite" {
		// In the data directory, so the file scan reads it raw too.
		cfg.Database.URL = "sqlite://" + filepath.Join(cfg.DataDir, "caesium.db")
	}
	cfg.Secrets = config.Secrets{
		FileDir: secretsDir,
		Vault: &config.Vault{
			Address: vs.URL,
			Auth:    config.VaultAuth{Method: "approle", RoleIDFile: filepath.Join(creds, "role-id"), SecretIDFile: filepath.Join(creds, "secret-id")},
		},
	}
	cfg.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://env/" + envWebhookSecret}
	src := sourceConfig("leak", gs.url("work"))
	src.Auth = config.SourceAuth{Username: gitUser, Password: "secret://vault/kv/git#password"}
	src.Interval = time.Hour // syncs come from the first poll and the webhook
	cfg.Sources = []config.Source{src}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}

	log, logs := debugLogger()
	r := startSecretsAgent(t, cfg, log)
	base := r.url

	// The first sync fetches with the password from Vault.
	waitSourceApplied(t, base, "leak", c1)

	// A push, announced by a signed GitHub webhook: the agent resolves the
	// webhook secret to verify it and syncs the new commit at once.
	w.write("jobs/app.yaml", fmt.Sprintf(leakJob, "two", img, sink.URL))
	c2 := w.commit("second")
	push := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"clone_url":%q}}`, c2, gs.url("work"))
	code, body := postSignedGitHub(t, base, "push", "d-push-1", webhookSecret, push)
	l.seen("webhook response (push)", body)
	if code != http.StatusAccepted || !strings.Contains(body, `"queued"`) {
		t.Fatalf("signed push: %d %s", code, body)
	}
	waitSourceApplied(t, base, "leak", c2)
	code, body = postSignedGitHub(t, base, "push", "d-push-2", "not-"+webhookSecret, push)
	l.seen("webhook response (bad signature)", body)
	if code != http.StatusUnauthorized {
		t.Errorf("push signed with another secret: %d %s, want 401", code, body)
	}
	code, body = postSignedGitHub(t, base, "ping", "d-ping-1", webhookSecret, `{"hook_id":1}`)
	l.seen("webhook response (ping)", body)
	if code != http.StatusOK {
		t.Errorf("signed ping: %d %s", code, body)
	}

	// A wrong password in Vault: the fetch fails (an error path with a
	// secret in flight, recorded in the status and the logs); put right,
	// the next sync applies.
	wrong := secretValue(t, "git-wrong-password")
	l.secret("wrong git password (vault)", wrong)
	l.secret("wrong git basic auth credentials", base64.StdEncoding.EncodeToString([]byte(gitUser+":"+wrong)))
	vs.Put("kv", "git", map[string]any{"password": wrong})
	w.write("jobs/plain.yaml", manifest("plain", "3"))
	c3 := w.commit("third")
	nudgeSource(t, base, "leak")
	l.seen("status error (wrong password)", waitSourceStalled(t, base, "leak", agent.ReasonFetchFailed, "auth"))
	vs.Put("kv", "git", map[string]any{"password": gitPassword})
	nudgeSource(t, base, "leak")
	waitSourceApplied(t, base, "leak", c3)

	// A dry-run diff of a changed manifest shows references on both sides.
	changed := strings.Replace(fmt.Sprintf(leakJob, "two", img, sink.URL), "secret://vault/kv/app#field\n", "secret://vault/kv/app#field?version=2\n", 1)
	code, body = do(t, http.MethodPost, base+"/v1/jobdefs/diff?sourceId=leak", "application/yaml", changed)
	l.seen("POST /v1/jobdefs/diff", body)
	if code != http.StatusOK || !strings.Contains(body, `"updated"`) ||
		!strings.Contains(body, `"secret://vault/kv/app#field"`) || !strings.Contains(body, `"secret://vault/kv/app#field?version=2"`) {
		t.Errorf("diff of a changed manifest: %d, want 200 with an update showing the old and the new reference:\n%s", code, body)
	}

	// A run, started by a request signed with the trigger's secret; then one
	// signed with another secret, which starts nothing.
	code, a, body := signedTrigger(t, base, "/hooks/app", env.trigger, time.Now(), `{"why":"leak scan"}`)
	l.seen("trigger response", body)
	if code != http.StatusAccepted {
		t.Fatalf("signed trigger: %d %s", code, body)
	}
	code, _, body = signedTrigger(t, base, "/hooks/app", "not-"+env.trigger, time.Now(), `{}`)
	l.seen("trigger response (bad signature)", body)
	if code != http.StatusUnauthorized {
		t.Errorf("trigger signed with another secret: %d %s, want 401", code, body)
	}
	run := waitRun(t, base, a.RunID)
	out := task(t, run, "main").Output
	if run.Status != store.RunSucceeded {
		t.Fatalf("run: %s %q %+v", run.Status, run.Error, run.Tasks)
	}
	for what, v := range map[string]string{"env": env.step, "file": filePass, "vault latest": appV2, "vault version 1": appV1} {
		sum := sha256.Sum256([]byte(v))
		if !strings.Contains(out, hex.EncodeToString(sum[:])) {
			t.Errorf("the step did not receive the %s secret (its hash is not in the output):\n%s", what, out)
		}
	}
	if strings.Count(out, "value: [REDACTED]") != 4 {
		t.Errorf("the step's printed values are not all redacted in the recorded output:\n%s", out)
	}
	waitFor(t, "the callback to be recorded", func() bool {
		r, _ := getRun(t, base, run.ID)
		return len(r.Callbacks) == 1
	})
	if reqs := sink.requests(); len(reqs) != 1 || reqs[0].header.Get("Authorization") != hookToken {
		t.Errorf("the callback receiver did not get the header secret from the file (%d requests)", len(reqs))
	}
	runPath := fmt.Sprintf("/v1/runs/%d", run.ID)

	for _, path := range []string{"/v1/jobs", "/v1/jobs/app", "/v1/jobs/plain", "/v1/sources", "/v1/sources/leak", "/v1/applies", "/v1/webhooks/deliveries", "/v1/runs", runPath, "/v1/jobs/app/runs", "/metrics", "/readyz"} {
		code, body := do(t, http.MethodGet, base+path, "", "")
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
		l.seen("GET "+path, body)
		if path == "/v1/jobs/app" {
			for _, ref := range leakRefs {
				if !strings.Contains(body, ref) {
					t.Errorf("the stored spec of app lacks the reference %s:\n%s", ref, body)
				}
			}
		}
	}
	if !strings.Contains(l.places["GET /metrics"], `caesium_webhook_requests_total{provider="github",result="queued"} 1`) {
		t.Errorf("metrics do not count the queued push:\n%s", l.places["GET /metrics"])
	}
	if !strings.Contains(l.places["GET /v1/webhooks/deliveries"], "d-push-1") {
		t.Errorf("the delivery was not recorded:\n%s", l.places["GET /v1/webhooks/deliveries"])
	}

	if err := r.stop(); err != nil {
		l.seen("error of Run", err.Error())
		t.Errorf("Run: %v", err)
	}
	l.seen("logs", logs.String())
	for _, want := range []string{"logged in to vault", `"msg":"synced"`, `"msg":"request"`, `"msg":"run finished"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("debug logs lack %q: the scan would not have seen them", want)
		}
	}
	c := vs.Counts()
	if c.Logins["approle"] == 0 || c.SecretReads < 2 {
		t.Errorf("vault counts %+v: want an AppRole login and the password read for each fetch", c)
	}
	for i, cred := range vs.Credentials() {
		l.secret(fmt.Sprintf("vault credential #%d (token, role or secret id)", i), cred)
	}

	rows := dumpStoreRows(t, backend, cfg.Database.URL)
	all := strings.Join(rows, "\n")
	for _, ref := range leakRefs {
		if !strings.Contains(all, ref) {
			t.Errorf("no database row holds the reference %s: the dump missed tables", ref)
		}
	}
	for i, row := range rows {
		l.seen(fmt.Sprintf("database row %d", i), row)
	}
	scanDataFiles(t, l, cfg.DataDir)
	l.check(t)
}

// dumpStoreRows returns every row of every table of the store, as text.
func dumpStoreRows(t *testing.T, backend, dbURL string) []string {
	t.Helper()
	ctx := context.Background()
	var rows []string
	switch backend {
	case "sqlite":
		db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(dbURL, "sqlite://")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tables := queryTexts(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
		if len(tables) < 5 {
			t.Fatalf("sqlite tables %v: too few to be the store", tables)
		}
		for _, table := range tables {
			res, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			cols, _ := res.Columns()
			for res.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := res.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				b.WriteString(table + ":")
				for i, v := range vals {
					if bs, ok := v.([]byte); ok {
						v = string(bs)
					}
					fmt.Fprintf(&b, " %s=%v", cols[i], v)
				}
				rows = append(rows, b.String())
			}
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			res.Close()
		}
	case "postgres":
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		schemaName := u.Query().Get("search_path")
		db, err := sql.Open("pgx", storetest.AdminURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tables := queryTexts(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, schemaName)
		if len(tables) < 5 {
			t.Fatalf("tables of schema %s: %v, too few to be the store", schemaName, tables)
		}
		for _, table := range tables {
			for _, row := range queryTexts(t, db, fmt.Sprintf(`SELECT t::text FROM %q.%q t`, schemaName, table)) {
				rows = append(rows, table+": "+row)
			}
		}
	}
	return rows
}

func queryTexts(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	res, err := db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer res.Close()
	var out []string
	for res.Next() {
		var s string
		if err := res.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// scanDataFiles adds every regular file below dir (the database file, the Git
// working data) to the places a secret must not be.
func scanDataFiles(t *testing.T, l *leaks, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		l.seen("file "+rel, string(b))
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files below the data directory %s", dir)
	}
}

// TestSecretFailureStallsOnlyItsSource: a source whose Git password is a
// Vault reference stalls (FetchFailed, the reference named) when the secret
// is missing, when Vault is sealed and when Vault is gone, while another
// source without secrets goes on syncing on the same agent, which keeps
// serving; the Vault source recovers as soon as the secret can be read.
func TestSecretFailureStallsOnlyItsSource(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const (
				gitUser = "caesium"
				ref     = "secret://vault/kv/git#password"
			)
			password := secretValue(t, "git-password")
			vs := vaulttest.New(t, vaulttest.Options{})
			vs.Mount("kv", 2)
			token := vs.CreateToken(vaulttest.TokenOptions{})
			tokenFile := filepath.Join(t.TempDir(), "vault-token")
			writeSecretFile(t, tokenFile, token+"\n")

			vaulted := newWorkRepo(t)
			vaulted.write("a.yaml", manifest("vaulted-a", "1"))
			v1 := vaulted.commit("first")
			gs := startGitServer(t, filepath.Dir(vaulted.Dir), gitUser, password)
			plain := newWorkRepo(t)
			plain.write("b.yaml", manifest("plain-b", "1"))
			p1 := plain.commit("first")

			cfg := testConfig(t, backend)
			cfg.Secrets.Vault = &config.Vault{
				Address: vs.URL, MaxRetries: -1, // fail at once: the source's own backoff retries
				Auth: config.VaultAuth{Method: "token", TokenFile: tokenFile},
			}
			vsrc := sourceConfig("vaulted", gs.url("work"))
			vsrc.Auth = config.SourceAuth{Username: gitUser, Password: ref}
			vsrc.Interval = time.Hour
			psrc := sourceConfig("plain", plain.Dir)
			psrc.Interval = time.Hour
			cfg.Sources = []config.Source{vsrc, psrc}
			log, logs := debugLogger()
			r := startSecretsAgent(t, cfg, log)
			base := r.url
			serving := func(when string) {
				t.Helper()
				select {
				case err := <-r.done:
					t.Fatalf("%s: the agent stopped: %v", when, err)
				default:
				}
				if code, body := do(t, http.MethodGet, base+"/readyz", "", ""); code != http.StatusOK {
					t.Errorf("%s: GET /readyz: %d %s", when, code, body)
				}
			}
			var errs []string

			// Missing in Vault: the fetch fails naming the reference, the
			// other source applies.
			waitSourceApplied(t, base, "plain", p1)
			errs = append(errs, waitSourceStalled(t, base, "vaulted", agent.ReasonFetchFailed, ref, "auth.password"))
			serving("secret missing")
			if jobs := liveJobsViaAPI(t, base); jobs["vaulted-a"] || !jobs["plain-b"] {
				t.Errorf("secret missing: live jobs %v, want plain-b only", jobs)
			}

			// Written: the next sync applies.
			vs.Put("kv", "git", map[string]any{"password": password})
			nudgeSource(t, base, "vaulted")
			waitSourceApplied(t, base, "vaulted", v1)

			// Sealed: only the Vault source fails, the other applies a new
			// commit meanwhile.
			vs.Fail(http.StatusServiceUnavailable)
			vaulted.write("a.yaml", manifest("vaulted-a", "2"))
			v2 := vaulted.commit("second")
			plain.write("b.yaml", manifest("plain-b", "2"))
			p2 := plain.commit("second")
			nudgeSource(t, base, "vaulted")
			nudgeSource(t, base, "plain")
			waitSourceApplied(t, base, "plain", p2)
			errs = append(errs, waitSourceStalled(t, base, "vaulted", agent.ReasonFetchFailed, ref, "vault unavailable", "sealed"))
			serving("vault sealed")
			if src, _ := sourceViaAPI(t, base, "vaulted"); src.LastAppliedCommit != v1 {
				t.Errorf("vault sealed: vaulted applied %s, want %s kept", src.LastAppliedCommit, v1)
			}

			// Unsealed: it catches up.
			vs.Fail(0)
			nudgeSource(t, base, "vaulted")
			waitSourceApplied(t, base, "vaulted", v2)

			// Gone: the same, with the connection refused.
			vs.Close()
			vaulted.write("a.yaml", manifest("vaulted-a", "3"))
			vaulted.commit("third")
			plain.write("b.yaml", manifest("plain-b", "3"))
			p3 := plain.commit("third")
			nudgeSource(t, base, "vaulted")
			nudgeSource(t, base, "plain")
			waitSourceApplied(t, base, "plain", p3)
			errs = append(errs, waitSourceStalled(t, base, "vaulted", agent.ReasonFetchFailed, ref, "vault unavailable"))
			serving("vault gone")

			if err := r.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
			for _, e := range errs {
				t.Logf("vaulted: %s", e)
			}
			l := newLeaks()
			l.secret("git password", password)
			l.secret("vault token", token)
			l.seen("logs", logs.String())
			l.seen("errors", strings.Join(errs, "\n"))
			l.check(t)
		})
	}
}

// liveJobsViaAPI lists the live jobs through the API.
func liveJobsViaAPI(t *testing.T, base string) map[string]bool {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/v1/jobs", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/jobs: %d %s", code, body)
	}
	var list struct {
		Jobs []store.Job `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /v1/jobs: %v\n%s", err, body)
	}
	out := map[string]bool{}
	for _, j := range list.Jobs {
		if j.DeletedAt == nil {
			out[j.Alias] = true
		}
	}
	return out
}

// TestSecretsConfigRefusedAtStart: secret settings that cannot work stop
// agent.New with an error naming the key or the reference, never a value.
// They pass config.Validate (which checks presence, not form), so this is
// where they are caught.
func TestSecretsConfigRefusedAtStart(t *testing.T) {
	// Not parallel: t.Setenv.
	const tokenVar = "CAESIUM_STARTTEST_VAULT_TOKEN"
	token := secretValue(t, "vault-token")
	t.Setenv(tokenVar, token)
	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	goodToken := vs.CreateToken(vaulttest.TokenOptions{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeSecretFile(t, tokenFile, goodToken)
	vaultCfg := func(mutate func(*config.Vault)) *config.Vault {
		v := &config.Vault{Address: vs.URL, MaxRetries: -1, Auth: config.VaultAuth{TokenFile: tokenFile}}
		if mutate != nil {
			mutate(v)
		}
		return v
	}
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr []string
	}{
		{
			name: "tokenEnv names an unset variable",
			mutate: func(c *config.Config) {
				c.Secrets.Vault = vaultCfg(func(v *config.Vault) { v.Auth = config.VaultAuth{TokenEnv: "CAESIUM_STARTTEST_UNSET"} })
			},
			wantErr: []string{"secrets.vault.auth.tokenEnv", "CAESIUM_STARTTEST_UNSET is not set"},
		},
		{
			name: "tokenEnv and tokenFile both set",
			mutate: func(c *config.Config) {
				c.Secrets.Vault = vaultCfg(func(v *config.Vault) { v.Auth.TokenEnv = tokenVar })
			},
			wantErr: []string{"secrets.vault", "exactly one"},
		},
		{
			name: "address not a URL",
			mutate: func(c *config.Config) {
				c.Secrets.Vault = vaultCfg(func(v *config.Vault) { v.Address = "vault.internal:8200" })
			},
			wantErr: []string{"secrets.vault", "vault.internal:8200"},
		},
		{
			name:    "negative timeout",
			mutate:  func(c *config.Config) { c.Secrets.Vault = vaultCfg(func(v *config.Vault) { v.Timeout = -time.Second }) },
			wantErr: []string{"secrets.vault", "timeout"},
		},
		{
			name: "CA file missing",
			mutate: func(c *config.Config) {
				c.Secrets.Vault = vaultCfg(func(v *config.Vault) { v.CACert = "/nonexistent/ca.pem" })
			},
			wantErr: []string{"secrets.vault", "/nonexistent/ca.pem"},
		},
		{
			name:    "relative secrets directory",
			mutate:  func(c *config.Config) { c.Secrets.FileDir = "run/secrets" },
			wantErr: []string{"secrets.fileDir", "absolute"},
		},
		{
			name: "webhook secret missing in Vault",
			mutate: func(c *config.Config) {
				c.Secrets.Vault = vaultCfg(nil)
				c.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://vault/kv/hooks#github"}
			},
			wantErr: []string{"webhooks.github", "secret://vault/kv/hooks#github"},
		},
		{
			name: "webhook secret reference to an unset variable",
			mutate: func(c *config.Config) {
				c.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://env/CAESIUM_STARTTEST_UNSET"}
			},
			wantErr: []string{"webhooks.github", "secret://env/CAESIUM_STARTTEST_UNSET", "not set"},
		},
		{
			name: "webhook secret in Vault without a Vault",
			mutate: func(c *config.Config) {
				c.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://vault/kv/hooks#github"}
			},
			wantErr: []string{"webhooks.github", "secret://vault/kv/hooks#github", "no vault backend"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "sqlite")
			tt.mutate(&cfg)
			log, logs := debugLogger()
			a, err := agent.New(context.Background(), cfg, log)
			if err == nil {
				t.Fatalf("New succeeded (listening on %s); want an error with %q", a.Addr(), tt.wantErr)
			}
			t.Logf("New: %v", err)
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			l := newLeaks()
			l.secret("token from the environment", token)
			l.secret("token from the file", goodToken)
			l.seen("error", err.Error())
			l.seen("logs", logs.String())
			l.check(t)
		})
	}
}

// TestWebhookSecretBackendDown: a webhook secret in Vault while Vault is
// sealed only warns at start-up; deliveries are answered 503 (retry later)
// until Vault is back, while the API and the other parts go on. The secret
// is resolved per request: nothing is cached.
func TestWebhookSecretBackendDown(t *testing.T) {
	t.Parallel()
	secret := secretValue(t, "webhook")
	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	vs.Put("kv", "hooks", map[string]any{"github": secret})
	token := vs.CreateToken(vaulttest.TokenOptions{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeSecretFile(t, tokenFile, token)
	vs.Fail(http.StatusServiceUnavailable)

	cfg := testConfig(t, "sqlite")
	cfg.Secrets.Vault = &config.Vault{Address: vs.URL, MaxRetries: -1, Auth: config.VaultAuth{TokenFile: tokenFile}}
	cfg.Webhooks.GitHub = &config.WebhookProvider{Secret: "secret://vault/kv/hooks#github"}
	log, logs := debugLogger()
	r := startSecretsAgent(t, cfg, log)
	if !strings.Contains(logs.String(), "webhook secret not resolvable yet") {
		t.Errorf("no warning about the webhook secret at start-up:\n%s", logs.String())
	}
	ping := `{"hook_id":1}`
	code, body := postSignedGitHub(t, r.url, "ping", "d-1", secret, ping)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("ping while Vault is sealed: %d %s, want 503 unavailable", code, body)
	}
	if code, body := do(t, http.MethodGet, r.url+"/v1/jobs", "", ""); code != http.StatusOK {
		t.Errorf("GET /v1/jobs while Vault is sealed: %d %s", code, body)
	}
	vs.Fail(0)
	code, body = postSignedGitHub(t, r.url, "ping", "d-2", secret, ping)
	if code != http.StatusOK || !strings.Contains(body, `"ping"`) {
		t.Errorf("ping after Vault is back: %d %s, want 200 ping", code, body)
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	l := newLeaks()
	l.secret("webhook secret", secret)
	l.secret("vault token", token)
	l.seen("logs", logs.String())
	l.check(t)
}
