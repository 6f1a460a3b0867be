package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/file"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/providers/vault"
	"github.com/caesium-io/caesium/schema"
)

// newSecretResolver builds the resolvers lint --check-secrets uses: the
// environment always, files below dir when given, and Vault when
// CAESIUM_VAULT_ADDR is set (token auth from CAESIUM_VAULT_TOKEN, namespace
// from CAESIUM_VAULT_NAMESPACE, CA from CAESIUM_VAULT_CACERT). The token is
// deliberately not a flag, so it never shows in ps. The returned func
// releases the Vault client.
func newSecretResolver(ctx context.Context, getenv func(string) string, dir string) (*secrets.Router, func(), error) {
	lookup := func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
	backends := map[string]secrets.Backend{schema.SecretEnv: env.New(lookup)}
	if dir != "" {
		f, err := file.New(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("--secrets-dir: %w", err)
		}
		backends[schema.SecretFile] = f
	}
	closeFn := func() {}
	if addr := getenv("CAESIUM_VAULT_ADDR"); addr != "" {
		token := getenv("CAESIUM_VAULT_TOKEN")
		if token == "" {
			return nil, nil, fmt.Errorf("CAESIUM_VAULT_ADDR is set but CAESIUM_VAULT_TOKEN is not")
		}
		v, err := vault.New(ctx, vault.Config{
			Address: addr, Namespace: getenv("CAESIUM_VAULT_NAMESPACE"), CACert: getenv("CAESIUM_VAULT_CACERT"),
			Auth: vault.AuthConfig{Method: "token", Token: token},
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, nil, fmt.Errorf("vault: %w", err)
		}
		backends[schema.SecretVault] = v
		closeFn = v.Close
	}
	return secrets.New(backends, secrets.Options{}), closeFn, nil
}

// checkSecretRefs resolves every secret reference of the valid documents
// and reports those that fail, by reference and field, never by value.
//
// Once a backend is found unavailable (Vault down or sealed), its remaining
// references are reported without asking it again: each attempt would wait
// out its retries.
func checkSecretRefs(ctx context.Context, r *secrets.Router, docs []*schema.Document) []schema.Diagnostic {
	var diags []schema.Diagnostic
	down := map[string]bool{}
	for _, d := range docs {
		if d.Job == nil {
			continue
		}
		for _, use := range d.Job.SecretRefs() {
			backend := ""
			if ref, err := schema.ParseSecretRef(use.Ref); err == nil {
				backend = ref.Backend
			}
			var msg string
			if down[backend] {
				msg = fmt.Sprintf("not checked: %s: the %s backend is unavailable", use.Ref, backend)
			} else if _, err := r.Resolve(ctx, use.Ref); err != nil {
				msg = fmt.Sprintf("cannot resolve: %v", err)
				if errors.Is(err, vault.ErrUnavailable) {
					down[backend] = true
				}
			} else {
				continue
			}
			p := d.Pos(use.Path)
			diags = append(diags, schema.Diagnostic{
				File: d.File, Line: p.Line, Column: p.Column, Path: use.Path, Severity: schema.SeverityError, Message: msg,
			})
		}
	}
	return diags
}
