// Package file resolves secret://file/PATH references from one directory,
// such as /run/secrets (Docker and Podman secrets) or a Kubernetes secret
// volume. Paths are confined to the directory with os.Root: a symlink may
// point elsewhere inside it (Kubernetes' ..data links do) but never out of
// it, and absolute symlinks are refused.
package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/caesium-io/caesium/schema"
)

// MaxSize is the largest secret file read, in bytes. Secrets are tokens,
// passwords and keys; anything bigger is a mistake (a wrong path, a log file).
const MaxSize = 64 << 10

// File resolves secret://file/PATH references below one directory. It is
// safe for concurrent use.
type File struct {
	dir string
}

// New returns a File reading below dir, which must be an absolute path to an
// existing directory. The directory is opened anew on each Resolve, so a
// remounted secrets directory is picked up.
func New(dir string) (*File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("secrets directory %q: must be an absolute path", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("secrets directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("secrets directory %q: not a directory", dir)
	}
	return &File{dir: filepath.Clean(dir)}, nil
}

// Resolve returns the content of the file ref names, without one trailing
// newline ("\n" or "\r\n", as echo and most editors leave). A missing file,
// or one that is empty (after that newline), is an error matching
// fs.ErrNotExist (the secret router reports it as not found). Paths that
// leave the directory, files over MaxSize and anything but a regular file are
// refused. Errors name the reference, never the content.
func (f *File) Resolve(ctx context.Context, ref schema.SecretRef) (string, error) {
	name := refString(ref)
	if ref.Backend != schema.SecretFile || ref.Path == "" {
		return "", fmt.Errorf("%s: not a file secret reference", name)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	b, err := f.read(ref.Path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return "", fmt.Errorf("%s: %w", name, &notFoundError{msg: "file is empty"})
	}
	return string(b), nil
}

func (f *File) read(path string) ([]byte, error) {
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, fmt.Errorf("open secrets directory: %w", err)
	}
	defer root.Close()

	// Check the type before opening: opening a FIFO blocks and opening a
	// device may have side effects.
	fi, err := root.Stat(path)
	if err != nil {
		return nil, statError(f.dir, err)
	}
	if err := check(fi); err != nil {
		return nil, err
	}
	// O_NONBLOCK keeps a FIFO swapped in since the Stat from blocking the
	// open; the Stat of the open file below then refuses it.
	fh, err := root.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, statError(f.dir, err)
	}
	defer fh.Close()
	if fi, err = fh.Stat(); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if err := check(fi); err != nil {
		return nil, err
	}
	// Read one byte past the limit: the file may have grown since the Stat.
	b, err := io.ReadAll(io.LimitReader(fh, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxSize)
	}
	return b, nil
}

func check(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", kind(fi.Mode()))
	}
	if fi.Size() > MaxSize {
		return fmt.Errorf("file is larger than %d bytes", MaxSize)
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return m.Type().String()
	}
}

// statError words an error from os.Root. Its PathError names the path below
// the directory, which the reference already shows; keep only the cause.
func statError(dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &notFoundError{msg: "no such file in " + dir, err: err}
	case strings.Contains(err.Error(), "escapes"):
		// os.Root has no exported sentinel for this.
		return fmt.Errorf("refused: %w (symlinks must be relative and stay inside %s)", err, dir)
	default:
		return err
	}
}

func trimNewline(b []byte) []byte {
	if b2, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
		return b2
	}
	b, _ = bytes.CutSuffix(b, []byte("\n"))
	return b
}

// notFoundError matches fs.ErrNotExist, the "no such secret" contract shared
// by the secret backends, which do not import one another.
type notFoundError struct {
	msg string
	err error
}

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Unwrap() error        { return e.err }
func (e *notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// refString names ref in errors, also for a SecretRef built by hand rather
// than parsed (whose String is empty).
func refString(ref schema.SecretRef) string {
	if s := ref.String(); s != "" {
		return s
	}
	return schema.SecretScheme + schema.SecretFile + "/" + ref.Path
}
