// Package dockertest gives tests a real Docker Engine and an image to run on
// it without a registry: a busybox image imported, once per process, from the
// host's static busybox binary (Debian's busybox-static, which
// scripts/testenv.sh installs).
//
// Without Docker or busybox the test is skipped, unless CI=true, where it
// fails.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BusyboxPath is the static busybox binary the image is built from.
const BusyboxPath = "/bin/busybox"

// Repository is the image repository Image tags; the tag is a prefix of the
// binary's SHA-256, so test binaries running at once agree on it, and an
// upgraded busybox gets an image of its own.
const Repository = "caesium-test/busybox"

const setupTimeout = 2 * time.Minute

var (
	once     sync.Once
	imageTag string
	missing  string // why Docker or busybox is not usable: skip (fail with CI=true)
	setupErr error  // Docker works but the import failed: fail
)

// Image returns the tag of a busybox image on the daemon the DOCKER_*
// variables point to (the default socket when unset), importing it the first
// time in a process and only when the daemon does not have it yet. It has
// /bin/sh and busybox's applets in /bin, /tmp, and CMD ["/bin/sh"].
func Image(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { imageTag, missing, setupErr = setup() })
	if missing != "" {
		unavailable(tb, missing)
	}
	if setupErr != nil {
		tb.Fatalf("dockertest: %v", setupErr)
	}
	return imageTag
}

// Containers returns the ids of the containers, running or not, that carry
// all of labels; tests use it to check that nothing was left behind.
func Containers(tb testing.TB, labels map[string]string) []string {
	tb.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		tb.Fatalf("dockertest: client: %v", err)
	}
	defer cli.Close()
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		tb.Fatalf("dockertest: list containers: %v", err)
	}
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids
}

func unavailable(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("dockertest: CI=true and %s", why)
	}
	tb.Skipf("dockertest: %s", why)
}

// setup makes the image present and returns its tag.
func setup() (tag, missing string, err error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", fmt.Sprintf("%v (install busybox-static: scripts/testenv.sh does)", err), nil
	}
	if err := checkStatic(bin); err != nil {
		return "", fmt.Sprintf("%s: %v (install busybox-static: scripts/testenv.sh does)", BusyboxPath, err), nil
	}
	sum := sha256.Sum256(bin)
	tag = Repository + ":" + hex.EncodeToString(sum[:])[:16]

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return "", fmt.Sprintf("docker client: %v", err), nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	pingCtx, cancelPing := context.WithTimeout(ctx, 10*time.Second)
	_, err = cli.Ping(pingCtx)
	cancelPing()
	if err != nil {
		return "", fmt.Sprintf("Docker is not usable: %v", err), nil
	}

	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, "", nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", "", fmt.Errorf("inspect %s: %w", tag, err)
	}
	// Another test binary may import the same tag at the same moment; the
	// later import wins the tag and the earlier image is left untagged, which
	// does no harm.
	rootfs, err := rootFS(bin)
	if err != nil {
		return "", "", err
	}
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, tag,
		image.ImportOptions{Changes: []string{`CMD ["/bin/sh"]`}, Message: "caesium test image from " + BusyboxPath})
	if err != nil {
		return "", "", fmt.Errorf("import %s: %w", tag, err)
	}
	err = readProgress(rc)
	rc.Close()
	if err != nil {
		return "", "", fmt.Errorf("import %s: %w", tag, err)
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return "", "", fmt.Errorf("inspect %s after its import: %w", tag, err)
	}
	return tag, "", nil
}

// checkStatic fails for a binary that needs a dynamic loader, which the image
// would not have (Debian's `busybox` package, rather than busybox-static).
func checkStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("is dynamically linked")
		}
	}
	return nil
}

// rootFS returns a tar of a root filesystem holding bin as /bin/busybox and
// a symbolic link to it in /bin for each applet.
func rootFS(bin []byte) ([]byte, error) {
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	applets := strings.Fields(string(out))
	if !slices.Contains(applets, "sh") {
		return nil, fmt.Errorf("%s has no sh applet", BusyboxPath)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "usr", "usr/bin", "var"} {
		if err := dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755,
		Size: int64(len(bin)), ModTime: now}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox",
			Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readProgress reads the daemon's JSON progress stream to its end and
// returns the error it reports, if any.
func readProgress(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}
