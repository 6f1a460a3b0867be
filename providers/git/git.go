package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gohttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Sentinel errors. Operations wrap them; test with errors.Is.
var (
	// ErrAuth: the server refused the credentials, or none were given where
	// some are needed. Needs a human (or a rotated secret); retrying as-is
	// will not help.
	ErrAuth = errors.New("authentication failed")
	// ErrHostKey: the SSH server's host key is not the one in
	// Auth.KnownHosts. Needs a human; never retried around.
	ErrHostKey = errors.New("host key verification failed")
	// ErrNotFound: the repository, the ref, the commit or Config.Path does
	// not exist (any more).
	ErrNotFound = errors.New("not found")
	// ErrUnsafeURL: the URL uses a refused transport (ext::, fd:: and other
	// transport helpers), an unknown scheme, or looks like a command-line
	// option.
	ErrUnsafeURL = errors.New("unsafe or unsupported URL")
	// ErrConfig: the Config is invalid (returned by New) or a secret it names
	// could not be used.
	ErrConfig = errors.New("invalid git source configuration")
	// ErrTooManyFiles: a revision has more manifests than Config.MaxFiles.
	// The whole revision is refused.
	ErrTooManyFiles = errors.New("too many manifests")
	// ErrTooLarge is wrapped by File.Err for a file over Config.MaxFileBytes.
	ErrTooLarge = errors.New("file too large")
	// ErrSymlink is wrapped by File.Err for a symlink that cannot be
	// followed safely inside the source (see the package documentation).
	ErrSymlink = errors.New("symlink not followed")
)

// Resolver resolves secret:// references (secret://env/NAME,
// secret://file/PATH, later Vault). It is declared here and implemented by
// the secret providers. Resolve returns the secret's value; its error names
// the reference, never a value, and is returned by the operation that needed
// the secret: wrapped in ErrConfig when it matches fs.ErrNotExist (the
// reference names nothing), as is otherwise (the backend is unavailable).
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// Auth holds credentials. Every field may be a secret:// reference, resolved
// on each operation, or a literal. Literals are meant for tests: a literal
// password or key sits in the agent's configuration in clear text, and New
// logs a warning for it.
type Auth struct {
	// Username for HTTP basic auth, or the SSH user when the URL names none
	// (default "git").
	Username string
	// Password is an HTTP password or token (or an SSH password).
	Password string
	// SSHKey is a PEM private key (OpenSSH or PKCS#1/PKCS#8).
	SSHKey string
	// SSHKeyPassphrase decrypts SSHKey.
	SSHKeyPassphrase string
	// KnownHosts is known_hosts content (not a path). Required for SSH:
	// there is no way to skip host key checks.
	KnownHosts string
}

// Config describes one source. Zero fields take the defaults noted.
type Config struct {
	// URL is https://, http://, ssh://, git://, scp-like user@host:path, a
	// local path (a checkout or a bare repository) or file://. Credentials
	// in the URL are accepted but discouraged: use Auth.
	URL string
	// Ref is a branch, a tag (short or refs/... names; branches win over
	// tags of the same name) or a full 40-hex commit SHA. "" or "HEAD" is
	// the remote's default branch.
	Ref string
	// Path is the subdirectory holding manifests, slash-separated and
	// relative to the repository root; "" is the root.
	Path string
	// Globs are doublestar patterns relative to Path. Default
	// ["**/*.yaml", "**/*.yml"].
	Globs []string
	// Dir is the persistent directory for the bare repository, created if
	// needed. Required for remote URLs; one Dir per source, used by one
	// process at a time.
	Dir  string
	Auth Auth
	// Timeout bounds each operation once it runs (waiting for another
	// operation on the same Repo is bounded by the caller's context only).
	// Default 60s.
	Timeout time.Duration
	// MaxFileBytes is the largest manifest read; larger files get a
	// File.Err. Default 1 MiB.
	MaxFileBytes int64
	// MaxFiles is the most manifests one revision may hold. Default 10,000.
	MaxFiles int
}

// Defaults applied by New.
const (
	DefaultTimeout      = 60 * time.Second
	DefaultMaxFileBytes = 1 << 20
	DefaultMaxFiles     = 10_000
)

// DefaultGlobs select YAML files at any depth under Path.
var DefaultGlobs = []string{"**/*.yaml", "**/*.yml"}

// Repo is one Git source. Its methods are safe for concurrent use; they run
// one at a time.
type Repo struct {
	cfg     Config
	src     source
	ref     refSpec
	secrets Resolver
	log     *slog.Logger

	// sem serialises operations; a channel rather than a mutex so that
	// waiting honours the caller's context.
	sem chan struct{}

	// Guarded by sem.
	store   *filesystem.Storage // the bare repository, nil until opened
	suspect bool                // a read found missing or corrupt objects
	scrub   []string            // secret values seen, removed from error text
	kh      knownHostsCache
	// listings caches recent revisions' manifest listings.
	listings []listing
	// compactAlways makes every fetch compact first (tests).
	compactAlways bool
	httpTr        *http.Transport
	httpCl        transport.Transport
}

// File is one manifest of a revision.
type File struct {
	// Path is relative to the repository root, slash-separated.
	Path string
	// Blob is the hash of the content (for a symlink, of its target): equal
	// content, equal hash. Empty when the content could not be located.
	Blob string
	// Data is the content; nil when Err is set.
	Data []byte
	// Err is a problem with this file alone: ErrTooLarge, ErrSymlink.
	Err error
}

// refSpec is the parsed Config.Ref.
type refSpec struct {
	name string        // "" for the default branch, else as configured
	sha  plumbing.Hash // set when the ref is a full commit SHA
}

// New validates cfg and returns a Repo. It does no I/O besides logging; the
// bare repository is created on first use. Errors wrap ErrUnsafeURL for a
// refused URL and ErrConfig for anything else; they never contain
// credentials. secrets may be nil when no field is a secret:// reference;
// log may be nil.
func New(cfg Config, secrets Resolver, log *slog.Logger) (*Repo, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := parseSource(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", RedactURL(cfg.URL), err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if len(cfg.Globs) == 0 {
		cfg.Globs = append([]string(nil), DefaultGlobs...)
	}
	r := &Repo{
		cfg:     cfg,
		src:     src,
		secrets: secrets,
		log:     log.WithGroup("git").With(slog.String("source", src.redacted)),
		sem:     make(chan struct{}, 1),
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("git source %s: %w", src.redacted, err)
	}
	if src.kind == remoteSource && (src.ep.Protocol == "http" || src.ep.Protocol == "https") {
		// A transport of our own, so Close can drop its idle connections
		// and sources do not share connection state.
		r.httpTr = http.DefaultTransport.(*http.Transport).Clone()
		r.httpCl = gohttp.NewClient(&http.Client{Transport: r.httpTr})
	}
	r.remember(src.password)
	if src.password != "" {
		r.log.Warn("credentials in the source URL; use auth.password with a secret:// reference")
	}
	if cfg.Auth.Password != "" && !isSecretRef(cfg.Auth.Password) {
		r.log.Warn("auth.password is a literal; use a secret:// reference")
	}
	if cfg.Auth.SSHKey != "" && !isSecretRef(cfg.Auth.SSHKey) {
		r.log.Warn("auth.ssh_key is a literal; use a secret:// reference")
	}
	return r, nil
}

func (r *Repo) validate() error {
	cfg := &r.cfg
	ref, err := parseRef(cfg.Ref)
	if err != nil {
		return err
	}
	r.ref = ref

	p := strings.Trim(cfg.Path, "/")
	if p != "" {
		if strings.Contains(p, "\\") || strings.ContainsAny(p, "\x00\n\r") {
			return fmt.Errorf("%w: path %q: use a slash-separated relative path", ErrConfig, cfg.Path)
		}
		clean := path.Clean(p)
		if clean == "." {
			clean = ""
		}
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("%w: path %q leaves the repository", ErrConfig, cfg.Path)
		}
		p = clean
	}
	cfg.Path = p

	for _, g := range cfg.Globs {
		if g == "" || !doublestar.ValidatePattern(g) {
			return fmt.Errorf("%w: invalid glob %q", ErrConfig, g)
		}
	}

	if r.src.kind == remoteSource {
		if cfg.Dir == "" {
			return fmt.Errorf("%w: dir is required for a remote source", ErrConfig)
		}
		abs, err := filepath.Abs(cfg.Dir)
		if err != nil {
			return fmt.Errorf("%w: dir %q: %v", ErrConfig, cfg.Dir, err)
		}
		cfg.Dir = abs
	}

	a := cfg.Auth
	for name, v := range map[string]string{
		"auth.username": a.Username, "auth.password": a.Password, "auth.ssh_key": a.SSHKey,
		"auth.ssh_key_passphrase": a.SSHKeyPassphrase, "auth.known_hosts": a.KnownHosts,
	} {
		if isSecretRef(v) && r.secrets == nil {
			return fmt.Errorf("%w: %s is a secret reference but no resolver was given", ErrConfig, name)
		}
	}
	proto := "file"
	if r.src.kind == remoteSource {
		proto = r.src.ep.Protocol
	}
	switch proto {
	case "ssh":
		if a.KnownHosts == "" {
			return fmt.Errorf("%w: auth.known_hosts is required for ssh (host keys are always verified)", ErrConfig)
		}
		if a.SSHKey == "" && a.Password == "" && r.src.password == "" {
			return fmt.Errorf("%w: ssh needs auth.ssh_key (or auth.password)", ErrConfig)
		}
	case "http", "https":
		if a.SSHKey != "" || a.KnownHosts != "" {
			return fmt.Errorf("%w: auth.ssh_key and auth.known_hosts apply to ssh URLs only", ErrConfig)
		}
	default: // git://, local: no authentication at all
		if a != (Auth{}) || r.src.password != "" {
			return fmt.Errorf("%w: %s sources take no credentials", ErrConfig, proto)
		}
	}
	return nil
}

// parseRef accepts "", "HEAD", a 40-hex SHA, a refs/... name or a short
// branch or tag name.
func parseRef(ref string) (refSpec, error) {
	switch {
	case ref == "" || ref == "HEAD":
		return refSpec{}, nil
	case len(ref) == 40 && plumbing.IsHash(ref):
		return refSpec{name: ref, sha: plumbing.NewHash(ref)}, nil
	case strings.HasPrefix(ref, "-"):
		return refSpec{}, fmt.Errorf("%w: ref %q", ErrUnsafeURL, ref)
	}
	full := ref
	if !strings.HasPrefix(ref, "refs/") {
		full = "refs/heads/" + ref
	}
	if err := plumbing.ReferenceName(full).Validate(); err != nil {
		return refSpec{}, fmt.Errorf("%w: invalid ref %q", ErrConfig, ref)
	}
	return refSpec{name: ref}, nil
}

// Redacted is the source URL without password or token, for logs, status,
// the API and metric labels.
func (r *Repo) Redacted() string { return r.src.redacted }

// Close releases the bare repository's file descriptors and idle
// connections. It waits for a running operation. The Repo must not be used
// afterwards.
func (r *Repo) Close() error {
	release, _ := r.acquire(context.Background())
	defer release()
	var err error
	if r.store != nil {
		err = r.store.Close()
		r.store = nil
	}
	if r.httpTr != nil {
		r.httpTr.CloseIdleConnections()
	}
	return err
}

func (r *Repo) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case r.sem <- struct{}{}:
		return func() { <-r.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run serialises op, bounds it with the per-operation timeout and turns its
// error into a redacted, classified one.
func (r *Repo) run(ctx context.Context, name string, op func(ctx context.Context) error) error {
	release, err := r.acquire(ctx)
	if err != nil {
		return &opError{op: name, url: r.src.redacted, msg: err.Error(), errs: []error{err}}
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := op(ctx); err != nil {
		return r.wrap(ctx, name, err)
	}
	return nil
}

func isSecretRef(v string) bool { return strings.HasPrefix(v, "secret://") }

// resolve returns v, or the secret it references.
func (r *Repo) resolve(ctx context.Context, field, v string) (string, error) {
	if !isSecretRef(v) {
		return v, nil
	}
	val, err := r.secrets.Resolve(ctx, v)
	switch {
	case err == nil:
		return val, nil
	case errors.Is(err, fs.ErrNotExist):
		// A reference that names nothing is the configuration's fault.
		return "", fmt.Errorf("%w: %s: %w", ErrConfig, field, err)
	}
	// A backend that is down is an outage, not a configuration error: the
	// sync is retried with backoff like any other unavailable dependency.
	return "", fmt.Errorf("resolve %s: %w", field, err)
}

// remember records a secret value so that it is scrubbed from error text.
func (r *Repo) remember(secret string) {
	// Short values would scrub ordinary words out of messages; they are
	// not secrets worth the name either.
	if len(secret) < 4 {
		return
	}
	for _, s := range r.scrub {
		if s == secret {
			return
		}
	}
	if len(r.scrub) > 16 { // rotated secrets: keep the newest
		r.scrub = r.scrub[1:]
	}
	r.scrub = append(r.scrub, secret)
}
