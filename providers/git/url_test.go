package git_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/git"
)

func TestNewURLValidation(t *testing.T) {
	t.Parallel()
	ssh := git.Auth{SSHKey: "k", KnownHosts: "h"}
	tests := []struct {
		name         string
		url          string
		auth         git.Auth
		wantErr      error
		wantRedacted string
	}{
		{name: "ext transport", url: "ext::sh -c touch% /tmp/pwned", wantErr: git.ErrUnsafeURL},
		{name: "fd transport", url: "fd::17", wantErr: git.ErrUnsafeURL},
		{name: "remote helper", url: "persistent-https::host/x.git", wantErr: git.ErrUnsafeURL},
		{name: "option as url", url: "-uhttps://x", wantErr: git.ErrUnsafeURL},
		{name: "upload-pack option", url: "--upload-pack=touch /tmp/pwned", wantErr: git.ErrUnsafeURL},
		{name: "ssh host option", url: "ssh://-oProxyCommand=touch%20x/repo", auth: ssh, wantErr: git.ErrUnsafeURL},
		{name: "ssh user option", url: "ssh://-oProxyCommand=x@host/repo", auth: ssh, wantErr: git.ErrUnsafeURL},
		{name: "scp host option", url: "-oProxyCommand=x:repo", auth: ssh, wantErr: git.ErrUnsafeURL},
		{name: "scp path option", url: "git@host:-repo", auth: ssh, wantErr: git.ErrUnsafeURL},
		{name: "scp password", url: "git:tok3n-abc@host:repo", auth: ssh, wantErr: git.ErrUnsafeURL},
		{name: "http path option", url: "https://host/--upload-pack=x", wantErr: git.ErrUnsafeURL},
		{name: "unknown scheme", url: "ftp://host/x.git", wantErr: git.ErrUnsafeURL},
		{name: "newline", url: "https://host/x.git\nHost: evil", wantErr: git.ErrUnsafeURL},
		{name: "file with host", url: "file://evil/tmp/x", wantErr: git.ErrUnsafeURL},
		{name: "empty", url: "", wantErr: git.ErrConfig},
		{name: "https", url: "https://host/x.git", wantRedacted: "https://host/x.git"},
		{name: "https token", url: "https://user:tok3n-abc@host/x.git", wantRedacted: "https://host/x.git"},
		{name: "token as user", url: "https://tok3n-abc@host/x.git", wantRedacted: "https://host/x.git"},
		{name: "ssh", url: "ssh://git@host:2222/x.git", auth: ssh, wantRedacted: "ssh://git@host:2222/x.git"},
		{name: "scp-like", url: "git@github.com:org/repo.git", auth: ssh, wantRedacted: "git@github.com:org/repo.git"},
		{name: "git protocol", url: "git://host/x.git", wantRedacted: "git://host/x.git"},
		{name: "local path", url: "/srv/repos/x", wantRedacted: "/srv/repos/x"},
		{name: "relative path with colon", url: "./a:b", wantRedacted: "./a:b"},
		{name: "file url", url: "file:///srv/repos/x", wantRedacted: "file:///srv/repos/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := git.New(git.Config{URL: tt.url, Dir: t.TempDir(), Auth: tt.auth}, nil, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want %v", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "tok3n") {
					t.Errorf("error leaks a credential: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.url, err)
			}
			defer r.Close()
			if got := r.Redacted(); got != tt.wantRedacted {
				t.Errorf("Redacted() = %q, want %q", got, tt.wantRedacted)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://user:tok@host/x.git", "https://host/x.git"},
		{"https://tok@host/x.git", "https://host/x.git"},
		{"https://host/x.git?private_token=abc", "https://host/x.git"},
		{"http://host:8080/x.git", "http://host:8080/x.git"},
		{"ssh://git:pw@host/x.git", "ssh://git@host/x.git"},
		{"ssh://git@host/x.git", "ssh://git@host/x.git"},
		{"git@host:x.git", "git@host:x.git"},
		{"git:tok@host:x.git", "git@host:x.git"},
		{"host:x.git", "host:x.git"},
		{"/srv/x", "/srv/x"},
		{"https://user:p%zz@host/x", "https://host/x"}, // unparsable escape
	}
	for _, tt := range tests {
		if got := git.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     git.Config
		secrets git.Resolver
		wantErr error
	}{
		{name: "ssh without known_hosts", cfg: git.Config{URL: "git@host:x.git", Auth: git.Auth{SSHKey: "k"}}, wantErr: git.ErrConfig},
		{name: "ssh without key", cfg: git.Config{URL: "git@host:x.git", Auth: git.Auth{KnownHosts: "h"}}, wantErr: git.ErrConfig},
		{name: "secret without resolver", cfg: git.Config{URL: "https://h/x", Auth: git.Auth{Password: "secret://env/X"}}, wantErr: git.ErrConfig},
		{name: "ssh key on https", cfg: git.Config{URL: "https://h/x", Auth: git.Auth{SSHKey: "k"}}, wantErr: git.ErrConfig},
		{name: "credentials on git://", cfg: git.Config{URL: "git://h/x", Auth: git.Auth{Password: "p"}}, wantErr: git.ErrConfig},
		{name: "bad glob", cfg: git.Config{URL: "https://h/x", Globs: []string{"[a"}}, wantErr: git.ErrConfig},
		{name: "path leaves repo", cfg: git.Config{URL: "https://h/x", Path: "a/../../b"}, wantErr: git.ErrConfig},
		{name: "ref option", cfg: git.Config{URL: "https://h/x", Ref: "-x"}, wantErr: git.ErrUnsafeURL},
		{name: "bad ref", cfg: git.Config{URL: "https://h/x", Ref: "a..b"}, wantErr: git.ErrConfig},
		{name: "remote without dir", cfg: git.Config{URL: "https://h/x"}, wantErr: git.ErrConfig},
		{name: "ok", cfg: git.Config{URL: "https://h/x", Path: "/deploy/jobs/", Ref: "release/1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.cfg.Dir == "" && tt.name != "remote without dir" {
				tt.cfg.Dir = t.TempDir()
			}
			r, err := git.New(tt.cfg, tt.secrets, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("New() error = %v, want %v", err, tt.wantErr)
			}
			if r != nil {
				_ = r.Close()
			}
		})
	}
}
