package git_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/git"
)

type sshFixture struct {
	*fixture
	keys sshKeys
	srv  *sshServer
}

func setupSSH(t *testing.T) *sshFixture {
	t.Helper()
	f := setup(t)
	keys := newSSHKeys(t)
	return &sshFixture{fixture: f, keys: keys, srv: startSSH(t, keys.clientPub)}
}

// sshRepo returns a Repo for the work repository over ssh, with the key and
// known_hosts given as secret references.
func (f *sshFixture) sshRepo(t *testing.T, knownHosts string, mod func(*git.Config)) *git.Repo {
	t.Helper()
	cfg := git.Config{
		URL: f.srv.url(f.work.Dir),
		Dir: t.TempDir(),
		Auth: git.Auth{
			SSHKey:     "secret://file/deploy_key",
			KnownHosts: "secret://env/KNOWN_HOSTS",
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	return newRepo(t, cfg, mapSecrets{
		"secret://file/deploy_key": f.keys.clientPEM,
		"secret://env/KNOWN_HOSTS": knownHosts,
	})
}

func TestSSH(t *testing.T) {
	t.Parallel()
	f := setupSSH(t)
	r := f.sshRepo(t, f.srv.knownHosts(f.srv.hostKey.PublicKey()), nil)
	head, files := headFetchManifests(t, r)
	if head != f.head || len(files) != 3 {
		t.Fatalf("head %s (want %s), files %v", head, f.head, paths(files))
	}
	f.work.write("manifests/b.yaml", "name: b\nv: ssh\n")
	next := f.work.commit("over ssh")
	got, _ := headFetchManifests(t, r)
	changed, err := r.Changed(t.Context(), head, got)
	if err != nil || got != next || len(changed) != 1 || changed[0] != "manifests/b.yaml" {
		t.Fatalf("Changed = %v, %v (head %s, want %s)", changed, err, got, next)
	}

	// The server goes away and comes back.
	f.srv.stop()
	if _, err := r.Head(t.Context()); err == nil {
		t.Fatal("Head with the ssh server down succeeded")
	}
	f.srv.restart()
	if got, err := r.Head(t.Context()); err != nil || got != next {
		t.Fatalf("Head after restart = %s, %v", got, err)
	}
}

func TestSSHHostKeyMismatch(t *testing.T) {
	t.Parallel()
	f := setupSSH(t)
	other := newHostKey(t).PublicKey()
	tests := []struct {
		name       string
		knownHosts string
	}{
		{name: "different key for the host", knownHosts: f.srv.knownHosts(other)},
		{name: "host not listed", knownHosts: "[127.0.0.2]:22 " + strings.TrimSpace(strings.SplitN(f.srv.knownHosts(f.srv.hostKey.PublicKey()), " ", 2)[1]) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the server's authentication counter is shared.
			before := f.srv.authSeen.Load()
			r := f.sshRepo(t, tt.knownHosts, nil)
			_, err := r.Head(t.Context())
			t.Logf("Head: %v", err)
			if !errors.Is(err, git.ErrHostKey) {
				t.Fatalf("Head() error = %v, want ErrHostKey", err)
			}
			if err := r.Fetch(t.Context(), f.head); !errors.Is(err, git.ErrHostKey) {
				t.Fatalf("Fetch() error = %v, want ErrHostKey", err)
			}
			if n := f.srv.authSeen.Load() - before; n != 0 {
				t.Fatalf("the server saw %d authentication attempts; the host key check must come first", n)
			}
		})
	}
}

func TestSSHWrongClientKey(t *testing.T) {
	t.Parallel()
	f := setupSSH(t)
	f.keys = newSSHKeys(t) // a key the server does not accept
	r := f.sshRepo(t, f.srv.knownHosts(f.srv.hostKey.PublicKey()), nil)
	_, err := r.Head(t.Context())
	t.Logf("Head: %v", err)
	if !errors.Is(err, git.ErrAuth) {
		t.Fatalf("Head() error = %v, want ErrAuth", err)
	}
	if f.srv.authSeen.Load() == 0 {
		t.Fatal("no authentication attempt reached the server")
	}
}

func TestSSHMissingKnownHosts(t *testing.T) {
	t.Parallel()
	_, err := git.New(git.Config{
		URL:  "ssh://git@127.0.0.1:2222/repo.git",
		Dir:  t.TempDir(),
		Auth: git.Auth{SSHKey: "secret://file/key"},
	}, mapSecrets{}, nil)
	if !errors.Is(err, git.ErrConfig) {
		t.Fatalf("New() error = %v, want ErrConfig", err)
	}
	// Set but empty once resolved: an error at use, before any connection.
	f := setupSSH(t)
	r := f.sshRepo(t, "   \n", nil)
	if _, err := r.Head(t.Context()); !errors.Is(err, git.ErrConfig) {
		t.Fatalf("Head() error = %v, want ErrConfig", err)
	}
	if n := f.srv.authSeen.Load(); n != 0 {
		t.Fatalf("server saw %d auth attempts", n)
	}
}

// A server that accepts the TCP connection and never says a word must not
// hold an operation past its timeout (go-git's ssh handshake has no
// deadline of its own).
func TestSilentServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	keys := newSSHKeys(t)
	tests := []struct {
		name string
		cfg  git.Config
	}{
		{name: "ssh", cfg: git.Config{
			URL:  "ssh://git@" + ln.Addr().String() + "/repo.git",
			Auth: git.Auth{SSHKey: keys.clientPEM, KnownHosts: "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"},
		}},
		{name: "git", cfg: git.Config{URL: "git://" + ln.Addr().String() + "/repo.git"}},
		{name: "http", cfg: git.Config{URL: "http://" + ln.Addr().String() + "/repo.git"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Dir = t.TempDir()
			tt.cfg.Timeout = 300 * time.Millisecond
			r := newRepo(t, tt.cfg, nil)
			start := time.Now()
			_, err := r.Head(t.Context())
			t.Logf("Head: %v", err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Head() error = %v, want DeadlineExceeded", err)
			}
			err = r.Fetch(t.Context(), strings.Repeat("1", 40))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Fetch() error = %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Head and Fetch took %s with a 300ms timeout", d)
			}
		})
	}
}
