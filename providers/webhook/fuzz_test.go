package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets run their seed corpora as ordinary tests. To fuzz one:
//
//	go test ./providers/webhook -run '^$' -fuzz '^FuzzParseGitHub$' -fuzztime 30s

const fuzzSecret = "fuzz-secret"

func fuzzMAC(body []byte) []byte {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write(body)
	return m.Sum(nil)
}

// seedFixtures adds every testdata file of p, plus a few hostile bodies.
func seedFixtures(f *testing.F, p Provider, add func(name string, body []byte)) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", string(p), "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures for %s: %v", p, err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		add(filepath.Base(path), b)
	}
	for _, b := range []string{"", "null", "[]", "{}", `{"ref":null}`, "{", `"x"`, "1e999", `{"repository":{}}`,
		`{"push":{"changes":[{}]}}`, `{"changes":[{"refId":"refs/heads/x","toHash":"00"}]}`,
		strings.Repeat("[", 10000), `{"ref":"refs/heads/a","after":"` + strings.Repeat("A", 40) + `","repository":{"clone_url":"x"}}`} {
		add("hostile", []byte(b))
	}
}

// checkOutcome asserts what every successful parse must satisfy.
func checkOutcome(t *testing.T, out outcome) {
	t.Helper()
	n := 0
	if len(out.pushes) > 0 {
		n++
	}
	if out.ping {
		n++
	}
	if out.ignored != "" {
		n++
	}
	if n > 1 {
		t.Fatalf("outcome is more than one thing: %+v", out)
	}
	for _, p := range out.pushes {
		if !validRef(p.Ref) {
			t.Fatalf("invalid ref %q accepted", p.Ref)
		}
		if sha, ok := normalizeSHA(p.After); !ok || sha != p.After {
			t.Fatalf("invalid after %q accepted", p.After)
		}
		if len(p.RepoURLs) == 0 {
			t.Fatal("push without repository URLs")
		}
		seen := map[string]bool{}
		for _, u := range p.RepoURLs {
			if u == "" || hasControl(u) || len(u) > maxURLLen || seen[u] {
				t.Fatalf("bad repository URL %q in %q", u, p.RepoURLs)
			}
			seen[u] = true
		}
	}
}

// checkParse runs parse twice: it must not panic, errors must be
// ErrMalformed, and results must be valid and deterministic.
func checkParse(t *testing.T, parse func() (outcome, error)) {
	t.Helper()
	out, err := parse()
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("parse error %v is not ErrMalformed", err)
		}
		return
	}
	checkOutcome(t, out)
	again, err := parse()
	if err != nil || !reflect.DeepEqual(out, again) {
		t.Fatalf("parse is not deterministic: %+v then %+v, %v", out, again, err)
	}
}

// parseFuzz is a payload parser target: event picks the dispatch, form
// sends the body as a form field.
func parseFuzz(f *testing.F, p Provider, events []string, parse func(http.Header, string, []byte) (outcome, error)) {
	seedFixtures(f, p, func(_ string, b []byte) {
		for _, ev := range events {
			f.Add(ev, false, b)
		}
	})
	f.Add("other", true, []byte("payload=%7B%7D"))
	f.Add(events[0], true, []byte("payload=1&payload=2"))
	f.Add(events[0], true, []byte("payload=%zz"))
	f.Fuzz(func(t *testing.T, event string, form bool, body []byte) {
		h := http.Header{}
		if form {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		checkParse(t, func() (outcome, error) { return parse(h, event, body) })
	})
}

func FuzzParseGitHub(f *testing.F) { parseFuzz(f, GitHub, []string{"push", "ping"}, parseGitHub) }
func FuzzParseGitLab(f *testing.F) {
	parseFuzz(f, GitLab, []string{"Push Hook", "Tag Push Hook"}, parseGitLab)
}
func FuzzParseBitbucket(f *testing.F) { parseFuzz(f, Bitbucket, []string{"repo:push"}, parseBitbucket) }
func FuzzParseBitbucketServer(f *testing.F) {
	parseFuzz(f, BitbucketServer, []string{"repo:refs_changed", "diagnostics:ping"}, parseBitbucketServer)
}
func FuzzParseGitea(f *testing.F)   { parseFuzz(f, Gitea, []string{"push"}, parseGitea) }
func FuzzParseGeneric(f *testing.F) { parseFuzz(f, Generic, []string{"push", "ping"}, parseGeneric) }

// signatureFuzz is a signature header target. For any header and body:
// the parser accepts exactly prefix + 64 hex digits; the credential
// verifies exactly when the tag is the body's HMAC; the canonical header
// always verifies; errors never quote the header.
func signatureFuzz(f *testing.F, p Provider, header, prefix string, parse func(string) ([]byte, error)) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := prefix + hex.EncodeToString(fuzzMAC(body))
	for _, s := range []string{good, strings.ToUpper(good), good[:len(good)-1], good + "0", good[:len(good)-1] + "g",
		"", prefix, "sha256=", "SHA256=" + good[len(prefix):], "sha1=" + good[len(prefix):len(prefix)+40],
		" " + good, good + " ", prefix + strings.Repeat("0", 64), prefix + strings.Repeat("Z", 64),
		prefix + "\x00" + good[len(prefix)+1:]} {
		f.Add(s, body)
	}
	fr := forges[p]
	// Every refusal message, from representative inputs: a message outside
	// this set would depend on the header's content.
	refusals := map[string]bool{}
	for _, v := range []string{"", "x", prefix + "x", prefix + strings.Repeat("g", 64)} {
		if _, err := fr.credential(http.Header{header: {v}}, fuzzSecret); err != nil {
			refusals[err.Error()] = true
		}
	}
	f.Fuzz(func(t *testing.T, v string, body []byte) {
		mac, err := parse(v)
		if err == nil {
			rest, ok := strings.CutPrefix(v, prefix)
			if !ok || len(mac) != sha256.Size || !strings.EqualFold(rest, hex.EncodeToString(mac)) {
				t.Fatalf("parse(%q) accepted as %x", v, mac)
			}
		} else if err != errSigPrefix && err != errSigLength && err != errSigHex {
			t.Fatalf("parse error %q is not a constant", err)
		}

		h := http.Header{}
		h[header] = []string{v}
		cred, cerr := fr.credential(h, fuzzSecret)
		if (cerr == nil) != (err == nil) {
			t.Fatalf("credential error %v, parse error %v", cerr, err)
		}
		if cerr != nil {
			if !errors.Is(cerr, ErrUnauthorized) {
				t.Fatalf("credential error %v is not ErrUnauthorized", cerr)
			}
			if !refusals[cerr.Error()] {
				t.Fatalf("credential error %q depends on the header's content", cerr)
			}
		} else {
			want := fuzzMAC(body)
			got, verr := cred.verify(fuzzSecret, body)
			if (verr == nil) != bytes.Equal(mac, want) {
				t.Fatalf("verify = %v for tag %x, body MAC %x", verr, mac, want)
			}
			if verr == nil && !bytes.Equal(got, want) {
				t.Fatalf("verify returned %x, want the canonical %x", got, want)
			}
		}

		h[header] = []string{prefix + hex.EncodeToString(fuzzMAC(body))}
		cred, cerr = fr.credential(h, fuzzSecret)
		if cerr != nil {
			t.Fatalf("canonical header refused: %v", cerr)
		}
		if _, err := cred.verify(fuzzSecret, body); err != nil {
			t.Fatalf("canonical header does not verify: %v", err)
		}
		if _, err := cred.verify("another secret", body); err == nil {
			t.Fatal("verified under another secret")
		}
	})
}

func FuzzGitHubSignature(f *testing.F) {
	signatureFuzz(f, GitHub, "X-Hub-Signature-256", "sha256=", parseGitHubSignature)
}
func FuzzBitbucketSignature(f *testing.F) {
	signatureFuzz(f, Bitbucket, "X-Hub-Signature", "sha256=", parseBitbucketSignature)
}
func FuzzBitbucketServerSignature(f *testing.F) {
	signatureFuzz(f, BitbucketServer, "X-Hub-Signature", "sha256=", parseBitbucketServerSignature)
}
func FuzzGiteaSignature(f *testing.F) {
	signatureFuzz(f, Gitea, "X-Gitea-Signature", "", parseGiteaSignature)
}
func FuzzGenericSignature(f *testing.F) {
	signatureFuzz(f, Generic, "X-Signature", "sha256=", parseGenericSignature)
}

// FuzzGitLabToken: the token verifies exactly when it equals a non-empty
// secret, through the comparison and through the header.
func FuzzGitLabToken(f *testing.F) {
	for _, s := range [][2]string{{"tok", "tok"}, {"tok", "tok "}, {"", ""}, {"a", ""}, {"", "a"}, {"Tok", "tok"},
		{strings.Repeat("x", 64), strings.Repeat("x", 65)}, {"tok\x00", "tok"}} {
		f.Add(s[0], s[1])
	}
	refusals := map[string]bool{}
	for _, tok := range []string{"", "x"} {
		if _, err := gitlabCredential(http.Header{"X-Gitlab-Token": {tok}}, "s"); err != nil {
			refusals[err.Error()] = true
		}
	}
	f.Fuzz(func(t *testing.T, token, secret string) {
		want := secret != "" && token == secret
		if got := gitlabTokenMatches(token, secret); got != want {
			t.Fatalf("gitlabTokenMatches(%q, %q) = %v", token, secret, got)
		}
		h := http.Header{}
		h["X-Gitlab-Token"] = []string{token}
		cred, err := gitlabCredential(h, secret)
		if (err == nil) != (want && token != "") {
			t.Fatalf("gitlabCredential = %v, want ok %v", err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v is not ErrUnauthorized", err)
			}
			if !refusals[err.Error()] {
				t.Fatalf("error %q depends on the credentials", err)
			}
			return
		}
		if _, err := cred.verify(secret, nil); err != nil {
			t.Fatalf("verified token credential refused: %v", err)
		}
	})
}

// FuzzNormalizeRepoURL: never panics, is idempotent, and its keys have the
// documented shape.
func FuzzNormalizeRepoURL(f *testing.F) {
	for _, s := range []string{"https://GitHub.com/Acme/Jobs.git", "http://github.com/acme/jobs", "ssh://git@github.com:22/acme/jobs.git",
		"git@github.com:acme/jobs.git", "https://user:tok@github.com/acme/jobs/", "git@[::1]:a/b", "https://[::1]:80/a",
		"a@b@c:d", "[::1]/x", "host/a:b", "x://", "://x", "h:/", "https://h/a//b://c", "h/.git/.git", "github.com./A/",
		"ssh://ssh.github.com:443/A/B", "github.com../A/", "h:a://b", "user@host/path", "https://h?x/y", "/abs/path", "C:\\repo", "é.example/ö"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		key := NormalizeRepoURL(raw)
		if again := NormalizeRepoURL(key); again != key {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, key, again)
		}
		if key == "" {
			return
		}
		host, path, ok := strings.Cut(key, "/")
		if !ok || host == "" || path == "" || !validHost(host) || host != asciiLower(host) {
			t.Fatalf("NormalizeRepoURL(%q) = %q: bad host or path", raw, key)
		}
		if strings.Contains(path, "//") || strings.HasSuffix(path, "/") || strings.HasSuffix(path, ".git") || strings.HasPrefix(path, "/") || hasControl(key) {
			t.Fatalf("NormalizeRepoURL(%q) = %q: path not clean", raw, key)
		}
	})
}

// FuzzHandle drives whole deliveries through Handle. A correctly signed
// delivery is never unauthorized; a tampered one always is; whatever comes
// out satisfies the Delivery contract and every error wraps exactly one
// sentinel.
func FuzzHandle(f *testing.F) {
	for i, p := range Providers() {
		seedFixtures(f, p, func(name string, b []byte) {
			ev := map[Provider]string{GitHub: "push", GitLab: "Push Hook", Bitbucket: "repo:push", BitbucketServer: "repo:refs_changed", Gitea: "push", Generic: "push"}[p]
			if strings.HasPrefix(name, "tag") {
				ev = "Tag Push Hook"
			}
			if strings.HasPrefix(name, "ping") {
				ev = map[Provider]string{GitHub: "ping", BitbucketServer: "diagnostics:ping"}[p]
			}
			f.Add(uint8(i), ev, "id-1", false, b)
		})
	}
	f.Add(uint8(0), "push", "", true, []byte(`{}`))
	f.Add(uint8(2), "repo:push\x00", "\xff", false, []byte(`{}`))
	sentinels := []error{ErrUnauthorized, ErrMalformed, ErrTooLarge, ErrConfig}
	f.Fuzz(func(t *testing.T, pi uint8, event, id string, tamper bool, body []byte) {
		ps := Providers()
		p := ps[int(pi)%len(ps)]
		c := Config{Secret: fuzzSecret, MaxBodyBytes: 64 << 10}
		h := http.Header{}
		tag := hex.EncodeToString(fuzzMAC(body))
		if tamper {
			tag = hex.EncodeToString(fuzzMAC(append(bytes.Clone(body), 'x')))
		}
		switch p {
		case GitHub:
			h["X-Hub-Signature-256"] = []string{"sha256=" + tag}
			h["X-Github-Event"] = []string{event}
			h["X-Github-Delivery"] = []string{id}
		case GitLab:
			tok := fuzzSecret
			if tamper {
				tok += "x"
			}
			h["X-Gitlab-Token"] = []string{tok}
			h["X-Gitlab-Event"] = []string{event}
			h["Idempotency-Key"] = []string{id}
		case Bitbucket, BitbucketServer:
			h["X-Hub-Signature"] = []string{"sha256=" + tag}
			h["X-Event-Key"] = []string{event}
			h["X-Request-Uuid"] = []string{id}
			h["X-Request-Id"] = []string{id}
		case Gitea:
			h["X-Gitea-Signature"] = []string{tag}
			h["X-Gitea-Event"] = []string{event}
			h["X-Gitea-Delivery"] = []string{id}
		case Generic:
			h["X-Signature"] = []string{"sha256=" + tag}
			h["X-Event"] = []string{event}
			h["X-Delivery-Id"] = []string{id}
		}
		d, err := Handle(p, c, h, bytes.NewReader(body))
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, n)
			}
			if d != nil {
				t.Fatal("delivery returned with an error")
			}
			if tamper != errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("tamper=%v but error %v", tamper, err)
			}
			if strings.Contains(err.Error(), fuzzSecret) || strings.Contains(err.Error(), tag) {
				t.Fatalf("error %q leaks a credential", err)
			}
			return
		}
		if tamper {
			t.Fatal("tampered delivery accepted")
		}
		kinds := 0
		for _, b := range []bool{len(d.Pushes) > 0, d.Ping, d.Ignored != ""} {
			if b {
				kinds++
			}
		}
		if kinds != 1 || d.BodyBytes != len(body) || len(d.SignatureHash) != 64 || d.Provider != p {
			t.Fatalf("delivery breaks its contract: %+v", d)
		}
		checkOutcome(t, outcome{pushes: d.Pushes})
		if d.DeliveryID != "" && !validToken(d.DeliveryID, 128, false) {
			t.Fatalf("delivery id %q", d.DeliveryID)
		}
		if !validToken(d.Event, 64, true) {
			t.Fatalf("event %q", d.Event)
		}
	})
}
