package git_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/git"
)

const (
	httpUser  = "ci"
	httpToken = "s3cret-T0KEN-value"
	tokenRef  = "secret://env/GIT_TOKEN"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fixture is a served work repository with a few commits and refs.
type fixture struct {
	work  *workRepo
	http  *httpServer
	first string // first commit on main
	head  string // main's tip
	dev   string // tip of branch dev
}

func setup(t *testing.T) *fixture {
	t.Helper()
	w := newWorkRepo(t)
	w.write("manifests/a.yaml", "name: a\n")
	w.write("manifests/b.yaml", "name: b\n")
	w.write("manifests/sub/c.yml", "name: c\n")
	w.write("README.md", "hello\n")
	first := w.commit("first")
	w.git("tag", "v1")                          // lightweight
	w.git("tag", "-a", "-m", "release 2", "v2") // annotated
	w.git("checkout", "-q", "-b", "dev")
	w.write("manifests/dev.yaml", "name: dev\n")
	dev := w.commit("dev work")
	w.git("checkout", "-q", "main")
	w.write("manifests/a.yaml", "name: a\nv: 2\n")
	head := w.commit("second")
	return &fixture{
		work:  w,
		http:  startHTTP(t, filepath.Dir(w.Dir), httpUser, httpToken),
		first: first, head: head, dev: dev,
	}
}

// repo returns a Repo for the fixture's HTTP URL, authenticated through a
// secret reference.
func (f *fixture) repo(t *testing.T, mod func(*git.Config)) *git.Repo {
	t.Helper()
	cfg := git.Config{
		URL:  f.http.url("work"),
		Dir:  t.TempDir(),
		Auth: git.Auth{Username: httpUser, Password: tokenRef},
	}
	if mod != nil {
		mod(&cfg)
	}
	return newRepo(t, cfg, mapSecrets{tokenRef: httpToken})
}

func newRepo(t testing.TB, cfg git.Config, secrets git.Resolver) *git.Repo {
	t.Helper()
	r, err := git.New(cfg, secrets, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func paths(files []git.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func fileMap(files []git.File) map[string]git.File {
	m := map[string]git.File{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

// headFetchManifests is the agent's sync step.
func headFetchManifests(t *testing.T, r *git.Repo) (string, []git.File) {
	t.Helper()
	ctx := t.Context()
	head, err := r.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if err := r.Fetch(ctx, head); err != nil {
		t.Fatalf("Fetch(%s): %v", head, err)
	}
	files, err := r.Manifests(ctx, head)
	if err != nil {
		t.Fatalf("Manifests(%s): %v", head, err)
	}
	return head, files
}

func TestHTTPHead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr error
	}{
		{name: "default branch", ref: "", want: f.head},
		{name: "HEAD", ref: "HEAD", want: f.head},
		{name: "branch", ref: "dev", want: f.dev},
		{name: "full branch name", ref: "refs/heads/dev", want: f.dev},
		{name: "lightweight tag", ref: "v1", want: f.first},
		{name: "annotated tag", ref: "v2", want: f.first},
		{name: "full tag name", ref: "refs/tags/v2", want: f.first},
		{name: "full sha", ref: f.first, want: f.first},
		{name: "missing branch", ref: "nope", wantErr: git.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := f.repo(t, func(c *git.Config) { c.Ref = tt.ref })
			got, err := r.Head(t.Context())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Head() = %q, %v; want error %v", got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Head() = %q, want %q", got, tt.want)
			}
			if tt.wantErr != nil {
				return
			}
			if err := r.Fetch(t.Context(), got); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			files, err := r.Manifests(t.Context(), got)
			if err != nil {
				t.Fatalf("Manifests: %v", err)
			}
			if len(files) == 0 {
				t.Fatal("no manifests")
			}
		})
	}
}

func TestHTTPMissingRepository(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.repo(t, func(c *git.Config) { c.URL = f.http.url("nothing-here") })
	_, err := r.Head(t.Context())
	if !errors.Is(err, git.ErrNotFound) {
		t.Fatalf("Head() error = %v, want ErrNotFound", err)
	}
}

func TestFullSHARefNeedsNoNetwork(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("ab", 20)
	r := newRepo(t, git.Config{URL: "http://127.0.0.1:1/nothing.git", Ref: sha, Dir: t.TempDir()}, nil)
	got, err := r.Head(t.Context())
	if err != nil || got != sha {
		t.Fatalf("Head() = %q, %v; want %q", got, err, sha)
	}
}

func TestHTTPWrongPassword(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const wrong = "wrong-P4SSWORD-value"
	tests := []struct {
		name string
		cfg  func(*git.Config)
	}{
		{name: "secret", cfg: func(c *git.Config) { c.Auth.Password = "secret://env/WRONG" }},
		{name: "in url", cfg: func(c *git.Config) {
			c.URL = strings.Replace(f.http.url("work"), "http://", "http://"+httpUser+":"+wrong+"@", 1)
			c.Auth = git.Auth{}
		}},
		{name: "none", cfg: func(c *git.Config) { c.Auth = git.Auth{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := git.Config{URL: f.http.url("work"), Dir: t.TempDir(), Auth: git.Auth{Username: httpUser}}
			tt.cfg(&cfg)
			r := newRepo(t, cfg, mapSecrets{"secret://env/WRONG": wrong})
			_, err := r.Head(t.Context())
			t.Logf("Head: %v", err)
			if !errors.Is(err, git.ErrAuth) {
				t.Fatalf("Head() error = %v, want ErrAuth", err)
			}
			err = r.Fetch(t.Context(), f.head)
			if !errors.Is(err, git.ErrAuth) {
				t.Fatalf("Fetch() error = %v, want ErrAuth", err)
			}
			for _, e := range []error{err, errors.Unwrap(err)} {
				if e != nil && (strings.Contains(e.Error(), wrong) || strings.Contains(e.Error(), httpToken)) {
					t.Errorf("error leaks the password: %v", e)
				}
			}
			if strings.Contains(r.Redacted(), wrong) {
				t.Errorf("Redacted() leaks the password: %s", r.Redacted())
			}
		})
	}
}

func TestSecretResolveError(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.repo(t, func(c *git.Config) { c.Auth.Password = "secret://env/MISSING" })
	_, err := r.Head(t.Context())
	if !errors.Is(err, git.ErrConfig) || !strings.Contains(err.Error(), "secret://env/MISSING") {
		t.Fatalf("Head() error = %v, want ErrConfig naming the reference", err)
	}
}

func TestFetchIncrementalAndChanged(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.repo(t, nil)
	ctx := t.Context()
	old, files := headFetchManifests(t, r)
	if old != f.head {
		t.Fatalf("Head = %s, want %s", old, f.head)
	}
	want := []string{"manifests/a.yaml", "manifests/b.yaml", "manifests/sub/c.yml"}
	if got := paths(files); !slices.Equal(got, want) {
		t.Fatalf("Manifests = %v, want %v", got, want)
	}
	if got := string(fileMap(files)["manifests/a.yaml"].Data); got != "name: a\nv: 2\n" {
		t.Fatalf("a.yaml = %q", got)
	}

	// Fetch of a present commit talks to nobody.
	before := f.http.requests.Load()
	if err := r.Fetch(ctx, old); err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if n := f.http.requests.Load() - before; n != 0 {
		t.Fatalf("no-op Fetch made %d requests", n)
	}

	f.work.write("manifests/b.yaml", "name: b\nv: 2\n") // modified
	f.work.remove("manifests/sub/c.yml")                // deleted
	f.work.write("manifests/d.yaml", "name: d\n")       // added
	f.work.write("README.md", "changed\n")              // not a manifest
	next := f.work.commit("third")

	got, err := r.Head(ctx)
	if err != nil || got != next {
		t.Fatalf("Head() after commit = %q, %v; want %s", got, err, next)
	}
	if err := r.Fetch(ctx, next); err != nil {
		t.Fatalf("Fetch(new): %v", err)
	}
	changed, err := r.Changed(ctx, old, next)
	if err != nil {
		t.Fatalf("Changed: %v", err)
	}
	wantChanged := []string{"manifests/b.yaml", "manifests/d.yaml", "manifests/sub/c.yml"}
	if !slices.Equal(changed, wantChanged) {
		t.Fatalf("Changed = %v, want %v", changed, wantChanged)
	}
	changedFiles, err := r.Files(ctx, next, changed)
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	if got := paths(changedFiles); !slices.Equal(got, []string{"manifests/b.yaml", "manifests/d.yaml"}) {
		t.Fatalf("Files(changed) = %v; the deleted file must be left out", got)
	}
	if got := string(changedFiles[0].Data); got != "name: b\nv: 2\n" {
		t.Fatalf("b.yaml = %q", got)
	}
	// The old revision stays readable.
	oldFiles, err := r.Manifests(ctx, old)
	if err != nil {
		t.Fatalf("Manifests(old): %v", err)
	}
	if !slices.Equal(paths(oldFiles), want) {
		t.Fatalf("Manifests(old) = %v", paths(oldFiles))
	}
	if err := r.Fetch(ctx, next); err != nil {
		t.Fatalf("Fetch(new) again: %v", err)
	}
	// Unknown commits are not present.
	if _, err := r.Manifests(ctx, strings.Repeat("0", 39)+"1"); !errors.Is(err, git.ErrNotFound) {
		t.Fatalf("Manifests(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestFetchMovedRef(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.repo(t, nil)
	old, err := r.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.work.write("manifests/e.yaml", "name: e\n")
	f.work.commit("moved on")
	// old is no longer a tip and the server does not serve commits by SHA.
	err = r.Fetch(t.Context(), old)
	if !errors.Is(err, git.ErrNotFound) {
		t.Fatalf("Fetch(stale) error = %v, want ErrNotFound", err)
	}
}

func TestFetchPinnedCommit(t *testing.T) {
	t.Parallel()
	for _, bySHA := range []bool{false, true} {
		t.Run("allowReachableSHA1InWant="+strconv.FormatBool(bySHA), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			if bySHA {
				f.work.git("config", "uploadpack.allowReachableSHA1InWant", "true")
			}
			// f.first is no tip: main and dev moved on (tags v1, v2 point at
			// it, so use a commit that no ref names).
			f.work.write("manifests/p.yaml", "name: p\n")
			pinned := f.work.commit("pinned")
			f.work.write("manifests/p.yaml", "name: p\nv: 2\n")
			f.work.commit("after pinned")

			cfg := git.Config{}
			r := f.repo(t, func(c *git.Config) { c.Ref = pinned; cfg = *c })
			head, files := headFetchManifests(t, r)
			if head != pinned {
				t.Fatalf("Head = %s, want %s", head, pinned)
			}
			if got := string(fileMap(files)["manifests/p.yaml"].Data); got != "name: p\n" {
				t.Fatalf("p.yaml = %q", got)
			}
			// Shallow by SHA when the server allows it, full history otherwise.
			n := gitRun(t, filepath.Join(cfg.Dir, "repo.git"), "rev-list", "--count", pinned)
			if want := map[bool]string{true: "1", false: "3"}[bySHA]; n != want {
				t.Fatalf("history depth of the pinned commit = %s, want %s", n, want)
			}
		})
	}
}

func TestHTTPServerDiesMidFetch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var dir string
	r := f.repo(t, func(c *git.Config) { dir = c.Dir })
	ctx := t.Context()
	f.http.cut.Store(true)
	err := r.Fetch(ctx, f.head)
	t.Logf("Fetch: %v", err)
	if err == nil {
		t.Fatal("Fetch with the connection dropped mid-pack succeeded")
	}
	if tmps := glob(t, dir, "repo.git/objects/pack/tmp_*"); len(tmps) > 0 {
		t.Fatalf("partial pack left behind: %v", tmps)
	}
	head, files := headFetchManifests(t, r)
	if head != f.head || len(files) != 3 {
		t.Fatalf("after recovery: head %s, %d files", head, len(files))
	}

	f.http.stop()
	if _, err := r.Head(ctx); err == nil {
		t.Fatal("Head with the server down succeeded")
	}
	f.http.restart()
	f.work.write("manifests/z.yaml", "name: z\n")
	next := f.work.commit("after restart")
	got, files := headFetchManifests(t, r)
	if got != next || len(files) != 4 {
		t.Fatalf("after restart: head %s (want %s), %d files", got, next, len(files))
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Long enough for a CGI round trip on a loaded test machine.
	r := f.repo(t, func(c *git.Config) { c.Timeout = 2 * time.Second })
	f.http.hang.Store(true)
	start := time.Now()
	_, err := r.Head(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Head() error = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Head took %s with a 2s timeout", d)
	}
	// The caller's context counts too.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Fetch(ctx, f.head); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch(cancelled) error = %v, want Canceled", err)
	}
	f.http.hang.Store(false)
	if _, err := r.Head(t.Context()); err != nil {
		t.Fatalf("Head after the server recovered: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.repo(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			head, err := r.Head(ctx)
			if err != nil {
				errs <- err
				return
			}
			if err := r.Fetch(ctx, head); err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				_, err = r.Manifests(ctx, head)
			} else {
				_, err = r.Changed(ctx, head, head)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDamagedBareRepository(t *testing.T) {
	t.Parallel()
	damage := []struct {
		name string
		do   func(t *testing.T, bare string, f *fixture)
	}{
		{name: "garbage HEAD", do: func(t *testing.T, bare string, _ *fixture) {
			writeFile(t, filepath.Join(bare, "HEAD"), "garbage")
		}},
		{name: "no HEAD", do: func(t *testing.T, bare string, _ *fixture) {
			if err := os.Remove(filepath.Join(bare, "HEAD")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "garbage config", do: func(t *testing.T, bare string, _ *fixture) {
			writeFile(t, filepath.Join(bare, "config"), "[core\n\x00")
		}},
		{name: "pack index gone", do: func(t *testing.T, bare string, _ *fixture) {
			for _, p := range glob(t, bare, "objects/pack/*.idx") {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "pack truncated", do: func(t *testing.T, bare string, _ *fixture) {
			for _, p := range glob(t, bare, "objects/pack/*.pack") {
				if err := os.Truncate(p, 100); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "ref to missing commit", do: func(t *testing.T, bare string, _ *fixture) {
			writeFile(t, filepath.Join(bare, "refs/caesium/head"), strings.Repeat("1", 40)+"\n")
		}},
		{name: "half-written pack left over", do: func(t *testing.T, bare string, _ *fixture) {
			writeFile(t, filepath.Join(bare, "objects/pack/tmp_pack_123"), "PACK\x00\x00")
		}},
		{name: "blob corrupt inside the pack", do: corruptBlob},
		{name: "directory is a file", do: func(t *testing.T, bare string, _ *fixture) {
			if err := os.RemoveAll(bare); err != nil {
				t.Fatal(err)
			}
			writeFile(t, bare, "not a repository")
		}},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var dir string
			r := f.repo(t, func(c *git.Config) { dir = c.Dir })
			head, _ := headFetchManifests(t, r)
			if err := r.Close(); err != nil { // as after a crash: nothing held open
				t.Fatal(err)
			}
			bare := filepath.Join(dir, "repo.git")
			d.do(t, bare, f)

			r = f.repo(t, func(c *git.Config) { c.Dir = dir })
			_, err := r.Manifests(t.Context(), head)
			t.Logf("Manifests on the damaged repository: %v", err)
			if d.name == "blob corrupt inside the pack" && err == nil {
				t.Fatal("Manifests read a corrupt blob without error")
			}
			got, files := headFetchManifests(t, r)
			if got != head || len(files) != 3 || string(fileMap(files)["manifests/b.yaml"].Data) != "name: b\n" {
				t.Fatalf("after recovery: head %s, files %v", got, paths(files))
			}
			if fi, err := os.Stat(filepath.Join(bare, "objects/pack/tmp_pack_123")); err == nil {
				t.Fatalf("leftover temporary pack kept: %v", fi.Name())
			}
		})
	}
}

// corruptBlob overwrites the compressed data of manifests/b.yaml's blob
// inside the pack, leaving the commit and its trees readable.
func corruptBlob(t *testing.T, bare string, f *fixture) {
	blob := f.work.git("rev-parse", "HEAD:manifests/b.yaml")
	idx := glob(t, bare, "objects/pack/*.idx")
	if len(idx) != 1 {
		t.Fatalf("want one pack, have %v", idx)
	}
	out, err := exec.Command("git", "verify-pack", "-v", idx[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	var offset, size int64 = -1, 0
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 5 && fs[0] == blob {
			size, _ = strconv.ParseInt(fs[3], 10, 64)
			offset, _ = strconv.ParseInt(fs[4], 10, 64)
			break
		}
	}
	if offset < 0 {
		t.Fatalf("no blob in pack:\n%s", out)
	}
	pack := strings.TrimSuffix(idx[0], ".idx") + ".pack"
	fh, err := os.OpenFile(pack, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	junk := make([]byte, size-2)
	for i := range junk {
		junk[i] = 0xff
	}
	if _, err := fh.WriteAt(junk, offset+2); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func glob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGitProtocol(t *testing.T) {
	t.Parallel()
	f := setup(t)
	d := startGitDaemon(t, filepath.Dir(f.work.Dir))
	r := newRepo(t, git.Config{URL: d.url("work"), Dir: t.TempDir()}, nil)
	head, files := headFetchManifests(t, r)
	if head != f.head || len(files) != 3 {
		t.Fatalf("head %s, files %v", head, paths(files))
	}
	f.work.write("manifests/b.yaml", "name: b\nv: 3\n")
	next := f.work.commit("next")
	got, _ := headFetchManifests(t, r)
	changed, err := r.Changed(t.Context(), head, got)
	if err != nil || got != next || !slices.Equal(changed, []string{"manifests/b.yaml"}) {
		t.Fatalf("Changed = %v, %v (head %s, want %s)", changed, err, got, next)
	}
}

func TestCompaction(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var dir string
	r := f.repo(t, func(c *git.Config) { dir = c.Dir })
	ctx := t.Context()
	bare := filepath.Join(dir, "repo.git")
	c1, _ := headFetchManifests(t, r)

	f.work.write("manifests/b.yaml", "name: b\nv: 2\n")
	c2 := f.work.commit("c2")
	if got, _ := headFetchManifests(t, r); got != c2 {
		t.Fatalf("head %s, want %s", got, c2)
	}
	if n := len(glob(t, bare, "objects/??/*")); n == 0 {
		t.Fatal("an incremental fetch left no loose objects: was the pack thin?")
	}

	git.CompactOnEveryFetch(r)
	f.work.write("manifests/c.yaml", "name: c\n")
	c3 := f.work.commit("c3")
	if got, _ := headFetchManifests(t, r); got != c3 {
		t.Fatalf("head %s, want %s", got, c3)
	}
	if n := len(glob(t, bare, "objects/??/*")); n > 8 {
		t.Fatalf("%d loose objects after compaction and one small fetch", n)
	}
	// head (c2) and prev (c1) survived the compaction.
	for _, c := range []struct{ from, want string }{
		{c1, "manifests/b.yaml manifests/c.yaml"},
		{c2, "manifests/c.yaml"},
	} {
		got, err := r.Changed(ctx, c.from, c3)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Fatalf("Changed(%s, c3) = %v, %v; want %s", c.from[:7], got, err, c.want)
		}
	}
	// git itself can read what we keep.
	gitRun(t, bare, "rev-list", "--objects", "refs/caesium/head", "refs/caesium/prev")

	f.work.write("manifests/d.yaml", "name: d\n")
	c4 := f.work.commit("c4")
	if got, _ := headFetchManifests(t, r); got != c4 {
		t.Fatalf("head %s, want %s", got, c4)
	}
	// c1 is now two compactions old.
	if _, err := r.Changed(ctx, c1, c4); !errors.Is(err, git.ErrNotFound) {
		t.Fatalf("Changed(c1, c4) error = %v, want ErrNotFound", err)
	}
	if _, err := r.Changed(ctx, c3, c4); err != nil {
		t.Fatalf("Changed(c3, c4): %v", err)
	}
}
