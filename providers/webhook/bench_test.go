package webhook_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/caesium-io/caesium/providers/webhook"
)

// BenchmarkHandleGitHub verifies and parses a realistic GitHub push: the
// testdata push with three commits, compacted as GitHub sends it (~8 KB).
func BenchmarkHandleGitHub(b *testing.B) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, fixture(b, webhook.GitHub, "push.json")); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	h := signedHeaders(webhook.GitHub, "push", body, testSecret)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := webhook.Handle(webhook.GitHub, cfg, h, bytes.NewReader(body))
		if err != nil || len(d.Pushes) != 1 {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkNormalizeRepoURL is the per-URL cost of matching.
func BenchmarkNormalizeRepoURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		webhook.NormalizeRepoURL("ssh://git@GitHub.com:22/Acme/Jobs.git")
	}
}
