package file_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/file"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
)

// The assertion lives in a test so that file does not import secrets.
var _ secrets.Backend = (*file.File)(nil)

const secret = "hunter2-correct-horse"

// setup returns a secrets directory laid out like a Kubernetes secret
// volume (relative symlinks through ..data), plus the hostile cases, and a
// File over it.
func setup(t *testing.T) (*file.File, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "secrets")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "..2026_01_01"), filepath.Join(dir, "db"), filepath.Join(dir, "dir")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"plain":                 secret,
		"lf":                    secret + "\n",
		"crlf":                  secret + "\r\n",
		"two-lf":                secret + "\n\n",
		"cr-only":               secret + "\r",
		"inner-newline":         "line1\nline2\n",
		"empty":                 "",
		"only-newline":          "\n",
		"db/password":           secret,
		"..2026_01_01/token":    secret,
		"max":                   strings.Repeat("x", file.MaxSize-1) + "\n",
		"too-large":             strings.Repeat("x", file.MaxSize+1),
		"../outside/leaked":     "must never be read",
		"../outside/leaked-abs": "must never be read",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"..data":      "..2026_01_01",      // Kubernetes: ..data -> timestamped dir
		"token":       "..data/token",      // token -> ..data/token
		"db/alias":    "password",          // relative, same directory
		"up-and-back": "db/../db/password", // .. inside the target, staying in
		"escape":      "../outside/leaked", // relative, leaves dir
		"escape-abs":  filepath.Join(outside, "leaked-abs"),
		"inside-abs":  filepath.Join(dir, "plain"), // absolute, even pointing inside
		"dangling":    "nothing-here",
		"escape-dir":  "..", // a directory link out
		"link-to-dir": "dir",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

func TestResolve(t *testing.T) {
	t.Parallel()
	f, _ := setup(t)
	tests := []struct {
		name         string
		ref          string
		want         string
		wantErr      string
		wantNotFound bool
	}{
		{name: "present", ref: "secret://file/plain", want: secret},
		{name: "trailing lf stripped", ref: "secret://file/lf", want: secret},
		{name: "trailing crlf stripped", ref: "secret://file/crlf", want: secret},
		{name: "only one newline stripped", ref: "secret://file/two-lf", want: secret + "\n"},
		{name: "lone cr kept", ref: "secret://file/cr-only", want: secret + "\r"},
		{name: "inner newline kept", ref: "secret://file/inner-newline", want: "line1\nline2"},
		{name: "subdirectory", ref: "secret://file/db/password", want: secret},
		{name: "cleaned path", ref: "secret://file/db/./password", want: secret},
		{name: "exactly max size", ref: "secret://file/max", want: strings.Repeat("x", file.MaxSize-1)},
		{name: "symlink inside", ref: "secret://file/db/alias", want: secret},
		{name: "kubernetes ..data links", ref: "secret://file/token", want: secret},
		{name: "symlink with .. staying inside", ref: "secret://file/up-and-back", want: secret},

		{name: "missing", ref: "secret://file/nope", wantErr: "secret://file/nope: no such file in", wantNotFound: true},
		{name: "missing below", ref: "secret://file/db/nope", wantErr: "no such file", wantNotFound: true},
		{name: "dangling symlink", ref: "secret://file/dangling", wantErr: "no such file", wantNotFound: true},
		{name: "empty", ref: "secret://file/empty", wantErr: "secret://file/empty: file is empty", wantNotFound: true},
		{name: "only a newline", ref: "secret://file/only-newline", wantErr: "file is empty", wantNotFound: true},
		{name: "too large", ref: "secret://file/too-large", wantErr: "secret://file/too-large: file is larger than 65536 bytes"},
		{name: "directory", ref: "secret://file/dir", wantErr: "secret://file/dir: not a regular file (directory)"},
		{name: "symlink to directory", ref: "secret://file/link-to-dir", wantErr: "not a regular file (directory)"},
		{name: "symlink escaping", ref: "secret://file/escape", wantErr: "secret://file/escape: refused: path escapes from parent"},
		{name: "absolute symlink escaping", ref: "secret://file/escape-abs", wantErr: "refused: path escapes from parent"},
		{name: "absolute symlink inside", ref: "secret://file/inside-abs", wantErr: "refused: path escapes from parent"},
		{name: "directory symlink escaping", ref: "secret://file/escape-dir/outside/leaked", wantErr: "refused: path escapes from parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, err := schema.ParseSecretRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Resolve(context.Background(), ref)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve = %q, want error %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "must never") || strings.Contains(err.Error(), "xxxx") {
					t.Errorf("error %q shows file content", err)
				}
				if got := errors.Is(err, fs.ErrNotExist); got != tt.wantNotFound {
					t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.wantNotFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %q, want %q", shorten(got), shorten(tt.want))
			}
		})
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// The parser refuses .. and absolute paths; a hand-built reference that
// slips past it is still confined by os.Root.
func TestEscapingPaths(t *testing.T) {
	t.Parallel()
	f, _ := setup(t)
	for _, ref := range []string{"secret://file/../outside/leaked", "secret://file/db/../../outside/leaked", "secret://file//etc/passwd"} {
		if _, err := schema.ParseSecretRef(ref); err == nil {
			t.Errorf("ParseSecretRef(%q) accepted it", ref)
		}
	}
	for _, p := range []string{"../outside/leaked", "db/../../outside/leaked", "/etc/passwd"} {
		got, err := f.Resolve(context.Background(), schema.SecretRef{Backend: schema.SecretFile, Path: p})
		if err == nil {
			t.Errorf("Resolve(%q) = %q, want refused", p, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), "secret://file/"+p+": ") {
			t.Errorf("Resolve(%q): error %q does not name the reference", p, err)
		}
	}
}

func TestResolveWrongBackend(t *testing.T) {
	t.Parallel()
	f, _ := setup(t)
	ref, err := schema.ParseSecretRef("secret://env/plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "not a file secret reference") {
		t.Errorf("error = %v", err)
	}
}

func TestResolveCanceled(t *testing.T) {
	t.Parallel()
	f, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ref, err := schema.ParseSecretRef("secret://file/plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(ctx, ref); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

// A file replaced after New is read afresh: nothing is cached.
func TestRotation(t *testing.T) {
	t.Parallel()
	f, dir := setup(t)
	ref, err := schema.ParseSecretRef("secret://file/plain")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Resolve(context.Background(), ref); err != nil || got != "rotated" {
		t.Errorf("Resolve = %q, %v; want rotated", got, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr string
	}{
		{name: "absolute directory", dir: dir},
		{name: "relative", dir: "secrets", wantErr: "must be an absolute path"},
		{name: "empty", dir: "", wantErr: "must be an absolute path"},
		{name: "missing", dir: filepath.Join(dir, "nope"), wantErr: "no such file or directory"},
		{name: "not a directory", dir: regular, wantErr: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := file.New(tt.dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
