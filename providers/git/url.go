package git

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

type sourceKind int

const (
	remoteSource sourceKind = iota
	localSource
)

// source is a parsed, validated Config.URL.
type source struct {
	kind sourceKind
	// ep is the remote endpoint, never with a password in it: the URL's
	// user and password (if any) move to user and password and are sent
	// as auth. An ssh user stays in ep.User.
	ep       transport.Endpoint
	user     string
	password string
	path     string // local sources: absolute path
	redacted string
}

// transportHelper matches git's "<transport>::<address>" syntax (ext::,
// fd::, remote helpers): it runs programs, so it is refused outright.
var transportHelper = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+.-]*::`)

// parseSource classifies raw the way git does: scheme://..., then scp-like
// [user@]host:path (a colon before any slash), else a local path. Anything
// that could reach a command line as an option, run a program, or use an
// unknown transport is refused with ErrUnsafeURL.
func parseSource(raw string) (source, error) {
	if raw == "" {
		return source{}, fmt.Errorf("%w: url is empty", ErrConfig)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return source{}, fmt.Errorf("%w: control character in URL", ErrUnsafeURL)
	}
	if strings.HasPrefix(raw, "-") {
		return source{}, fmt.Errorf("%w: URL starts with '-'", ErrUnsafeURL)
	}
	if transportHelper.MatchString(raw) {
		return source{}, fmt.Errorf("%w: transport helpers (%s) are not allowed", ErrUnsafeURL, raw[:strings.Index(raw, "::")+2])
	}
	if i := strings.Index(raw, "://"); i > 0 && !strings.ContainsAny(raw[:i], "/\\") {
		return parseURL(raw)
	}
	if host, p, ok := splitSCP(raw); ok {
		user := ""
		if at := strings.LastIndex(host, "@"); at >= 0 {
			user, host = host[:at], host[at+1:]
		}
		if err := checkRemoteParts(user, host, p); err != nil {
			return source{}, err
		}
		if strings.Contains(user, ":") {
			return source{}, fmt.Errorf("%w: a password in an scp-like address; use auth", ErrUnsafeURL)
		}
		return source{
			kind:     remoteSource,
			ep:       transport.Endpoint{Protocol: "ssh", User: user, Host: host, Path: p},
			redacted: RedactURL(raw),
		}, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return source{}, fmt.Errorf("%w: local path: %v", ErrConfig, err)
	}
	return source{kind: localSource, path: abs, redacted: raw}, nil
}

// splitSCP splits git's scp-like syntax: a colon before the first slash,
// and something on both sides of it.
func splitSCP(raw string) (host, path string, ok bool) {
	// The user part (before an '@' that precedes any slash) may hold a
	// colon of its own: "user:secret@host:path".
	start := 0
	if at := strings.Index(raw, "@"); at >= 0 && !strings.Contains(raw[:at], "/") {
		start = at
	}
	colon := strings.Index(raw[start:], ":")
	if colon < 0 {
		return "", "", false
	}
	colon += start
	if colon == 0 {
		return "", "", false
	}
	if slash := strings.Index(raw, "/"); slash >= 0 && slash < colon {
		return "", "", false
	}
	// "[host:port]:path" and "[::1]:path" are scp-like too.
	if strings.HasPrefix(raw, "[") || strings.Contains(raw[:colon], "@[") {
		end := strings.Index(raw, "]:")
		if end < 0 {
			return "", "", false
		}
		return strings.NewReplacer("[", "", "]", "").Replace(raw[:end+1]), raw[end+2:], raw[end+2:] != ""
	}
	return raw[:colon], raw[colon+1:], raw[colon+1:] != ""
}

func parseURL(raw string) (source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold a password.
		return source{}, fmt.Errorf("%w: unparsable URL", ErrUnsafeURL)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "git+ssh", "ssh+git":
		scheme = "ssh"
	case "http", "https", "ssh", "git", "file":
	default:
		return source{}, fmt.Errorf("%w: scheme %q is not supported (use https, http, ssh, git or a local path)", ErrUnsafeURL, u.Scheme)
	}
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return source{}, fmt.Errorf("%w: file:// URL with a remote host", ErrUnsafeURL)
		}
		if u.Path == "" || u.User != nil {
			return source{}, fmt.Errorf("%w: file:// URL needs an absolute path and no user", ErrUnsafeURL)
		}
		return source{kind: localSource, path: filepath.Clean(u.Path), redacted: RedactURL(raw)}, nil
	}
	var user, pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	host := u.Hostname()
	if err := checkRemoteParts(user, host, u.Path); err != nil {
		return source{}, err
	}
	port := 0
	if ps := u.Port(); ps != "" {
		port, err = strconv.Atoi(ps)
		if err != nil || port <= 0 || port > 65535 {
			return source{}, fmt.Errorf("%w: bad port", ErrUnsafeURL)
		}
	}
	if strings.Contains(host, ":") && scheme != "ssh" {
		// IPv6: go-git's HTTP and git transports put the host in a URL as
		// is; its ssh transport joins host and port itself.
		host = "[" + host + "]"
	}
	p := u.Path
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	ep := transport.Endpoint{Protocol: scheme, User: user, Host: host, Port: port, Path: p}
	src := source{kind: remoteSource, ep: ep, password: pass, redacted: RedactURL(raw)}
	if scheme != "ssh" {
		// The user goes with the password as basic auth; keeping both out
		// of the endpoint keeps them out of go-git's messages too.
		src.user, src.ep.User = user, ""
	}
	return src, nil
}

func checkRemoteParts(user, host, path string) error {
	switch {
	case host == "":
		return fmt.Errorf("%w: no host", ErrUnsafeURL)
	case strings.HasPrefix(host, "-"), strings.HasPrefix(user, "-"):
		return fmt.Errorf("%w: host or user starts with '-'", ErrUnsafeURL)
	case strings.HasPrefix(strings.TrimPrefix(path, "/"), "-"):
		return fmt.Errorf("%w: path starts with '-'", ErrUnsafeURL)
	}
	return nil
}

// RedactURL returns raw without credentials, for logs, status, the API and
// metric labels. HTTP(S) and git:// URLs lose their whole userinfo (a token
// is often sent as the user name) and their query; ssh URLs keep the user
// name and lose any password. Scp-like addresses and local paths carry no
// password and come back unchanged. Unparsable input is reduced to what
// cannot hold a secret.
func RedactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i <= 0 || strings.ContainsAny(raw[:i], "/\\") {
		// scp-like or a local path: only "user:secret@host:path" (which
		// New refuses) can hold a secret.
		if at := strings.Index(raw, "@"); at >= 0 && !strings.Contains(raw[:at], "/") {
			if c := strings.Index(raw[:at], ":"); c >= 0 {
				return raw[:c] + raw[at:]
			}
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Drop everything between the scheme and the last '@' of the
		// authority, and anything after a '?'.
		rest := raw[i+3:]
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			rest = rest[:q]
		}
		auth := rest
		if s := strings.Index(auth, "/"); s >= 0 {
			auth = auth[:s]
		}
		if at := strings.LastIndex(auth, "@"); at >= 0 {
			rest = rest[at+1:]
		}
		return raw[:i+3] + rest
	}
	if u.User != nil {
		if strings.EqualFold(u.Scheme, "ssh") || strings.EqualFold(u.Scheme, "git+ssh") || strings.EqualFold(u.Scheme, "ssh+git") {
			u.User = url.User(u.User.Username())
		} else {
			u.User = nil
		}
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// hostWithPort is the address an ssh connection dials, as known_hosts sees
// it.
func hostWithPort(ep *transport.Endpoint) string {
	port := ep.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(strings.Trim(ep.Host, "[]"), strconv.Itoa(port))
}
