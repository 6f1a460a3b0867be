package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// maxCredentialSize bounds the token, role id and wrapping token files read.
const maxCredentialSize = 64 << 10

// session reports the current login: its generation and whether a token is
// in place.
func (v *Vault) session() (gen uint64, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.gen, v.hasToken
}

// invalidate drops the token of login gen, which Vault no longer accepts, so
// that the next call logs in. A newer login is left alone.
func (v *Vault) invalidate(gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen != gen || !v.hasToken {
		return
	}
	v.hasToken = false
	if v.stopWatch != nil {
		v.stopWatch()
		v.stopWatch = nil
	}
}

// login logs in unless a login newer than staleGen has already put a token
// in place, so that callers who all saw the same stale token log in once.
// One attempt; callers retry.
func (v *Vault) login(ctx context.Context, staleGen uint64) error {
	select {
	case v.loginSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-v.loginSem }()
	if gen, ok := v.session(); ok && gen != staleGen {
		return nil
	}
	secret, err := v.authenticate(ctx)
	if err != nil {
		err = translate(err)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// A credential file that is missing or unreadable is a
			// configuration error: it must not pass for a missing secret.
			err = errors.New(err.Error())
		}
		return fmt.Errorf("vault login (%s): %w", v.cfg.Auth.Method, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return fmt.Errorf("vault login (%s): the response holds no token", v.cfg.Auth.Method)
	}
	v.install(secret)
	v.log.Info("logged in to vault", "method", v.cfg.Auth.Method,
		"ttl_seconds", secret.Auth.LeaseDuration, "renewable", secret.Auth.Renewable)
	return nil
}

// install makes the token of a fresh login the session's and starts keeping
// it alive.
func (v *Vault) install(secret *api.Secret) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopWatch != nil {
		v.stopWatch()
		v.stopWatch = nil
	}
	v.client.SetToken(secret.Auth.ClientToken)
	v.gen++
	v.hasToken = true
	if v.closed || secret.Auth.LeaseDuration <= 0 {
		// A token without a TTL (a root or periodic-less static token)
		// never expires: there is nothing to renew.
		return
	}
	// RenewBehaviorIgnoreErrors (the default) keeps a non-renewable token
	// until shortly before it expires and rides out failed renewals; either
	// way DoneCh fires in time to log in again.
	w, err := v.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		v.log.Warn("cannot watch vault token; it will be replaced when Vault rejects it", "error", err)
		return
	}
	ctx, cancel := context.WithCancel(v.ctx)
	v.stopWatch = cancel
	gen, since := v.gen, v.tune.now()
	v.wg.Go(func() { v.watch(ctx, w, gen, since) })
}

// watch runs the LifetimeWatcher of login gen and, when renewal ends (the
// token reached its max TTL, cannot be renewed, or renewals failed until it
// nearly expired), logs in again.
func (v *Vault) watch(ctx context.Context, w *api.LifetimeWatcher, gen uint64, since time.Time) {
	v.wg.Go(w.Start)
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				v.log.Debug("renewed vault token", "ttl_seconds", r.Secret.Auth.LeaseDuration)
			}
		case err := <-w.DoneCh():
			if cur, ok := v.session(); !ok || cur != gen || ctx.Err() != nil {
				return // replaced by a newer login, or closing
			}
			if err != nil {
				v.log.Warn("vault token renewal failed; logging in again", "error", translate(err))
			} else {
				v.log.Info("vault token cannot be renewed further; logging in again")
			}
			v.loginLoop(ctx, gen, v.reloginDelay(since))
			return
		}
	}
}

// reloginDelay spaces out logins whose tokens keep ending soon after they
// were issued (a static token about to expire, a tiny max TTL), so a
// misconfiguration does not turn into a login storm.
func (v *Vault) reloginDelay(since time.Time) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tune.now().Sub(since) >= v.tune.quickLife {
		v.quickEnds = 0
		return 0
	}
	v.quickEnds++
	if v.quickEnds < 2 {
		return 0
	}
	return backoff(v.quickEnds-2, v.tune.loginBase, v.tune.loginMax)
}

// loginLoop logs in (after delay) until it succeeds, a newer login makes it
// unnecessary, or ctx ends. It is the background path; Resolve logs in on
// demand with its own bounded retries.
func (v *Vault) loginLoop(ctx context.Context, staleGen uint64, delay time.Duration) {
	for attempt := 0; ; attempt++ {
		if !sleep(ctx, delay) {
			return
		}
		err := v.login(ctx, staleGen)
		if err == nil || ctx.Err() != nil {
			return
		}
		delay = backoff(attempt, v.tune.loginBase, v.tune.loginMax)
		v.log.Warn("vault login failed; retrying", "attempt", attempt+1, "retry_in", delay.Round(time.Millisecond).String(), "error", err)
	}
}

// authenticate performs one login with the configured method on a client of
// its own, so the shared client's token changes only when the login
// succeeded.
func (v *Vault) authenticate(ctx context.Context) (*api.Secret, error) {
	c, err := v.newClient()
	if err != nil {
		return nil, err
	}
	a := v.cfg.Auth
	switch a.Method {
	case AuthToken:
		return v.tokenLogin(ctx, c)
	case AuthAppRole:
		roleID := a.RoleID
		if a.RoleIDFile != "" {
			if roleID, err = readCredential(a.RoleIDFile, "role id"); err != nil {
				return nil, err
			}
		}
		sid := &approle.SecretID{FromFile: a.SecretIDFile, FromEnv: a.SecretIDEnv}
		if a.WrappedSecretID {
			s, err := v.unwrapSecretID(ctx)
			if err != nil {
				return nil, err
			}
			sid = &approle.SecretID{FromString: s}
		}
		m, err := approle.NewAppRoleAuth(roleID, sid, approle.WithMountPath(a.MountPath))
		if err != nil {
			return nil, err
		}
		return c.Auth().Login(ctx, m)
	case AuthKubernetes:
		// Built at each login: the SDK reads the token file here, and
		// projected service account tokens are rotated by the kubelet.
		m, err := kubernetes.NewKubernetesAuth(a.Role,
			kubernetes.WithServiceAccountTokenPath(a.ServiceAccountTokenPath),
			kubernetes.WithMountPath(a.MountPath))
		if err != nil {
			return nil, err
		}
		return c.Auth().Login(ctx, m)
	}
	return nil, fmt.Errorf("unknown auth method %q", a.Method)
}

// tokenLogin "logs in" with a given token: it looks the token up, which
// checks it and tells its TTL, and returns what a login would.
func (v *Vault) tokenLogin(ctx context.Context, c *api.Client) (*api.Secret, error) {
	tok := v.cfg.Auth.Token
	if f := v.cfg.Auth.TokenFile; f != "" {
		var err error
		if tok, err = readCredential(f, "token"); err != nil {
			return nil, err
		}
	}
	c.SetToken(tok)
	s, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, err
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("token lookup: %w", err)
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("token lookup: %w", err)
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   tok,
		LeaseDuration: int(ttl / time.Second),
		Renewable:     renewable,
	}}, nil
}

// wrappedSecretID remembers the secret id unwrapped from a wrapping token: a
// wrapping token can be unwrapped once, but a later login needs the secret
// id again.
type wrappedSecretID struct {
	wrappingToken, secretID string
}

// unwrapSecretID returns the AppRole secret id behind the response-wrapping
// token in the configured file or variable, unwrapping it only when the
// token is new. Called with loginSem held.
func (v *Vault) unwrapSecretID(ctx context.Context) (string, error) {
	a := v.cfg.Auth
	var wt string
	if a.SecretIDFile != "" {
		var err error
		if wt, err = readCredential(a.SecretIDFile, "wrapped secret id"); err != nil {
			return "", err
		}
	} else {
		wt, _ = os.LookupEnv(a.SecretIDEnv)
		wt = string(bytes.TrimSpace([]byte(wt)))
		if wt == "" {
			return "", fmt.Errorf("environment variable %s holding the wrapped secret id is empty or not set", a.SecretIDEnv)
		}
	}
	v.mu.Lock()
	cached := v.unwrapped
	v.mu.Unlock()
	if cached.wrappingToken == wt {
		return cached.secretID, nil
	}
	c, err := v.newClient() // UnwrapWithContext makes the wrapping token this client's token
	if err != nil {
		return "", err
	}
	s, err := c.Logical().UnwrapWithContext(ctx, wt)
	if err != nil {
		if isStatus(translate(err), 400, 403, 404) {
			return "", fmt.Errorf("unwrap secret id: the wrapping token was already used, has expired or is not one; deliver a new one: %w", translate(err))
		}
		return "", fmt.Errorf("unwrap secret id: %w", err)
	}
	var sid string
	if s != nil {
		sid, _ = s.Data["secret_id"].(string)
	}
	if sid == "" {
		return "", errors.New("unwrap secret id: the wrapped response holds no secret_id")
	}
	v.mu.Lock()
	v.unwrapped = wrappedSecretID{wrappingToken: wt, secretID: sid}
	v.mu.Unlock()
	v.log.Info("unwrapped vault approle secret id")
	return sid, nil
}

// readCredential reads a small credential file, without surrounding
// whitespace. Errors name the file, never its content.
func readCredential(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", what, path, err)
	}
	if len(b) > maxCredentialSize {
		return "", fmt.Errorf("read %s from %s: larger than %d bytes", what, path, maxCredentialSize)
	}
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return "", fmt.Errorf("read %s from %s: the file is empty", what, path)
	}
	return s, nil
}
