package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/file"
	"github.com/caesium-io/caesium/providers/git"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
)

// Asserted in a test so that the router does not import providers/git.
var _ git.Resolver = (*secrets.Router)(nil)

// fake is a Backend over a map of reference to value. A missing key is
// "not found", the way real backends report it.
type fake struct {
	mu     sync.Mutex
	values map[string]string
	err    error // returned for every reference when set
	calls  atomic.Int64
}

func (f *fake) Resolve(ctx context.Context, ref schema.SecretRef) (string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", fmt.Errorf("%s: %w", ref, f.err)
	}
	v, ok := f.values[ref.String()]
	if !ok {
		return "", fmt.Errorf("%s: no such secret: %w", ref, fs.ErrNotExist)
	}
	return v, nil
}

func (f *fake) set(ref, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[ref] = v
}

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	router *secrets.Router
	env    *fake
	file   *fake
	clock  *clock
}

func setup(t testing.TB, ttl time.Duration) fixture {
	t.Helper()
	fx := fixture{
		env: &fake{values: map[string]string{
			"secret://env/API_TOKEN": "env-token-value",
			"secret://env/EMPTY":     "",
		}},
		file: &fake{values: map[string]string{
			"secret://file/db/password": "file-password-value",
		}},
		clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	fx.router = secrets.New(map[string]secrets.Backend{
		schema.SecretEnv:   fx.env,
		schema.SecretFile:  fx.file,
		schema.SecretVault: nil, // a nil backend counts as unconfigured
	}, secrets.Options{CacheTTL: ttl, Now: fx.clock.Now})
	return fx
}

var errUnavailable = errors.New("connection refused")

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		ref          string
		unavailable  bool // the file backend fails
		want         string
		wantErr      string // the whole message
		wantIs       []error
		wantNotIs    []error
		wantNoEcho   string // must not appear in the error
		wantRefInErr string // *Error.Ref
	}{
		{name: "env", ref: "secret://env/API_TOKEN", want: "env-token-value"},
		{name: "file", ref: "secret://file/db/password", want: "file-password-value"},
		{
			name:         "not found",
			ref:          "secret://env/MISSING",
			wantErr:      "secret://env/MISSING: no such secret: file does not exist",
			wantIs:       []error{secrets.ErrNotFound, fs.ErrNotExist},
			wantNotIs:    []error{secrets.ErrNoBackend},
			wantRefInErr: "secret://env/MISSING",
		},
		{
			name:         "empty value refused",
			ref:          "secret://env/EMPTY",
			wantErr:      "secret://env/EMPTY: secret not found: the env backend returned an empty value",
			wantIs:       []error{secrets.ErrNotFound},
			wantRefInErr: "secret://env/EMPTY",
		},
		{
			name:         "unavailable",
			ref:          "secret://file/db/password",
			unavailable:  true,
			wantErr:      "secret://file/db/password: connection refused",
			wantIs:       []error{errUnavailable},
			wantNotIs:    []error{secrets.ErrNotFound, secrets.ErrNoBackend},
			wantRefInErr: "secret://file/db/password",
		},
		{
			name:         "unconfigured backend",
			ref:          "secret://vault/kv/app#token",
			wantErr:      "secret://vault/kv/app#token: no vault backend is configured",
			wantIs:       []error{secrets.ErrNoBackend},
			wantNotIs:    []error{secrets.ErrNotFound},
			wantRefInErr: "secret://vault/kv/app#token",
		},
		{
			name:         "unknown backend",
			ref:          "secret://aws/thing",
			wantErr:      `secret reference "secret://aws/thing": unknown backend "aws"; use env, file or vault`,
			wantNotIs:    []error{secrets.ErrNotFound, secrets.ErrNoBackend},
			wantRefInErr: "secret://aws/thing",
		},
		{
			name:         "dot dot refused by the parser",
			ref:          "secret://file/../etc/passwd",
			wantErr:      `secret reference "secret://file/../etc/passwd": file paths may not contain ..`,
			wantRefInErr: "secret://file/../etc/passwd",
		},
		{
			name:       "literal is not echoed",
			ref:        "hunter2-literal-password",
			wantErr:    "not a secret reference; write secret://env/NAME, secret://file/PATH or secret://vault/MOUNT/PATH#FIELD",
			wantNoEcho: "hunter2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t, 0)
			if tt.unavailable {
				fx.file.err = errUnavailable
			}
			got, err := fx.router.Resolve(context.Background(), tt.ref)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got != tt.want {
					t.Errorf("Resolve = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want error %q", got, tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error\n got %q\nwant %q", err, tt.wantErr)
			}
			var se *secrets.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *secrets.Error", err)
			}
			if se.Ref != tt.wantRefInErr {
				t.Errorf("Error.Ref = %q, want %q", se.Ref, tt.wantRefInErr)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false", target)
				}
			}
			for _, target := range tt.wantNotIs {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = true", target)
				}
			}
			if tt.wantNoEcho != "" && strings.Contains(err.Error(), tt.wantNoEcho) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

func TestErrorNamesRefOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *secrets.Error
		want string
	}{
		{name: "cause without ref", err: &secrets.Error{Ref: "secret://env/A", Err: errors.New("boom")}, want: "secret://env/A: boom"},
		{name: "cause with ref", err: &secrets.Error{Ref: "secret://env/A", Err: errors.New("secret://env/A: boom")}, want: "secret://env/A: boom"},
		{name: "no ref", err: &secrets.Error{Err: errors.New("boom")}, want: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveCanceled(t *testing.T) {
	t.Parallel()
	fx := setup(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fx.router.Resolve(ctx, "secret://env/API_TOKEN")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if n := fx.env.calls.Load(); n != 0 {
		t.Errorf("backend called %d times after cancel", n)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	const ref = "secret://env/API_TOKEN"
	tests := []struct {
		name string
		ttl  time.Duration
		// steps: advance the clock, rotate the secret to rotate (if set),
		// then resolve and expect want.
		steps []struct {
			advance time.Duration
			rotate  string
			want    string
		}
		wantCalls int64
	}{
		{
			name: "no cache",
			ttl:  0,
			steps: []struct {
				advance time.Duration
				rotate  string
				want    string
			}{
				{want: "env-token-value"},
				{rotate: "v2", want: "v2"},
				{want: "v2"},
			},
			wantCalls: 3,
		},
		{
			name: "ttl",
			ttl:  time.Minute,
			steps: []struct {
				advance time.Duration
				rotate  string
				want    string
			}{
				{want: "env-token-value"},
				{advance: 30 * time.Second, rotate: "v2", want: "env-token-value"},
				{advance: 29 * time.Second, want: "env-token-value"},
				{advance: time.Second, want: "v2"}, // exactly ttl after the first call: expired
				{advance: 59 * time.Second, rotate: "v3", want: "v2"},
				{advance: time.Minute, want: "v3"},
			},
			wantCalls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t, tt.ttl)
			for i, s := range tt.steps {
				fx.clock.Advance(s.advance)
				if s.rotate != "" {
					fx.env.set(ref, s.rotate)
				}
				got, err := fx.router.Resolve(context.Background(), ref)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Errorf("step %d: Resolve = %q, want %q", i, got, s.want)
				}
			}
			if n := fx.env.calls.Load(); n != tt.wantCalls {
				t.Errorf("backend calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestCacheSkipsErrors(t *testing.T) {
	t.Parallel()
	fx := setup(t, time.Hour)
	const ref = "secret://env/LATER"
	if _, err := fx.router.Resolve(context.Background(), ref); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("error = %v, want ErrNotFound", err)
	}
	fx.env.set(ref, "created-later")
	if got, err := fx.router.Resolve(context.Background(), ref); err != nil || got != "created-later" {
		t.Errorf("Resolve = %q, %v; want the secret created after the miss", got, err)
	}
}

// Many references used once each do not pile up in the cache: resolving
// them long after they expired still works and the values are fresh.
func TestCacheSweep(t *testing.T) {
	t.Parallel()
	fx := setup(t, time.Minute)
	for i := range 500 {
		ref := fmt.Sprintf("secret://env/V%d", i)
		fx.env.set(ref, fmt.Sprintf("value-%d", i))
		if _, err := fx.router.Resolve(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(time.Second)
	}
	fx.env.set("secret://env/V499", "rotated")
	if got, _ := fx.router.Resolve(context.Background(), "secret://env/V499"); got != "value-499" {
		t.Errorf("Resolve = %q, want the cached value-499", got)
	}
	fx.env.set("secret://env/V0", "rotated")
	if got, _ := fx.router.Resolve(context.Background(), "secret://env/V0"); got != "rotated" {
		t.Errorf("Resolve = %q, want the expired entry re-read", got)
	}
}

func TestConcurrentResolve(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{0, time.Minute} {
		t.Run(ttl.String(), func(t *testing.T) {
			t.Parallel()
			fx := setup(t, ttl)
			refs := map[string]string{
				"secret://env/API_TOKEN":    "env-token-value",
				"secret://file/db/password": "file-password-value",
			}
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						for ref, want := range refs {
							got, err := fx.router.Resolve(context.Background(), ref)
							if err != nil || got != want {
								errs <- fmt.Errorf("Resolve(%s) = %q, %v", ref, got, err)
								return
							}
						}
						if _, err := fx.router.Resolve(context.Background(), "secret://env/MISSING"); !errors.Is(err, secrets.ErrNotFound) {
							errs <- fmt.Errorf("missing: %v", err)
							return
						}
						if out := fx.router.Redact("x env-token-value y"); out != "x [REDACTED] y" {
							errs <- fmt.Errorf("Redact = %q", out)
							return
						}
						if g == 0 && i%20 == 0 {
							fx.clock.Advance(10 * time.Second)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// The router over the real env and file backends: a missing variable or
// file is ErrNotFound, a file escaping the directory is not.
func TestWithBackends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("file-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	fb, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TOKEN": "env-secret-value", "EMPTY": ""}
	r := secrets.New(map[string]secrets.Backend{
		schema.SecretEnv:  env.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }),
		schema.SecretFile: fb,
	}, secrets.Options{})
	tests := []struct {
		ref          string
		want         string
		wantErr      string
		wantNotFound bool
	}{
		{ref: "secret://env/TOKEN", want: "env-secret-value"},
		{ref: "secret://file/token", want: "file-secret-value"},
		{ref: "secret://env/NOPE", wantErr: "secret://env/NOPE: environment variable NOPE is not set", wantNotFound: true},
		{ref: "secret://env/EMPTY", wantErr: "secret://env/EMPTY: environment variable EMPTY is empty", wantNotFound: true},
		{ref: "secret://file/nope", wantErr: "secret://file/nope: no such file in " + dir, wantNotFound: true},
		{ref: "secret://file/escape", wantErr: "secret://file/escape: refused: path escapes from parent"},
		{ref: "secret://vault/kv/app#token", wantErr: "secret://vault/kv/app#token: no vault backend is configured"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			t.Parallel()
			got, err := r.Resolve(context.Background(), tt.ref)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("Resolve = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
			}
			if strings.Count(err.Error(), tt.ref) != 1 {
				t.Errorf("error %q should name the reference once", err)
			}
			if got := errors.Is(err, secrets.ErrNotFound); got != tt.wantNotFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tt.wantNotFound)
			}
		})
	}
}
