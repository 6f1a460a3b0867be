package git_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// gitEnv keeps the user's and the system's git configuration out of tests.
var gitEnv = append(os.Environ(),
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_TERMINAL_PROMPT=0",
)

// gitRun runs the git CLI in dir and returns its trimmed stdout.
func gitRun(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	full := append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
		"-c", "protocol.file.allow=always", "-c", "gc.auto=0"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = gitEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// workRepo is a non-bare repository the tests commit to with the git CLI;
// servers serve it directly.
type workRepo struct {
	tb  testing.TB
	Dir string
}

// requireGit skips when the git CLI (the servers' side of these tests) is
// missing, unless CI=true, where a missing service fails the test.
func requireGit(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("git CLI: %v", err)
		}
		tb.Skipf("git CLI: %v", err)
	}
}

func newWorkRepo(tb testing.TB) *workRepo {
	tb.Helper()
	requireGit(tb)
	dir := filepath.Join(tb.TempDir(), "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	gitRun(tb, dir, "init", "-q")
	return &workRepo{tb: tb, Dir: dir}
}

func (w *workRepo) write(path, content string) {
	w.tb.Helper()
	full := filepath.Join(w.Dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		w.tb.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		w.tb.Fatal(err)
	}
}

func (w *workRepo) symlink(path, target string) {
	w.tb.Helper()
	full := filepath.Join(w.Dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		w.tb.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		w.tb.Fatal(err)
	}
}

func (w *workRepo) remove(path string) {
	w.tb.Helper()
	if err := os.RemoveAll(filepath.Join(w.Dir, path)); err != nil {
		w.tb.Fatal(err)
	}
}

// commit stages everything and commits; it returns the new commit's SHA.
func (w *workRepo) commit(msg string) string {
	w.tb.Helper()
	gitRun(w.tb, w.Dir, "add", "-A")
	gitRun(w.tb, w.Dir, "commit", "-q", "--allow-empty", "-m", msg)
	return gitRun(w.tb, w.Dir, "rev-parse", "HEAD")
}

func (w *workRepo) git(args ...string) string {
	w.tb.Helper()
	return gitRun(w.tb, w.Dir, args...)
}

// mapSecrets resolves secret:// references from a map. A missing one
// matches fs.ErrNotExist, as the secret providers' errors do.
type mapSecrets map[string]string

func (m mapSecrets) Resolve(_ context.Context, ref string) (string, error) {
	v, ok := m[ref]
	if !ok {
		return "", fmt.Errorf("secret %s: not set: %w", ref, fs.ErrNotExist)
	}
	return v, nil
}

// httpServer is git's smart HTTP server (git http-backend under
// net/http/cgi) on loopback, behind basic auth.
type httpServer struct {
	tb      testing.TB
	root    string
	handler http.Handler
	srv     *httptest.Server
	addr    string
	// cut makes the next upload-pack POST send half its response and then
	// drop the connection.
	cut  atomic.Bool
	hang atomic.Bool // handlers block until the request is cancelled
	// requests counts requests that passed authentication.
	requests atomic.Int64
}

const httpBackend = "/usr/lib/git-core/git-http-backend"

func startHTTP(tb testing.TB, root, user, pass string) *httpServer {
	tb.Helper()
	if _, err := os.Stat(httpBackend); err != nil {
		tb.Fatalf("git http-backend: %v", err)
	}
	s := &httpServer{tb: tb, root: root}
	backend := &cgi.Handler{
		Path:   httpBackend,
		Root:   "/git",
		Stderr: io.Discard,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		s.requests.Add(1)
		if s.hang.Load() {
			<-r.Context().Done()
			return
		}
		if r.Method == http.MethodPost && s.cut.CompareAndSwap(true, false) {
			rec := httptest.NewRecorder()
			backend.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			body := rec.Body.Bytes()
			_, _ = w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drops the connection mid-response
		}
		backend.ServeHTTP(w, r)
	})
	s.start("127.0.0.1:0")
	return s
}

func (s *httpServer) start(addr string) {
	s.tb.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger briefly after a stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Listener = ln
	srv.Config.ErrorLog = nil
	srv.Start()
	s.srv = srv
	s.addr = ln.Addr().String()
	s.tb.Cleanup(srv.Close)
}

func (s *httpServer) stop() { s.srv.CloseClientConnections(); s.srv.Close() }

func (s *httpServer) restart() { s.start(s.addr) }

// url is the URL of a repository directory under the server's root.
func (s *httpServer) url(repo string) string { return "http://" + s.addr + "/git/" + repo }

// sshServer is an in-process SSH server that runs the real git-upload-pack
// for "exec git-upload-pack '<path>'".
type sshServer struct {
	tb       testing.TB
	config   *ssh.ServerConfig
	hostKey  ssh.Signer
	ln       net.Listener
	addr     string
	authSeen atomic.Int64 // public key authentication attempts
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

type sshKeys struct {
	clientPEM string // the client's private key, PEM
	clientPub ssh.PublicKey
}

func newSSHKeys(tb testing.TB) sshKeys {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return sshKeys{clientPEM: string(pem.EncodeToMemory(block)), clientPub: sshPub}
}

func newHostKey(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return signer
}

func startSSH(tb testing.TB, clientPub ssh.PublicKey) *sshServer {
	tb.Helper()
	s := &sshServer{tb: tb, hostKey: newHostKey(tb), conns: map[net.Conn]bool{}}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.authSeen.Add(1)
			if bytes.Equal(key.Marshal(), clientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not allowed")
		},
	}
	s.config.AddHostKey(s.hostKey)
	s.start("127.0.0.1:0")
	tb.Cleanup(s.stop)
	return s
}

func (s *sshServer) start(addr string) {
	s.tb.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[conn] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(conn)
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
			}()
		}
	}()
}

// stop closes the listener and every connection, and waits for handlers.
func (s *sshServer) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sshServer) restart() { s.start(s.addr) }

// knownHosts is a known_hosts line for this server with the given key.
func (s *sshServer) knownHosts(key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key) + "\n"
}

func (s *sshServer) url(path string) string { return "ssh://git@" + s.addr + path }

func (s *sshServer) serve(conn net.Conn) {
	defer conn.Close()
	sc, chans, reqs, err := ssh.NewServerConn(conn, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ch.Close()
			for req := range chReqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				n := binary.BigEndian.Uint32(req.Payload)
				cmdline := string(req.Payload[4 : 4+n])
				path, ok := strings.CutPrefix(cmdline, "git-upload-pack ")
				if !ok {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				path = strings.Trim(path, "'")
				code := runUploadPack(ch, path)
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				return
			}
		}()
	}
}

func runUploadPack(ch ssh.Channel, path string) int {
	cmd := exec.Command("git-upload-pack", path)
	cmd.Env = gitEnv
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		return 1
	}
	// Not cmd.Stdin: Wait would wait for the client to close its side.
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

// gitDaemon runs `git daemon` serving root on a free loopback port.
type gitDaemon struct {
	cmd  *exec.Cmd
	addr string
}

func startGitDaemon(tb testing.TB, root string) *gitDaemon {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command("git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
		"--base-path="+root, "--listen=127.0.0.1", "--port="+strconv.Itoa(port), root)
	cmd.Env = gitEnv
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	d := &gitDaemon{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", d.addr)
		if err == nil {
			_ = c.Close()
			return d
		}
		if time.Now().After(deadline) {
			tb.Fatalf("git daemon did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *gitDaemon) url(repo string) string { return "git://" + d.addr + "/" + repo }
