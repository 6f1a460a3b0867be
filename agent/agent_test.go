package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}))
}

// testConfig is a valid configuration on backend's database, listening on
// a free loopback port.
func testConfig(t *testing.T, backend string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t, backend)
	return cfg
}

// running is an agent serving in the background.
type running struct {
	url          string
	cancel       context.CancelFunc
	done         chan error
	installation string // the store's installation id, set by runAgent
}

func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	r := &running{url: "http://" + a.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// stop ends the agent's context and returns what Run returned.
func (r *running) stop() error {
	r.cancel()
	err, ok := <-r.done
	if !ok {
		return nil
	}
	close(r.done)
	return err
}

func do(t *testing.T, method, url, contentType, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const job = "apiVersion: v1\nkind: Job\nmetadata:\n  alias: hello\nsteps:\n  - name: greet\n    image: alpine:3.20\n"

// TestServeAndStop runs an agent on each database: it serves the API, and
// when its context ends it stops serving, returns nil and leaves the data
// in the database.
func TestServeAndStop(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, backend)
			r := start(t, cfg)

			for _, path := range []string{"/healthz", "/readyz"} {
				if status, body := do(t, "GET", r.url+path, "", ""); status != http.StatusOK {
					t.Errorf("GET %s: %d %s", path, status, body)
				}
			}
			if status, body := do(t, "POST", r.url+"/v1/jobdefs/apply", "application/yaml", job); status != http.StatusOK {
				t.Fatalf("apply: %d %s", status, body)
			}
			if status, body := do(t, "GET", r.url+"/v1/jobs/hello", "", ""); status != http.StatusOK || !strings.Contains(body, `"alias":"hello"`) {
				t.Errorf("GET /v1/jobs/hello: %d %s", status, body)
			}

			if err := r.stop(); err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
			if _, err := net.DialTimeout("tcp", strings.TrimPrefix(r.url, "http://"), time.Second); err == nil {
				t.Error("the agent still accepts connections after Run returned")
			}

			// The store was closed and its data kept: a new store reads it.
			st, err := store.Open(context.Background(), cfg.Database.URL, store.Options{DataDir: cfg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if j, err := st.GetJob(context.Background(), "hello"); err != nil || j.Provenance.SourceID != "manual" {
				t.Errorf("after restart: %+v, %v", j, err)
			}
		})
	}
}

// TestRelativeSQLitePath: a relative sqlite:// path lives in dataDir, which
// the agent creates.
func TestRelativeSQLitePath(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sqlite")
	cfg.DataDir = filepath.Join(t.TempDir(), "not", "yet")
	cfg.Database.URL = "sqlite://jobs.db"
	r := start(t, cfg)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "jobs.db")); err != nil {
		t.Errorf("no database in the data dir: %v", err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sqlite")
	cfg.HTTP.Token = "s3cret"
	r := start(t, cfg)
	if status, _ := do(t, "GET", r.url+"/v1/jobs", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", status)
	}
	if status, _ := do(t, "GET", r.url+"/v1/jobs", "", "", "Authorization", "Bearer s3cret"); status != http.StatusOK {
		t.Errorf("with the token: %d, want 200", status)
	}
	if status, _ := do(t, "GET", r.url+"/healthz", "", ""); status != http.StatusOK {
		t.Errorf("health without the token: %d, want 200", status)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "sqlite")
	cfg.HTTP.MaxBodyBytes = 64
	r := start(t, cfg)
	if status, body := do(t, "POST", r.url+"/v1/jobdefs/lint", "application/yaml", job); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over http.maxBodyBytes: %d %s, want 413", status, body)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string
	}{
		{name: "address in use", mutate: func(c *config.Config) { c.HTTP.Addr = busy.Addr().String() }, wantErr: "listen on " + busy.Addr().String()},
		{name: "data dir is a file", mutate: func(c *config.Config) { c.DataDir = file }, wantErr: "create data dir"},
		{name: "database unreachable", mutate: func(c *config.Config) {
			c.Database.URL = "postgres://caesium:hunter2@127.0.0.1:1/caesium?connect_timeout=5"
		}, wantErr: "open store"},
		{name: "database url", mutate: func(c *config.Config) { c.Database.URL = "mysql://db/caesium" }, wantErr: "open store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, "sqlite")
			tt.mutate(&cfg)
			a, err := agent.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatalf("New succeeded (listening on %s), want an error with %q", a.Addr(), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the database password: %v", err)
			}
		})
	}
}
