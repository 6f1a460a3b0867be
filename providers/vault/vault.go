// Package vault resolves secret://vault/MOUNT/PATH#FIELD[?version=N]
// references from HashiCorp Vault's KV secrets engine, version 1 or 2. It is
// the only package that imports the Vault SDK (github.com/hashicorp/vault/api
// and its auth packages).
//
// A Vault logs in lazily (token, AppRole or Kubernetes auth), keeps its token
// alive with the SDK's LifetimeWatcher and logs in afresh when renewal ends.
// Calls that fail because Vault cannot be reached are retried with jittered
// exponential backoff; when the retries run out the error wraps
// ErrUnavailable, so only what needs Vault fails while everything else goes
// on. Which KV version a mount runs is asked once per mount and cached.
//
// Errors name the reference, never a value, token or credential.
package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/caesium-io/caesium/schema"
)

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// DefaultServiceAccountTokenPath is where Kubernetes mounts a pod's service
// account token.
const DefaultServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Defaults filled in by New.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMaxRetries = 3
)

var (
	// ErrUnavailable: Vault could not be reached, or answered that it cannot
	// serve now (sealed, standby without forwarding, rate limited, 5xx), and
	// the retries ran out. Retrying later may help; nobody needs to change
	// anything in Vault.
	ErrUnavailable = errors.New("vault unavailable")
	// ErrPermissionDenied: Vault refused the request with a valid token: its
	// policies do not allow the read, or the mount does not exist (Vault does
	// not tell the two apart). Someone has to change a policy or the
	// reference.
	ErrPermissionDenied = errors.New("vault permission denied")
)

// Config configures a Vault. Only Address and the auth method's fields are
// required.
type Config struct {
	// Address is Vault's URL, such as https://vault.example.com:8200.
	Address string
	// Namespace is the Vault Enterprise namespace every request is sent to
	// (the X-Vault-Namespace header), such as "team-a". Empty means root.
	Namespace string
	// CACert is a PEM file of the CA certificates that sign Vault's TLS
	// certificate. Empty means the system's roots.
	CACert string
	Auth   AuthConfig
	// Timeout bounds each HTTP request to Vault (default 10s).
	Timeout time.Duration
	// MaxRetries is how often a call that failed because Vault is unavailable
	// is retried before giving up with ErrUnavailable: 0 means the default
	// (3), a negative number means never.
	MaxRetries int
}

// AuthConfig chooses and configures how a Vault logs in.
type AuthConfig struct {
	// Method is token (the default), approle or kubernetes.
	Method string

	// token: the token itself, or a file holding it (read again at each
	// login, so a token rotated by an agent is picked up).
	Token, TokenFile string

	// approle: the role id, or a file holding it; the secret id from a file
	// or an environment variable, read at each login. With WrappedSecretID
	// the file or variable holds a response-wrapping token that is unwrapped
	// once; its secret id is kept in memory for later logins until a new
	// wrapping token appears.
	RoleID, RoleIDFile, SecretIDFile, SecretIDEnv string
	WrappedSecretID                               bool

	// kubernetes: the Vault role, and the service account token file (default
	// DefaultServiceAccountTokenPath), read at each login so a rotated
	// projected token is used.
	Role, ServiceAccountTokenPath string

	// MountPath is where the auth method is mounted (default: the method's
	// name, "approle" or "kubernetes").
	MountPath string
}

// Vault resolves secret://vault references. It is safe for concurrent use.
// Close it to stop token renewal.
type Vault struct {
	cfg       Config
	log       *slog.Logger
	tune      tuning
	transport *http.Transport
	client    *api.Client // the shared client for reads; its token is the session's

	ctx    context.Context // ends with Close: background login and renewal
	cancel context.CancelFunc
	wg     sync.WaitGroup

	loginSem chan struct{} // one login at a time; waiting honours the caller's ctx

	mu        sync.Mutex
	gen       uint64 // counts logins; a caller holding an older gen has a stale token
	hasToken  bool
	stopWatch context.CancelFunc
	quickEnds int // renewals that ended soon after their login, in a row
	closed    bool
	unwrapped wrappedSecretID

	mountsMu sync.Mutex
	mounts   map[string]mountInfo
}

// tuning holds the timings tests shorten.
type tuning struct {
	retryBase, retryMax time.Duration // per call, between attempts
	loginBase, loginMax time.Duration // background login, between attempts
	quickLife           time.Duration // a token renewed for less than this ended "quickly"
	mountTTL            time.Duration
	now                 func() time.Time
}

func defaultTuning() tuning {
	return tuning{
		retryBase: 200 * time.Millisecond,
		retryMax:  5 * time.Second,
		loginBase: time.Second,
		loginMax:  time.Minute,
		quickLife: 10 * time.Second,
		mountTTL:  5 * time.Minute,
		now:       time.Now,
	}
}

// New returns a Vault for cfg. It fails only on a configuration error: Vault
// itself is not contacted here. A login starts in the background and is
// retried until it succeeds; Resolve logs in itself if it has to. The
// goroutines end when ctx ends or Close is called. A nil log discards.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Vault, error) {
	return newVault(ctx, cfg, log, defaultTuning())
}

func newVault(ctx context.Context, cfg Config, log *slog.Logger, tune tuning) (*Vault, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Vault{
		cfg:      cfg,
		log:      log.WithGroup("vault"),
		tune:     tune,
		loginSem: make(chan struct{}, 1),
		mounts:   map[string]mountInfo{},
	}
	v.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if cfg.CACert != "" {
		// Once, on the shared transport: a tls.Config must not change while
		// connections use it.
		tc := &api.Config{HttpClient: &http.Client{Transport: v.transport}}
		if err := tc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("vault CA certificate %s: %w", cfg.CACert, err)
		}
	}
	v.client, err = v.newClient()
	if err != nil {
		return nil, err
	}
	v.ctx, v.cancel = context.WithCancel(ctx)
	v.wg.Go(func() { v.loginLoop(v.ctx, 0, 0) })
	return v, nil
}

func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("vault address %q: want a URL such as https://vault.example.com:8200", c.Address)
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("vault timeout %s: must not be negative", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	c.Namespace = strings.Trim(c.Namespace, "/")
	a := &c.Auth
	if a.Method == "" {
		a.Method = AuthToken
	}
	a.MountPath = strings.Trim(a.MountPath, "/")
	switch a.Method {
	case AuthToken:
		if (a.Token == "") == (a.TokenFile == "") {
			return c, errors.New("vault token auth: set exactly one of token and token file")
		}
	case AuthAppRole:
		if (a.RoleID == "") == (a.RoleIDFile == "") {
			return c, errors.New("vault approle auth: set exactly one of role id and role id file")
		}
		if (a.SecretIDFile == "") == (a.SecretIDEnv == "") {
			return c, errors.New("vault approle auth: set exactly one of secret id file and secret id env")
		}
		if a.MountPath == "" {
			a.MountPath = AuthAppRole
		}
	case AuthKubernetes:
		if a.Role == "" {
			return c, errors.New("vault kubernetes auth: set the role")
		}
		if a.ServiceAccountTokenPath == "" {
			a.ServiceAccountTokenPath = DefaultServiceAccountTokenPath
		}
		if a.MountPath == "" {
			a.MountPath = AuthKubernetes
		}
	default:
		return c, fmt.Errorf("vault auth method %q: use token, approle or kubernetes", a.Method)
	}
	return c, nil
}

// newClient returns an SDK client without a token that shares v's transport.
// Everything is set explicitly: the SDK would otherwise pick up VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_WRAP_TTL and VAULT_HEADERS from the environment,
// and only the agent's config decides how Caesium talks to Vault.
func (v *Vault) newClient() (*api.Client, error) {
	conf := &api.Config{
		Address: v.cfg.Address,
		HttpClient: &http.Client{
			Transport: v.transport,
			// The SDK follows Vault's redirects itself.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Timeout:    v.cfg.Timeout,
		MaxRetries: 0, // retries are ours: they back off with jitter and honour ctx
	}
	c, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearToken()
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	h := http.Header{}
	h.Set(api.RequestHeaderName, "true")
	c.SetHeaders(h)
	if v.cfg.Namespace != "" {
		c.SetNamespace(v.cfg.Namespace)
	}
	return c, nil
}

// Close stops token renewal and background logins and waits for them; a
// renewal already on the wire (the SDK sends it without a context) is
// waited for, up to Timeout. It does not revoke the token: it expires with
// its TTL. Resolve fails after Close.
func (v *Vault) Close() {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.closed = true
	if v.stopWatch != nil {
		v.stopWatch()
	}
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
	v.transport.CloseIdleConnections()
}

var errClosed = errors.New("vault backend is closed")

// Resolve returns the field ref names from the KV secret at ref's mount and
// path. A string field is returned as is; other values (numbers, booleans,
// objects, arrays) as JSON text.
//
// A missing mount path, version or field, a deleted or destroyed version, and
// an empty or null field are errors matching fs.ErrNotExist. A version pin on
// a KV version 1 mount is an error. If Vault cannot be reached the error
// wraps ErrUnavailable (after the retries); a refused read wraps
// ErrPermissionDenied. Errors name the reference, never the value.
func (v *Vault) Resolve(ctx context.Context, ref schema.SecretRef) (string, error) {
	name := refString(ref)
	if ref.Backend != schema.SecretVault || ref.Mount == "" || ref.Path == "" || ref.Field == "" {
		return "", fmt.Errorf("%s: not a vault secret reference", name)
	}
	if v.isClosed() {
		return "", fmt.Errorf("%s: %w", name, errClosed)
	}
	data, err := v.read(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	raw, ok := data[ref.Field]
	if !ok {
		return "", fmt.Errorf("%s: %w", name, &notFoundError{msg: fmt.Sprintf("the secret at %s/%s has no field %q", ref.Mount, ref.Path, ref.Field)})
	}
	s, err := render(raw)
	if err != nil {
		return "", fmt.Errorf("%s: field %q: %w", name, ref.Field, err)
	}
	if s == "" {
		return "", fmt.Errorf("%s: %w", name, &notFoundError{msg: fmt.Sprintf("field %q is empty", ref.Field)})
	}
	return s, nil
}

func (v *Vault) isClosed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closed || v.ctx.Err() != nil
}

// notFoundError matches fs.ErrNotExist, the "no such secret" contract shared
// by the secret backends, which do not import one another.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// refString names ref in errors, also for a SecretRef built by hand rather
// than parsed (whose String is empty).
func refString(ref schema.SecretRef) string {
	if s := ref.String(); s != "" {
		return s
	}
	s := schema.SecretScheme + schema.SecretVault + "/" + ref.Mount + "/" + ref.Path + "#" + ref.Field
	if ref.Version > 0 {
		s += fmt.Sprintf("?version=%d", ref.Version)
	}
	return s
}
