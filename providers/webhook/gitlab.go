package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
)

// GitLab sends the secret token itself in X-Gitlab-Token; it signs nothing,
// so the token is checked before the body is read. Idempotency-Key (GitLab
// 17.4+) is stable across retries and preferred as the delivery id over
// X-Gitlab-Event-UUID.
var gitlabForge = forge{
	credential:      gitlabCredential,
	event:           headerEvent("X-Gitlab-Event"),
	deliveryHeaders: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"},
	parse:           parseGitLab,
}

func gitlabCredential(h http.Header, secret string) (credential, error) {
	v, ok, err := singleHeader(h, "X-Gitlab-Token", ErrUnauthorized)
	if err != nil {
		return credential{}, err
	}
	if !ok || v == "" {
		return credential{}, fmt.Errorf("%w: missing X-Gitlab-Token header", ErrUnauthorized)
	}
	if !gitlabTokenMatches(v, secret) {
		return credential{}, fmt.Errorf("%w: X-Gitlab-Token does not match", ErrUnauthorized)
	}
	return credential{kind: credToken}, nil
}

// gitlabTokenMatches compares SHA-256 digests of the token and the secret
// in constant time, so that neither the content nor the length of the
// secret shows in the timing.
func gitlabTokenMatches(token, secret string) bool {
	if secret == "" {
		return false
	}
	a := sha256.Sum256([]byte(token))
	b := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func parseGitLab(_ http.Header, event string, body []byte) (outcome, error) {
	switch event {
	case "Push Hook":
		return parseGitLabPush(body, "push")
	case "Tag Push Hook":
		return parseGitLabPush(body, "tag_push")
	}
	return ignoredEvent(event), nil
}

// gitlabPush holds the fields of Push Hook and Tag Push Hook payloads the
// agent uses. project.* are current; repository.* are deprecated but
// still sent.
type gitlabPush struct {
	ObjectKind string `json:"object_kind"`
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Project    struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		WebURL     string `json:"web_url"`
	} `json:"project"`
	Repository struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		Homepage   string `json:"homepage"`
		URL        string `json:"url"`
	} `json:"repository"`
}

// parseGitLabPush parses a push or tag push; kind is the object_kind the
// event header announced.
func parseGitLabPush(body []byte, kind string) (outcome, error) {
	var pl gitlabPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("gitlab "+kind, err)
	}
	if pl.ObjectKind != kind {
		return outcome{}, fmt.Errorf("%w: gitlab %s: object_kind does not match the event header", ErrMalformed, kind)
	}
	urls, err := repoURLs(pl.Project.GitHTTPURL, pl.Project.GitSSHURL, pl.Project.WebURL,
		pl.Repository.GitHTTPURL, pl.Repository.GitSSHURL, pl.Repository.Homepage, pl.Repository.URL)
	if err != nil {
		return outcome{}, err
	}
	p, err := newPush(urls, pl.Ref, pl.After, "gitlab "+kind)
	if err != nil {
		return outcome{}, err
	}
	return outcome{pushes: []Push{p}}, nil
}
