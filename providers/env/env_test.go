package env_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
)

// The assertion lives in a test so that env does not import secrets.
var _ secrets.Backend = (*env.Env)(nil)

func TestResolve(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"API_TOKEN": "s3cr3t-token",
		"EMPTY":     "",
		"SPACES":    "  padded  \n",
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := []struct {
		name         string
		ref          string
		want         string
		wantErr      string
		wantNotFound bool
	}{
		{name: "set", ref: "secret://env/API_TOKEN", want: "s3cr3t-token"},
		{name: "kept as is", ref: "secret://env/SPACES", want: "  padded  \n"},
		{name: "unset", ref: "secret://env/MISSING", wantErr: "secret://env/MISSING: environment variable MISSING is not set", wantNotFound: true},
		{name: "empty", ref: "secret://env/EMPTY", wantErr: "secret://env/EMPTY: environment variable EMPTY is empty", wantNotFound: true},
		{name: "other backend", ref: "secret://file/API_TOKEN", wantErr: "not an env secret reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, err := schema.ParseSecretRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.New(lookup).Resolve(context.Background(), ref)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve = %q, want error %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				if errors.Is(err, fs.ErrNotExist) != tt.wantNotFound {
					t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, !tt.wantNotFound, tt.wantNotFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHandBuiltRef(t *testing.T) {
	t.Parallel()
	_, err := env.New(func(string) (string, bool) { return "", false }).
		Resolve(context.Background(), schema.SecretRef{Backend: schema.SecretEnv, Name: "X"})
	if err == nil || err.Error() != "secret://env/X: environment variable X is not set" {
		t.Errorf("error = %v", err)
	}
}

func TestNewDefaultsToProcessEnvironment(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("CAESIUM_ENV_TEST_SECRET", "from-the-process")
	ref, err := schema.ParseSecretRef("secret://env/CAESIUM_ENV_TEST_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.New(nil).Resolve(context.Background(), ref)
	if err != nil || got != "from-the-process" {
		t.Errorf("Resolve = %q, %v", got, err)
	}
}
