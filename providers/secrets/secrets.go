// Package secrets resolves secret:// references: it parses one with
// schema.ParseSecretRef and hands it to the backend of that name (env, file,
// later vault), optionally caching the value for a short time. It also
// remembers the values it handed out, so that Redact can scrub them from log
// lines and error messages as a last line of defence.
//
// The backends live in their own packages (providers/env, providers/file,
// providers/vault) and do not import this one: the agent builds them and
// passes them to New by name.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/caesium-io/caesium/schema"
)

var (
	// ErrNotFound: the secret does not exist (no such variable, file or
	// field) or is empty. Someone has to create it; retrying will not help
	// until then. Any other error from Resolve means the secret could not be
	// read now (permissions, a network error, a sealed Vault).
	ErrNotFound = errors.New("secret not found")
	// ErrNoBackend: the reference names a backend the agent has not been
	// configured with.
	ErrNoBackend = errors.New("secret backend not configured")
)

// Backend resolves the references of one backend.
//
// Resolve returns the secret's value, never an empty string. A secret that
// does not exist, or is empty, yields an error for which
// errors.Is(err, fs.ErrNotExist) holds; the Router reports it as ErrNotFound
// (fs.ErrNotExist, not ErrNotFound, because backends do not import this
// package). Errors name the reference and never contain the value.
type Backend interface {
	Resolve(ctx context.Context, ref schema.SecretRef) (string, error)
}

// Error is the error of Resolve. It names the reference, never a value.
// errors.Is(err, ErrNotFound) tells a missing secret from one that could not
// be read now.
type Error struct {
	Ref string // the reference as given; empty if it was not one
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Ref
	}
	msg := e.Err.Error()
	// Backends name the reference themselves (they are usable alone), as
	// does the parser: do not say it twice.
	if strings.Contains(msg, e.Ref) {
		return msg
	}
	return e.Ref + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports a backend's "does not exist" as ErrNotFound.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && errors.Is(e.Err, fs.ErrNotExist)
}

type noBackendError struct{ name string }

func (e *noBackendError) Error() string        { return "no " + e.name + " backend is configured" }
func (e *noBackendError) Is(target error) bool { return target == ErrNoBackend }

// Options tune a Router. The zero value caches nothing.
type Options struct {
	// CacheTTL keeps a resolved value in memory for this long, keyed by the
	// reference string. 0 resolves on every use, so a rotated secret is
	// picked up at once. Errors are never cached.
	CacheTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Router resolves secret:// references through the backend each one names.
// It is safe for concurrent use.
type Router struct {
	backends map[string]Backend
	ttl      time.Duration
	now      func() time.Time

	mu        sync.Mutex
	cache     map[string]cached
	sweepSize int // sweep expired entries when the cache grows past this

	redact redactor
}

type cached struct {
	value   string
	expires time.Time
}

// New returns a Router over backends, keyed by the backend name of the
// references (schema.SecretEnv, schema.SecretFile, schema.SecretVault). A
// missing or nil backend makes its references fail with ErrNoBackend.
func New(backends map[string]Backend, opts Options) *Router {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheTTL < 0 {
		opts.CacheTTL = 0
	}
	bs := make(map[string]Backend, len(backends))
	for name, b := range backends {
		if b != nil {
			bs[name] = b
		}
	}
	return &Router{
		backends:  bs,
		ttl:       opts.CacheTTL,
		now:       opts.Now,
		cache:     map[string]cached{},
		sweepSize: minSweep,
		redact:    redactor{retain: max(opts.CacheTTL, redactRetention)},
	}
}

const minSweep = 64

var errNotRef = errors.New("not a secret reference; write secret://env/NAME, secret://file/PATH or secret://vault/MOUNT/PATH#FIELD")

// Resolve returns the secret ref names. Its errors are *Error.
func (r *Router) Resolve(ctx context.Context, ref string) (string, error) {
	if !schema.IsSecretRef(ref) {
		// Do not echo ref: a literal secret passed by mistake ends up here.
		return "", &Error{Err: errNotRef}
	}
	parsed, err := schema.ParseSecretRef(ref)
	if err != nil {
		return "", &Error{Ref: ref, Err: err}
	}
	b, ok := r.backends[parsed.Backend]
	if !ok {
		return "", &Error{Ref: ref, Err: &noBackendError{name: parsed.Backend}}
	}
	if v, ok := r.lookup(ref); ok {
		r.redact.remember(v, r.now())
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return "", &Error{Ref: ref, Err: err}
	}
	v, err := b.Resolve(ctx, parsed)
	if err != nil {
		return "", &Error{Ref: ref, Err: err}
	}
	if v == "" { // the Backend contract forbids it; never hand one out
		return "", &Error{Ref: ref, Err: fmt.Errorf("%w: the %s backend returned an empty value", ErrNotFound, parsed.Backend)}
	}
	now := r.now()
	r.store(ref, v, now)
	r.redact.remember(v, now)
	return v, nil
}

func (r *Router) lookup(ref string) (string, bool) {
	if r.ttl == 0 {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cache[ref]
	if !ok {
		return "", false
	}
	if !r.now().Before(c.expires) {
		delete(r.cache, ref)
		return "", false
	}
	return c.value, true
}

func (r *Router) store(ref, v string, now time.Time) {
	if r.ttl == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[ref] = cached{value: v, expires: now.Add(r.ttl)}
	if len(r.cache) <= r.sweepSize {
		return
	}
	// Entries are only dropped when read after expiry; sweep now and then so
	// references used once do not pile up.
	for k, c := range r.cache {
		if !now.Before(c.expires) {
			delete(r.cache, k)
		}
	}
	r.sweepSize = max(minSweep, 2*len(r.cache))
}

// Redact returns s with every value this router resolved in the last hour
// (or still holds in its cache) replaced by [REDACTED]. Values shorter than
// 4 bytes are left alone: scrubbing them would mangle ordinary text and, by
// where it did, give them away. A nil Router returns s unchanged.
func (r *Router) Redact(s string) string {
	if r == nil {
		return s
	}
	return r.redact.replace(s, r.now())
}
