package main

import (
	"context"
	"fmt"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/file"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
)

// newSecretResolver builds the resolvers lint --check-secrets uses: the
// environment always, files below dir when given.
func newSecretResolver(getenv func(string) string, dir string) (*secrets.Router, error) {
	lookup := func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
	backends := map[string]secrets.Backend{schema.SecretEnv: env.New(lookup)}
	if dir != "" {
		f, err := file.New(dir)
		if err != nil {
			return nil, fmt.Errorf("--secrets-dir: %w", err)
		}
		backends[schema.SecretFile] = f
	}
	return secrets.New(backends, secrets.Options{}), nil
}

// checkSecretRefs resolves every secret reference of the valid documents
// and reports those that fail, by reference and field, never by value.
func checkSecretRefs(ctx context.Context, r *secrets.Router, docs []*schema.Document) []schema.Diagnostic {
	var diags []schema.Diagnostic
	for _, d := range docs {
		if d.Job == nil {
			continue
		}
		for _, use := range d.Job.SecretRefs() {
			if _, err := r.Resolve(ctx, use.Ref); err != nil {
				p := d.Pos(use.Path)
				diags = append(diags, schema.Diagnostic{
					File: d.File, Line: p.Line, Column: p.Column, Path: use.Path, Severity: schema.SeverityError,
					Message: fmt.Sprintf("cannot resolve: %v", err),
				})
			}
		}
	}
	return diags
}
