package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/vault/vaulttest"
)

func TestLintCheckSecrets(t *testing.T) {
	t.Parallel()
	const (
		envValue  = "env-value-5b8c1e"
		fileValue = "file-value-9d2f07"
	)
	secretsDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secretsDir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secretsDir, "db", "password"), []byte(fileValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{"job.yaml": `apiVersion: v1
kind: Job
metadata: {alias: secrets-demo}
trigger:
  type: http
  configuration: {path: /hooks/demo, secret: "secret://env/HOOK_SECRET"}
callbacks:
  - url: https://hooks.example.com/x
    headers: {Authorization: "secret://file/db/missing"}
steps:
  - name: a
    image: alpine:3.20
    env:
      DB_PASSWORD: secret://file/db/password
      API_TOKEN: secret://env/UNSET_TOKEN
      VAULT_ONE: secret://vault/kv/app#token
`})
	env := map[string]string{"HOOK_SECRET": envValue, "CAESIUM_SECRETS_FILE_DIR": secretsDir}
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"job", "lint", "--check-secrets", dir}, getenv, strings.NewReader(""), &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"job.yaml:9:15: callbacks[0].headers.Authorization: cannot resolve: secret://file/db/missing",
		"steps[0].env.API_TOKEN: cannot resolve: secret://env/UNSET_TOKEN",
		"steps[0].env.VAULT_ONE: cannot resolve: secret://vault/kv/app#token: no vault backend is configured",
		"1 file, 1 job: 3 errors",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, resolvable := range []string{"HOOK_SECRET", "DB_PASSWORD"} {
		if strings.Contains(out, resolvable) {
			t.Errorf("a resolvable reference (%s) was reported:\n%s", resolvable, out)
		}
	}
	for _, value := range []string{envValue, fileValue} {
		if strings.Contains(out+stderr.String(), value) {
			t.Errorf("a secret value was printed:\n%s%s", out, stderr.String())
		}
	}

	// Without --check-secrets the same file is valid: references are only
	// resolved when asked.
	if res := runCLI(t, nil, "job", "lint", dir); res.code != 0 {
		t.Errorf("plain lint: exit %d\n%s", res.code, res.stdout)
	}
}

// TestLintCheckSecretsVault resolves vault references against an in-process
// server that follows Vault's HTTP API (no Vault server can run here).
func TestLintCheckSecretsVault(t *testing.T) {
	t.Parallel()
	srv := vaulttest.New(t, vaulttest.Options{})
	srv.Mount("kv", 2)
	const value = "vault-value-71c3aa"
	srv.Put("kv", "app", map[string]any{"token": value})
	token := srv.CreateToken(vaulttest.TokenOptions{})
	dir := writeFiles(t, map[string]string{"job.yaml": `apiVersion: v1
kind: Job
metadata: {alias: vault-demo}
steps:
  - name: a
    image: alpine:3.20
    env:
      PRESENT: secret://vault/kv/app#token
      NO_FIELD: secret://vault/kv/app#password
      NO_PATH: secret://vault/kv/nothing-here#token
`})
	env := map[string]string{"CAESIUM_VAULT_ADDR": srv.URL, "CAESIUM_VAULT_TOKEN": token}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"job", "lint", "--check-secrets", dir}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	if code := exitCode(err, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"steps[0].env.NO_FIELD: cannot resolve: secret://vault/kv/app#password", "steps[0].env.NO_PATH: cannot resolve: secret://vault/kv/nothing-here#token", "2 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRESENT") || strings.Contains(out+stderr.String(), value) || strings.Contains(out+stderr.String(), token) {
		t.Errorf("output reports a resolvable reference or leaks a value or token:\n%s%s", out, stderr.String())
	}
}
