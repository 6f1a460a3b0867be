package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/vault/vaulttest"
	"github.com/caesium-io/caesium/store/storetest"
)

// randomSecret is a value that occurs nowhere by chance.
func randomSecret(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + what + "-" + hex.EncodeToString(b)
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signedPing sends a GitHub ping signed with secret and returns the status
// and body.
func signedPing(t *testing.T, base, secret string) (int, string) {
	t.Helper()
	body := `{"hook_id":42}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks/github", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", randomSecret(t, "delivery"))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/webhooks/github: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestVaultAuthFromConfigFile runs caesium-agent with a configuration file
// whose secrets.vault section uses each auth method, and whose GitHub
// webhook secret is a Vault reference: the agent logs in the configured
// way, resolves the secret at start-up and again for a signed delivery, and
// neither its output nor its debug logs show the secret or a credential.
func TestVaultAuthFromConfigFile(t *testing.T) {
	// Not parallel: tokenEnv and secretIdEnv are read from the process
	// environment (t.Setenv), as in production.
	const webhookRef = "secret://vault/kv/hooks#github"
	tests := []struct {
		name string
		// setup prepares the server and returns the auth section (a YAML
		// flow mapping) and the environment variables to set.
		setup      func(t *testing.T, vs *vaulttest.Server, dir string) (auth string, env map[string]string)
		wantLogins func(vaulttest.Counts) bool
	}{
		{
			name: "token from a file",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				f := writeFile(t, filepath.Join(dir, "token"), vs.CreateToken(vaulttest.TokenOptions{TTL: time.Hour, Renewable: true})+"\n")
				return "{method: token, tokenFile: " + f + "}", nil
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.LookupSelf > 0 },
		},
		{
			name: "token from an environment variable",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				return "{tokenEnv: CAESIUM_AUTHTEST_VAULT_TOKEN}", map[string]string{"CAESIUM_AUTHTEST_VAULT_TOKEN": vs.CreateToken(vaulttest.TokenOptions{})}
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.LookupSelf > 0 },
		},
		{
			name: "approle with files",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				roleID, secretID := randomSecret(t, "role-id"), randomSecret(t, "secret-id")
				vs.AddAppRole(vaulttest.AppRole{RoleID: roleID, SecretID: secretID})
				r := writeFile(t, filepath.Join(dir, "role-id"), roleID)
				s := writeFile(t, filepath.Join(dir, "secret-id"), secretID+"\n")
				return "{method: approle, roleIdFile: " + r + ", secretIdFile: " + s + "}", nil
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.Logins["approle"] > 0 },
		},
		{
			name: "approle with the secret id in the environment and a custom mount",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				roleID, secretID := randomSecret(t, "role-id"), randomSecret(t, "secret-id")
				vs.AddAppRole(vaulttest.AppRole{Mount: "approle-ci", RoleID: roleID, SecretID: secretID})
				return "{method: approle, mountPath: approle-ci, roleId: " + roleID + ", secretIdEnv: CAESIUM_AUTHTEST_SECRET_ID}",
					map[string]string{"CAESIUM_AUTHTEST_SECRET_ID": secretID}
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.Logins["approle-ci"] > 0 },
		},
		{
			name: "approle with a wrapped secret id",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				roleID := randomSecret(t, "role-id")
				vs.AddAppRole(vaulttest.AppRole{RoleID: roleID})
				r := writeFile(t, filepath.Join(dir, "role-id"), roleID)
				s := writeFile(t, filepath.Join(dir, "wrapped"), vs.WrapSecretID("approle", "caesium", 10*time.Minute))
				return "{method: approle, roleIdFile: " + r + ", secretIdFile: " + s + ", wrappedSecretId: true}", nil
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.Unwraps == 1 && c.Logins["approle"] > 0 },
		},
		{
			name: "kubernetes",
			setup: func(t *testing.T, vs *vaulttest.Server, dir string) (string, map[string]string) {
				jwt := randomSecret(t, "service-account-jwt")
				vs.AddKubernetesRole(vaulttest.KubernetesRole{Role: "caesium-agent", JWT: jwt})
				f := writeFile(t, filepath.Join(dir, "sa-token"), jwt)
				return "{method: kubernetes, role: caesium-agent, serviceAccountTokenPath: " + f + "}", nil
			},
			wantLogins: func(c vaulttest.Counts) bool { return c.Logins["kubernetes"] > 0 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			webhookSecret := randomSecret(t, "webhook")
			vs := vaulttest.New(t, vaulttest.Options{})
			vs.Mount("kv", 2)
			vs.Put("kv", "hooks", map[string]any{"github": webhookSecret})
			dir := t.TempDir()
			auth, env := tt.setup(t, vs, dir)
			for k, v := range env {
				t.Setenv(k, v)
			}
			cfgFile := writeFile(t, filepath.Join(dir, "caesium.yaml"), `
secrets:
  vault:
    address: `+vs.URL+`
    timeout: 5s
    auth: `+auth+`
webhooks:
  github:
    secret: `+webhookRef+`
`)
			args := []string{"--config", cfgFile, "--http-addr", "127.0.0.1:0", "--database-url", storetest.URL(t, "sqlite"),
				"--data-dir", t.TempDir(), "--log-level", "debug", "--log-format", "json"}
			r := startRun(t, args, nil)
			if code, body := signedPing(t, r.url, webhookSecret); code != http.StatusOK || !strings.Contains(body, `"ping"`) {
				t.Errorf("signed ping: %d %s, want 200 ping", code, body)
			}
			if code, body := signedPing(t, r.url, "not-"+webhookSecret); code != http.StatusUnauthorized {
				t.Errorf("ping signed with another secret: %d %s, want 401", code, body)
			}
			r.cancel()
			if err := <-r.done; err != nil {
				t.Errorf("run = %v, want nil", err)
			}
			c := vs.Counts()
			if !tt.wantLogins(c) || c.SecretReads < 2 {
				t.Errorf("vault counts %+v: want the configured login and the webhook secret read at start-up and per delivery", c)
			}
			logs := r.stderr.String()
			if !strings.Contains(logs, "logged in to vault") {
				t.Errorf("no login in the logs:\n%s", logs)
			}
			secrets := append(vs.Credentials(), webhookSecret)
			for _, v := range env {
				secrets = append(secrets, v)
			}
			for i, s := range secrets {
				if strings.Contains(logs, s) {
					t.Errorf("the logs show secret #%d (webhook secret, Vault credential or token):\n%s", i, strings.ReplaceAll(logs, s, "<SECRET>"))
				}
			}
		})
	}
}

// TestVaultConfigErrorsFromRun: caesium-agent refuses to start on a
// secrets.vault section or a webhook secret that cannot work, saying which
// key or reference, before it serves, without repeating a value.
func TestVaultConfigErrorsFromRun(t *testing.T) {
	t.Parallel()
	const literal = "hvs.CAESIUMliteralTokenNeverEchoed"
	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	tokenFile := writeFile(t, filepath.Join(t.TempDir(), "token"), vs.CreateToken(vaulttest.TokenOptions{}))
	tests := []struct {
		name    string
		yaml    string
		wantErr []string
	}{
		{
			name:    "approle without a secret id",
			yaml:    "secrets:\n  vault: {address: " + vs.URL + ", auth: {method: approle, roleId: r}}\n",
			wantErr: []string{"secrets.vault.auth", "secretIdFile or secretIdEnv"},
		},
		{
			name:    "a token written into the file",
			yaml:    "secrets:\n  vault: {address: " + vs.URL + ", auth: {token: " + literal + "}}\n",
			wantErr: []string{`unknown key "secrets.vault.auth.token"`},
		},
		{
			name:    "webhook secret missing in Vault",
			yaml:    "secrets:\n  vault: {address: " + vs.URL + ", auth: {tokenFile: " + tokenFile + "}}\nwebhooks:\n  github: {secret: 'secret://vault/kv/hooks#github'}\n",
			wantErr: []string{"webhooks.github", "secret://vault/kv/hooks#github"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfgFile := writeFile(t, filepath.Join(dir, "caesium.yaml"), tt.yaml)
			args := []string{"--config", cfgFile, "--http-addr", "127.0.0.1:0", "--database-url", storetest.URL(t, "sqlite"), "--data-dir", dir, "--log-level", "debug"}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, nil, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run succeeded; want an error with %q\n%s", tt.wantErr, stderr.String())
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(stdout.String(), "serving") {
				t.Errorf("stdout = %q; it must not claim to serve", stdout.String())
			}
			if strings.Contains(err.Error()+stdout.String()+stderr.String(), literal) {
				t.Errorf("the credential is repeated: %v\n%s", err, stderr.String())
			}
		})
	}
}
