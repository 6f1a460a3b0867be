package schema

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// SecretScheme prefixes every secret reference.
const SecretScheme = "secret://"

// Secret backends.
const (
	SecretEnv   = "env"
	SecretFile  = "file"
	SecretVault = "vault"
)

// SecretRef is a parsed secret:// reference. It names where a secret lives,
// never the secret itself, so it is safe to store, log and show.
type SecretRef struct {
	Backend string // env, file or vault
	Name    string // env: variable name
	Path    string // file: path below the secrets directory; vault: path below the mount
	Mount   string // vault: the secrets engine mount
	Field   string // vault: the field of the secret's data
	Version int    // vault KV v2: pinned version; 0 means latest
	raw     string
}

func (r SecretRef) String() string { return r.raw }

// IsSecretRef reports whether s is written as a secret reference.
func IsSecretRef(s string) bool { return strings.HasPrefix(s, SecretScheme) }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseSecretRef parses secret://env/NAME, secret://file/PATH and
// secret://vault/MOUNT/PATH#FIELD[?version=N].
func ParseSecretRef(s string) (SecretRef, error) {
	ref := SecretRef{raw: s}
	rest, ok := strings.CutPrefix(s, SecretScheme)
	if !ok {
		return ref, fmt.Errorf("%q is not a secret reference; write secret://env/NAME, secret://file/PATH or secret://vault/MOUNT/PATH#FIELD", s)
	}
	backend, body, _ := strings.Cut(rest, "/")
	ref.Backend = backend
	switch backend {
	case SecretEnv:
		if !envName.MatchString(body) {
			return ref, fmt.Errorf("secret reference %q: env needs a variable name such as secret://env/API_TOKEN", s)
		}
		ref.Name = body
	case SecretFile:
		clean, err := relativeSecretPath(body)
		if err != nil {
			return ref, fmt.Errorf("secret reference %q: %v", s, err)
		}
		ref.Path = clean
	case SecretVault:
		if err := parseVaultRef(&ref, body); err != nil {
			return ref, fmt.Errorf("secret reference %q: %v", s, err)
		}
	default:
		return ref, fmt.Errorf("secret reference %q: unknown backend %q; use env, file or vault", s, backend)
	}
	return ref, nil
}

func relativeSecretPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("file needs a path below the secrets directory, such as secret://file/db/password")
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("file paths are relative to the secrets directory; drop the leading /")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", fmt.Errorf("file paths may not contain ..")
		}
	}
	clean := path.Clean(p)
	if clean == "." {
		return "", fmt.Errorf("file needs a file below the secrets directory, not the directory itself")
	}
	return clean, nil
}

func parseVaultRef(ref *SecretRef, body string) error {
	body, query, hasQuery := strings.Cut(body, "?")
	body, field, hasField := strings.Cut(body, "#")
	if hasQuery && strings.Contains(query, "#") {
		// Accept both orders: PATH#FIELD?version=N and PATH?version=N#FIELD.
		query, field, hasField = strings.Cut(query, "#")
	}
	if !hasField || field == "" {
		return fmt.Errorf("vault needs a field: secret://vault/MOUNT/PATH#FIELD")
	}
	if strings.ContainsAny(field, "#?/") {
		return fmt.Errorf("vault field %q may not contain #, ? or /", field)
	}
	mount, p, _ := strings.Cut(body, "/")
	if mount == "" || p == "" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("vault needs a mount and a path: secret://vault/MOUNT/PATH#FIELD")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("vault path %q has an empty, . or .. segment", p)
		}
	}
	ref.Mount, ref.Path, ref.Field = mount, p, field
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return fmt.Errorf("bad query: %v", err)
		}
		for k := range q {
			if k != "version" {
				return fmt.Errorf("unknown option %q; only version=N is supported", k)
			}
		}
		if len(q["version"]) != 1 {
			return fmt.Errorf("give version once")
		}
		n, err := strconv.Atoi(q.Get("version"))
		if err != nil || n < 1 {
			return fmt.Errorf("version must be a positive integer")
		}
		ref.Version = n
	}
	return nil
}

// SecretUse is one place in a job that holds a secret reference.
type SecretUse struct {
	Path string // field path, such as steps[1].env.DB_PASSWORD
	Ref  string // the reference as written
}

// SecretRefs lists every secret reference in the job, in field order:
// the http trigger's secret, callback header values and step env values.
func (j *Job) SecretRefs() []SecretUse {
	var out []SecretUse
	if IsSecretRef(j.Trigger.Configuration.Secret) {
		out = append(out, SecretUse{Path: "trigger.configuration.secret", Ref: j.Trigger.Configuration.Secret})
	}
	for i, c := range j.Callbacks {
		for _, k := range sortedKeys(c.Headers) {
			if v := c.Headers[k]; IsSecretRef(v) {
				out = append(out, SecretUse{Path: JoinPath(fmt.Sprintf("callbacks[%d].headers", i), k), Ref: v})
			}
		}
	}
	for i, s := range j.Steps {
		for _, k := range sortedKeys(s.Env) {
			if v := s.Env[k]; IsSecretRef(v) {
				out = append(out, SecretUse{Path: JoinPath(fmt.Sprintf("steps[%d].env", i), k), Ref: v})
			}
		}
	}
	return out
}
