package webhook

import "strings"

// NormalizeRepoURL reduces a repository URL to a key for matching a
// webhook's repository against a configured source: "host/path".
//
// It accepts the forms git accepts and forges state: scheme://[user[:pass]@]
// host[:port]/path (https, http, ssh, git, ...), scp-like [user@]host:path,
// and a bare host/path. These are ignored: the scheme, user and password,
// the port, a query or fragment (scheme form only), the case of the host, a
// trailing dot on the host, leading, repeated and trailing slashes, and
// trailing ".git". So https://GitHub.com/Acme/Jobs.git,
// ssh://git@github.com:22/acme/jobs.git, git@github.com:acme/jobs.git and
// https://user:tok@github.com/acme/jobs/ give the same key.
//
// The path keeps its case, except on github.com: GitHub resolves owner and
// repository names case-insensitively and its payloads state the canonical
// spelling ("Acme/Jobs") where users often configure another
// ("acme/jobs"). Other hosts may be case-sensitive (a self-hosted server
// on a case-sensitive file system), so their paths are compared as given;
// a case mismatch there means the webhook matches nothing and the source
// waits for its next poll. ssh.github.com (GitHub's SSH over port 443) is
// github.com.
//
// Ports are dropped, so two servers on one host match each other. A false
// match costs one extra fetch from the source's own remote, never a fetch
// from a payload's URL.
//
// The result is "" for input with no host or no path, with control
// characters, or with a host that is not a plain name or bracketed IP
// literal; "" never matches anything. NormalizeRepoURL is idempotent.
func NormalizeRepoURL(raw string) string {
	s := strings.TrimSpace(raw)
	if s == "" || hasControl(s) {
		return ""
	}
	var host, path string
	if i := strings.Index(s, "://"); i > 0 && validScheme(s[:i]) {
		rest := s[i+3:]
		authority, tail := rest, ""
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			authority, tail = rest[:end], rest[end:]
		}
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			authority = authority[at+1:]
		}
		host = stripPort(authority)
		if q := strings.IndexAny(tail, "?#"); q >= 0 {
			tail = tail[:q]
		}
		path = tail
	} else if h, p, ok := splitSCP(s); ok {
		host, path = h, p
	} else if slash := strings.IndexByte(s, '/'); slash > 0 {
		host, path = s[:slash], s[slash:]
	} else {
		return ""
	}
	host = strings.TrimRight(asciiLower(host), ".")
	if !validHost(host) {
		return ""
	}
	if host == "ssh.github.com" {
		host = "github.com"
	}
	if host == "github.com" {
		path = asciiLower(path) // before cleaning, so that ".GIT" goes too
	}
	path = cleanRepoPath(path)
	if path == "" {
		return ""
	}
	return host + "/" + path
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'. Anything else before "://" is not a scheme
// ("host:a://b" is scp-like).
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// splitSCP splits git's scp-like syntax, [user[:pass]@]host:path, where the
// colon comes before any slash. A bracketed host ("[::1]:path") may hold
// colons.
func splitSCP(s string) (host, path string, ok bool) {
	head := s
	if slash := strings.IndexByte(s, '/'); slash >= 0 {
		head = s[:slash]
	}
	rest := s
	if at := strings.LastIndexByte(head, '@'); at >= 0 {
		rest = s[at+1:]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 || end+1 >= len(rest) || rest[end+1] != ':' {
			return "", "", false
		}
		return rest[:end+1], rest[end+2:], true
	}
	colon := strings.IndexByte(rest, ':')
	if colon <= 0 {
		return "", "", false
	}
	if slash := strings.IndexByte(rest, '/'); slash >= 0 && slash < colon {
		return "", "", false
	}
	return rest[:colon], rest[colon+1:], true
}

// stripPort removes ":port" from host[:port] or [ip6]:port.
func stripPort(authority string) string {
	if strings.HasPrefix(authority, "[") {
		if end := strings.IndexByte(authority, ']'); end >= 0 {
			return authority[:end+1]
		}
		return authority // unbalanced: validHost refuses it
	}
	if colon := strings.IndexByte(authority, ':'); colon >= 0 {
		return authority[:colon]
	}
	return authority
}

// validHost accepts a lower-case DNS-ish name (ASCII letters, digits, '.',
// '-', '_', and non-ASCII bytes of an internationalised name) or a
// bracketed IP literal.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if strings.HasPrefix(h, "[") {
		if len(h) < 3 || h[len(h)-1] != ']' {
			return false
		}
		for i := 1; i < len(h)-1; i++ {
			c := h[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.' || c == '%') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c >= 0x80) {
			return false
		}
	}
	return h[0] != '.'
}

// cleanRepoPath drops leading, repeated and trailing slashes, surrounding
// white space and any trailing ".git", until none is left: "a/ /" and
// "a.git/ " both become "a", so that the key is stable when normalised
// again (NormalizeRepoURL trims its input).
func cleanRepoPath(p string) string {
	for {
		next := cleanRepoPathOnce(strings.TrimSpace(p))
		if next == p {
			return p
		}
		p = next
	}
}

func cleanRepoPathOnce(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	out := b.String()
	for {
		trimmed := strings.TrimSuffix(strings.TrimSuffix(out, ".git"), "/")
		if trimmed == out {
			return out
		}
		out = trimmed
	}
}

// asciiLower lower-cases ASCII letters only, so that the result has the
// same length and is stable under repetition.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
