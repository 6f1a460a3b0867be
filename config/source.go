package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/pflag"
)

// Source is one Git repository the agent keeps the store in step with.
type Source struct {
	// ID names the source; jobs it applies carry it as provenance, and
	// prune only ever deletes jobs with this id.
	ID string `mapstructure:"id"`
	// Repo is an https, http, ssh or git URL, scp-like user@host:path, or a
	// local path (a checkout or a bare repository).
	Repo string `mapstructure:"repo"`
	// Ref is a branch, a tag or a full commit SHA; empty means the remote's
	// default branch.
	Ref   string   `mapstructure:"ref"`
	Path  string   `mapstructure:"path"`
	Globs []string `mapstructure:"globs"`
	// Interval between polls; a webhook triggers a sync at once.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds every Git operation.
	Timeout time.Duration `mapstructure:"timeout"`
	Auth    SourceAuth    `mapstructure:"auth"`
	SSH     SourceSSH     `mapstructure:"ssh"`
	Prune   Prune         `mapstructure:"prune"`
	// OnInvalid is fail (apply nothing of a revision with an invalid
	// manifest) or skip (apply the valid ones; jobs of invalid files are
	// neither updated nor pruned).
	OnInvalid string `mapstructure:"onInvalid"`
	// Atomic applies a whole revision in one transaction.
	Atomic bool   `mapstructure:"atomic"`
	Verify Verify `mapstructure:"verify"`
}

// SourceAuth is HTTPS basic or token authentication. Values are secret://
// references (the username may be literal).
type SourceAuth struct {
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
}

// SourceSSH is SSH key authentication. known_hosts is required: there is no
// way to skip host key checks.
type SourceSSH struct {
	User       string `mapstructure:"user"`
	PrivateKey string `mapstructure:"privateKey"`
	Passphrase string `mapstructure:"passphrase"`
	KnownHosts string `mapstructure:"knownHosts"`
}

// Prune configures deleting jobs whose manifests are gone.
type Prune struct {
	// Enabled defaults to true; set false to only create and update.
	Enabled *bool `mapstructure:"enabled"`
	// AllowEmpty permits a prune when the revision declares no jobs.
	AllowEmpty bool `mapstructure:"allowEmpty"`
	// MaxDeletions caps one prune; 0 means 10 jobs or 25% of the source,
	// whichever is larger.
	MaxDeletions int `mapstructure:"maxDeletions"`
}

// On reports whether pruning is enabled.
func (p Prune) On() bool { return p.Enabled == nil || *p.Enabled }

// Verify requires signed commits.
type Verify struct {
	// Mode is "" (off) or head: the head commit of each revision must be
	// signed by one of Keys.
	Mode string `mapstructure:"mode"`
	// Keys are armored OpenPGP public keys, or secret:// references to them.
	Keys []string `mapstructure:"keys"`
}

// Secrets configures where secret:// references resolve.
type Secrets struct {
	// FileDir is the directory secret://file/PATH reads below.
	FileDir string `mapstructure:"fileDir"`
	// CacheTTL keeps resolved values in memory this long; 0 disables it.
	CacheTTL time.Duration `mapstructure:"cacheTTL"`
	// Vault enables secret://vault/MOUNT/PATH#FIELD; nil leaves it off.
	Vault *Vault `mapstructure:"vault"`
}

// Vault configures the Vault backend. Credentials are files or
// environment variables, never values in this file.
type Vault struct {
	Address    string        `mapstructure:"address"`
	Namespace  string        `mapstructure:"namespace"`
	CACert     string        `mapstructure:"caCert"`
	Timeout    time.Duration `mapstructure:"timeout"`
	MaxRetries int           `mapstructure:"maxRetries"`
	Auth       VaultAuth     `mapstructure:"auth"`
}

// VaultAuth says how the agent logs in to Vault.
type VaultAuth struct {
	// Method is token (default), approle or kubernetes.
	Method    string `mapstructure:"method"`
	MountPath string `mapstructure:"mountPath"`
	// token
	TokenFile string `mapstructure:"tokenFile"`
	TokenEnv  string `mapstructure:"tokenEnv"`
	// approle
	RoleID          string `mapstructure:"roleId"`
	RoleIDFile      string `mapstructure:"roleIdFile"`
	SecretIDFile    string `mapstructure:"secretIdFile"`
	SecretIDEnv     string `mapstructure:"secretIdEnv"`
	WrappedSecretID bool   `mapstructure:"wrappedSecretId"`
	// kubernetes
	Role                    string `mapstructure:"role"`
	ServiceAccountTokenPath string `mapstructure:"serviceAccountTokenPath"`
}

func (v *Vault) validate() error {
	if v == nil {
		return nil
	}
	var errs []error
	if v.Address == "" {
		errs = append(errs, errors.New("secrets.vault.address is required"))
	} else if u, err := url.Parse(v.Address); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("secrets.vault.address %q must be an http or https URL such as https://vault.internal:8200", v.Address))
	}
	if v.Timeout < 0 {
		errs = append(errs, errors.New("secrets.vault.timeout must not be negative"))
	}
	for _, pair := range [][4]string{
		{"tokenFile", v.Auth.TokenFile, "tokenEnv", v.Auth.TokenEnv},
		{"roleId", v.Auth.RoleID, "roleIdFile", v.Auth.RoleIDFile},
		{"secretIdFile", v.Auth.SecretIDFile, "secretIdEnv", v.Auth.SecretIDEnv},
	} {
		if pair[1] != "" && pair[3] != "" {
			errs = append(errs, fmt.Errorf("secrets.vault.auth: set %s or %s, not both", pair[0], pair[2]))
		}
	}
	switch v.Auth.Method {
	case "", "token":
		if v.Auth.TokenFile == "" && v.Auth.TokenEnv == "" {
			errs = append(errs, errors.New("secrets.vault.auth: token auth needs tokenFile or tokenEnv"))
		}
	case "approle":
		if v.Auth.RoleID == "" && v.Auth.RoleIDFile == "" {
			errs = append(errs, errors.New("secrets.vault.auth: approle needs roleId or roleIdFile"))
		}
		if v.Auth.SecretIDFile == "" && v.Auth.SecretIDEnv == "" {
			errs = append(errs, errors.New("secrets.vault.auth: approle needs secretIdFile or secretIdEnv"))
		}
	case "kubernetes":
		if v.Auth.Role == "" {
			errs = append(errs, errors.New("secrets.vault.auth: kubernetes needs role"))
		}
	default:
		errs = append(errs, fmt.Errorf("secrets.vault.auth.method %q must be token, approle or kubernetes", v.Auth.Method))
	}
	return errors.Join(errs...)
}

// Source defaults.
const (
	DefaultInterval   = time.Minute
	DefaultGitTimeout = time.Minute
	OnInvalidFail     = "fail"
	OnInvalidSkip     = "skip"
)

// DefaultGlobs select manifests when a source names none.
var DefaultGlobs = []string{"**/*.yaml", "**/*.yml"}

var sourceIDRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// withDefaults fills in what a source leaves out.
func (s Source) withDefaults() Source {
	if len(s.Globs) == 0 {
		s.Globs = append([]string(nil), DefaultGlobs...)
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultGitTimeout
	}
	if s.OnInvalid == "" {
		s.OnInvalid = OnInvalidFail
	}
	if s.ID == "" {
		s.ID = DeriveSourceID(s.Repo)
	}
	s.Path = strings.Trim(filepath.ToSlash(filepath.Clean("/"+s.Path)), "/")
	return s
}

func (s Source) validate(key string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, fmt.Sprintf(format, args...)))
	}
	if s.Repo == "" {
		add("repo", "is required: a Git URL or a local path")
	} else if strings.HasPrefix(s.Repo, "-") || strings.HasPrefix(s.Repo, "ext::") {
		add("repo", "%q is refused: option-like URLs and ext:: transports can run commands", s.Repo)
	}
	if s.ID == "manual" {
		add("id", "manual is reserved for jobs applied by hand")
	} else if !sourceIDRe.MatchString(s.ID) {
		add("id", "%q must be 1 to 63 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", s.ID)
	}
	if s.Interval < time.Second {
		add("interval", "must be at least 1s, got %s", s.Interval)
	}
	if s.Timeout <= 0 {
		add("timeout", "must be positive")
	}
	for i, g := range s.Globs {
		if !doublestar.ValidatePattern(g) {
			add(fmt.Sprintf("globs[%d]", i), "%q is not a valid pattern", g)
		}
	}
	if s.OnInvalid != OnInvalidFail && s.OnInvalid != OnInvalidSkip {
		add("onInvalid", "must be fail or skip, got %q", s.OnInvalid)
	}
	if s.Prune.MaxDeletions < 0 {
		add("prune.maxDeletions", "must not be negative")
	}
	if s.Auth.Password != "" && !strings.HasPrefix(s.Auth.Password, "secret://") {
		add("auth.password", "must be a secret:// reference such as secret://env/GIT_TOKEN, not the secret itself")
	}
	if s.SSH.PrivateKey != "" {
		if !strings.HasPrefix(s.SSH.PrivateKey, "secret://") {
			add("ssh.privateKey", "must be a secret:// reference such as secret://file/git/id_ed25519")
		}
		if s.SSH.KnownHosts == "" {
			add("ssh.knownHosts", "is required with ssh.privateKey: host keys are always checked")
		}
	}
	switch s.Verify.Mode {
	case "":
		if len(s.Verify.Keys) > 0 {
			add("verify.mode", "keys are set but mode is empty; set mode: head")
		}
	case "head":
		if len(s.Verify.Keys) == 0 {
			add("verify.keys", "mode head needs at least one armored OpenPGP public key")
		}
	default:
		add("verify.mode", "must be head (or empty), got %q", s.Verify.Mode)
	}
	return errors.Join(errs...)
}

// DeriveSourceID makes a source id from a repository URL or path:
// https://github.com/acme/jobs.git -> jobs; ./examples -> examples.
func DeriveSourceID(repo string) string {
	r := strings.TrimRight(repo, "/")
	if i := strings.LastIndexAny(r, "/:"); i >= 0 {
		r = r[i+1:]
	}
	r = strings.TrimSuffix(r, ".git")
	if r == "" || r == "." || r == ".." {
		if abs, err := filepath.Abs(repo); err == nil {
			r = filepath.Base(abs)
		}
	}
	r = strings.ToLower(r)
	var b strings.Builder
	for _, c := range r {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-._")
	if len(id) > 63 {
		id = strings.Trim(id[:63], "-._")
	}
	if id == "" {
		id = "repo"
	}
	return id
}

// bindSourceFlags declares the flags of the ad-hoc source.
func bindSourceFlags(fs *pflag.FlagSet) {
	fs.String("repo", "", "ad-hoc source: a Git URL or local path to sync (no config file needed)")
	fs.String("ref", "", "ad-hoc source: branch, tag or commit (default: the remote's default branch)")
	fs.String("path", "", "ad-hoc source: subdirectory holding the manifests")
	fs.StringArray("glob", nil, "ad-hoc source: manifest pattern, repeatable (default **/*.yaml and **/*.yml)")
	fs.String("source-id", "", "ad-hoc source: its id (default derived from --repo)")
}

// adHocSource builds the source given by --repo and friends, if any.
func adHocSource(fs *pflag.FlagSet) (*Source, error) {
	repo, _ := fs.GetString("repo")
	if repo == "" {
		for _, name := range []string{"ref", "path", "glob", "source-id"} {
			if f := fs.Lookup(name); f != nil && f.Changed {
				return nil, fmt.Errorf("--%s needs --repo", name)
			}
		}
		return nil, nil
	}
	s := &Source{Repo: repo}
	s.Ref, _ = fs.GetString("ref")
	s.Path, _ = fs.GetString("path")
	s.Globs, _ = fs.GetStringArray("glob")
	s.ID, _ = fs.GetString("source-id")
	return s, nil
}
