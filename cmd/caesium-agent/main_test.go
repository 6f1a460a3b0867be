package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}))
}

// agentRun is run in the background, with its stdout readable as it comes.
type agentRun struct {
	url    string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// startRun calls run as main does and waits for the line saying where it
// serves.
func startRun(t *testing.T, args, env []string) *agentRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &agentRun{stderr: newSyncBuffer(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, env, pw, r.stderr)
		pw.Close()
		r.done <- err
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range lines { // drain until run closes stdout
		}
	})
	select {
	case line, ok := <-lines:
		m := regexp.MustCompile(`^caesium-agent dev serving on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
		if !ok || m == nil {
			cancel()
			t.Fatalf("first line of stdout %q (closed: %v), want caesium-agent dev serving on http://ADDR; run: %v\nstderr:\n%s", line, !ok, <-r.done, r.stderr.String())
		}
		r.url = m[1]
	case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
		cancel()
		t.Fatalf("run did not start serving; stderr:\n%s", r.stderr.String())
	}
	return r
}

func get(t *testing.T, url string, header ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRun(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			args := []string{"--http-addr", "127.0.0.1:0", "--database-url", storetest.URL(t, backend), "--data-dir", dataDir, "--log-level", "debug"}
			r := startRun(t, args, []string{"CAESIUM_LOG_FORMAT=json", "CAESIUM_HTTP_TOKEN=s3cret"})

			if s := get(t, r.url+"/readyz"); s != http.StatusOK {
				t.Errorf("GET /readyz = %d", s)
			}
			if s := get(t, r.url+"/v1/jobs"); s != http.StatusUnauthorized {
				t.Errorf("GET /v1/jobs without the token from CAESIUM_HTTP_TOKEN = %d, want 401", s)
			}
			if s := get(t, r.url+"/v1/jobs", "Authorization", "Bearer s3cret"); s != http.StatusOK {
				t.Errorf("GET /v1/jobs with the token = %d, want 200", s)
			}

			r.cancel()
			if err := <-r.done; err != nil {
				t.Errorf("run after its context ended = %v, want nil", err)
			}
			// JSON logs on stderr, debug included, ending with "stopped".
			var msgs []string
			for _, line := range strings.Split(strings.TrimSpace(r.stderr.String()), "\n") {
				var rec struct{ Msg, Level string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line is not JSON: %q", line)
				}
				msgs = append(msgs, rec.Level+" "+rec.Msg)
			}
			joined := strings.Join(msgs, "\n")
			for _, want := range []string{"INFO serving", "DEBUG request", "INFO stopped"} {
				if !strings.Contains(joined, want) {
					t.Errorf("logs lack %q:\n%s", want, joined)
				}
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{name: "unknown flag", args: []string{"--port", "80"}, wantErr: "unknown flag: --port"},
		{name: "argument", args: []string{"serve"}, wantErr: `unknown command "serve"`},
		{name: "invalid flag value", args: []string{"--log-level", "loud"}, wantErr: `log.level "loud" must be debug, info, warn or error`},
		{name: "invalid env value", env: []string{"CAESIUM_HTTP_ADDR=nowhere"}, wantErr: `http.addr "nowhere" must be host:port`},
		{name: "missing config file", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantErr: "read config"},
		{name: "database unreachable", args: []string{"--http-addr", "127.0.0.1:0", "--data-dir", dir, "--database-url", "postgres://caesium@127.0.0.1:1/caesium"}, wantErr: "open store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, tt.env, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run = %v, want an error with %q", err, tt.wantErr)
			}
			if strings.Contains(stdout.String(), "serving") {
				t.Errorf("stdout = %q; it must not claim to serve", stdout.String())
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{args: []string{"--version"}, want: []string{"caesium-agent version dev\n"}},
		{args: []string{"--help"}, want: []string{"--database-url", "--http-addr", "--data-dir", "--config", "--log-level", "--log-format"}},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), tt.args, nil, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		log      config.Log
		wantJSON bool
		wantInfo bool
	}{
		{name: "auto to a buffer is JSON", log: config.Log{Level: "info", Format: "auto"}, wantJSON: true, wantInfo: true},
		{name: "text", log: config.Log{Level: "info", Format: "text"}, wantInfo: true},
		{name: "json", log: config.Log{Level: "debug", Format: "json"}, wantJSON: true, wantInfo: true},
		{name: "warn hides info", log: config.Log{Level: "warn", Format: "json"}, wantJSON: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := newLogger(tt.log, &buf)
			l.Info("hello", "k", "v")
			l.Warn("careful")
			out := buf.String()
			if got := strings.HasPrefix(out, "{"); got != tt.wantJSON {
				t.Errorf("JSON = %v, want %v:\n%s", got, tt.wantJSON, out)
			}
			if got := strings.Contains(out, "hello"); got != tt.wantInfo {
				t.Errorf("info logged = %v, want %v:\n%s", got, tt.wantInfo, out)
			}
			if !strings.Contains(out, "careful") {
				t.Errorf("warn not logged:\n%s", out)
			}
		})
	}
}
