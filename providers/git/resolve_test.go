package git_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/git"
)

// downSecrets is a secret backend that is unreachable.
type downSecrets struct{}

var errBackendDown = errors.New("vault unavailable: 503 Vault is sealed")

func (downSecrets) Resolve(_ context.Context, ref string) (string, error) {
	return "", errors.Join(errors.New(ref), errBackendDown)
}

// TestSecretBackendDown: an unreachable secret backend is an outage, not a
// configuration error, and the error still names the field.
func TestSecretBackendDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := newRepo(t, git.Config{URL: f.http.url("work"), Dir: t.TempDir(), Auth: git.Auth{Username: httpUser, Password: tokenRef}}, downSecrets{})
	_, err := r.Head(t.Context())
	if err == nil || errors.Is(err, git.ErrConfig) || !errors.Is(err, errBackendDown) || !strings.Contains(err.Error(), "auth.password") {
		t.Fatalf("Head() error = %v, want the backend's outage, naming auth.password, not ErrConfig", err)
	}
}
