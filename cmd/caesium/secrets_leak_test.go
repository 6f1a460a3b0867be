package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/vault/vaulttest"
)

// leakValue is a value that occurs nowhere by chance.
func leakValue(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + what + "-" + hex.EncodeToString(b)
}

// TestLintCheckSecretsNeverPrintsValues is the CLI part of the secrets leak
// scan (the agent part is agent.TestSecretsNeverLeak): lint --check-secrets
// resolves a reference of every kind with every backend (env, file, Vault
// latest and pinned, in step env, callback headers and the http trigger),
// and reports the unresolvable ones by reference, in text and JSON, with
// Vault up and sealed, without ever printing a resolved value or the Vault
// token.
func TestLintCheckSecretsNeverPrintsValues(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{}
	value := func(what string) string {
		v := leakValue(t, what)
		secrets[what] = v
		return v
	}
	vs := vaulttest.New(t, vaulttest.Options{})
	vs.Mount("kv", 2)
	vs.Put("kv", "app", map[string]any{"field": value("vault v1")})
	vs.Put("kv", "app", map[string]any{"field": value("vault v2")})
	token := vs.CreateToken(vaulttest.TokenOptions{})
	secrets["vault token"] = token
	secretsDir := t.TempDir()
	for path, what := range map[string]string{"hooks/token": "callback token", "app/db-password": "db password"} {
		p := filepath.Join(secretsDir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(value(what)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"STEP_TOKEN":               value("env step"),
		"TRIGGER_SECRET":           value("env trigger"),
		"CAESIUM_SECRETS_FILE_DIR": secretsDir,
		"CAESIUM_VAULT_ADDR":       vs.URL,
		"CAESIUM_VAULT_TOKEN":      token,
	}
	dir := writeFiles(t, map[string]string{"app.yaml": `apiVersion: v1
kind: Job
metadata: {alias: app}
trigger:
  type: http
  configuration: {path: /hooks/app, secret: "secret://env/TRIGGER_SECRET"}
callbacks:
  - url: https://hooks.example.com/app
    headers:
      Authorization: secret://file/hooks/token
      X-Missing: secret://file/hooks/missing
steps:
  - name: main
    image: alpine:3.20
    env:
      FROM_ENV: secret://env/STEP_TOKEN
      FROM_FILE: secret://file/app/db-password
      FROM_VAULT: secret://vault/kv/app#field
      FROM_VAULT_V1: secret://vault/kv/app#field?version=1
      MISSING_ENV: secret://env/NOT_SET_ANYWHERE
      MISSING_FIELD: secret://vault/kv/app#nofield
      MISSING_VERSION: secret://vault/kv/app#field?version=9
`})
	lint := func(format string) (string, int) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"job", "lint", "--check-secrets", "--format", format, dir},
			func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		return stdout.String() + stderr.String(), exitCode(err, &stderr)
	}
	check := func(when, out string) {
		t.Helper()
		for what, v := range secrets {
			if strings.Contains(out, v) {
				t.Errorf("%s: the output shows the %s:\n%s", when, what, strings.ReplaceAll(out, v, "<"+what+">"))
			}
		}
	}

	missing := []string{"secret://file/hooks/missing", "secret://env/NOT_SET_ANYWHERE", "secret://vault/kv/app#nofield", "secret://vault/kv/app#field?version=9"}
	for _, format := range []string{"text", "json"} {
		out, code := lint(format)
		check("vault up, "+format, out)
		if code != 1 {
			t.Errorf("vault up, %s: exit %d, want 1\n%s", format, code, out)
		}
		for _, ref := range missing {
			if !strings.Contains(out, ref) {
				t.Errorf("vault up, %s: %s is not reported:\n%s", format, ref, out)
			}
		}
		for _, field := range []string{"FROM_ENV", "FROM_FILE", "FROM_VAULT", "Authorization", "trigger.configuration.secret"} {
			if strings.Contains(out, field) {
				t.Errorf("vault up, %s: the resolvable %s is reported:\n%s", format, field, out)
			}
		}
	}

	// Sealed: every Vault reference fails, named, and nothing else changes.
	// The first one waits out its retries; the others are not asked again.
	vs.Fail(http.StatusServiceUnavailable)
	before := vs.Counts()
	out, code := lint("text")
	check("vault sealed", out)
	if code != 1 || !strings.Contains(out, "cannot resolve: secret://vault/") || !strings.Contains(out, "vault unavailable") ||
		!strings.Contains(out, "steps[0].env.FROM_VAULT_V1: not checked: secret://vault/kv/app#field?version=1: the vault backend is unavailable") ||
		strings.Contains(out, "FROM_FILE") {
		t.Errorf("vault sealed: exit %d, want 1 with the Vault references unavailable:\n%s", code, out)
	}
	if got, want := fmt.Sprint(vs.Counts()), fmt.Sprint(before); got == want {
		t.Errorf("vault was not asked at all while sealed")
	}
}
