package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestWebhookInFlightBound: bodies are read before their signature can be
// checked, so requests being read at once are bounded; one more is refused
// at once with 503 instead of buffering another body.
func TestWebhookInFlightBound(t *testing.T) {
	t.Parallel()
	cfg := hookConfig(t, "sqlite://caesium.db", nil)
	cfg.Webhooks.MaxInFlight = 1
	a := startHookAgent(t, cfg)

	// A client that sends its body slowly holds the only slot.
	pr, pw := io.Pipe()
	slow, err := http.NewRequest(http.MethodPost, a.url+"/v1/webhooks/github", pr)
	if err != nil {
		t.Fatal(err)
	}
	slow.Header.Set("X-GitHub-Event", "push")
	slow.Header.Set("X-Hub-Signature-256", "sha256="+hexMAC(hookSecret("github"), []byte("{}")))
	held := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(slow)
		if err != nil {
			held <- nil
			return
		}
		held <- resp
	}()
	if _, err := pw.Write([]byte("{")); err != nil { // the handler is now reading
		t.Fatal(err)
	}

	var got answer
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got = post(t, a.url, "github", http.Header{"X-GitHub-Event": {"ping"}}, []byte("{}"), false)
		if got.status == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var body struct{ Result string }
	_ = json.Unmarshal([]byte(got.raw), &body)
	if got.status != http.StatusServiceUnavailable || body.Result != "busy" {
		t.Fatalf("a second request while one is being read: %s, want 503 busy", got)
	}

	// Once the slow request ends, the slot is free again.
	_, _ = pw.Write([]byte("}"))
	_ = pw.Close()
	if resp := <-held; resp != nil {
		_ = resp.Body.Close()
	}
	if got := post(t, a.url, "github", http.Header{"X-GitHub-Event": {"ping"}}, []byte("{}"), false); got.status == http.StatusServiceUnavailable {
		t.Errorf("after the slow request ended: %s, want the slot free", got)
	}
}
