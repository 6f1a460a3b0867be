package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/providers/vault"
	"github.com/caesium-io/caesium/providers/vault/vaulttest"
	"github.com/caesium-io/caesium/schema"
)

// The assertion lives in a test so that vault does not import secrets.
var _ secrets.Backend = (*vault.Vault)(nil)

// fixture is a Vault stand-in, a place for credential files, and the log
// lines and error texts a test produced, which its cleanup checks for
// credentials and secret values.
type fixture struct {
	srv *vaulttest.Server
	dir string

	mu     sync.Mutex
	logs   bytes.Buffer
	texts  []string // error messages seen
	values []string // secret values and credentials the test made up
}

func setup(t *testing.T, o vaulttest.Options) *fixture {
	t.Helper()
	f := &fixture{srv: vaulttest.New(t, o), dir: t.TempDir()}
	// Registered before any Vault, so it runs after the Vaults are closed
	// and their last log lines written.
	t.Cleanup(func() { f.checkNoLeak(t) })
	return f
}

// Write implements io.Writer for the slog handler.
func (f *fixture) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs.Write(p)
}

func (f *fixture) logText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs.String()
}

// sensitive registers values that must never appear in an error or a log.
func (f *fixture) sensitive(vs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values = append(f.values, vs...)
}

func (f *fixture) seen(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.texts = append(f.texts, err.Error())
}

func (f *fixture) checkNoLeak(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	texts := append([]string{f.logs.String()}, f.texts...)
	values := append(f.srv.Credentials(), f.values...)
	f.mu.Unlock()
	for _, v := range values {
		if len(v) < 4 {
			continue
		}
		for _, s := range texts {
			if strings.Contains(s, v) {
				t.Errorf("a credential or secret value leaked into %q", s)
			}
		}
	}
}

// vault returns a Vault on f's server, closed when the test ends. Address
// and the log are filled in; retries wait a few milliseconds.
func (f *fixture) vault(t *testing.T, cfg vault.Config) *vault.Vault {
	t.Helper()
	v, err := f.newVault(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

func (f *fixture) newVault(cfg vault.Config) (*vault.Vault, error) {
	if cfg.Address == "" {
		cfg.Address = f.srv.URL
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 2
	}
	log := slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return vault.NewForTest(context.Background(), cfg, log, 5*time.Millisecond)
}

// file writes content to a new file in f.dir and returns its path.
func (f *fixture) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenAuth makes a token without a TTL, like a root token, and the config
// using it. Nothing renews it, so the server's counts are the test's own.
func (f *fixture) tokenAuth() vault.AuthConfig {
	return vault.AuthConfig{Method: vault.AuthToken, Token: f.srv.CreateToken(vaulttest.TokenOptions{})}
}

func (f *fixture) resolve(ctx context.Context, v *vault.Vault, ref string) (string, error) {
	r, err := schema.ParseSecretRef(ref)
	if err != nil {
		return "", err
	}
	got, err := v.Resolve(ctx, r)
	f.seen(err)
	return got, err
}

func (f *fixture) mustResolve(t *testing.T, v *vault.Vault, ref, want string) {
	t.Helper()
	got, err := f.resolve(context.Background(), v, ref)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", ref, err)
	}
	if got != want {
		t.Fatalf("Resolve(%s) = %q, want %q", ref, got, want)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	s := f.srv
	s.Mount("secret", 2)
	s.Mount("kv1", 1)
	s.Mount("legacy", 0)
	f.sensitive("pw-latest-9f2", "old-token-41d", "new-token-77c", "v1-password-3a8", "legacy-pw-5b1", "deleted-val-0c4", "burnt-val-6e2")
	s.Put("secret", "app", map[string]any{
		"password": "pw-latest-9f2",
		"port":     5432,
		"big":      json.Number("12345678901234567890"),
		"ratio":    3.25,
		"enabled":  true,
		"nested":   map[string]any{"a": "b<c>"},
		"list":     []any{1, "x"},
		"empty":    "",
		"nothing":  nil,
	})
	s.Put("secret", "team/db/creds", map[string]any{"password": "pw-latest-9f2"})
	s.Put("secret", "rotating", map[string]any{"token": "old-token-41d"})
	s.Put("secret", "rotating", map[string]any{"token": "new-token-77c"})
	s.Put("secret", "gone", map[string]any{"x": "deleted-val-0c4"})
	s.Delete("secret", "gone")
	s.Put("secret", "burnt", map[string]any{"x": "burnt-val-6e2"})
	s.Put("secret", "burnt", map[string]any{"x": "burnt-val-6e2"})
	s.Destroy("secret", "burnt", 1)
	s.Put("secret", "forbidden", map[string]any{"x": "deleted-val-0c4"})
	s.Deny("secret", "forbidden")
	s.Put("kv1", "app", map[string]any{"password": "v1-password-3a8", "port": 8200})
	s.Put("legacy", "app", map[string]any{"password": "legacy-pw-5b1"})
	v := f.vault(t, vault.Config{Auth: f.tokenAuth()})

	tests := []struct {
		name         string
		ref          string
		want         string
		wantErr      []string // substrings of the error
		wantNotFound bool
		wantDenied   bool
	}{
		{name: "v2 string", ref: "secret://vault/secret/app#password", want: "pw-latest-9f2"},
		{name: "v2 nested path", ref: "secret://vault/secret/team/db/creds#password", want: "pw-latest-9f2"},
		{name: "number", ref: "secret://vault/secret/app#port", want: "5432"},
		{name: "big number keeps its digits", ref: "secret://vault/secret/app#big", want: "12345678901234567890"},
		{name: "float", ref: "secret://vault/secret/app#ratio", want: "3.25"},
		{name: "bool", ref: "secret://vault/secret/app#enabled", want: "true"},
		{name: "object as JSON", ref: "secret://vault/secret/app#nested", want: `{"a":"b<c>"}`},
		{name: "array as JSON", ref: "secret://vault/secret/app#list", want: `[1,"x"]`},
		{name: "latest version", ref: "secret://vault/secret/rotating#token", want: "new-token-77c"},
		{name: "pinned version", ref: "secret://vault/secret/rotating#token?version=1", want: "old-token-41d"},
		{name: "pinned latest", ref: "secret://vault/secret/rotating?version=2#token", want: "new-token-77c"},
		{name: "older version than a destroyed one", ref: "secret://vault/secret/burnt#x?version=2", want: "burnt-val-6e2"},
		{name: "v1", ref: "secret://vault/kv1/app#password", want: "v1-password-3a8"},
		{name: "v1 number", ref: "secret://vault/kv1/app#port", want: "8200"},
		{name: "kv without version option", ref: "secret://vault/legacy/app#password", want: "legacy-pw-5b1"},

		{name: "missing path", ref: "secret://vault/secret/nope#password",
			wantErr: []string{"secret://vault/secret/nope#password", "no secret at secret/nope"}, wantNotFound: true},
		{name: "missing path v1", ref: "secret://vault/kv1/nope#password",
			wantErr: []string{"secret://vault/kv1/nope#password", "no secret at kv1/nope"}, wantNotFound: true},
		{name: "missing field", ref: "secret://vault/secret/app#nope",
			wantErr: []string{"secret://vault/secret/app#nope", `no field "nope"`}, wantNotFound: true},
		{name: "missing field v1", ref: "secret://vault/kv1/app#nope",
			wantErr: []string{"secret://vault/kv1/app#nope", `no field "nope"`}, wantNotFound: true},
		{name: "empty field", ref: "secret://vault/secret/app#empty",
			wantErr: []string{"secret://vault/secret/app#empty", `field "empty" is empty`}, wantNotFound: true},
		{name: "null field", ref: "secret://vault/secret/app#nothing",
			wantErr: []string{`field "nothing" is empty`}, wantNotFound: true},
		{name: "deleted latest version", ref: "secret://vault/secret/gone#x",
			wantErr: []string{"secret://vault/secret/gone#x", "the latest version (1) of secret/gone was deleted"}, wantNotFound: true},
		{name: "deleted pinned version", ref: "secret://vault/secret/gone#x?version=1",
			wantErr: []string{"version 1 of secret/gone was deleted"}, wantNotFound: true},
		{name: "destroyed version", ref: "secret://vault/secret/burnt#x?version=1",
			wantErr: []string{"secret://vault/secret/burnt#x?version=1", "version 1 of secret/burnt was destroyed"}, wantNotFound: true},
		{name: "version that never was", ref: "secret://vault/secret/rotating#token?version=9",
			wantErr: []string{"no version 9 of a secret at secret/rotating"}, wantNotFound: true},
		{name: "version pin on v1", ref: "secret://vault/kv1/app#password?version=2",
			wantErr: []string{"secret://vault/kv1/app#password?version=2", `?version=2 needs a KV version 2 mount, and "kv1" is KV version 1`}},
		{name: "missing mount", ref: "secret://vault/nomount/app#password",
			wantErr: []string{"secret://vault/nomount/app#password", `mount "nomount" does not exist or the token's policies do not allow it`}, wantDenied: true},
		{name: "denied path", ref: "secret://vault/secret/forbidden#x",
			wantErr: []string{"secret://vault/secret/forbidden#x", "403 permission denied"}, wantDenied: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.resolve(context.Background(), v, tt.ref)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Resolve = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want an error", got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.wantNotFound {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.wantNotFound)
			}
			if got := errors.Is(err, vault.ErrPermissionDenied); got != tt.wantDenied {
				t.Errorf("errors.Is(%v, ErrPermissionDenied) = %v, want %v", err, got, tt.wantDenied)
			}
			if errors.Is(err, vault.ErrUnavailable) {
				t.Errorf("errors.Is(%v, ErrUnavailable), want not", err)
			}
			// A missing field lists nothing of what the secret holds.
			for _, other := range []string{"password", "port", "nested", "enabled"} {
				if tt.name == "missing field" && strings.Contains(err.Error(), other) {
					t.Errorf("error %q names field %q of the secret", err, other)
				}
			}
		})
	}

	t.Run("through the router", func(t *testing.T) {
		t.Parallel()
		r := secrets.New(map[string]secrets.Backend{schema.SecretVault: v}, secrets.Options{})
		got, err := r.Resolve(context.Background(), "secret://vault/secret/app#password")
		if err != nil || got != "pw-latest-9f2" {
			t.Fatalf("Resolve = %q, %v", got, err)
		}
		_, err = r.Resolve(context.Background(), "secret://vault/secret/app#nope")
		f.seen(err)
		if !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("errors.Is(%v, secrets.ErrNotFound) = false", err)
		}
		_, err = r.Resolve(context.Background(), "secret://vault/secret/gone#x")
		f.seen(err)
		if !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("errors.Is(%v, secrets.ErrNotFound) = false", err)
		}
	})

	t.Run("reference built by hand", func(t *testing.T) {
		t.Parallel()
		_, err := v.Resolve(context.Background(), schema.SecretRef{Backend: schema.SecretVault, Mount: "secret", Path: "nope", Field: "x", Version: 3})
		f.seen(err)
		if err == nil || !strings.Contains(err.Error(), "secret://vault/secret/nope#x?version=3") {
			t.Fatalf("error %v, want it to name secret://vault/secret/nope#x?version=3", err)
		}
	})

	t.Run("other backend", func(t *testing.T) {
		t.Parallel()
		_, err := f.resolve(context.Background(), v, "secret://env/API_TOKEN")
		if err == nil || !strings.Contains(err.Error(), "not a vault secret reference") {
			t.Fatalf("error %v, want not a vault secret reference", err)
		}
	})
}

func TestMountVersionCached(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "a", map[string]any{"x": "value-a-1234"})
	f.srv.Put("secret", "b", map[string]any{"x": "value-b-1234"})
	v := f.vault(t, vault.Config{Auth: f.tokenAuth()})
	for range 3 {
		f.mustResolve(t, v, "secret://vault/secret/a#x", "value-a-1234")
		f.mustResolve(t, v, "secret://vault/secret/b#x", "value-b-1234")
	}
	if got := f.srv.Counts().MountReads; got != 1 {
		t.Errorf("mount read %d times, want once", got)
	}
}

func TestAuthMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		auth      func(t *testing.T, f *fixture) vault.AuthConfig
		wantLogin string // auth mount whose login count must be 1; "" for token auth
	}{
		{name: "token", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			return vault.AuthConfig{Token: f.srv.CreateToken(vaulttest.TokenOptions{TTL: time.Hour, Renewable: true})}
		}},
		{name: "root-like token without TTL", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			return vault.AuthConfig{Method: vault.AuthToken, Token: f.srv.CreateToken(vaulttest.TokenOptions{})}
		}},
		{name: "token file", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			tok := f.srv.CreateToken(vaulttest.TokenOptions{TTL: time.Hour, Renewable: true})
			return vault.AuthConfig{Method: vault.AuthToken, TokenFile: f.file(t, "token", tok+"\n")}
		}},
		{name: "approle secret id file", wantLogin: "approle", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-5f1e", SecretID: "secret-id-c0a4"})
			return vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-5f1e", SecretIDFile: f.file(t, "secret-id", "secret-id-c0a4\n")}
		}},
		{name: "approle role id file and custom mount", wantLogin: "ci-approle", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			f.srv.AddAppRole(vaulttest.AppRole{Mount: "ci-approle", RoleID: "role-id-77aa", SecretID: "secret-id-91bb"})
			return vault.AuthConfig{Method: vault.AuthAppRole, MountPath: "/ci-approle/",
				RoleIDFile:   f.file(t, "role-id", "role-id-77aa\n"),
				SecretIDFile: f.file(t, "secret-id", "secret-id-91bb")}
		}},
		{name: "approle wrapped secret id file", wantLogin: "approle", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-5f1e"})
			wt := f.srv.WrapSecretID("approle", "caesium", 5*time.Minute)
			return vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-5f1e", SecretIDFile: f.file(t, "wrapped", wt+"\n"), WrappedSecretID: true}
		}},
		{name: "kubernetes", wantLogin: "kubernetes", auth: func(t *testing.T, f *fixture) vault.AuthConfig {
			f.srv.AddKubernetesRole(vaulttest.KubernetesRole{Role: "caesium-agent", JWT: "eyJhbGciOi.sa-jwt-1"})
			return vault.AuthConfig{Method: vault.AuthKubernetes, Role: "caesium-agent", ServiceAccountTokenPath: f.file(t, "sa-token", "eyJhbGciOi.sa-jwt-1")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, vaulttest.Options{})
			f.srv.Mount("secret", 2)
			f.srv.Put("secret", "app", map[string]any{"password": "pw-3c9d1"})
			f.sensitive("pw-3c9d1")
			v := f.vault(t, vault.Config{Auth: tt.auth(t, f)})
			f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-3c9d1")
			c := f.srv.Counts()
			if tt.wantLogin != "" && c.Logins[tt.wantLogin] != 1 {
				t.Errorf("logins = %v, want one at %s", c.Logins, tt.wantLogin)
			}
			if tt.wantLogin == "" && c.LookupSelf < 1 {
				t.Errorf("token auth did not look its token up")
			}
		})
	}
}

// Not parallel: t.Setenv.
func TestAppRoleSecretIDFromEnv(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "wrapped"}[wrapped], func(t *testing.T) {
			f := setup(t, vaulttest.Options{})
			f.srv.Mount("secret", 2)
			f.srv.Put("secret", "app", map[string]any{"password": "pw-env-7d2e"})
			f.sensitive("pw-env-7d2e")
			f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-env-1"})
			sid := f.srv.NewSecretID("approle", "caesium")
			if wrapped {
				sid = f.srv.WrapSecretID("approle", "caesium", time.Minute)
			}
			t.Setenv("CAESIUM_TEST_VAULT_SECRET_ID", sid)
			v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-env-1",
				SecretIDEnv: "CAESIUM_TEST_VAULT_SECRET_ID", WrappedSecretID: wrapped}})
			f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-env-7d2e")
			if got := f.srv.Counts().Logins["approle"]; got != 1 {
				t.Errorf("approle logins = %d, want 1", got)
			}
		})
	}
}

// A wrapping token is single-use: it is unwrapped once and the secret id
// kept for later logins, until a new wrapping token is delivered.
func TestWrappedSecretIDUnwrappedOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "app", map[string]any{"password": "pw-wrap-01f"})
	f.sensitive("pw-wrap-01f")
	f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-w1", TokenTTL: time.Hour})

	// Obtain the wrapping token as an orchestrator would: through the API
	// with X-Vault-Wrap-TTL, which answers with wrap_info only.
	admin := f.srv.CreateToken(vaulttest.TokenOptions{})
	wt := wrappedSecretIDOverHTTP(t, f.srv.URL, admin)
	wrappedFile := f.file(t, "wrapped-secret-id", wt)

	v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-w1", SecretIDFile: wrappedFile, WrappedSecretID: true}})
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-wrap-01f")

	// The token expires: Vault refuses it, and the Vault logs in again with
	// the secret id it unwrapped before.
	f.srv.Advance(2 * time.Hour)
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-wrap-01f")
	c := f.srv.Counts()
	if c.Unwraps != 1 || c.Logins["approle"] != 2 {
		t.Fatalf("unwraps = %d, approle logins = %d; want 1 and 2", c.Unwraps, c.Logins["approle"])
	}

	// A new wrapping token is delivered: it is unwrapped at the next login.
	f.srv.Advance(2 * time.Hour)
	f.file(t, "wrapped-secret-id", f.srv.WrapSecretID("approle", "caesium", time.Minute))
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-wrap-01f")
	c = f.srv.Counts()
	if c.Unwraps != 2 || c.Logins["approle"] != 3 {
		t.Fatalf("unwraps = %d, approle logins = %d; want 2 and 3", c.Unwraps, c.Logins["approle"])
	}

	// A second process given the used wrapping token cannot log in, and
	// says why without showing the token.
	used := f.file(t, "used", wt)
	v2 := f.vault(t, vault.Config{MaxRetries: -1, Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-w1", SecretIDFile: used, WrappedSecretID: true}})
	_, err := f.resolve(context.Background(), v2, "secret://vault/secret/app#password")
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("error %v, want the wrapping token reported as used", err)
	}
	if errors.Is(err, vault.ErrUnavailable) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v: a used wrapping token is neither unavailable nor not found", err)
	}
}

// wrappedSecretIDOverHTTP asks the server for a wrapped secret id with the
// SDK, which parses wrap_info.
func wrappedSecretIDOverHTTP(t *testing.T, addr, token string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, err := api.NewClient(&api.Config{Address: addr, HttpClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	c.SetWrappingLookupFunc(func(op, path string) string {
		if strings.HasSuffix(path, "/secret-id") {
			return "5m"
		}
		return ""
	})
	s, err := c.Logical().Write("auth/approle/role/caesium/secret-id", nil)
	if err != nil {
		t.Fatalf("secret-id: %v", err)
	}
	if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" || s.WrapInfo.TTL != 300 || s.Data != nil {
		t.Fatalf("secret-id answered %+v, want only wrap_info with a token and a TTL of 300", s)
	}
	if s.WrapInfo.CreationPath != "auth/approle/role/caesium/secret-id" {
		t.Errorf("wrap_info.creation_path = %q", s.WrapInfo.CreationPath)
	}
	return s.WrapInfo.Token
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{Namespace: "team-a"})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "app", map[string]any{"password": "pw-ns-4a1"})
	f.sensitive("pw-ns-4a1")
	f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-ns", SecretID: "secret-id-ns-77"})
	auth := vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-ns", SecretIDFile: f.file(t, "sid", "secret-id-ns-77")}

	v := f.vault(t, vault.Config{Namespace: "team-a/", Auth: auth})
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-ns-4a1")
	if d := f.srv.Counts().Denied; d != 0 {
		t.Fatalf("%d requests denied with the namespace set", d)
	}

	root := f.vault(t, vault.Config{Auth: auth})
	_, err := f.resolve(context.Background(), root, "secret://vault/secret/app#password")
	if err == nil {
		t.Fatal("Resolve without the namespace succeeded")
	}
	if f.srv.Counts().Denied == 0 {
		t.Error("the server saw no request outside its namespace")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{TLS: true})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "app", map[string]any{"password": "pw-tls-8e3"})
	f.sensitive("pw-tls-8e3")
	ca := f.file(t, "ca.pem", string(f.srv.CACertPEM()))

	v := f.vault(t, vault.Config{CACert: ca, Auth: f.tokenAuth()})
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-tls-8e3")

	t.Run("without the CA", func(t *testing.T) {
		t.Parallel()
		v := f.vault(t, vault.Config{Auth: f.tokenAuth()})
		_, err := f.resolve(context.Background(), v, "secret://vault/secret/app#password")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v, want a certificate error", err)
		}
		if errors.Is(err, vault.ErrUnavailable) {
			t.Errorf("error %v: a certificate Vault's CA does not sign is not retried as unavailable", err)
		}
	})

	t.Run("bad CA file", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{f.file(t, "not-a-cert.pem", "hello"), filepath.Join(f.dir, "missing.pem")} {
			if _, err := f.newVault(vault.Config{CACert: p, Auth: f.tokenAuth()}); err == nil {
				t.Errorf("New with CA file %s succeeded", p)
			}
		}
	})
}

// The token's renewals are capped by its max TTL; when the LifetimeWatcher
// gives up, the Vault logs in afresh. Real time: Vault's TTLs are whole
// seconds.
func TestRenewalThenRelogin(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "app", map[string]any{"password": "pw-ttl-2b7"})
	f.sensitive("pw-ttl-2b7")
	f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-ttl", SecretID: "secret-id-ttl-55", TokenTTL: 2 * time.Second, TokenMaxTTL: 3 * time.Second})
	v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-ttl", SecretIDFile: f.file(t, "sid", "secret-id-ttl-55")}})

	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-ttl-2b7")
	first := f.srv.LastReadToken()
	waitFor(t, 15*time.Second, "a renewal and a second login", func() bool {
		c := f.srv.Counts()
		return c.Renewals >= 1 && c.Logins["approle"] >= 2
	})
	// The server counts the login before the client has the token.
	waitFor(t, 5*time.Second, "a read with the new token", func() bool {
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-ttl-2b7")
		return f.srv.LastReadToken() != first
	})
	// Whether the watcher saw the max TTL coming or, on a busy machine, its
	// last renewal came too late, it is renewal that ended, not a refused
	// read, that led to the new login.
	if logs := f.logText(); !strings.Contains(logs, "vault token cannot be renewed further") && !strings.Contains(logs, "vault token renewal failed") {
		t.Errorf("no log line about renewal ending:\n%s", logs)
	}
}

// A token that expired without the Vault noticing (Vault was away, the
// clock jumped) is refused; the Vault checks it, logs in again and reads.
func TestExpiredTokenRelogin(t *testing.T) {
	t.Parallel()
	t.Run("approle", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vaulttest.Options{})
		f.srv.Mount("secret", 2)
		f.srv.Put("secret", "app", map[string]any{"password": "pw-exp-1"})
		f.sensitive("pw-exp-1")
		f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-exp", SecretID: "secret-id-exp-9", TokenTTL: time.Hour})
		v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-exp", SecretIDFile: f.file(t, "sid", "secret-id-exp-9")}})
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-exp-1")
		f.srv.Advance(2 * time.Hour)
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-exp-1")
		if c := f.srv.Counts(); c.Logins["approle"] != 2 {
			t.Errorf("approle logins = %d, want 2", c.Logins["approle"])
		}
	})
	t.Run("kubernetes with a rotated service account token", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vaulttest.Options{})
		f.srv.Mount("secret", 2)
		f.srv.Put("secret", "app", map[string]any{"password": "pw-k8s-2"})
		f.sensitive("pw-k8s-2")
		f.srv.AddKubernetesRole(vaulttest.KubernetesRole{Role: "agent", JWT: "jwt.first.0001"})
		sa := f.file(t, "token", "jwt.first.0001")
		v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthKubernetes, Role: "agent", ServiceAccountTokenPath: sa}})
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-k8s-2")
		// The kubelet rotates the projected token; Vault accepts the new one.
		f.srv.AddKubernetesRole(vaulttest.KubernetesRole{Role: "agent", JWT: "jwt.second.0002"})
		f.file(t, "token", "jwt.second.0002")
		f.srv.Advance(2 * time.Hour)
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-k8s-2")
		if c := f.srv.Counts(); c.Logins["kubernetes"] != 2 {
			t.Errorf("kubernetes logins = %d, want 2", c.Logins["kubernetes"])
		}
	})
	t.Run("revoked token, new token file", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vaulttest.Options{})
		f.srv.Mount("secret", 2)
		f.srv.Put("secret", "app", map[string]any{"password": "pw-rev-3"})
		f.sensitive("pw-rev-3")
		old := f.srv.CreateToken(vaulttest.TokenOptions{TTL: time.Hour, Renewable: true})
		tf := f.file(t, "token", old)
		v := f.vault(t, vault.Config{Auth: vault.AuthConfig{TokenFile: tf}})
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-rev-3")
		f.srv.RevokeToken(old)

		_, err := f.resolve(context.Background(), v, "secret://vault/secret/app#password")
		if err == nil || !strings.Contains(err.Error(), "vault login (token)") {
			t.Fatalf("error %v, want the token login to fail", err)
		}
		f.file(t, "token", f.srv.CreateToken(vaulttest.TokenOptions{TTL: time.Hour, Renewable: true}))
		f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-rev-3")
	})
	t.Run("denied read does not log in again", func(t *testing.T) {
		t.Parallel()
		f := setup(t, vaulttest.Options{})
		f.srv.Mount("secret", 2)
		f.srv.Put("secret", "app", map[string]any{"password": "pw-den-4"})
		f.srv.Deny("secret", "app")
		f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-den", SecretID: "secret-id-den-1"})
		v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-den", SecretIDFile: f.file(t, "sid", "secret-id-den-1")}})
		for range 3 {
			_, err := f.resolve(context.Background(), v, "secret://vault/secret/app#password")
			if !errors.Is(err, vault.ErrPermissionDenied) {
				t.Fatalf("error %v, want ErrPermissionDenied", err)
			}
		}
		if c := f.srv.Counts(); c.Logins["approle"] != 1 {
			t.Errorf("approle logins = %d, want 1: a policy refusal is no reason to log in again", c.Logins["approle"])
		}
	})
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ref := "secret://vault/secret/app#password"
	prepare := func(t *testing.T) *fixture {
		f := setup(t, vaulttest.Options{})
		f.srv.Mount("secret", 2)
		f.srv.Put("secret", "app", map[string]any{"password": "pw-down-6"})
		f.sensitive("pw-down-6")
		return f
	}

	t.Run("sealed: bounded retries, then recovery", func(t *testing.T) {
		t.Parallel()
		f := prepare(t)
		v := f.vault(t, vault.Config{MaxRetries: 2, Auth: f.tokenAuth()})
		f.mustResolve(t, v, ref, "pw-down-6")
		f.srv.Fail(http.StatusServiceUnavailable)
		_, err := f.resolve(context.Background(), v, ref)
		if !errors.Is(err, vault.ErrUnavailable) {
			t.Fatalf("error %v, want ErrUnavailable", err)
		}
		for _, w := range []string{ref, "503 Vault is sealed", "after 3 attempt(s)"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q, want it to contain %q", err, w)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v: unavailable is not not-found", err)
		}
		if got := f.srv.Counts().Failed; got != 3 {
			t.Errorf("%d failed requests, want 3 (one try and MaxRetries 2)", got)
		}
		f.srv.Fail(0)
		f.mustResolve(t, v, ref, "pw-down-6")
	})

	t.Run("down at start", func(t *testing.T) {
		t.Parallel()
		f := prepare(t)
		f.srv.Fail(http.StatusBadGateway)
		v := f.vault(t, vault.Config{Auth: f.tokenAuth()}) // does not fail
		_, err := f.resolve(context.Background(), v, ref)
		if !errors.Is(err, vault.ErrUnavailable) || !strings.Contains(err.Error(), "vault login (token)") {
			t.Fatalf("error %v, want the login to fail with ErrUnavailable", err)
		}
		f.srv.Fail(0)
		f.mustResolve(t, v, ref, "pw-down-6")
	})

	t.Run("stopped", func(t *testing.T) {
		t.Parallel()
		f := prepare(t)
		v := f.vault(t, vault.Config{Auth: f.tokenAuth()})
		f.mustResolve(t, v, ref, "pw-down-6")
		f.srv.Close()
		_, err := f.resolve(context.Background(), v, ref)
		if !errors.Is(err, vault.ErrUnavailable) {
			t.Fatalf("error %v, want ErrUnavailable", err)
		}
	})

	t.Run("everything else goes on", func(t *testing.T) {
		t.Parallel()
		f := prepare(t)
		v := f.vault(t, vault.Config{Auth: f.tokenAuth()})
		f.srv.Fail(http.StatusServiceUnavailable)
		r := secrets.New(map[string]secrets.Backend{
			schema.SecretVault: v,
			schema.SecretEnv:   env.New(func(string) (string, bool) { return "env-value-1", true }),
		}, secrets.Options{})
		_, err := r.Resolve(context.Background(), ref)
		f.seen(err)
		if !errors.Is(err, vault.ErrUnavailable) || errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("vault error %v, want ErrUnavailable and not ErrNotFound", err)
		}
		if got, err := r.Resolve(context.Background(), "secret://env/API_TOKEN"); err != nil || got != "env-value-1" {
			t.Fatalf("env Resolve = %q, %v", got, err)
		}
	})
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Fail(http.StatusServiceUnavailable)
	log := slog.New(slog.NewJSONHandler(f, nil))
	// Backoff from a minute: only cancellation can end the wait in time.
	v, err := vault.NewForTest(context.Background(), vault.Config{Address: f.srv.URL, MaxRetries: 5, Auth: f.tokenAuth()}, log, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.resolve(ctx, v, "secret://vault/secret/app#password")
		done <- err
	}()
	// Cancel once Resolve's first attempt (and the background login's)
	// failed and the backoff began.
	waitFor(t, 30*time.Second, "two failed attempts", func() bool { return f.srv.Counts().Failed >= 2 })
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if !errors.Is(err, vault.ErrUnavailable) {
			t.Errorf("error %v, want it to say Vault was unavailable too", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Resolve kept waiting after its context was canceled")
	}
}

func TestConcurrentResolve(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Mount("kv1", 1)
	want := map[string]string{}
	for i := range 8 {
		p := "app" + string(rune('a'+i))
		val := "value-" + p + "-xyz"
		f.srv.Put("secret", p, map[string]any{"v": val})
		f.srv.Put("kv1", p, map[string]any{"v": val})
		want["secret://vault/secret/"+p+"#v"] = val
		want["secret://vault/kv1/"+p+"#v"] = val
		f.sensitive(val)
	}
	f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-cc", SecretID: "secret-id-cc-4"})
	v := f.vault(t, vault.Config{Auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-cc", SecretIDFile: f.file(t, "sid", "secret-id-cc-4")}})

	var wg sync.WaitGroup
	errs := make(chan error, 32*len(want))
	for range 32 {
		wg.Go(func() {
			for ref, w := range want {
				got, err := f.resolve(context.Background(), v, ref)
				if err != nil {
					errs <- err
				} else if got != w {
					errs <- errors.New(ref + ": wrong value")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := f.srv.Counts().Logins["approle"]; got != 1 {
		t.Errorf("approle logins = %d, want 1: concurrent callers share one login", got)
	}
}

func TestLoginErrorsNameNoCredential(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.AddAppRole(vaulttest.AppRole{RoleID: "role-id-good", SecretID: "secret-id-good-1"})
	f.srv.AddKubernetesRole(vaulttest.KubernetesRole{Role: "agent", JWT: "jwt.good.0001"})
	f.sensitive("secret-id-wrong-2", "jwt.wrong.0002", "hvs.not-a-real-token-0003")
	tests := []struct {
		name string
		auth vault.AuthConfig
		want string
	}{
		{name: "wrong secret id", want: "400 invalid role or secret ID",
			auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-good", SecretIDFile: f.file(t, "wrong-sid", "secret-id-wrong-2")}},
		{name: "missing secret id file", want: "no such file",
			auth: vault.AuthConfig{Method: vault.AuthAppRole, RoleID: "role-id-good", SecretIDFile: filepath.Join(f.dir, "nope")}},
		{name: "unknown kubernetes role", want: `invalid role name "other"`,
			auth: vault.AuthConfig{Method: vault.AuthKubernetes, Role: "other", ServiceAccountTokenPath: f.file(t, "jwt", "jwt.good.0001")}},
		{name: "wrong service account token", want: "403 permission denied",
			auth: vault.AuthConfig{Method: vault.AuthKubernetes, Role: "agent", ServiceAccountTokenPath: f.file(t, "wrong-jwt", "jwt.wrong.0002")}},
		{name: "unknown token", want: "403 permission denied",
			auth: vault.AuthConfig{Token: "hvs.not-a-real-token-0003"}},
		{name: "empty token file", want: "the file is empty",
			auth: vault.AuthConfig{TokenFile: f.file(t, "empty-token", "\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := f.vault(t, vault.Config{Auth: tt.auth})
			_, err := f.resolve(context.Background(), v, "secret://vault/secret/app#password")
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			if !strings.Contains(err.Error(), "vault login ("+tt.auth.Method) && tt.auth.Method != "" {
				t.Errorf("error %q does not say the login failed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if errors.Is(err, vault.ErrUnavailable) || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v: a refused login is neither unavailable nor not found", err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     vault.Config
		wantErr string
	}{
		{name: "no address", cfg: vault.Config{Auth: vault.AuthConfig{Token: "x"}}, wantErr: "vault address"},
		{name: "not a URL", cfg: vault.Config{Address: "vault:8200", Auth: vault.AuthConfig{Token: "x"}}, wantErr: "vault address"},
		{name: "no token", cfg: vault.Config{Address: "http://127.0.0.1:1"}, wantErr: "exactly one of token and token file"},
		{name: "token and file", cfg: vault.Config{Address: "http://127.0.0.1:1", Auth: vault.AuthConfig{Token: "x", TokenFile: "/f"}}, wantErr: "exactly one of token and token file"},
		{name: "approle without secret id", cfg: vault.Config{Address: "http://127.0.0.1:1", Auth: vault.AuthConfig{Method: "approle", RoleID: "r"}}, wantErr: "secret id file and secret id env"},
		{name: "approle without role id", cfg: vault.Config{Address: "http://127.0.0.1:1", Auth: vault.AuthConfig{Method: "approle", SecretIDEnv: "X"}}, wantErr: "role id and role id file"},
		{name: "kubernetes without role", cfg: vault.Config{Address: "http://127.0.0.1:1", Auth: vault.AuthConfig{Method: "kubernetes"}}, wantErr: "set the role"},
		{name: "unknown method", cfg: vault.Config{Address: "http://127.0.0.1:1", Auth: vault.AuthConfig{Method: "userpass"}}, wantErr: `auth method "userpass"`},
		{name: "negative timeout", cfg: vault.Config{Address: "http://127.0.0.1:1", Timeout: -time.Second, Auth: vault.AuthConfig{Token: "x"}}, wantErr: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := vault.New(context.Background(), tt.cfg, nil)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	f := setup(t, vaulttest.Options{})
	f.srv.Mount("secret", 2)
	f.srv.Put("secret", "app", map[string]any{"password": "pw-close-1"})
	f.sensitive("pw-close-1")
	v, err := f.newVault(vault.Config{Auth: f.tokenAuth()})
	if err != nil {
		t.Fatal(err)
	}
	f.mustResolve(t, v, "secret://vault/secret/app#password", "pw-close-1")
	v.Close()
	v.Close()
	if _, err := f.resolve(context.Background(), v, "secret://vault/secret/app#password"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Resolve after Close: %v, want closed", err)
	}

	// Canceling New's context stops the background work too.
	ctx, cancel := context.WithCancel(context.Background())
	v2, err := vault.New(ctx, vault.Config{Address: f.srv.URL, Auth: f.tokenAuth()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	v2.Close()
}
