//go:build unix

package file_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/caesium-io/caesium/schema"
)

// A named pipe is refused without blocking on its open.
func TestResolveFIFO(t *testing.T) {
	t.Parallel()
	f, dir := setup(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	ref, err := schema.ParseSecretRef("secret://file/fifo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "not a regular file (named pipe)") {
		t.Errorf("error = %v", err)
	}
}
