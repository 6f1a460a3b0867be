package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Provider names a forge's webhook format.
type Provider string

// The providers. Forgejo sends Gitea's format and is handled as Gitea.
const (
	GitHub          Provider = "github"
	GitLab          Provider = "gitlab"
	Bitbucket       Provider = "bitbucket" // Bitbucket Cloud
	BitbucketServer Provider = "bitbucket-server"
	Gitea           Provider = "gitea"
	Generic         Provider = "generic"
)

// Providers returns every provider, in a stable order.
func Providers() []Provider {
	return []Provider{GitHub, GitLab, Bitbucket, BitbucketServer, Gitea, Generic}
}

// ParseProvider reads a provider name, ignoring case and surrounding space.
// "forgejo" is accepted as Gitea.
func ParseProvider(s string) (Provider, bool) {
	switch p := Provider(strings.ToLower(strings.TrimSpace(s))); p {
	case GitHub, GitLab, Bitbucket, BitbucketServer, Gitea, Generic:
		return p, true
	case "forgejo":
		return Gitea, true
	}
	return "", false
}

const (
	// DefaultMaxBodyBytes is the body limit when Config.MaxBodyBytes is 0.
	DefaultMaxBodyBytes int64 = 1 << 20
	// MaxBodyBytesCeiling bounds Config.MaxBodyBytes. GitHub caps payloads
	// at 25 MB; nothing a push needs comes near it.
	MaxBodyBytesCeiling int64 = 32 << 20
	// ZeroSHA is the After of a deleted ref (SHA-1 repositories; a SHA-256
	// repository reports 64 zeros). See Push.Deleted.
	ZeroSHA = "0000000000000000000000000000000000000000"
)

// Errors. Every error Handle returns wraps exactly one of them. Messages
// name headers and fields, never the secret, a token or a signature value.
var (
	// ErrUnauthorized: the request is not proven to come from the forge
	// (credential missing, repeated, malformed or wrong). Nothing else
	// about the request has been looked at.
	ErrUnauthorized = errors.New("webhook: unauthorized")
	// ErrMalformed: verified, but the event headers or the payload cannot
	// be understood (or the body could not be read).
	ErrMalformed = errors.New("webhook: malformed")
	// ErrTooLarge: the body is over the limit. It was not read past the
	// limit and not verified.
	ErrTooLarge = errors.New("webhook: body too large")
	// ErrConfig: the provider or Config is unusable (unknown provider,
	// empty or blank secret, bad limit). No request can succeed.
	ErrConfig = errors.New("webhook: configuration error")
)

// Config is one webhook endpoint's configuration.
type Config struct {
	// Secret is the resolved shared secret: the HMAC key, or for GitLab the
	// secret token. It is used byte for byte (not trimmed); empty or
	// whitespace-only is a configuration error.
	Secret string
	// MaxBodyBytes limits the body; 0 means DefaultMaxBodyBytes. At most
	// MaxBodyBytesCeiling.
	MaxBodyBytes int64
}

// Validate reports whether c can verify anything, as an error wrapping
// ErrConfig. Handle calls it; callers may call it at startup to fail early.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Secret) == "" {
		return fmt.Errorf("%w: secret is empty; a webhook without a secret is never accepted", ErrConfig)
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > MaxBodyBytesCeiling {
		return fmt.Errorf("%w: max body bytes %d is outside 0..%d", ErrConfig, c.MaxBodyBytes, MaxBodyBytesCeiling)
	}
	return nil
}

func (c Config) limit() int64 {
	if c.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return c.MaxBodyBytes
}

// Delivery is what one verified request asks for. Exactly one of these
// holds: len(Pushes) > 0, Ping, or Ignored != "".
type Delivery struct {
	Provider Provider
	// Event is the forge's event name from its event header ("push",
	// "Push Hook", "repo:refs_changed", ...); "push" for generic requests
	// without X-Event.
	Event string
	// DeliveryID is the forge's delivery identifier, "" if it sent none.
	// It is not signed: use SignatureHash to detect replays.
	DeliveryID string
	// Pushes has one entry per pushed ref.
	Pushes []Push
	// Ping is a verified connectivity check: answer 200 and do nothing.
	Ping bool
	// Ignored says why a verified delivery asks for nothing, for example
	// `event "issues"`; it reads well after "ignored: ".
	Ignored string
	// SignatureHash identifies the delivery for replay detection: hex
	// SHA-256 over the provider, the body's canonical HMAC-SHA256 under
	// the secret and the body. Re-spelling headers (hex case, delivery id)
	// does not change it. For GitLab, whose token signs nothing, it covers
	// the provider and body only: the token never enters it.
	SignatureHash string
	// BodyBytes is the size of the body read.
	BodyBytes int
}

// Push is one ref update as the forge reports it. Use it only to decide
// which configured source to nudge; never fetch from RepoURLs or trust After.
type Push struct {
	// RepoURLs are the repository's URLs as the forge states them (clone
	// URLs over https and ssh, the web URL), deduplicated. Compare them
	// with NormalizeRepoURL, or use Delivery.PushesFor.
	RepoURLs []string
	// Ref is the full ref name: refs/heads/<branch> or refs/tags/<tag>.
	Ref string
	// After is the ref's new object id in lower-case hex (40 digits, or 64
	// in a SHA-256 repository); all zeros when the ref was deleted. For a
	// Bitbucket Cloud tag it is the tagged commit.
	After string
}

// Deleted reports whether the push deleted its ref.
func (p Push) Deleted() bool {
	return p.After != "" && strings.Trim(p.After, "0") == ""
}

// MatchesRepo reports whether any of p's repository URLs names the same
// repository as repoURL under NormalizeRepoURL.
func (p Push) MatchesRepo(repoURL string) bool {
	key := NormalizeRepoURL(repoURL)
	if key == "" {
		return false
	}
	for _, u := range p.RepoURLs {
		if NormalizeRepoURL(u) == key {
			return true
		}
	}
	return false
}

// PushesFor returns the pushes of d that concern repoURL (see MatchesRepo).
func (d *Delivery) PushesFor(repoURL string) []Push {
	var out []Push
	for _, p := range d.Pushes {
		if p.MatchesRepo(repoURL) {
			out = append(out, p)
		}
	}
	return out
}

// forge is one provider's format.
type forge struct {
	// credential checks the credential headers before the body is read:
	// presence, uniqueness and syntax (for GitLab, the token itself).
	credential func(h http.Header, secret string) (credential, error)
	// event names the delivery's event from its headers; ok is false when
	// the forge sent no event header.
	event func(h http.Header) (event string, ok bool, err error)
	// deliveryHeaders hold the delivery id, most preferred first.
	deliveryHeaders []string
	// parse turns a verified delivery's body into pushes, a ping or an
	// ignore reason.
	parse func(h http.Header, event string, body []byte) (outcome, error)
}

var forges = map[Provider]forge{
	GitHub:          githubForge,
	GitLab:          gitlabForge,
	Bitbucket:       bitbucketForge,
	BitbucketServer: bitbucketServerForge,
	Gitea:           giteaForge,
	Generic:         genericForge,
}

// outcome is what a payload parser found.
type outcome struct {
	pushes  []Push
	ping    bool
	ignored string
}

func ignoredEvent(event string) outcome {
	return outcome{ignored: "event " + strconv.Quote(event)}
}

// Handle verifies one delivery and parses it. It reads body itself, at most
// cfg's limit plus one byte, and does not close it. See the package
// documentation for the order of checks and the errors.
func Handle(p Provider, cfg Config, h http.Header, body io.Reader) (*Delivery, error) {
	f, ok := forges[p]
	if !ok {
		return nil, fmt.Errorf("%w: unknown provider %q", ErrConfig, p)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cred, err := f.credential(h, cfg.Secret)
	if err != nil {
		return nil, err
	}
	raw, err := readBody(body, cfg.limit())
	if err != nil {
		return nil, err
	}
	mac, err := cred.verify(cfg.Secret, raw)
	if err != nil {
		return nil, err
	}
	// Verified: from here on the body and headers may be looked at.
	d := &Delivery{Provider: p, BodyBytes: len(raw), SignatureHash: replayHash(p, mac, raw)}
	event, ok, err := f.event(h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: missing event header", ErrMalformed)
	}
	d.Event = event
	if d.DeliveryID, err = deliveryID(h, f.deliveryHeaders); err != nil {
		return nil, err
	}
	out, err := f.parse(h, event, raw)
	if err != nil {
		return nil, err
	}
	d.Pushes, d.Ping, d.Ignored = out.pushes, out.ping, out.ignored
	if len(d.Pushes) == 0 && !d.Ping && d.Ignored == "" {
		d.Ignored = "no branch or tag changes"
	}
	return d, nil
}

// HandleRequest is Handle for an incoming request: a declared Content-Length
// over the limit is refused before anything is read. It does not check the
// method and does not close the body. Callers may still wrap r.Body in
// http.MaxBytesReader so that the server closes the connection on overflow.
func HandleRequest(p Provider, cfg Config, r *http.Request) (*Delivery, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r.ContentLength > cfg.limit() {
		return nil, fmt.Errorf("%w: Content-Length %d is over the %d byte limit", ErrTooLarge, r.ContentLength, cfg.limit())
	}
	return Handle(p, cfg, r.Header, r.Body)
}

// readBody reads at most limit bytes of r. It stops at limit+1 bytes, so a
// body without a declared length (chunked) is bounded the same way.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: over the request body limit", ErrTooLarge)
		}
		return nil, fmt.Errorf("%w: read body: %w", ErrMalformed, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%w: over the %d byte limit", ErrTooLarge, limit)
	}
	return raw, nil
}

type credentialKind int

const (
	// credNone is the zero value: it verifies nothing, so a forge that
	// forgot to fill in a credential fails closed.
	credNone credentialKind = iota
	credHMAC
	credToken
)

// credential is what the headers claim, before the body is checked.
type credential struct {
	kind credentialKind
	macs [][]byte // credHMAC: every tag sent; each must match
}

// verify checks the body against the credential and returns the body's
// canonical HMAC-SHA256 (nil for a token credential).
func (c credential) verify(secret string, body []byte) ([]byte, error) {
	switch c.kind {
	case credToken:
		return nil, nil // checked in constant time by gitlabCredential
	case credHMAC:
		if len(c.macs) == 0 {
			break
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := m.Sum(nil)
		ok := true
		for _, mac := range c.macs {
			// No early exit: every tag is compared in full.
			ok = hmac.Equal(mac, want) && ok
		}
		if !ok {
			return nil, fmt.Errorf("%w: signature does not match the body", ErrUnauthorized)
		}
		return want, nil
	}
	return nil, fmt.Errorf("%w: no credential", ErrUnauthorized)
}

func replayHash(p Provider, mac, body []byte) string {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte{0})
	h.Write(mac)
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// singleHeader returns the one value of header name. A header sent more than
// once is ambiguous and an error (wrapping sentinel); absent is ok=false.
func singleHeader(h http.Header, name string, sentinel error) (v string, ok bool, err error) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, fmt.Errorf("%w: %s header sent %d times", sentinel, name, len(vs))
}

// hmacHeader reads a required signature header with parse.
func hmacHeader(h http.Header, name string, parse func(string) ([]byte, error)) ([]byte, error) {
	v, ok, err := singleHeader(h, name, ErrUnauthorized)
	if err != nil {
		return nil, err
	}
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: missing %s header", ErrUnauthorized, name)
	}
	mac, err := parse(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %w", ErrUnauthorized, name, err)
	}
	return mac, nil
}

// prefixedHMAC is the credential of forges that send "sha256=<hex>" in one
// header.
func prefixedHMAC(name string) func(http.Header, string) (credential, error) {
	return func(h http.Header, _ string) (credential, error) {
		mac, err := hmacHeader(h, name, parsePrefixedSHA256)
		if err != nil {
			return credential{}, err
		}
		return credential{kind: credHMAC, macs: [][]byte{mac}}, nil
	}
}

var (
	errSigPrefix = errors.New(`not of the form "sha256=<hex>"`)
	errSigLength = errors.New("digest is not 64 hex digits")
	errSigHex    = errors.New("digest is not hexadecimal")
)

// parsePrefixedSHA256 parses "sha256=" followed by exactly 64 hex digits.
// The prefix is case-sensitive, as every forge sends it in lower case.
// Errors never quote the value.
func parsePrefixedSHA256(v string) ([]byte, error) {
	rest, ok := strings.CutPrefix(v, "sha256=")
	if !ok {
		return nil, errSigPrefix
	}
	return parseHexSHA256(rest)
}

// parseHexSHA256 parses exactly 64 hex digits (either case) into 32 bytes.
func parseHexSHA256(v string) ([]byte, error) {
	if len(v) != 2*sha256.Size {
		return nil, errSigLength
	}
	mac := make([]byte, sha256.Size)
	if _, err := hex.Decode(mac, []byte(v)); err != nil {
		return nil, errSigHex
	}
	return mac, nil
}

// headerEvent reads the event from the first of names that is present.
func headerEvent(names ...string) func(http.Header) (string, bool, error) {
	return func(h http.Header) (string, bool, error) {
		for _, name := range names {
			v, ok, err := singleHeader(h, name, ErrMalformed)
			if err != nil {
				return "", false, err
			}
			if !ok {
				continue
			}
			if !validToken(v, 64, true) {
				return "", false, fmt.Errorf("%w: %s header is not a short printable name", ErrMalformed, name)
			}
			return v, true, nil
		}
		return "", false, nil
	}
}

// deliveryID reads the delivery id from the first of names that is present.
func deliveryID(h http.Header, names []string) (string, error) {
	for _, name := range names {
		v, ok, err := singleHeader(h, name, ErrMalformed)
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		if !validToken(v, 128, false) {
			return "", fmt.Errorf("%w: %s header is not a short printable identifier", ErrMalformed, name)
		}
		return v, nil
	}
	return "", nil
}

// validToken reports whether v is 1..max printable ASCII characters, with
// inner spaces only if spaces is set. Header values end up in logs and
// delivery records.
func validToken(v string, max int, spaces bool) bool {
	if v == "" || len(v) > max || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' && spaces {
			continue
		}
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Limits on what a payload may put into a Push.
const (
	maxRefLen = 1024
	maxURLLen = 2048
)

// validRef reports whether ref is a full branch or tag name that git would
// accept (git check-ref-format, minus the rules no forge can produce).
func validRef(ref string) bool {
	rest, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		rest, ok = strings.CutPrefix(ref, "refs/tags/")
	}
	if !ok || rest == "" || len(ref) > maxRefLen {
		return false
	}
	if strings.Contains(rest, "..") || strings.Contains(rest, "@{") || strings.Contains(rest, "//") ||
		strings.HasSuffix(rest, "/") || strings.HasSuffix(rest, ".") || rest == "@" {
		return false
	}
	for _, comp := range strings.Split(rest, "/") {
		if strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c <= ' ' || c == 0x7f:
			return false
		case strings.IndexByte(`~^:?*[\`, c) >= 0:
			return false
		}
	}
	return true
}

// normalizeSHA returns s as a lower-case object id (40 or 64 hex digits).
func normalizeSHA(s string) (string, bool) {
	if len(s) != 40 && len(s) != 64 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// repoURLs keeps the non-empty candidates, deduplicated in order. A URL
// with control characters, or none at all, makes the payload malformed.
func repoURLs(candidates ...string) ([]string, error) {
	out := make([]string, 0, len(candidates))
	for _, u := range candidates {
		if u == "" || slices.Contains(out, u) {
			continue
		}
		if len(u) > maxURLLen || hasControl(u) {
			return nil, fmt.Errorf("%w: repository URL is too long or has control characters", ErrMalformed)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: payload names no repository URL", ErrMalformed)
	}
	return out, nil
}

// newPush validates one ref update. what names it in errors.
func newPush(urls []string, ref, after, what string) (Push, error) {
	if !validRef(ref) {
		return Push{}, fmt.Errorf("%w: %s: ref is not a valid refs/heads/ or refs/tags/ name", ErrMalformed, what)
	}
	sha, ok := normalizeSHA(after)
	if !ok {
		return Push{}, fmt.Errorf("%w: %s: new object id is not 40 or 64 hex digits", ErrMalformed, what)
	}
	return Push{RepoURLs: slices.Clone(urls), Ref: ref, After: sha}, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// decodeErr wraps a JSON error as malformed. what names the payload.
func decodeErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
}

var errNotObject = errors.New("payload is not a JSON object")
