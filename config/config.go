// Package config holds the agent's configuration: its shape, defaults,
// loading from a YAML file, CAESIUM_* environment variables and flags (in
// that order of precedence, flags winning), and validation. It is the only
// package that knows viper.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the agent's whole configuration. Its YAML shape is a contract
// documented in docs/configuration.md.
type Config struct {
	Database Database `mapstructure:"database"`
	HTTP     HTTP     `mapstructure:"http"`
	DataDir  string   `mapstructure:"dataDir"`
	Log      Log      `mapstructure:"log"`
	Secrets  Secrets  `mapstructure:"secrets"`
	Webhooks Webhooks `mapstructure:"webhooks"`
	Executor Executor `mapstructure:"executor"`
	Triggers Triggers `mapstructure:"triggers"`
	// Sources are the Git repositories to sync. They come from the file;
	// --repo adds one more without a file.
	Sources []Source `mapstructure:"sources"`
}

// Database says where the store lives.
type Database struct {
	// URL is sqlite://PATH (relative to dataDir) or postgres://user@host/db.
	URL string `mapstructure:"url"`
}

// HTTP configures the one HTTP server that carries the API (and later
// webhooks and the console).
type HTTP struct {
	Addr              string        `mapstructure:"addr"`
	ReadHeaderTimeout time.Duration `mapstructure:"readHeaderTimeout"`
	ReadTimeout       time.Duration `mapstructure:"readTimeout"`
	WriteTimeout      time.Duration `mapstructure:"writeTimeout"`
	MaxBodyBytes      int64         `mapstructure:"maxBodyBytes"`
	// Token, when set, is the bearer token every /v1 request must carry
	// (the CLI's --token or CAESIUM_TOKEN). Set it in the file or as
	// CAESIUM_HTTP_TOKEN; there is no flag, so it stays out of ps output.
	Token string `mapstructure:"token"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // auto (text on a terminal, JSON otherwise), text, json
}

// Default returns the configuration used when nothing is set: an embedded
// SQLite database in ./.caesium and the API on loopback only.
func Default() Config {
	return Config{
		Database: Database{URL: "sqlite://caesium.db"},
		HTTP: HTTP{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      5 * time.Minute,
			MaxBodyBytes:      64 << 20,
		},
		DataDir:  ".caesium",
		Log:      Log{Level: "info", Format: "auto"},
		Webhooks: Webhooks{MaxBodyBytes: 1 << 20, QueueSize: 256, ReplayWindow: 24 * time.Hour},
		Executor: Executor{
			MaxConcurrentRuns: 4, PollInterval: time.Second,
			Docker:    Docker{PullPolicy: "if-not-present", StopTimeout: 10 * time.Second},
			Callbacks: Callbacks{Timeout: 10 * time.Second, MaxAttempts: 3},
		},
		Triggers: Triggers{MaxBodyBytes: 1 << 20, ClockSkew: 5 * time.Minute, MaxInFlight: 64},
	}
}

// EnvPrefix prefixes every environment variable: database.url is
// CAESIUM_DATABASE_URL, dataDir is CAESIUM_DATA_DIR.
const EnvPrefix = "CAESIUM_"

// Flag names bound to configuration keys.
var flagKeys = map[string]string{
	"database-url": "database.url",
	"http-addr":    "http.addr",
	"data-dir":     "dataDir",
	"log-level":    "log.level",
	"log-format":   "log.format",
}

// BindFlags declares the flags that set configuration keys, plus --config.
func BindFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "configuration file (YAML)")
	fs.String("database-url", d.Database.URL, "database URL: sqlite://PATH (relative to --data-dir) or postgres://user@host/db")
	fs.String("http-addr", d.HTTP.Addr, "address the HTTP server listens on")
	fs.String("data-dir", d.DataDir, "directory for the embedded database and Git working copies")
	fs.String("log-level", d.Log.Level, "log level: debug, info, warn, error")
	fs.String("log-format", d.Log.Format, "log format: auto, text, json")
	bindSourceFlags(fs)
}

// Load builds the configuration from defaults, the file named by --config
// (or CAESIUM_CONFIG), environment variables and flags that were set, then
// validates it. env is the process environment as KEY=VALUE pairs.
func Load(fs *pflag.FlagSet, env []string) (Config, error) {
	v := viper.New()
	setDefaults(v, Default())
	envMap := parseEnv(env)

	file := envMap[EnvPrefix+"CONFIG"]
	if f := fs.Lookup("config"); f != nil && f.Changed {
		file = f.Value.String()
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("parse config %s: %w", file, err)
		}
		if err := checkKeys(v.AllSettings(), reflect.TypeOf(Config{}), ""); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", file, err)
		}
	}
	// Environment, then flags: each Set overrides what came before.
	for _, key := range allKeys(reflect.TypeOf(Config{}), "") {
		if val, ok := envMap[EnvName(key)]; ok {
			v.Set(key, val)
		}
	}
	fs.Visit(func(f *pflag.Flag) {
		if key, ok := flagKeys[f.Name]; ok {
			v.Set(key, f.Value.String())
		}
	})
	adHoc, err := adHocSource(fs)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))
	}); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if adHoc != nil {
		cfg.Sources = append(cfg.Sources, *adHoc)
	}
	for i := range cfg.Sources {
		cfg.Sources[i] = cfg.Sources[i].withDefaults()
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// EnvName is the environment variable of a configuration key:
// http.addr -> CAESIUM_HTTP_ADDR, dataDir -> CAESIUM_DATA_DIR.
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	prev := rune(0)
	for _, r := range key {
		switch {
		case r == '.':
			b.WriteByte('_')
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteRune(unicode.ToUpper(r))
		}
		prev = r
	}
	return b.String()
}

func parseEnv(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func setDefaults(v *viper.Viper, d Config) {
	for _, key := range allKeys(reflect.TypeOf(d), "") {
		if val, ok := lookup(d, key); ok {
			v.SetDefault(key, val)
		}
	}
}

// lookup returns the value at key, or false when a pointer on the way is
// nil (an optional section that is off by default).
func lookup(c Config, key string) (any, bool) {
	val := reflect.ValueOf(c)
	for _, part := range strings.Split(key, ".") {
		if val.Kind() == reflect.Pointer {
			if val.IsNil() {
				return nil, false
			}
			val = val.Elem()
		}
		t := val.Type()
		for i := range t.NumField() {
			if t.Field(i).Tag.Get("mapstructure") == part {
				val = val.Field(i)
				break
			}
		}
	}
	return val.Interface(), true
}

// allKeys lists the dotted keys of the struct's leaf fields.
func allKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("mapstructure")
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, allKeys(f.Type, key)...)
			continue
		}
		if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct {
			keys = append(keys, allKeys(f.Type.Elem(), key)...)
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			continue // lists of sources come from the file, not the environment
		}
		keys = append(keys, key)
	}
	return keys
}

// checkKeys rejects unknown keys in the file, naming them: a typo in a
// configuration file must not be silently ignored. Viper lowercases keys,
// so the comparison is case-insensitive.
func checkKeys(settings map[string]any, t reflect.Type, prefix string) error {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("mapstructure")
		fields[strings.ToLower(name)] = t.Field(i)
		names = append(names, name)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown key %q; known keys here: %s", prefix+k, strings.Join(names, ", ")))
			continue
		}
		name := f.Tag.Get("mapstructure")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sub, isMap := settings[k].(map[string]any); isMap && ft.Kind() == reflect.Struct {
			if err := checkKeys(sub, ft, prefix+name+"."); err != nil {
				errs = append(errs, err)
			}
		}
		if list, isList := settings[k].([]any); isList && f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			for i, item := range list {
				sub, isMap := item.(map[string]any)
				if !isMap {
					errs = append(errs, fmt.Errorf("%s%s[%d] must be a mapping", prefix, name, i))
					continue
				}
				if err := checkKeys(sub, f.Type.Elem(), fmt.Sprintf("%s%s[%d].", prefix, name, i)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Validate checks the configuration and names the key of each problem.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("dataDir must not be empty"))
	}
	if err := checkDatabaseURL(c.Database.URL); err != nil {
		errs = append(errs, fmt.Errorf("database.url: %w", err))
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("http.addr %q must be host:port, such as 127.0.0.1:8080", c.HTTP.Addr))
	}
	for key, d := range map[string]time.Duration{"http.readHeaderTimeout": c.HTTP.ReadHeaderTimeout, "http.readTimeout": c.HTTP.ReadTimeout, "http.writeTimeout": c.HTTP.WriteTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", key))
		}
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("http.maxBodyBytes must be positive"))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		errs = append(errs, fmt.Errorf("log.level %q must be debug, info, warn or error", c.Log.Level))
	}
	if c.Secrets.CacheTTL < 0 {
		errs = append(errs, errors.New("secrets.cacheTTL must not be negative"))
	}
	if err := c.Secrets.Vault.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Webhooks.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Executor.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Triggers.validate(); err != nil {
		errs = append(errs, err)
	}
	ids := map[string]int{}
	for i, src := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if src.ID != "" {
			key = fmt.Sprintf("sources[%d] (%s)", i, src.ID)
		}
		if err := src.validate(key); err != nil {
			errs = append(errs, err)
		}
		if first, dup := ids[src.ID]; dup {
			errs = append(errs, fmt.Errorf("%s.id: %q is already used by sources[%d]", key, src.ID, first))
		}
		ids[src.ID] = i
	}
	if !slices.Contains([]string{"auto", "text", "json"}, c.Log.Format) {
		errs = append(errs, fmt.Errorf("log.format %q must be auto, text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

func checkDatabaseURL(raw string) error {
	// A SQLite URL is a file path behind a prefix, as the store reads it,
	// not a URL: a path may hold '%' or '#' that url.Parse rejects or cuts.
	if p, ok := strings.CutPrefix(raw, "sqlite://"); ok {
		switch {
		case p == "":
			return errors.New("sqlite:// needs a path, such as sqlite://caesium.db")
		case strings.Contains(p, "?"):
			return errors.New("sqlite:// takes a path and no parameters")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL; use sqlite://PATH or postgres://user@host/db")
	}
	switch u.Scheme {
	case "sqlite":
		return errors.New("write sqlite://PATH, such as sqlite://caesium.db or sqlite:///var/lib/caesium/caesium.db")
	case "postgres", "postgresql":
		if u.Host == "" {
			return errors.New("postgres:// needs a host, such as postgres://caesium@db.internal/caesium")
		}
	default:
		return fmt.Errorf("scheme %q is not supported; use sqlite:// or postgres://", u.Scheme)
	}
	return nil
}
