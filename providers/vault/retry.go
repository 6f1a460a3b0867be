package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// apiError is an error response from Vault, translated at the SDK boundary
// into one line: "GET /v1/secret/data/app: 503 Vault is sealed". Vault's
// error messages name paths and reasons, never tokens or values.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// translate turns the SDK's multi-line *api.ResponseError, wherever it is in
// err's chain, into an *apiError; other errors are returned as they are.
func translate(err error) error {
	var re *api.ResponseError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	where := re.URL
	if u, perr := url.Parse(re.URL); perr == nil {
		where = u.Path
	}
	msgs := make([]string, 0, len(re.Errors))
	for _, m := range re.Errors {
		m = strings.Join(strings.Fields(m), " ")
		if len(m) > 200 {
			m = m[:200] + "…"
		}
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	msg := fmt.Sprintf("%s %s: %d", re.HTTPMethod, where, re.StatusCode)
	if len(msgs) > 0 {
		msg += " " + strings.Join(msgs, "; ")
	}
	return &apiError{status: re.StatusCode, msg: msg}
}

func isStatus(err error, codes ...int) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.status == c {
			return true
		}
	}
	return false
}

// retriable reports whether err means Vault could not serve the request now:
// a network error, a timeout of one attempt, or a status that says "later"
// (412 from a performance standby not yet caught up, 429 rate limited, 5xx
// such as 503 sealed). Anything else (4xx, a TLS certificate Vault's CA does
// not sign, a bad configuration) will not get better by retrying.
func retriable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status == 412 || ae.status == 429 || ae.status >= 500
	}
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &recErr) {
		return false
	}
	// Transport errors of the HTTP client are *url.Error. A bare
	// syscall.Errno would pass for a net.Error too (ENOENT of a missing
	// credential file), so net errors count only as *net.OpError.
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &oe) ||
		errors.Is(err, context.DeadlineExceeded) || // the per-attempt Timeout
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// retry runs op until it succeeds, fails with an error retrying will not
// mend, ctx ends, or MaxRetries retries have failed. Between attempts it
// waits a jittered, exponentially growing backoff. Errors are translated;
// when the retries run out the error wraps ErrUnavailable, and when ctx ends
// after Vault failed it wraps both ctx.Err() and ErrUnavailable.
func (v *Vault) retry(ctx context.Context, op func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := translate(op(ctx))
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			switch {
			case errors.Is(err, cerr): // the request itself was canceled
				return err
			case retriable(err): // Vault failed before the caller gave up
				return fmt.Errorf("%w: %w: %w", cerr, ErrUnavailable, err)
			default:
				return fmt.Errorf("%w: %w", cerr, err)
			}
		}
		if !retriable(err) {
			return err
		}
		if attempt >= v.cfg.MaxRetries {
			return fmt.Errorf("%w after %d attempt(s): %w", ErrUnavailable, attempt+1, err)
		}
		if !sleep(ctx, backoff(attempt, v.tune.retryBase, v.tune.retryMax)) {
			return fmt.Errorf("%w while waiting to retry: %w: %w", ctx.Err(), ErrUnavailable, err)
		}
	}
}

// backoff returns an "equal jitter" wait for the given retry: half of
// base·2^attempt (capped at limit) plus a random part up to the other half,
// so that clients that failed together do not come back together, yet each
// waits at least half the step.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	ceil := limit
	if attempt < 30 && base<<attempt < limit && base<<attempt > 0 {
		ceil = base << attempt
	}
	if ceil <= 0 {
		return base
	}
	half := ceil / 2
	return half + time.Duration(rand.Int64N(int64(ceil-half)+1))
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// call runs op with the session's token, logging in first if there is none
// and retrying as retry does. A 403 means either that the token is no longer
// good (revoked, expired while Vault was away, or the wrong namespace) or
// that its policies refuse op; a token lookup tells which, and in the first
// case call logs in again and runs op once more.
func (v *Vault) call(ctx context.Context, op func(context.Context, *api.Client) error) error {
	relogged := false
	for {
		gen, ok := v.session()
		if !ok {
			if err := v.retry(ctx, func(ctx context.Context) error { return v.login(ctx, gen) }); err != nil {
				return err
			}
			continue
		}
		err := v.retry(ctx, func(ctx context.Context) error { return op(ctx, v.client) })
		if err == nil || !isStatus(err, 403) || relogged {
			return denied(err)
		}
		relogged = true
		if cur, _ := v.session(); cur != gen {
			continue // someone logged in meanwhile: try with the new token
		}
		valid := true
		lerr := v.retry(ctx, func(ctx context.Context) error {
			_, err := v.client.Auth().Token().LookupSelfWithContext(ctx)
			if isStatus(translate(err), 403) {
				valid = false
				return nil
			}
			return err
		})
		if lerr != nil {
			return lerr
		}
		if valid {
			return denied(err)
		}
		v.log.Info("vault rejected the token; logging in again")
		v.invalidate(gen)
	}
}

// denied marks a 403 as ErrPermissionDenied.
func denied(err error) error {
	if isStatus(err, 403) {
		return fmt.Errorf("%w: %w", ErrPermissionDenied, err)
	}
	return err
}
