package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/caesium-io/caesium/providers/webhook"
)

// A handler maps the sentinels to status codes and nudges the sources
// whose remote the pushes name. Replay detection by SignatureHash and
// delivery records are left out.
func ExampleHandleRequest() {
	cfg := webhook.Config{Secret: "s3cret"}
	remote := "git@git.example.com:acme/jobs.git" // the source's configured remote

	handler := func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes)
		d, err := webhook.HandleRequest(webhook.Generic, cfg, r)
		switch {
		case errors.Is(err, webhook.ErrUnauthorized):
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case errors.Is(err, webhook.ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case errors.Is(err, webhook.ErrMalformed):
			http.Error(w, "malformed", http.StatusBadRequest)
		case err != nil:
			http.Error(w, "not configured", http.StatusInternalServerError)
		case d.Ignored != "":
			fmt.Fprintln(w, "ignored:", d.Ignored)
		default:
			for _, p := range d.PushesFor(remote) {
				fmt.Fprintln(w, "nudge:", p.Ref, p.Deleted())
			}
		}
	}

	body := `{"repository":"https://git.example.com/acme/jobs","ref":"refs/heads/main","after":"a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0"}`
	for _, key := range []string{"s3cret", "guess"} {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(body))
		r := httptest.NewRequest(http.MethodPost, "/v1/webhooks/jobs", strings.NewReader(body))
		r.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
		w := httptest.NewRecorder()
		handler(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 nudge: refs/heads/main false
	// 401 unauthorized
}
