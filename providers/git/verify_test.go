package git_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/git"
)

// requireTool skips when a command-line tool is missing, unless CI=true,
// where it fails the test.
func requireTool(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s: %v (Debian package: gnupg for gpg/gpgconf, openssh-client for ssh-keygen)", name, err)
		}
		tb.Skipf("%s: %v", name, err)
	}
}

// gpgHome is a throwaway GnuPG home with its own agent.
type gpgHome struct {
	tb  testing.TB
	dir string
	env []string
}

// gpgKey is a key generated in a gpgHome.
type gpgKey struct {
	fpr   string // primary key fingerprint, upper-case hex
	keyID string // its last 16 hex digits
	pub   string // gpg --armor --export
}

func newGPG(tb testing.TB) *gpgHome {
	tb.Helper()
	requireTool(tb, "gpg")
	requireTool(tb, "gpgconf")
	// Not t.TempDir(): the agent's socket lives in the home, and a socket
	// path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	g := &gpgHome{tb: tb, dir: dir, env: append(append([]string(nil), gitEnv...), "GNUPGHOME="+dir)}
	tb.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = g.env
		_ = cmd.Run()
		_ = os.RemoveAll(dir)
	})
	return g
}

// run runs gpg in the home and returns its stdout.
func (g *gpgHome) run(stdin string, args ...string) string {
	g.tb.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty"}, args...)...)
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.tb.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// genKey makes an ed25519 signing key. fakedTime ("" for now) is the time
// gpg believes it is; expire is gpg's expiry ("never", "1y").
func (g *gpgHome) genKey(uid, fakedTime, expire string) gpgKey {
	g.tb.Helper()
	args := []string{"--passphrase", "", "--status-fd", "1"}
	if fakedTime != "" {
		args = append(args, "--faked-system-time", fakedTime)
	}
	out := g.run("", append(args, "--quick-gen-key", uid, "ed25519", "sign", expire)...)
	var fpr string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "KEY_CREATED" {
			fpr = f[3]
		}
	}
	if len(fpr) != 40 {
		g.tb.Fatalf("no fingerprint in gpg status output:\n%s", out)
	}
	return gpgKey{fpr: fpr, keyID: fpr[24:], pub: g.export(fpr)}
}

func (g *gpgHome) export(fprs ...string) string {
	g.tb.Helper()
	return g.run("", append([]string{"--armor", "--export"}, fprs...)...)
}

// revoke imports the revocation certificate gpg made with the key.
func (g *gpgHome) revoke(k *gpgKey) {
	g.tb.Helper()
	data, err := os.ReadFile(filepath.Join(g.dir, "openpgp-revocs.d", k.fpr+".rev"))
	if err != nil {
		g.tb.Fatal(err)
	}
	// gpg prefixes the armor line with a colon against accidental import.
	cert := strings.Replace(string(data), ":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----", 1)
	g.run(cert, "--import")
	k.pub = g.export(k.fpr)
}

// program is a gpg.program for git: gpg itself, or a wrapper that fakes the
// time.
func (g *gpgHome) program(fakedTime string) string {
	g.tb.Helper()
	if fakedTime == "" {
		return "gpg"
	}
	path := filepath.Join(g.dir, "gpg-"+fakedTime)
	script := "#!/bin/sh\nexec gpg --faked-system-time " + fakedTime + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		g.tb.Fatal(err)
	}
	return path
}

// gitWith runs git in dir like gitRun, with extra environment and stdin.
func gitWith(tb testing.TB, dir string, env []string, stdin string, args ...string) string {
	tb.Helper()
	full := append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main",
		"-c", "gc.auto=0"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// commitSigned commits everything, signed by key through gpg believing it
// is fakedTime ("" for now).
func (g *gpgHome) commitSigned(w *workRepo, key gpgKey, fakedTime, msg string) string {
	g.tb.Helper()
	gitRun(g.tb, w.Dir, "add", "-A")
	gitWith(g.tb, w.Dir, g.env, "", "-c", "gpg.program="+g.program(fakedTime), "-c", "user.signingkey="+key.fpr,
		"commit", "-q", "--allow-empty", "-S", "-m", msg)
	return w.git("rev-parse", "HEAD")
}

// commitSSHSigned commits with an SSH signature (gpg.format=ssh).
func commitSSHSigned(tb testing.TB, w *workRepo, msg string) string {
	tb.Helper()
	requireTool(tb, "ssh-keygen")
	key := filepath.Join(tb.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t@e", "-f", key).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	gitRun(tb, w.Dir, "-c", "gpg.format=ssh", "-c", "user.signingkey="+key, "commit", "-q", "--allow-empty", "-S", "-m", msg)
	return w.git("rev-parse", "HEAD")
}

// tamper writes a copy of commit with another message but the same
// signature, and returns the copy's SHA.
func tamper(tb testing.TB, w *workRepo, commit string) string {
	tb.Helper()
	raw := w.git("cat-file", "commit", commit) + "\n"
	i := strings.Index(raw, "\n\n")
	if i < 0 || !strings.Contains(raw[:i], "\ngpgsig ") {
		tb.Fatalf("commit %s is not signed:\n%s", commit, raw)
	}
	forged := raw[:i+2] + "deploy something else\n"
	return gitWith(tb, w.Dir, gitEnv, forged, "hash-object", "-t", "commit", "-w", "--stdin")
}

// verifyFixture is a local repository with commits signed in every way
// VerifyCommit tells apart.
type verifyFixture struct {
	work                      *workRepo
	gpg                       *gpgHome
	trusted, other, second    gpgKey
	expired, revoked          gpgKey
	signed, unsigned, byOther string
	bySecond, tampered, bySSH string
	byExpired, byRevoked      string
	privateKey                string // armored secret key of trusted
}

func setupVerify(t *testing.T) *verifyFixture {
	t.Helper()
	g := newGPG(t)
	w := newWorkRepo(t)
	f := &verifyFixture{work: w, gpg: g}
	f.trusted = g.genKey("Trusted <trusted@e>", "", "never")
	f.other = g.genKey("Other <other@e>", "", "never")
	f.second = g.genKey("Second <second@e>", "", "never")
	// Valid from 2020-01-01 for a year; it signs in June 2020.
	const then = "20200601T000000"
	f.expired = g.genKey("Expired <expired@e>", "20200101T000000", "1y")
	f.revoked = g.genKey("Revoked <revoked@e>", "", "never")

	w.write("manifests/a.yaml", "name: a\n")
	f.signed = g.commitSigned(w, f.trusted, "", "signed")
	f.tampered = tamper(t, w, f.signed)
	w.write("manifests/b.yaml", "name: b\n")
	f.unsigned = w.commit("unsigned")
	f.byOther = g.commitSigned(w, f.other, "", "by other")
	f.bySecond = g.commitSigned(w, f.second, "", "by second")
	f.byExpired = g.commitSigned(w, f.expired, then, "by expired")
	f.byRevoked = g.commitSigned(w, f.revoked, "", "by revoked")
	g.revoke(&f.revoked)
	f.bySSH = commitSSHSigned(t, w, "ssh signed")
	f.privateKey = g.run("", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", f.trusted.fpr)
	return f
}

func TestVerifyCommit(t *testing.T) {
	t.Parallel()
	f := setupVerify(t)
	const keyRef = "secret://env/SIGNING_KEY"
	r := newRepo(t, git.Config{URL: f.work.Dir}, mapSecrets{keyRef: f.trusted.pub})

	tests := []struct {
		name     string
		commit   string
		keys     []string
		want     string // fingerprint
		wantErr  error
		wantText []string // in the error
		notText  []string // not in the error
	}{
		{name: "trusted key", commit: f.signed, keys: []string{f.trusted.pub}, want: f.trusted.fpr},
		{name: "second of several keys", commit: f.bySecond, keys: []string{f.trusted.pub, f.second.pub}, want: f.second.fpr},
		{name: "several blocks in one entry", commit: f.bySecond, keys: []string{f.trusted.pub + "\n" + f.second.pub}, want: f.second.fpr},
		{name: "several keys in one block", commit: f.bySecond, keys: []string{f.gpg.export(f.trusted.fpr, f.second.fpr)}, want: f.second.fpr},
		{name: "secret reference", commit: f.signed, keys: []string{keyRef}, want: f.trusted.fpr},
		{
			name: "unsigned", commit: f.unsigned, keys: []string{f.trusted.pub},
			wantErr: git.ErrUnsigned, wantText: []string{f.unsigned},
		},
		{
			name: "unknown key", commit: f.byOther, keys: []string{f.trusted.pub, f.second.pub},
			wantErr: git.ErrUntrustedSignature, wantText: []string{f.byOther, "key ID " + f.other.keyID, "not one of the given keys"},
		},
		{
			name: "signature copied onto another commit", commit: f.tampered, keys: []string{f.trusted.pub},
			wantErr: git.ErrUntrustedSignature, wantText: []string{f.tampered, f.trusted.keyID, "does not verify"},
		},
		{
			name: "expired key", commit: f.byExpired, keys: []string{f.expired.pub},
			wantErr: git.ErrUntrustedSignature, wantText: []string{f.expired.keyID, "expired"},
		},
		{
			name: "revoked key", commit: f.byRevoked, keys: []string{f.revoked.pub},
			wantErr: git.ErrUntrustedSignature, wantText: []string{f.revoked.keyID, "revoked"},
		},
		{
			name: "ssh signature", commit: f.bySSH, keys: []string{f.trusted.pub},
			wantErr: git.ErrUntrustedSignature, wantText: []string{"SSH signature", "only OpenPGP signatures are supported"},
		},
		{name: "no keys", commit: f.signed, wantErr: git.ErrConfig, wantText: []string{"at least one public key"}},
		{
			name: "fingerprint instead of key", commit: f.signed, keys: []string{f.trusted.pub, f.trusted.fpr},
			wantErr: git.ErrConfig, wantText: []string{"verify.keys[1]", "no armored OpenPGP public key", f.trusted.fpr[:16]},
		},
		{
			name: "damaged key", commit: f.signed, keys: []string{damage(f.trusted.pub)},
			wantErr: git.ErrConfig, wantText: []string{"verify.keys[0]"},
		},
		{
			name: "private key", commit: f.signed, keys: []string{f.second.pub, f.privateKey},
			wantErr: git.ErrConfig, wantText: []string{"verify.keys[1]", "private key"},
			notText: []string{armorBody(f.privateKey)[:24]},
		},
		{
			name: "unknown secret", commit: f.signed, keys: []string{"secret://env/NOPE"},
			wantErr: git.ErrConfig, wantText: []string{"verify.keys[0]"},
		},
		{
			name: "commit not present", commit: strings.Repeat("1", 40), keys: []string{f.trusted.pub},
			wantErr: git.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.VerifyCommit(t.Context(), tt.commit, tt.keys)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("VerifyCommit = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || got != "" {
				t.Fatalf("VerifyCommit = %q, %v; want error %v", got, err, tt.wantErr)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}

// damage flips one character in the middle of an armored key's body.
func damage(armored string) string {
	body := armorBody(armored)
	i := strings.Index(armored, body) + len(body)/2
	c := byte('A')
	if armored[i] == 'A' {
		c = 'B'
	}
	return armored[:i] + string(c) + armored[i+1:]
}

// armorBody is the first base64 line of an armored block.
func armorBody(armored string) string {
	parts := strings.SplitN(armored, "\n\n", 2)
	if len(parts) != 2 {
		panic("no armor body")
	}
	return strings.SplitN(parts[1], "\n", 2)[0]
}

// TestVerifyFetchedCommit checks commits in the bare repository: the first,
// shallow, fetch, and an incremental one.
func TestVerifyFetchedCommit(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	key := g.genKey("Trusted <trusted@e>", "", "never")
	w := newWorkRepo(t)
	w.write("manifests/a.yaml", "name: a\n")
	w.commit("base")
	w.write("manifests/a.yaml", "name: a\nv: 2\n")
	signed := g.commitSigned(w, key, "", "signed")
	srv := startHTTP(t, filepath.Dir(w.Dir), httpUser, httpToken)
	r := newRepo(t, git.Config{
		URL:  srv.url("work"),
		Dir:  t.TempDir(),
		Auth: git.Auth{Username: httpUser, Password: tokenRef},
	}, mapSecrets{tokenRef: httpToken})
	ctx := t.Context()

	if _, err := r.VerifyCommit(ctx, signed, []string{key.pub}); !errors.Is(err, git.ErrNotFound) {
		t.Fatalf("VerifyCommit before Fetch: %v, want ErrNotFound", err)
	}
	head, _ := headFetchManifests(t, r)
	if head != signed {
		t.Fatalf("Head = %s, want %s", head, signed)
	}
	fpr, err := r.VerifyCommit(ctx, head, []string{key.pub})
	if err != nil || fpr != key.fpr {
		t.Fatalf("VerifyCommit = %q, %v; want %s", fpr, err, key.fpr)
	}

	w.write("manifests/b.yaml", "name: b\n")
	unsigned := w.commit("unsigned")
	if head, _ = headFetchManifests(t, r); head != unsigned {
		t.Fatalf("Head = %s, want %s", head, unsigned)
	}
	if _, err := r.VerifyCommit(ctx, head, []string{key.pub}); !errors.Is(err, git.ErrUnsigned) {
		t.Fatalf("VerifyCommit(unsigned) = %v, want ErrUnsigned", err)
	}
}

func TestCheckVerifyKeys(t *testing.T) {
	t.Parallel()
	g := newGPG(t)
	key := g.genKey("Trusted <trusted@e>", "", "never")
	tests := []struct {
		name    string
		keys    []string
		wantErr bool
	}{
		{name: "one key", keys: []string{key.pub}},
		{name: "secret reference is checked on use", keys: []string{"secret://env/KEY"}},
		{name: "none", wantErr: true},
		{name: "garbage", keys: []string{key.pub, "not a key"}, wantErr: true},
		{name: "signature block", keys: []string{"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := git.CheckVerifyKeys(tt.keys)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, git.ErrConfig)) {
				t.Fatalf("CheckVerifyKeys = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyModeValidate(t *testing.T) {
	t.Parallel()
	for _, m := range []git.VerifyMode{git.VerifyOff, git.VerifyHead} {
		if err := m.Validate(); err != nil {
			t.Errorf("%q: %v", m, err)
		}
	}
	if err := git.VerifyMode("all").Validate(); !errors.Is(err, git.ErrConfig) {
		t.Errorf(`"all": %v, want ErrConfig`, err)
	}
}
