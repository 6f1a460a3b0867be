package git_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/git"
)

// treeRepo builds a repository exercising paths, globs, ignore files and
// symlinks. Everything interesting lives under deploy/.
func treeRepo(t *testing.T) *workRepo {
	t.Helper()
	w := newWorkRepo(t)
	w.write("top.yaml", "outside the source path\n")
	w.write("README.md", "readme\n")
	w.write("deploy/a.yaml", "name: a\n")
	w.write("deploy/b.yml", "name: b\n")
	w.write("deploy/notes.txt", "not a manifest\n")
	w.write("deploy/nested/deep/c.yaml", "name: c\n")
	w.write("deploy/nested/local.yaml", "ignored by nested/.caesiumignore\n")
	w.write("deploy/nested/deep/local.yaml", "ignored too: the pattern has no slash\n")
	w.write("deploy/other/local.yaml", "not ignored: outside nested/\n")
	w.write("deploy/ignored/x.yaml", "in an ignored directory\n")
	w.write("deploy/ignored/keep.draft.yaml", "cannot be re-included: its directory is ignored\n")
	w.write("deploy/x.draft.yaml", "ignored draft\n")
	w.write("deploy/keep.draft.yaml", "re-included by negation\n")
	w.write("deploy/.caesiumignore", "# comment\n\nignored/\n*.draft.yaml\n!keep.draft.yaml\n")
	w.write("deploy/nested/.caesiumignore", "local.yaml\r\n")
	w.symlink("deploy/link.yaml", "a.yaml")
	w.symlink("deploy/nested/up.yaml", "../a.yaml")
	w.symlink("deploy/chain.yaml", "link.yaml")
	w.symlink("deploy/viadir.yaml", "nested/../a.yaml")
	w.symlink("deploy/passwd.yaml", "../../etc/passwd")
	w.symlink("deploy/abs.yaml", "/etc/passwd")
	w.symlink("deploy/outside.yaml", "../top.yaml")
	w.symlink("deploy/loop1.yaml", "loop2.yaml")
	w.symlink("deploy/loop2.yaml", "loop1.yaml")
	w.symlink("deploy/self.yaml", "self.yaml")
	w.symlink("deploy/dangling.yaml", "missing.yaml")
	w.symlink("deploy/dir.yaml", "nested")
	w.symlink("deploy/notdir.yaml", "a.yaml/x")
	w.write("deploy/big.yaml", strings.Repeat("# padding\n", 2<<20/10))
	w.commit("tree")
	return w
}

func localRepo(t *testing.T, w *workRepo, mod func(*git.Config)) (*git.Repo, string) {
	t.Helper()
	cfg := git.Config{URL: w.Dir, Path: "deploy"}
	if mod != nil {
		mod(&cfg)
	}
	r := newRepo(t, cfg, nil)
	head, err := r.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if err := r.Fetch(t.Context(), head); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return r, head
}

func TestManifests(t *testing.T) {
	t.Parallel()
	w := treeRepo(t)
	r, head := localRepo(t, w, nil)
	files, err := r.Manifests(t.Context(), head)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	want := []string{
		"deploy/a.yaml",
		"deploy/abs.yaml",
		"deploy/b.yml",
		"deploy/big.yaml",
		"deploy/chain.yaml",
		"deploy/dangling.yaml",
		"deploy/dir.yaml",
		"deploy/keep.draft.yaml",
		"deploy/link.yaml",
		"deploy/loop1.yaml",
		"deploy/loop2.yaml",
		"deploy/nested/deep/c.yaml",
		"deploy/nested/up.yaml",
		"deploy/notdir.yaml",
		"deploy/other/local.yaml",
		"deploy/outside.yaml",
		"deploy/passwd.yaml",
		"deploy/self.yaml",
		"deploy/viadir.yaml",
	}
	if got := paths(files); !slices.Equal(got, want) {
		t.Fatalf("Manifests paths:\n got %v\nwant %v", got, want)
	}
	m := fileMap(files)
	aBlob := w.git("rev-parse", "HEAD:deploy/a.yaml")
	for _, p := range []string{"deploy/a.yaml", "deploy/link.yaml", "deploy/chain.yaml", "deploy/nested/up.yaml", "deploy/viadir.yaml"} {
		f := m[p]
		if f.Err != nil || string(f.Data) != "name: a\n" || f.Blob != aBlob {
			t.Errorf("%s: data %q blob %s err %v; want a.yaml's content and blob %s", p, f.Data, f.Blob, f.Err, aBlob)
		}
	}
	symlinkErrs := map[string]string{
		"deploy/abs.yaml":      "absolute",
		"deploy/passwd.yaml":   "leaves the repository",
		"deploy/outside.yaml":  "outside the source path",
		"deploy/loop1.yaml":    "too many levels",
		"deploy/loop2.yaml":    "too many levels",
		"deploy/self.yaml":     "too many levels",
		"deploy/dangling.yaml": "does not exist",
		"deploy/dir.yaml":      "is a directory",
		"deploy/notdir.yaml":   "not a directory",
	}
	for p, msg := range symlinkErrs {
		f := m[p]
		if !errors.Is(f.Err, git.ErrSymlink) || !strings.Contains(f.Err.Error(), msg) || f.Data != nil || f.Blob != "" {
			t.Errorf("%s: err %v, data %q, blob %q; want ErrSymlink mentioning %q", p, f.Err, f.Data, f.Blob, msg)
		}
	}
	if big := m["deploy/big.yaml"]; !errors.Is(big.Err, git.ErrTooLarge) || big.Data != nil || big.Blob == "" {
		t.Errorf("big.yaml: err %v, %d bytes, blob %q; want ErrTooLarge, no data, a blob", big.Err, len(big.Data), big.Blob)
	}
}

func TestManifestsOptions(t *testing.T) {
	t.Parallel()
	w := treeRepo(t)
	tests := []struct {
		name    string
		cfg     func(*git.Config)
		want    []string
		wantErr error
		errText string
	}{
		{
			name: "globs",
			cfg:  func(c *git.Config) { c.Globs = []string{"nested/**/*.yaml", "*.yml"} },
			want: []string{"deploy/b.yml", "deploy/nested/deep/c.yaml", "deploy/nested/up.yaml"},
		},
		{
			name: "nested path",
			cfg:  func(c *git.Config) { c.Path = "deploy/nested/" },
			// The ignore file above Path does not apply; up.yaml leaves Path.
			want: []string{"deploy/nested/deep/c.yaml", "deploy/nested/up.yaml"},
		},
		{
			name: "root",
			cfg:  func(c *git.Config) { c.Path = ""; c.Globs = []string{"*.yaml"} },
			want: []string{"top.yaml"},
		},
		{
			name:    "too many files",
			cfg:     func(c *git.Config) { c.MaxFiles = 3 },
			wantErr: git.ErrTooManyFiles,
			errText: "19 manifests under \"/deploy\", the limit is 3",
		},
		{
			name:    "path missing",
			cfg:     func(c *git.Config) { c.Path = "nope" },
			wantErr: git.ErrNotFound,
		},
		{
			name:    "path is a file",
			cfg:     func(c *git.Config) { c.Path = "top.yaml" },
			wantErr: git.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, head := localRepo(t, w, tt.cfg)
			files, err := r.Manifests(t.Context(), head)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Manifests() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error %q does not say %q", err, tt.errText)
				}
				return
			}
			if got := paths(files); !slices.Equal(got, tt.want) {
				t.Fatalf("paths = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangedFollowsIgnoreAndSymlinks(t *testing.T) {
	t.Parallel()
	w := treeRepo(t)
	r, old := localRepo(t, w, nil)
	w.write("deploy/a.yaml", "name: a\nv: 2\n")                             // and every link to it
	w.write("deploy/.caesiumignore", "ignored/\n*.draft.yaml\n")            // keep.draft.yaml now ignored
	w.write("deploy/nested/.caesiumignore", "# nothing ignored any more\n") // local.yaml files appear
	w.remove("deploy/big.yaml")
	w.write("deploy/notes.txt", "still not a manifest\n")
	next := w.commit("edit")
	if err := r.Fetch(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	got, err := r.Changed(t.Context(), old, next)
	if err != nil {
		t.Fatalf("Changed: %v", err)
	}
	want := []string{
		"deploy/a.yaml", "deploy/big.yaml", "deploy/chain.yaml", "deploy/keep.draft.yaml", "deploy/link.yaml",
		"deploy/nested/deep/local.yaml", "deploy/nested/local.yaml", "deploy/nested/up.yaml", "deploy/viadir.yaml",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Changed:\n got %v\nwant %v", got, want)
	}
	if got, err := r.Changed(t.Context(), next, next); err != nil || len(got) != 0 {
		t.Fatalf("Changed(x, x) = %v, %v", got, err)
	}
}

func TestLocalSources(t *testing.T) {
	t.Parallel()
	w := newWorkRepo(t)
	w.write("jobs/a.yaml", "name: a\n")
	committed := w.commit("one")
	// Uncommitted and untracked changes do not count.
	w.write("jobs/a.yaml", "name: dirty\n")
	w.write("jobs/untracked.yaml", "name: u\n")

	bare := filepath.Join(t.TempDir(), "bare.git")
	gitRun(t, filepath.Dir(bare), "clone", "-q", "--bare", w.Dir, bare)

	tests := []struct {
		name string
		url  string
	}{
		{name: "checkout", url: w.Dir},
		{name: "checkout subdirectory is not a repository", url: filepath.Join(w.Dir, "jobs")},
		{name: "bare", url: bare},
		{name: "file url", url: "file://" + bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo(t, git.Config{URL: tt.url}, nil)
			head, err := r.Head(t.Context())
			if strings.Contains(tt.name, "not a repository") {
				if !errors.Is(err, git.ErrNotFound) {
					t.Fatalf("Head() error = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil || head != committed {
				t.Fatalf("Head() = %s, %v; want %s", head, err, committed)
			}
			if err := r.Fetch(t.Context(), head); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if err := r.Fetch(t.Context(), strings.Repeat("1", 40)); !errors.Is(err, git.ErrNotFound) {
				t.Fatalf("Fetch(unknown) error = %v, want ErrNotFound", err)
			}
			files, err := r.Manifests(t.Context(), head)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || files[0].Path != "jobs/a.yaml" || string(files[0].Data) != "name: a\n" {
				t.Fatalf("Manifests = %+v", files)
			}
		})
	}
}
