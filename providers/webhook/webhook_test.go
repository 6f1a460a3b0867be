package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/caesium-io/caesium/providers/webhook"
)

const (
	afterMain = "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0"
	afterTag  = "e1d2c3b4a5f60718293a4b5c6d7e8f9a0b1c2d3e"
)

var cfg = webhook.Config{Secret: testSecret}

// TestHandlePushes checks what each provider's documented payloads yield.
func TestHandlePushes(t *testing.T) {
	t.Parallel()
	type push struct {
		ref, after string
		deleted    bool
	}
	tests := []struct {
		name       string
		provider   webhook.Provider
		event      string
		fixture    string
		want       []push
		wantPing   bool
		wantURLs   []string // RepoURLs of every push
		wantID     string
		matches    string // a configured remote URL that must match every push
		notMatches string
	}{
		{
			name: "github branch push", provider: webhook.GitHub, event: "push", fixture: "push.json",
			want:     []push{{"refs/heads/main", "c0ffee254729296a45a3885639ac7ca1c2d3e4f5", false}},
			wantURLs: []string{"https://github.com/Acme/Jobs.git", "git@github.com:Acme/Jobs.git", "https://github.com/Acme/Jobs", "git://github.com/Acme/Jobs.git"},
			wantID:   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			matches:  "ssh://git@github.com:22/acme/jobs.git", notMatches: "https://github.com/acme/jobs-staging",
		},
		{
			name: "github tag push", provider: webhook.GitHub, event: "push", fixture: "push_tag.json",
			want:    []push{{"refs/tags/v1.4.0", "c0ffee254729296a45a3885639ac7ca1c2d3e4f5", false}},
			matches: "https://github.com/acme/jobs",
		},
		{
			name: "github branch deletion", provider: webhook.GitHub, event: "push", fixture: "push_delete.json",
			want:    []push{{"refs/heads/report-job", webhook.ZeroSHA, true}},
			matches: "git@github.com:Acme/Jobs.git",
		},
		{
			name: "github ping", provider: webhook.GitHub, event: "ping", fixture: "ping.json",
			wantPing: true,
		},
		{
			name: "gitlab push", provider: webhook.GitLab, event: "Push Hook", fixture: "push.json",
			want: []push{{"refs/heads/main", afterMain, false}},
			wantURLs: []string{"https://gitlab.acme.example/platform/ops/jobs.git", "git@gitlab.acme.example:platform/ops/jobs.git",
				"https://gitlab.acme.example/platform/ops/jobs"},
			wantID:  "f5e5f430-f57b-4e6e-9fac-d9128cd7232f", // Idempotency-Key over X-Gitlab-Event-UUID
			matches: "ssh://git@gitlab.acme.example:2222/platform/ops/jobs.git", notMatches: "https://gitlab.acme.example/platform/ops/Jobs.git",
		},
		{
			name: "gitlab tag push", provider: webhook.GitLab, event: "Tag Push Hook", fixture: "tag_push.json",
			want:    []push{{"refs/tags/v1.4.0", afterTag, false}},
			matches: "https://gitlab.acme.example/platform/ops/jobs",
		},
		{
			name: "gitlab branch deletion", provider: webhook.GitLab, event: "Push Hook", fixture: "push_delete.json",
			want: []push{{"refs/heads/report-job", webhook.ZeroSHA, true}},
		},
		{
			name: "bitbucket cloud push", provider: webhook.Bitbucket, event: "repo:push", fixture: "push.json",
			want:     []push{{"refs/heads/main", afterMain, false}},
			wantURLs: []string{"https://bitbucket.org/acme/jobs"},
			wantID:   "9d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6",
			matches:  "git@bitbucket.org:acme/jobs.git", notMatches: "git@bitbucket.org:acme/other.git",
		},
		{
			name: "bitbucket cloud several ref changes", provider: webhook.Bitbucket, event: "repo:push", fixture: "push_multi.json",
			want: []push{
				{"refs/heads/main", afterMain, false},
				{"refs/tags/v1.4.0", afterMain, false}, // a tag's target is its commit
				{"refs/heads/report-job", webhook.ZeroSHA, true},
			},
			matches: "https://bitbucket.org/acme/jobs.git",
		},
		{
			name: "bitbucket server push", provider: webhook.BitbucketServer, event: "repo:refs_changed", fixture: "refs_changed.json",
			want: []push{{"refs/heads/main", afterMain, false}},
			wantURLs: []string{"ssh://git@bitbucket.acme.example:7999/ops/jobs.git", "https://bitbucket.acme.example/scm/ops/jobs.git",
				"https://bitbucket.acme.example/projects/OPS/repos/jobs/browse"},
			wantID:  "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9",
			matches: "https://bitbucket.acme.example/scm/ops/jobs.git",
		},
		{
			name: "bitbucket server several ref changes", provider: webhook.BitbucketServer, event: "repo:refs_changed", fixture: "refs_changed_multi.json",
			want: []push{
				{"refs/heads/main", afterMain, false},
				{"refs/tags/v1.4.0", afterTag, false},
				{"refs/heads/report-job", webhook.ZeroSHA, true},
			},
			matches: "git@bitbucket.acme.example:ops/jobs.git",
		},
		{
			name: "bitbucket server ping", provider: webhook.BitbucketServer, event: "diagnostics:ping", fixture: "ping.json",
			wantPing: true,
		},
		{
			name: "gitea push", provider: webhook.Gitea, event: "push", fixture: "push.json",
			want:     []push{{"refs/heads/main", afterMain, false}},
			wantURLs: []string{"https://git.acme.example/acme/jobs.git", "ssh://git@git.acme.example:2222/acme/jobs.git", "https://git.acme.example/acme/jobs"},
			wantID:   "f6266f16-1bf3-46a5-9ea4-602e06ead473",
			matches:  "git@git.acme.example:acme/jobs", notMatches: "git@git.acme.example:Acme/Jobs",
		},
		{
			name: "gitea tag push", provider: webhook.Gitea, event: "push", fixture: "push_tag.json",
			want: []push{{"refs/tags/v1.4.0", afterMain, false}},
		},
		{
			name: "generic push", provider: webhook.Generic, event: "", fixture: "push.json",
			want:     []push{{"refs/heads/main", afterMain, false}},
			wantURLs: []string{"https://git.acme.example/acme/jobs.git"},
			wantID:   "ci-run-4711",
			matches:  "git.acme.example/acme/jobs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := fixture(t, tt.provider, tt.fixture)
			d, err := webhook.Handle(tt.provider, cfg, signedHeaders(tt.provider, tt.event, body, testSecret), bytes.NewReader(body))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if d.Provider != tt.provider || d.BodyBytes != len(body) || len(d.SignatureHash) != 64 {
				t.Errorf("provider %q, body %d bytes, signature hash %q", d.Provider, d.BodyBytes, d.SignatureHash)
			}
			if tt.wantID != "" && d.DeliveryID != tt.wantID {
				t.Errorf("DeliveryID = %q, want %q", d.DeliveryID, tt.wantID)
			}
			if d.Ping != tt.wantPing || d.Ignored != "" {
				t.Errorf("Ping = %v, Ignored = %q; want ping %v", d.Ping, d.Ignored, tt.wantPing)
			}
			var got []push
			for _, p := range d.Pushes {
				got = append(got, push{p.Ref, p.After, p.Deleted()})
				if tt.wantURLs != nil && !slices.Equal(p.RepoURLs, tt.wantURLs) {
					t.Errorf("RepoURLs = %q, want %q", p.RepoURLs, tt.wantURLs)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pushes = %+v, want %+v", got, tt.want)
			}
			if tt.matches != "" && len(d.PushesFor(tt.matches)) != len(tt.want) {
				t.Errorf("PushesFor(%q) = %d pushes, want %d", tt.matches, len(d.PushesFor(tt.matches)), len(tt.want))
			}
			if tt.notMatches != "" && len(d.PushesFor(tt.notMatches)) != 0 {
				t.Errorf("PushesFor(%q) matched", tt.notMatches)
			}
		})
	}
}

// TestHandleSignatures runs every way of getting the credential wrong
// against every HMAC provider. None may get past verification, and none
// may read the body when the header alone is enough to refuse.
func TestHandleSignatures(t *testing.T) {
	t.Parallel()
	good := func(p webhook.Provider, body []byte) string { return signatureValue(p, testSecret, body) }
	type mutation struct {
		name     string
		sig      func(p webhook.Provider, body []byte) []string // header values; nil removes the header
		readBody bool                                           // refusing needs the body (a well-formed but wrong tag)
		wantErr  error
	}
	mutations := []mutation{
		{name: "valid", sig: func(p webhook.Provider, b []byte) []string { return []string{good(p, b)} }, readBody: true},
		{name: "missing", sig: func(webhook.Provider, []byte) []string { return nil }, wantErr: webhook.ErrUnauthorized},
		{name: "empty", sig: func(webhook.Provider, []byte) []string { return []string{""} }, wantErr: webhook.ErrUnauthorized},
		{name: "wrong secret", readBody: true, wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{signatureValue(p, "another-secret", b)} }},
		{name: "signed with empty key", readBody: true, wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{signatureValue(p, "", b)} }},
		{name: "other body", readBody: true, wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{good(p, append(b, ' '))} }},
		{name: "truncated by one digit", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { s := good(p, b); return []string{s[:len(s)-1]} }},
		{name: "truncated by two digits", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { s := good(p, b); return []string{s[:len(s)-2]} }},
		{name: "short", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{good(p, b)[:12]} }},
		{name: "prefix only", wantErr: webhook.ErrUnauthorized,
			sig: func(webhook.Provider, []byte) []string { return []string{"sha256="} }},
		{name: "one digit too many", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{good(p, b) + "0"} }},
		{name: "non-hex digit", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { s := good(p, b); return []string{s[:len(s)-1] + "g"} }},
		{name: "upper-case prefix", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{"SHA256=" + hexMAC(testSecret, b)} }},
		{name: "sha1 prefix", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{"sha1=" + hexMAC(testSecret, b)} }},
		{name: "surrounding space", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{" " + good(p, b)} }},
		{name: "sent twice", wantErr: webhook.ErrUnauthorized,
			sig: func(p webhook.Provider, b []byte) []string { return []string{good(p, b), good(p, b)} }},
		{name: "upper-case hex digits", readBody: true, // the same tag: accepted, and SignatureHash unchanged
			sig: func(p webhook.Provider, b []byte) []string {
				s := good(p, b)
				i := strings.LastIndexByte(s, '=') + 1
				return []string{s[:i] + strings.ToUpper(s[i:])}
			}},
	}
	for _, p := range []webhook.Provider{webhook.GitHub, webhook.Bitbucket, webhook.BitbucketServer, webhook.Gitea, webhook.Generic} {
		for _, m := range mutations {
			t.Run(string(p)+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				ev := pushEvent[p]
				body := fixture(t, p, ev.fixture)
				h := signedHeaders(p, ev.event, body, testSecret)
				h.Del(signatureHeader[p])
				vals := m.sig(p, body)
				for _, v := range vals {
					h.Add(signatureHeader[p], v)
				}
				var r io.Reader = bytes.NewReader(body)
				if !m.readBody {
					r = unreadable{t}
				}
				d, err := webhook.Handle(p, cfg, h, r)
				if !errorIs(err, m.wantErr) {
					t.Fatalf("Handle error = %v, want %v", err, m.wantErr)
				}
				assertNoLeak(t, err, append(vals, testSecret, hexMAC(testSecret, body))...)
				if err != nil {
					if d != nil {
						t.Errorf("a refused delivery returned %+v", d)
					}
					return
				}
				want := signedHeaders(p, ev.event, body, testSecret)
				dw, err := webhook.Handle(p, cfg, want, bytes.NewReader(body))
				if err != nil || d.SignatureHash != dw.SignatureHash || len(d.Pushes) == 0 {
					t.Errorf("SignatureHash %q vs %q (err %v), %d pushes", d.SignatureHash, dw.SignatureHash, err, len(d.Pushes))
				}
			})
		}
	}
}

// TestHandleGitLabToken checks GitLab's token, which signs nothing and is
// checked before the body is read.
func TestHandleGitLabToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tokens  []string
		wantErr error
	}{
		{name: "valid", tokens: []string{testSecret}},
		{name: "missing", wantErr: webhook.ErrUnauthorized},
		{name: "empty", tokens: []string{""}, wantErr: webhook.ErrUnauthorized},
		{name: "wrong", tokens: []string{"wh-secret-7f3a9c1e5b2e"}, wantErr: webhook.ErrUnauthorized},
		{name: "prefix of the secret", tokens: []string{testSecret[:10]}, wantErr: webhook.ErrUnauthorized},
		{name: "secret with a suffix", tokens: []string{testSecret + "x"}, wantErr: webhook.ErrUnauthorized},
		{name: "different case", tokens: []string{strings.ToUpper(testSecret)}, wantErr: webhook.ErrUnauthorized},
		{name: "surrounding space", tokens: []string{testSecret + " "}, wantErr: webhook.ErrUnauthorized},
		{name: "sent twice", tokens: []string{testSecret, testSecret}, wantErr: webhook.ErrUnauthorized},
		{name: "second of two", tokens: []string{"guess", testSecret}, wantErr: webhook.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := fixture(t, webhook.GitLab, "push.json")
			h := signedHeaders(webhook.GitLab, "Push Hook", body, testSecret)
			h.Del("X-Gitlab-Token")
			for _, tok := range tt.tokens {
				h.Add("X-Gitlab-Token", tok)
			}
			var r io.Reader = bytes.NewReader(body)
			if tt.wantErr != nil {
				r = unreadable{t}
			}
			d, err := webhook.Handle(webhook.GitLab, cfg, h, r)
			if !errorIs(err, tt.wantErr) {
				t.Fatalf("Handle error = %v, want %v", err, tt.wantErr)
			}
			assertNoLeak(t, err, append(tt.tokens, testSecret)...)
			if err == nil && len(d.Pushes) != 1 {
				t.Errorf("pushes = %+v", d.Pushes)
			}
		})
	}
}

// TestHandleGitHubSHA1Only: the legacy SHA-1 header alone never verifies,
// even when it is a correct SHA-1 HMAC.
func TestHandleGitHubSHA1Only(t *testing.T) {
	t.Parallel()
	body := fixture(t, webhook.GitHub, "push.json")
	h := signedHeaders(webhook.GitHub, "push", body, testSecret)
	h.Del("X-Hub-Signature-256")
	h.Set("X-Hub-Signature", "sha1="+hexSHA1MAC(testSecret, body))
	_, err := webhook.Handle(webhook.GitHub, cfg, h, unreadable{t})
	if !errorIs(err, webhook.ErrUnauthorized) || !strings.Contains(err.Error(), "X-Hub-Signature-256") {
		t.Fatalf("Handle error = %v, want ErrUnauthorized naming X-Hub-Signature-256", err)
	}
	assertNoLeak(t, err, testSecret, hexSHA1MAC(testSecret, body))
}

// TestKnownAnswers pins the HMAC construction to published vectors rather
// than to this package's own signing helper.
func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider webhook.Provider
		secret   string
		header   string
		value    string
		body     string
	}{
		// GitHub's documented test values for X-Hub-Signature-256.
		{"github docs", webhook.GitHub, "It's a Secret to Everybody", "X-Hub-Signature-256",
			"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "Hello, World!"},
		// RFC 4231 test case 2, as a bare Gitea signature.
		{"rfc 4231 case 2", webhook.Gitea, "Jefe", "X-Gitea-Signature",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "what do ya want for nothing?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			h.Set(tt.header, tt.value)
			h.Set("X-GitHub-Event", "push")
			h.Set("X-Gitea-Event", "push")
			c := webhook.Config{Secret: tt.secret}
			// Verified, then refused as a push that is not JSON.
			if _, err := webhook.Handle(tt.provider, c, h, strings.NewReader(tt.body)); !errorIs(err, webhook.ErrMalformed) {
				t.Errorf("Handle = %v, want ErrMalformed (verified, not JSON)", err)
			}
			// One bit off in the body: unauthorized.
			if _, err := webhook.Handle(tt.provider, c, h, strings.NewReader("X"+tt.body[1:])); !errorIs(err, webhook.ErrUnauthorized) {
				t.Errorf("Handle(tampered) = %v, want ErrUnauthorized", err)
			}
		})
	}
}

// TestHandleVerifiesFirst: events, pings and malformed payloads are only
// looked at after verification; unverified, they are all just
// unauthorized.
func TestHandleVerifiesFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider webhook.Provider
		event    string
		body     []byte
	}{
		{"github ping", webhook.GitHub, "ping", []byte(`{"zen":"x","hook_id":1}`)},
		{"github other event", webhook.GitHub, "issues", []byte(`{}`)},
		{"github malformed", webhook.GitHub, "push", []byte(`{`)},
		{"bitbucket server ping", webhook.BitbucketServer, "diagnostics:ping", []byte(`{"test": true}`)},
		{"bitbucket server other event", webhook.BitbucketServer, "pr:opened", []byte(`{}`)},
		{"gitlab other event", webhook.GitLab, "Issue Hook", []byte(`{}`)},
		{"gitea malformed", webhook.Gitea, "push", []byte(`[]`)},
		{"generic ping", webhook.Generic, "ping", []byte(`{}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := signedHeaders(tt.provider, tt.event, tt.body, "not-the-secret")
			if _, err := webhook.Handle(tt.provider, cfg, h, bytes.NewReader(tt.body)); !errorIs(err, webhook.ErrUnauthorized) {
				t.Errorf("unverified: Handle = %v, want ErrUnauthorized", err)
			}
		})
	}
}

// TestHandleEvents covers what verified non-push deliveries yield.
func TestHandleEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		provider    webhook.Provider
		event       string
		body        string
		header      map[string]string // set after signing
		wantIgnored string
		wantErr     error
	}{
		{name: "github other event", provider: webhook.GitHub, event: "issues", body: `{"action":"opened"}`, wantIgnored: `event "issues"`},
		{name: "gitlab merge request", provider: webhook.GitLab, event: "Merge Request Hook", body: `{}`, wantIgnored: `event "Merge Request Hook"`},
		{name: "bitbucket pull request", provider: webhook.Bitbucket, event: "pullrequest:created", body: `{}`, wantIgnored: `event "pullrequest:created"`},
		{name: "bitbucket server mirror", provider: webhook.BitbucketServer, event: "mirror:repo_synchronized", body: `{}`, wantIgnored: `event "mirror:repo_synchronized"`},
		{name: "gitea delete", provider: webhook.Gitea, event: "delete", body: `{}`, wantIgnored: `event "delete"`},
		{name: "generic other event", provider: webhook.Generic, event: "build", body: `{}`, wantIgnored: `event "build"`},
		{name: "bitbucket push without changes", provider: webhook.Bitbucket, event: "repo:push",
			body: `{"repository":{"links":{"html":{"href":"https://bitbucket.org/acme/jobs"}}},"push":{"changes":[]}}`, wantIgnored: "no branch or tag changes"},

		{name: "github malformed json", provider: webhook.GitHub, event: "push", body: `{"ref": "refs/heads/main",`, wantErr: webhook.ErrMalformed},
		{name: "github null", provider: webhook.GitHub, event: "push", body: `null`, wantErr: webhook.ErrMalformed},
		{name: "github wrong types", provider: webhook.GitHub, event: "push", body: `{"ref": 1}`, wantErr: webhook.ErrMalformed},
		{name: "github no repository", provider: webhook.GitHub, event: "push", body: `{"ref":"refs/heads/main","after":"` + afterMain + `"}`, wantErr: webhook.ErrMalformed},
		{name: "github bad ref", provider: webhook.GitHub, event: "push", wantErr: webhook.ErrMalformed,
			body: `{"ref":"refs/heads/../x","after":"` + afterMain + `","repository":{"clone_url":"https://github.com/a/b.git"}}`},
		{name: "github notes ref", provider: webhook.GitHub, event: "push", wantErr: webhook.ErrMalformed,
			body: `{"ref":"refs/notes/commits","after":"` + afterMain + `","repository":{"clone_url":"https://github.com/a/b.git"}}`},
		{name: "github short sha", provider: webhook.GitHub, event: "push", wantErr: webhook.ErrMalformed,
			body: `{"ref":"refs/heads/main","after":"a9b8c7d","repository":{"clone_url":"https://github.com/a/b.git"}}`},
		{name: "github url with newline", provider: webhook.GitHub, event: "push", wantErr: webhook.ErrMalformed,
			body: `{"ref":"refs/heads/main","after":"` + afterMain + `","repository":{"clone_url":"https://github.com/a/b.git\nX-Evil: 1"}}`},
		{name: "github ping malformed", provider: webhook.GitHub, event: "ping", body: `"zen"`, wantErr: webhook.ErrMalformed},
		{name: "gitlab object kind mismatch", provider: webhook.GitLab, event: "Tag Push Hook", wantErr: webhook.ErrMalformed,
			body: `{"object_kind":"push","ref":"refs/heads/main","after":"` + afterMain + `","project":{"git_http_url":"https://gitlab.com/a/b.git"}}`},
		{name: "bitbucket server ping malformed", provider: webhook.BitbucketServer, event: "diagnostics:ping", body: ``, wantErr: webhook.ErrMalformed},
		{name: "bitbucket server without links", provider: webhook.BitbucketServer, event: "repo:refs_changed", wantErr: webhook.ErrMalformed,
			body: `{"repository":{"slug":"jobs"},"changes":[{"refId":"refs/heads/main","toHash":"` + afterMain + `","type":"UPDATE"}]}`},
		{name: "bitbucket change without refs", provider: webhook.Bitbucket, event: "repo:push", wantErr: webhook.ErrMalformed,
			body: `{"repository":{"links":{"html":{"href":"https://bitbucket.org/acme/jobs"}}},"push":{"changes":[{"new":null,"old":null}]}}`},
		{name: "generic missing after", provider: webhook.Generic, event: "push", body: `{"repository":"https://git.acme.example/a/b","ref":"refs/heads/main"}`, wantErr: webhook.ErrMalformed},
		{name: "generic trailing data", provider: webhook.Generic, event: "push", wantErr: webhook.ErrMalformed,
			body: `{"repository":"https://git.acme.example/a/b","ref":"refs/heads/main","after":"` + afterMain + `"} {}`},
		{name: "missing event header", provider: webhook.GitHub, event: "push", body: `{}`, header: map[string]string{"X-GitHub-Event": ""}, wantErr: webhook.ErrMalformed},
		{name: "event header with control character", provider: webhook.Bitbucket, event: "repo:push", body: `{}`, header: map[string]string{"X-Event-Key": "repo:push\x01"}, wantErr: webhook.ErrMalformed},
		{name: "delivery id too long", provider: webhook.GitHub, event: "ping", body: `{}`, header: map[string]string{"X-GitHub-Delivery": strings.Repeat("a", 129)}, wantErr: webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := signedHeaders(tt.provider, tt.event, []byte(tt.body), testSecret)
			for k, v := range tt.header {
				if v == "" {
					h.Del(k)
				} else {
					h[http.CanonicalHeaderKey(k)] = []string{v}
				}
			}
			d, err := webhook.Handle(tt.provider, cfg, h, strings.NewReader(tt.body))
			if !errorIs(err, tt.wantErr) {
				t.Fatalf("Handle error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d.Ignored != tt.wantIgnored || len(d.Pushes) != 0 || d.Ping {
				t.Errorf("Ignored = %q, want %q (pushes %d, ping %v)", d.Ignored, tt.wantIgnored, len(d.Pushes), d.Ping)
			}
		})
	}
}

func TestHandleForgejo(t *testing.T) {
	t.Parallel()
	body := fixture(t, webhook.Gitea, "push.json")
	sig := hexMAC(testSecret, body)
	forgejo := func() http.Header {
		h := http.Header{}
		h.Set("X-Forgejo-Event", "push")
		h.Set("X-Forgejo-Delivery", "d-1")
		h.Set("X-Forgejo-Signature", sig)
		return h
	}
	t.Run("forgejo headers only", func(t *testing.T) {
		t.Parallel()
		d, err := webhook.Handle(webhook.Gitea, cfg, forgejo(), bytes.NewReader(body))
		if err != nil || len(d.Pushes) != 1 || d.DeliveryID != "d-1" || d.Event != "push" {
			t.Fatalf("Handle = %+v, %v", d, err)
		}
	})
	t.Run("both signatures", func(t *testing.T) {
		t.Parallel()
		h := forgejo()
		h.Set("X-Gitea-Signature", sig)
		if _, err := webhook.Handle(webhook.Gitea, cfg, h, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	})
	for _, bad := range []string{"X-Gitea-Signature", "X-Forgejo-Signature"} {
		t.Run("bad "+bad+" beside a good one", func(t *testing.T) {
			t.Parallel()
			h := forgejo()
			h.Set("X-Gitea-Signature", sig)
			h.Set(bad, hexMAC("guess", body))
			if _, err := webhook.Handle(webhook.Gitea, cfg, h, bytes.NewReader(body)); !errorIs(err, webhook.ErrUnauthorized) {
				t.Fatalf("Handle = %v, want ErrUnauthorized", err)
			}
		})
	}
}

// TestHandleFormEncoded: GitHub and Gitea can send
// application/x-www-form-urlencoded; the signature covers the form body.
func TestHandleFormEncoded(t *testing.T) {
	t.Parallel()
	for _, p := range []webhook.Provider{webhook.GitHub, webhook.Gitea} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			form := []byte("payload=" + url.QueryEscape(string(fixture(t, p, "push.json"))))
			h := signedHeaders(p, "push", form, testSecret)
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			d, err := webhook.Handle(p, cfg, h, bytes.NewReader(form))
			if err != nil || len(d.Pushes) != 1 || d.Pushes[0].Ref != "refs/heads/main" {
				t.Fatalf("Handle = %+v, %v", d, err)
			}
			h.Set("Content-Type", "application/json") // the form is not JSON
			if _, err := webhook.Handle(p, cfg, h, bytes.NewReader(form)); !errorIs(err, webhook.ErrMalformed) {
				t.Fatalf("form as JSON: %v", err)
			}
		})
	}
}

// TestHandleBodyLimit: the limit holds while reading, for bodies with and
// without a length, and a body at the limit is fine.
func TestHandleBodyLimit(t *testing.T) {
	t.Parallel()
	body := fixture(t, webhook.GitHub, "push.json")
	h := signedHeaders(webhook.GitHub, "push", body, testSecret)
	at := webhook.Config{Secret: testSecret, MaxBodyBytes: int64(len(body))}
	under := webhook.Config{Secret: testSecret, MaxBodyBytes: int64(len(body)) - 1}

	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		if _, err := webhook.Handle(webhook.GitHub, at, h, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		t.Parallel()
		if _, err := webhook.Handle(webhook.GitHub, under, h, bytes.NewReader(body)); !errorIs(err, webhook.ErrTooLarge) {
			t.Fatalf("Handle = %v, want ErrTooLarge", err)
		}
	})
	t.Run("endless body without a length", func(t *testing.T) {
		t.Parallel()
		r := &endless{prefix: body}
		_, err := webhook.Handle(webhook.GitHub, webhook.Config{Secret: testSecret}, h, r)
		if !errorIs(err, webhook.ErrTooLarge) {
			t.Fatalf("Handle = %v, want ErrTooLarge", err)
		}
		if r.n > webhook.DefaultMaxBodyBytes+1 {
			t.Errorf("read %d bytes of an endless body; the limit is %d", r.n, webhook.DefaultMaxBodyBytes)
		}
	})
	t.Run("one byte at a time", func(t *testing.T) {
		t.Parallel()
		big := append(bytes.Clone(body), bytes.Repeat([]byte(" "), 1<<10)...)
		hb := signedHeaders(webhook.GitHub, "push", big, testSecret)
		c := webhook.Config{Secret: testSecret, MaxBodyBytes: int64(len(big)) - 1}
		if _, err := webhook.Handle(webhook.GitHub, c, hb, iotest.OneByteReader(bytes.NewReader(big))); !errorIs(err, webhook.ErrTooLarge) {
			t.Fatalf("Handle = %v, want ErrTooLarge", err)
		}
		c.MaxBodyBytes++
		if _, err := webhook.Handle(webhook.GitHub, c, hb, iotest.OneByteReader(bytes.NewReader(big))); err != nil {
			t.Fatalf("Handle at the limit: %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		t.Parallel()
		r := io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(io.ErrUnexpectedEOF))
		if _, err := webhook.Handle(webhook.GitHub, cfg, h, r); !errorIs(err, webhook.ErrMalformed) {
			t.Fatalf("Handle = %v, want ErrMalformed", err)
		}
	})
	t.Run("request with Content-Length over the limit", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodPost, "/hook", unreadable{t})
		r.Header = h.Clone()
		r.ContentLength = int64(len(body))
		if _, err := webhook.HandleRequest(webhook.GitHub, under, r); !errorIs(err, webhook.ErrTooLarge) {
			t.Fatalf("HandleRequest = %v, want ErrTooLarge", err)
		}
	})
	t.Run("chunked request through MaxBytesReader", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodPost, "/hook", nil)
		r.Header = h.Clone()
		r.ContentLength = -1
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(&endless{prefix: body}), 4096)
		if _, err := webhook.HandleRequest(webhook.GitHub, cfg, r); !errorIs(err, webhook.ErrTooLarge) {
			t.Fatalf("HandleRequest = %v, want ErrTooLarge", err)
		}
	})
	t.Run("request within the limit", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		r.Header = h.Clone()
		d, err := webhook.HandleRequest(webhook.GitHub, cfg, r)
		if err != nil || len(d.Pushes) != 1 {
			t.Fatalf("HandleRequest = %+v, %v", d, err)
		}
	})
}

// TestHandleConfig: no secret is never "no verification".
func TestHandleConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		provider webhook.Provider
		cfg      webhook.Config
	}{
		{"empty secret", webhook.GitHub, webhook.Config{}},
		{"blank secret", webhook.Bitbucket, webhook.Config{Secret: " \t\n"}},
		{"empty gitlab token", webhook.GitLab, webhook.Config{}},
		{"negative limit", webhook.Gitea, webhook.Config{Secret: testSecret, MaxBodyBytes: -1}},
		{"limit over the ceiling", webhook.Generic, webhook.Config{Secret: testSecret, MaxBodyBytes: webhook.MaxBodyBytesCeiling + 1}},
		{"unknown provider", "gogs", webhook.Config{Secret: testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Signed with the configured (empty) key: still refused.
			body := []byte(`{}`)
			p := tt.provider
			if _, ok := signatureHeader[p]; !ok {
				p = webhook.GitHub
			}
			h := signedHeaders(p, "ping", body, tt.cfg.Secret)
			h.Set("X-Gitlab-Token", tt.cfg.Secret)
			_, err := webhook.Handle(tt.provider, tt.cfg, h, unreadable{t})
			if !errorIs(err, webhook.ErrConfig) {
				t.Fatalf("Handle = %v, want ErrConfig", err)
			}
			assertNoLeak(t, err, testSecret)
		})
	}
	if err := (webhook.Config{Secret: testSecret}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseProvider(t *testing.T) {
	t.Parallel()
	for _, p := range webhook.Providers() {
		if got, ok := webhook.ParseProvider(strings.ToUpper(string(p)) + " "); !ok || got != p {
			t.Errorf("ParseProvider(%q) = %q, %v", p, got, ok)
		}
	}
	if got, ok := webhook.ParseProvider("Forgejo"); !ok || got != webhook.Gitea {
		t.Errorf("ParseProvider(forgejo) = %q, %v", got, ok)
	}
	for _, s := range []string{"", "gogs", "bitbucket_server", "git hub"} {
		if got, ok := webhook.ParseProvider(s); ok {
			t.Errorf("ParseProvider(%q) = %q", s, got)
		}
	}
}

// TestSignatureHashReplay: a replay with other delivery headers keeps its
// SignatureHash; another body or provider does not.
func TestSignatureHashReplay(t *testing.T) {
	t.Parallel()
	body := fixture(t, webhook.GitHub, "push.json")
	h := signedHeaders(webhook.GitHub, "push", body, testSecret)
	first, err := webhook.Handle(webhook.GitHub, cfg, h, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	h.Set("X-GitHub-Delivery", "11111111-2222-3333-4444-555555555555")
	replay, err := webhook.Handle(webhook.GitHub, cfg, h, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if first.SignatureHash != replay.SignatureHash || first.DeliveryID == replay.DeliveryID {
		t.Errorf("replay: hash %q vs %q, ids %q vs %q", first.SignatureHash, replay.SignatureHash, first.DeliveryID, replay.DeliveryID)
	}
	other := append(bytes.Clone(body), '\n')
	d, err := webhook.Handle(webhook.GitHub, cfg, signedHeaders(webhook.GitHub, "push", other, testSecret), bytes.NewReader(other))
	if err != nil || d.SignatureHash == first.SignatureHash {
		t.Errorf("another body: hash %q (err %v)", d.SignatureHash, err)
	}
	gb := fixture(t, webhook.GitLab, "push.json")
	g1, err1 := webhook.Handle(webhook.GitLab, cfg, signedHeaders(webhook.GitLab, "Push Hook", gb, testSecret), bytes.NewReader(gb))
	g2, err2 := webhook.Handle(webhook.GitLab, webhook.Config{Secret: "rotated"}, signedHeaders(webhook.GitLab, "Push Hook", gb, "rotated"), bytes.NewReader(gb))
	if err1 != nil || err2 != nil || g1.SignatureHash != g2.SignatureHash {
		t.Errorf("gitlab: the token must not enter SignatureHash (%v, %v)", err1, err2)
	}
}

func TestPushDeleted(t *testing.T) {
	t.Parallel()
	for after, want := range map[string]bool{
		webhook.ZeroSHA:         true,
		strings.Repeat("0", 64): true,
		afterMain:               false,
		"":                      false,
	} {
		if got := (webhook.Push{After: after}).Deleted(); got != want {
			t.Errorf("Deleted(%q) = %v", after, got)
		}
	}
}
