package git

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitproto "github.com/go-git/go-git/v5/plumbing/transport/git"
	gohttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/net/proxy"
)

func init() {
	// go-git's ssh transport reads ~/.ssh/config, which could send a
	// source to another host or port than its URL says (and make the
	// known_hosts lookup disagree). The URL is the whole truth here. go-git
	// is imported by this package only, so its globals are ours to set.
	gitssh.DefaultSSHConfig = nil
	// See ctxDialer. Registered once, before any goroutine can read the
	// registry.
	proxy.RegisterDialerType(ctxDialScheme, newCtxDialer)
}

// session opens an upload-pack session to the remote. close ends it.
func (r *Repo) session(ctx context.Context) (s transport.UploadPackSession, close func(), err error) {
	auth, err := r.authMethod(ctx)
	if err != nil {
		return nil, nil, err
	}
	ep := r.src.ep // a copy: Proxy is set per operation
	var tr transport.Transport
	done := func() {}
	switch ep.Protocol {
	case "http", "https":
		tr = r.httpCl
	case "ssh":
		tr = gitssh.DefaultClient
		id := dialCtxs.register(ctx)
		done = func() { dialCtxs.unregister(id) }
		ep.Proxy = transport.ProxyOptions{URL: ctxDialScheme + "://" + id}
	case "git":
		tr = gitproto.DefaultClient
	default:
		return nil, nil, fmt.Errorf("%w: protocol %q", ErrUnsafeURL, ep.Protocol)
	}
	if auth == nil {
		s, err = tr.NewUploadPackSession(&ep, nil)
	} else {
		s, err = tr.NewUploadPackSession(&ep, auth)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); done() }, nil
}

// authMethod resolves the credentials for this operation. It returns a nil
// AuthMethod when there are none.
func (r *Repo) authMethod(ctx context.Context) (transport.AuthMethod, error) {
	a := r.cfg.Auth
	switch r.src.ep.Protocol {
	case "http", "https":
		user, err := r.resolve(ctx, "auth.username", a.Username)
		if err != nil {
			return nil, err
		}
		if user == "" {
			user = r.src.user
		}
		pass := r.src.password
		if a.Password != "" {
			if pass, err = r.resolve(ctx, "auth.password", a.Password); err != nil {
				return nil, err
			}
		}
		if user == "" && pass == "" {
			return nil, nil
		}
		r.remember(pass)
		return &gohttp.BasicAuth{Username: user, Password: pass}, nil
	case "ssh":
		return r.sshAuth(ctx)
	}
	return nil, nil
}

func (r *Repo) sshAuth(ctx context.Context) (*sshAuth, error) {
	a := r.cfg.Auth
	user := r.src.ep.User
	if user == "" {
		var err error
		if user, err = r.resolve(ctx, "auth.username", a.Username); err != nil {
			return nil, err
		}
		if user == "" {
			user = "git"
		}
	}
	var methods []ssh.AuthMethod
	if a.SSHKey != "" {
		key, err := r.resolve(ctx, "auth.ssh_key", a.SSHKey)
		if err != nil {
			return nil, err
		}
		phrase, err := r.resolve(ctx, "auth.ssh_key_passphrase", a.SSHKeyPassphrase)
		if err != nil {
			return nil, err
		}
		r.remember(phrase)
		var signer ssh.Signer
		if phrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(phrase))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(key))
		}
		if err != nil {
			// x/crypto's parse errors describe the format, never the key.
			return nil, fmt.Errorf("%w: auth.ssh_key: %v", ErrConfig, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	pass := r.src.password
	if a.Password != "" {
		var err error
		if pass, err = r.resolve(ctx, "auth.password", a.Password); err != nil {
			return nil, err
		}
	}
	if pass != "" {
		r.remember(pass)
		methods = append(methods, ssh.Password(pass))
	}
	db, err := r.knownHosts(ctx)
	if err != nil {
		return nil, err
	}
	return &sshAuth{
		user:    user,
		methods: methods,
		hostKey: db.HostKeyCallback(),
		// Offer only the key types known_hosts has for this host; otherwise
		// the server may pick another type and the check fails on a host
		// whose listed key is perfectly valid.
		algos:   db.HostKeyAlgorithms(hostWithPort(&r.src.ep)),
		timeout: r.cfg.Timeout,
	}, nil
}

// knownHostsCache keeps the parsed known_hosts while its content is
// unchanged.
type knownHostsCache struct {
	content string
	db      *knownhosts.HostKeyDB
}

func (r *Repo) knownHosts(ctx context.Context) (*knownhosts.HostKeyDB, error) {
	content, err := r.resolve(ctx, "auth.known_hosts", r.cfg.Auth.KnownHosts)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(content) == "" {
		return nil, fmt.Errorf("%w: auth.known_hosts is empty", ErrConfig)
	}
	if r.kh.db != nil && r.kh.content == content {
		return r.kh.db, nil
	}
	// The parsers take file names only.
	f, err := os.CreateTemp("", "caesium-known-hosts-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	db, err := knownhosts.NewDB(f.Name())
	if err != nil {
		return nil, fmt.Errorf("%w: auth.known_hosts: %s", ErrConfig, strings.ReplaceAll(err.Error(), f.Name(), "known_hosts"))
	}
	r.kh = knownHostsCache{content: content, db: db}
	return db, nil
}

// sshAuth is a go-git ssh AuthMethod that carries the whole client
// configuration: with HostKeyCallback set, go-git never falls back to the
// user's known_hosts files or to an ssh agent.
type sshAuth struct {
	user    string
	methods []ssh.AuthMethod
	hostKey ssh.HostKeyCallback
	algos   []string
	timeout time.Duration
}

var _ gitssh.AuthMethod = (*sshAuth)(nil)

func (a *sshAuth) Name() string   { return "caesium-ssh" }
func (a *sshAuth) String() string { return "user: " + a.user + ", name: caesium-ssh" }

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              a.methods,
		HostKeyCallback:   a.hostKey,
		HostKeyAlgorithms: a.algos,
		Timeout:           a.timeout,
	}, nil
}

// go-git's ssh transport dials and runs the SSH handshake with no context:
// a server that accepts the TCP connection and then stays silent would hold
// the operation (and the Repo) forever. Its only hook into dialing is the
// proxy setting, resolved through golang.org/x/net/proxy's scheme registry,
// so each ssh operation registers its context under an id and names it as
// the "proxy"; the dialer connects directly and closes the connection when
// that context ends, which unblocks every read and write on it.
const ctxDialScheme = "caesium-ctx"

type ctxRegistry struct {
	seq atomic.Uint64
	m   sync.Map // id → context.Context
}

var dialCtxs ctxRegistry

func (c *ctxRegistry) register(ctx context.Context) string {
	id := "op" + strconv.FormatUint(c.seq.Add(1), 10)
	c.m.Store(id, ctx)
	return id
}

func (c *ctxRegistry) unregister(id string) { c.m.Delete(id) }

func newCtxDialer(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
	v, ok := dialCtxs.m.Load(u.Host)
	if !ok {
		return nil, errors.New("dial: operation already finished")
	}
	return ctxDialer{op: v.(context.Context)}, nil
}

type ctxDialer struct{ op context.Context }

func (d ctxDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d ctxDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.op, cancel)
	defer stop()
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	stopClose := context.AfterFunc(d.op, func() { _ = conn.Close() })
	return &ctxConn{Conn: conn, stop: stopClose}, nil
}

type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// opError is what every operation returns: the operation, the redacted URL
// and a message with secrets scrubbed. It unwraps to the package sentinels
// and context errors that apply and, when its text needed no scrubbing, to
// the original error.
type opError struct {
	op, url string
	msg     string
	errs    []error
}

func (e *opError) Error() string   { return e.op + " " + e.url + ": " + e.msg }
func (e *opError) Unwrap() []error { return e.errs }

var sentinels = []error{
	ErrAuth, ErrHostKey, ErrNotFound, ErrUnsafeURL, ErrConfig, ErrTooManyFiles,
	ErrUnsigned, ErrUntrustedSignature,
	context.Canceled, context.DeadlineExceeded,
}

func (r *Repo) wrap(ctx context.Context, op string, err error) error {
	var kind error
	var keyErr *xknownhosts.KeyError
	text := err.Error()
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(text, "ssh: unable to authenticate"):
		kind = ErrAuth
	case errors.As(err, &keyErr), strings.Contains(text, "knownhosts: "):
		kind = ErrHostKey
	case errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrEmptyRemoteRepository):
		kind = ErrNotFound
	}
	msg := r.scrubText(text)
	e := &opError{op: op, url: r.src.redacted, msg: msg}
	if kind != nil && !errors.Is(err, kind) {
		e.msg = kind.Error() + ": " + e.msg
		e.errs = append(e.errs, kind)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		// A closed connection is how a deadline shows up from below.
		e.msg += " (" + cerr.Error() + ")"
		e.errs = append(e.errs, cerr)
	}
	if msg == text {
		e.errs = append(e.errs, err)
	} else {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				e.errs = append(e.errs, s)
			}
		}
	}
	return e
}

func (r *Repo) scrubText(s string) string {
	for _, v := range r.scrub {
		s = strings.ReplaceAll(s, v, "REDACTED")
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, "REDACTED")
		}
		if p := url.PathEscape(v); p != v {
			s = strings.ReplaceAll(s, p, "REDACTED")
		}
	}
	if r.cfg.URL != r.src.redacted {
		s = strings.ReplaceAll(s, r.cfg.URL, r.src.redacted)
	}
	return s
}
