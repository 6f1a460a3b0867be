package webhook

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// GitHub: X-Hub-Signature-256 only. A request carrying just the SHA-1
// X-Hub-Signature is refused: SHA-1 HMAC is legacy and would let a
// downgrade through.
var githubForge = forge{
	credential:      githubCredential,
	event:           headerEvent("X-GitHub-Event"),
	deliveryHeaders: []string{"X-GitHub-Delivery"},
	parse:           parseGitHub,
}

func githubCredential(h http.Header, _ string) (credential, error) {
	if len(h.Values("X-Hub-Signature-256")) == 0 && len(h.Values("X-Hub-Signature")) > 0 {
		return credential{}, fmt.Errorf("%w: only the SHA-1 X-Hub-Signature header was sent; X-Hub-Signature-256 is required", ErrUnauthorized)
	}
	mac, err := hmacHeader(h, "X-Hub-Signature-256", parseGitHubSignature)
	if err != nil {
		return credential{}, err
	}
	return credential{kind: credHMAC, macs: [][]byte{mac}}, nil
}

// parseGitHubSignature parses X-Hub-Signature-256.
func parseGitHubSignature(v string) ([]byte, error) { return parsePrefixedSHA256(v) }

func parseGitHub(h http.Header, event string, body []byte) (outcome, error) {
	switch event {
	case "push":
		js, err := formPayload(h, body)
		if err != nil {
			return outcome{}, err
		}
		return parseGitHubPush(js)
	case "ping":
		js, err := formPayload(h, body)
		if err != nil {
			return outcome{}, err
		}
		return parseGitHubPing(js)
	}
	return ignoredEvent(event), nil
}

// githubPush holds the fields of a push event the agent uses.
type githubPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Repository *struct {
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		HTMLURL  string `json:"html_url"`
		GitURL   string `json:"git_url"`
	} `json:"repository"`
}

func parseGitHubPush(body []byte) (outcome, error) {
	var pl githubPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("github push", err)
	}
	if pl.Repository == nil {
		return outcome{}, fmt.Errorf("%w: github push has no repository", ErrMalformed)
	}
	r := pl.Repository
	urls, err := repoURLs(r.CloneURL, r.SSHURL, r.HTMLURL, r.GitURL)
	if err != nil {
		return outcome{}, err
	}
	p, err := newPush(urls, pl.Ref, pl.After, "github push")
	if err != nil {
		return outcome{}, err
	}
	return outcome{pushes: []Push{p}}, nil
}

func parseGitHubPing(body []byte) (outcome, error) {
	var pl struct {
		HookID int64 `json:"hook_id"`
	}
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("github ping", err)
	}
	return outcome{ping: true}, nil
}

// formPayload returns the JSON of a delivery sent as
// application/x-www-form-urlencoded (GitHub's and Gitea's form content
// type: one "payload" field), or body itself otherwise. The signature
// covers the form-encoded body, so this runs after verification.
func formPayload(h http.Header, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: form body: %w", ErrMalformed, err)
	}
	if len(form["payload"]) != 1 {
		return nil, fmt.Errorf("%w: form body needs exactly one payload field", ErrMalformed)
	}
	return []byte(form["payload"][0]), nil
}

// decodeObject decodes a JSON object into v; null, arrays and scalars are
// refused (json.Unmarshal would accept null silently).
func decodeObject(body []byte, v any) error {
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return errNotObject
	}
	return json.Unmarshal(body, v)
}
