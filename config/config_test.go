package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/caesium-io/caesium/config"
)

// load runs Load as the agent does: flags bound and parsed from args, env as
// KEY=VALUE pairs.
func load(t *testing.T, args, env []string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("caesium-agent", pflag.ContinueOnError)
	config.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %v: %v", args, err)
	}
	return config.Load(fs, env)
}

// writeConfig writes a configuration file into a temp dir and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "caesium.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	got, err := load(t, nil, nil)
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	want := config.Config{
		Database: config.Database{URL: "sqlite://caesium.db"},
		HTTP: config.HTTP{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      5 * time.Minute,
			MaxBodyBytes:      64 << 20,
		},
		DataDir:  ".caesium",
		Log:      config.Log{Level: "info", Format: "auto"},
		Webhooks: config.Webhooks{MaxBodyBytes: 1 << 20, QueueSize: 256, ReplayWindow: 24 * time.Hour},
		Executor: config.Executor{
			MaxConcurrentRuns: 4, PollInterval: time.Second,
			Docker:    config.Docker{PullPolicy: "if-not-present", StopTimeout: 10 * time.Second},
			Callbacks: config.Callbacks{Timeout: 10 * time.Second, MaxAttempts: 3},
		},
		Triggers: config.Triggers{MaxBodyBytes: 1 << 20, ClockSkew: 5 * time.Minute, MaxInFlight: 64},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() = %+v\nwant %+v", got, want)
	}
	if d := config.Default(); !reflect.DeepEqual(d, want) {
		t.Errorf("Default() = %+v\nwant %+v", d, want)
	}
	d := config.Default()
	if err := d.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `
database:
  url: sqlite://from-file.db
http:
  addr: 127.0.0.1:1001
  readTimeout: 11s
  maxBodyBytes: 1001
  token: file-token
dataDir: /var/lib/from-file
log:
  level: warn
  format: text
`)
	tests := []struct {
		name string
		args []string
		env  []string
		want func(*config.Config)
	}{
		{
			name: "defaults alone",
			want: func(*config.Config) {},
		},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: func(c *config.Config) {
				c.Database.URL = "sqlite://from-file.db"
				c.HTTP.Addr = "127.0.0.1:1001"
				c.HTTP.ReadTimeout = 11 * time.Second
				c.HTTP.MaxBodyBytes = 1001
				c.HTTP.Token = "file-token"
				c.DataDir = "/var/lib/from-file"
				c.Log = config.Log{Level: "warn", Format: "text"}
			},
		},
		{
			name: "file named by CAESIUM_CONFIG",
			env:  []string{"CAESIUM_CONFIG=" + file},
			want: func(c *config.Config) {
				c.Database.URL = "sqlite://from-file.db"
				c.HTTP.Addr = "127.0.0.1:1001"
				c.HTTP.ReadTimeout = 11 * time.Second
				c.HTTP.MaxBodyBytes = 1001
				c.HTTP.Token = "file-token"
				c.DataDir = "/var/lib/from-file"
				c.Log = config.Log{Level: "warn", Format: "text"}
			},
		},
		{
			name: "env over file",
			args: []string{"--config", file},
			env: []string{
				"CAESIUM_DATABASE_URL=postgres://caesium@db.internal/caesium",
				"CAESIUM_HTTP_ADDR=127.0.0.1:2002",
				"CAESIUM_HTTP_READ_TIMEOUT=22s",
				"CAESIUM_HTTP_MAX_BODY_BYTES=2002",
				"CAESIUM_HTTP_TOKEN=env-token",
				"CAESIUM_DATA_DIR=/var/lib/from-env",
				"CAESIUM_LOG_LEVEL=debug",
				"UNRELATED=1",
			},
			want: func(c *config.Config) {
				c.Database.URL = "postgres://caesium@db.internal/caesium"
				c.HTTP.Addr = "127.0.0.1:2002"
				c.HTTP.ReadTimeout = 22 * time.Second
				c.HTTP.MaxBodyBytes = 2002
				c.HTTP.Token = "env-token"
				c.DataDir = "/var/lib/from-env"
				c.Log = config.Log{Level: "debug", Format: "text"} // format from the file
			},
		},
		{
			name: "flags over env over file",
			args: []string{"--config", file, "--http-addr", "127.0.0.1:3003", "--data-dir", "/var/lib/from-flag",
				"--database-url", "sqlite:///abs/from-flag.db", "--log-level", "error", "--log-format", "json"},
			env: []string{
				"CAESIUM_HTTP_ADDR=127.0.0.1:2002",
				"CAESIUM_DATA_DIR=/var/lib/from-env",
				"CAESIUM_DATABASE_URL=postgres://caesium@db.internal/caesium",
				"CAESIUM_LOG_LEVEL=debug",
				"CAESIUM_HTTP_READ_TIMEOUT=22s",
			},
			want: func(c *config.Config) {
				c.Database.URL = "sqlite:///abs/from-flag.db"
				c.HTTP.Addr = "127.0.0.1:3003"
				c.HTTP.ReadTimeout = 22 * time.Second // env: there is no flag for it
				c.HTTP.MaxBodyBytes = 1001            // file
				c.HTTP.Token = "file-token"
				c.DataDir = "/var/lib/from-flag"
				c.Log = config.Log{Level: "error", Format: "json"}
			},
		},
		{
			name: "a flag left at its default does not override env",
			args: []string{"--log-format", "text"},
			env:  []string{"CAESIUM_HTTP_ADDR=127.0.0.1:2002"},
			want: func(c *config.Config) {
				c.HTTP.Addr = "127.0.0.1:2002"
				c.Log.Format = "text"
			},
		},
		{
			name: "--config wins over CAESIUM_CONFIG",
			args: []string{"--config", file},
			env:  []string{"CAESIUM_CONFIG=/does/not/exist.yaml"},
			want: func(c *config.Config) {
				c.Database.URL = "sqlite://from-file.db"
				c.HTTP.Addr = "127.0.0.1:1001"
				c.HTTP.ReadTimeout = 11 * time.Second
				c.HTTP.MaxBodyBytes = 1001
				c.HTTP.Token = "file-token"
				c.DataDir = "/var/lib/from-file"
				c.Log = config.Log{Level: "warn", Format: "text"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := config.Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load() = %+v\nwant     %+v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string // written to a temp file and passed with --config; "" for none
		args    []string
		env     []string
		wantErr []string // substrings, each must appear
	}{
		{
			name:    "unknown top-level key",
			file:    "dataDir: /tmp/x\ndatabse:\n  url: sqlite://x.db\n",
			wantErr: []string{`unknown key "databse"`, "database"},
		},
		{
			name:    "unknown nested key names its path",
			file:    "http:\n  adress: 127.0.0.1:1\n",
			wantErr: []string{`unknown key "http.adress"`, "addr"},
		},
		{
			name:    "several unknown keys are all named",
			file:    "log:\n  lvl: debug\nport: 80\n",
			wantErr: []string{`"log.lvl"`, `"port"`},
		},
		{
			name:    "unknown key in camel case",
			file:    "dataDirectory: /tmp\n",
			wantErr: []string{`unknown key "datadirectory"`},
		},
		{
			name:    "file is not YAML",
			file:    "http: [unclosed\n",
			wantErr: []string{"parse config"},
		},
		{
			name:    "file does not exist",
			args:    []string{"--config", "/does/not/exist.yaml"},
			wantErr: []string{"read config", "/does/not/exist.yaml"},
		},
		{
			name:    "section given a scalar",
			file:    "http: 8080\n",
			wantErr: []string{"http"},
		},
		{
			name:    "duration that does not parse",
			env:     []string{"CAESIUM_HTTP_WRITE_TIMEOUT=forever"},
			wantErr: []string{"http.writeTimeout", "invalid duration"},
		},
		{
			name:    "empty dataDir",
			env:     []string{"CAESIUM_DATA_DIR="},
			wantErr: []string{"dataDir must not be empty"},
		},
		{
			name:    "database scheme",
			args:    []string{"--database-url", "mysql://db/caesium"},
			wantErr: []string{"database.url", `scheme "mysql"`},
		},
		{
			name:    "executor values out of range",
			file:    "executor:\n  maxConcurrentRuns: 0\n  pollInterval: 1ms\n  docker: {pullPolicy: sometimes}\n  callbacks: {maxAttempts: 50}\n",
			wantErr: []string{"executor.maxConcurrentRuns", "executor.pollInterval", `pullPolicy must be if-not-present, always or never, got "sometimes"`, "executor.callbacks.maxAttempts"},
		},
		{
			name:    "trigger limits out of range",
			file:    "triggers:\n  maxBodyBytes: 0\n  clockSkew: 10ms\n",
			wantErr: []string{"triggers.maxBodyBytes", "triggers.clockSkew"},
		},
		{
			name:    "postgres without host",
			args:    []string{"--database-url", "postgres:///caesium"},
			wantErr: []string{"database.url", "needs a host"},
		},
		{
			name:    "sqlite without path",
			args:    []string{"--database-url", "sqlite://"},
			wantErr: []string{"database.url", "needs a path"},
		},
		{
			name:    "http.addr without port",
			args:    []string{"--http-addr", "localhost"},
			wantErr: []string{"http.addr", "host:port"},
		},
		{
			name:    "non-positive timeouts and body size",
			file:    "http:\n  readHeaderTimeout: 0s\n  readTimeout: -1s\n  maxBodyBytes: 0\n",
			wantErr: []string{"http.readHeaderTimeout must be positive", "http.readTimeout must be positive", "http.maxBodyBytes must be positive"},
		},
		{
			name:    "log level and format",
			args:    []string{"--log-level", "verbose", "--log-format", "xml"},
			wantErr: []string{`log.level "verbose"`, `log.format "xml"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
			}
			_, err := load(t, args, tt.env)
			if err == nil {
				t.Fatalf("Load succeeded; want an error with %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string // "" for valid
	}{
		{name: "default", mutate: func(*config.Config) {}},
		{name: "postgres", mutate: func(c *config.Config) { c.Database.URL = "postgresql://caesium@db:5432/caesium?sslmode=verify-full" }},
		{name: "absolute sqlite", mutate: func(c *config.Config) { c.Database.URL = "sqlite:///var/lib/caesium/caesium.db" }},
		{name: "any interface", mutate: func(c *config.Config) { c.HTTP.Addr = ":8080" }},
		{name: "ephemeral port", mutate: func(c *config.Config) { c.HTTP.Addr = "127.0.0.1:0" }},
		{name: "sqlite path with URL metacharacters", mutate: func(c *config.Config) { c.Database.URL = "sqlite:///tmp/100%_done #1/caesium.db" }},
		{name: "sqlite in memory", mutate: func(c *config.Config) { c.Database.URL = "sqlite://:memory:" }},
		{name: "sqlite with parameters", mutate: func(c *config.Config) { c.Database.URL = "sqlite://caesium.db?mode=ro" }, wantErr: "database.url: sqlite:// takes a path and no parameters"},
		{name: "sqlite without slashes", mutate: func(c *config.Config) { c.Database.URL = "sqlite:caesium.db" }, wantErr: "database.url: write sqlite://PATH"},
		{name: "empty database url", mutate: func(c *config.Config) { c.Database.URL = "" }, wantErr: "database.url"},
		{name: "write timeout", mutate: func(c *config.Config) { c.HTTP.WriteTimeout = 0 }, wantErr: "http.writeTimeout must be positive"},
		{name: "empty port", mutate: func(c *config.Config) { c.HTTP.Addr = "127.0.0.1:" }, wantErr: "http.addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want string
	}{
		{key: "dataDir", want: "CAESIUM_DATA_DIR"},
		{key: "http.addr", want: "CAESIUM_HTTP_ADDR"},
		{key: "database.url", want: "CAESIUM_DATABASE_URL"},
		{key: "http.readHeaderTimeout", want: "CAESIUM_HTTP_READ_HEADER_TIMEOUT"},
		{key: "http.maxBodyBytes", want: "CAESIUM_HTTP_MAX_BODY_BYTES"},
		{key: "http.token", want: "CAESIUM_HTTP_TOKEN"},
		{key: "log.level", want: "CAESIUM_LOG_LEVEL"},
		{key: "config", want: "CAESIUM_CONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			if got := config.EnvName(tt.key); got != tt.want {
				t.Errorf("EnvName(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

// TestEveryKeyHasAWorkingEnvVar sets each documented key through its
// environment variable alone and checks it lands.
func TestEveryKeyHasAWorkingEnvVar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		got        func(config.Config) any
		want       any
	}{
		{"database.url", "sqlite://env.db", func(c config.Config) any { return c.Database.URL }, "sqlite://env.db"},
		{"http.addr", "127.0.0.1:9", func(c config.Config) any { return c.HTTP.Addr }, "127.0.0.1:9"},
		{"http.readHeaderTimeout", "7s", func(c config.Config) any { return c.HTTP.ReadHeaderTimeout }, 7 * time.Second},
		{"http.readTimeout", "8s", func(c config.Config) any { return c.HTTP.ReadTimeout }, 8 * time.Second},
		{"http.writeTimeout", "9s", func(c config.Config) any { return c.HTTP.WriteTimeout }, 9 * time.Second},
		{"http.maxBodyBytes", "4096", func(c config.Config) any { return c.HTTP.MaxBodyBytes }, int64(4096)},
		{"http.token", "s3cret", func(c config.Config) any { return c.HTTP.Token }, "s3cret"},
		{"dataDir", "/srv/caesium", func(c config.Config) any { return c.DataDir }, "/srv/caesium"},
		{"log.level", "warn", func(c config.Config) any { return c.Log.Level }, "warn"},
		{"log.format", "json", func(c config.Config) any { return c.Log.Format }, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			c, err := load(t, nil, []string{config.EnvName(tt.key) + "=" + tt.value})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.got(c); got != tt.want {
				t.Errorf("%s=%s gave %v, want %v", config.EnvName(tt.key), tt.value, got, tt.want)
			}
		})
	}
}
