package webhook_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/webhook"
)

// testSecret signs every fixture delivery; errors must never contain it.
const testSecret = "wh-secret-7f3a9c1e5b2d"

// hexMAC is the hex HMAC-SHA256 of body under key, as forges compute it.
func hexMAC(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// fixture reads testdata/<provider>/<name>.
func fixture(t testing.TB, p webhook.Provider, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", string(p), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signatureHeader is the credential header of each provider.
var signatureHeader = map[webhook.Provider]string{
	webhook.GitHub:          "X-Hub-Signature-256",
	webhook.GitLab:          "X-Gitlab-Token",
	webhook.Bitbucket:       "X-Hub-Signature",
	webhook.BitbucketServer: "X-Hub-Signature",
	webhook.Gitea:           "X-Gitea-Signature",
	webhook.Generic:         "X-Signature",
}

// signatureValue is the credential header value that key gives body.
func signatureValue(p webhook.Provider, key string, body []byte) string {
	switch p {
	case webhook.GitLab:
		return key
	case webhook.Gitea:
		return hexMAC(key, body)
	}
	return "sha256=" + hexMAC(key, body)
}

// signedHeaders are the headers a forge sends with body, signed with key.
// The values follow each forge's documented header set.
func signedHeaders(p webhook.Provider, event string, body []byte, key string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch p {
	case webhook.GitHub:
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		h.Set("X-GitHub-Hook-ID", "468213077")
		h.Set("X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6") // legacy, never checked
	case webhook.GitLab:
		h.Set("User-Agent", "GitLab/17.9.1")
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
		h.Set("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f")
		h.Set("X-Gitlab-Webhook-UUID", "3c5c0404-c866-44bc-a5f6-452bb1bfc76e")
		h.Set("X-Gitlab-Instance", "https://gitlab.acme.example")
	case webhook.Bitbucket:
		h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
		h.Set("X-Event-Key", event)
		h.Set("X-Request-UUID", "9d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6")
		h.Set("X-Hook-UUID", "{4e5f6071-8293-44b5-a6c7-d8e9f0a1b2c3}")
		h.Set("X-Attempt-Number", "1")
	case webhook.BitbucketServer:
		h.Set("User-Agent", "Atlassian HttpClient 4.2.0 / Bitbucket-8.19.1 (8019001) / Default")
		h.Set("X-Event-Key", event)
		h.Set("X-Request-Id", "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9")
	case webhook.Gitea:
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Event-Type", event)
		h.Set("X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473")
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473")
		h.Set("X-Gogs-Event", event)
	case webhook.Generic:
		if event != "" {
			h.Set("X-Event", event)
		}
		h.Set("X-Delivery-Id", "ci-run-4711")
	}
	h.Set(signatureHeader[p], signatureValue(p, key, body))
	return h
}

// pushEvent is each provider's push event name and push fixture.
var pushEvent = map[webhook.Provider]struct{ event, fixture string }{
	webhook.GitHub:          {"push", "push.json"},
	webhook.GitLab:          {"Push Hook", "push.json"},
	webhook.Bitbucket:       {"repo:push", "push.json"},
	webhook.BitbucketServer: {"repo:refs_changed", "refs_changed.json"},
	webhook.Gitea:           {"push", "push.json"},
	webhook.Generic:         {"push", "push.json"},
}

// assertNoLeak fails if err's text contains a credential.
func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q leaks a credential", err)
		}
	}
}

func errorIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return errors.Is(err, target)
}

// unreadable fails the test if anything reads it: requests refused on
// their headers must not have their bodies read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("body was read")
	return 0, errors.New("unreadable")
}

// endless is a body without a length that never ends; n counts the bytes
// handed out.
type endless struct {
	prefix []byte
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		if e.n < int64(len(e.prefix)) {
			p[i] = e.prefix[e.n]
		} else {
			p[i] = ' '
		}
		e.n++
	}
	return len(p), nil
}

func hexSHA1MAC(key string, body []byte) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
