package webhook

import (
	"fmt"
	"net/http"
)

// Gitea signs with a bare hex HMAC-SHA256 in X-Gitea-Signature. Forgejo
// sends the same tag in X-Forgejo-Signature and X-Gitea-Signature; every
// signature header present must verify, so a good one cannot carry a bad
// one along.
var giteaForge = forge{
	credential:      giteaCredential,
	event:           headerEvent("X-Gitea-Event", "X-Forgejo-Event"),
	deliveryHeaders: []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"},
	parse:           parseGitea,
}

var giteaSignatureHeaders = []string{"X-Gitea-Signature", "X-Forgejo-Signature"}

func giteaCredential(h http.Header, _ string) (credential, error) {
	var c credential
	for _, name := range giteaSignatureHeaders {
		if len(h.Values(name)) == 0 {
			continue
		}
		mac, err := hmacHeader(h, name, parseGiteaSignature)
		if err != nil {
			return credential{}, err
		}
		c.macs = append(c.macs, mac)
	}
	if len(c.macs) == 0 {
		return credential{}, fmt.Errorf("%w: missing X-Gitea-Signature header", ErrUnauthorized)
	}
	c.kind = credHMAC
	return c, nil
}

// parseGiteaSignature parses X-Gitea-Signature or X-Forgejo-Signature: 64
// hex digits, no prefix.
func parseGiteaSignature(v string) ([]byte, error) { return parseHexSHA256(v) }

func parseGitea(h http.Header, event string, body []byte) (outcome, error) {
	if event != "push" {
		return ignoredEvent(event), nil
	}
	js, err := formPayload(h, body)
	if err != nil {
		return outcome{}, err
	}
	return parseGiteaPush(js)
}

// giteaPush holds the fields of a push payload the agent uses. Decoding only
// these keeps the parser clear of fields whose types differ between Gitea,
// Forgejo and GitHub (repository.created_at, for one).
type giteaPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Repository *struct {
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
}

func parseGiteaPush(body []byte) (outcome, error) {
	var pl giteaPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("gitea push", err)
	}
	if pl.Repository == nil {
		return outcome{}, fmt.Errorf("%w: gitea push has no repository", ErrMalformed)
	}
	r := pl.Repository
	urls, err := repoURLs(r.CloneURL, r.SSHURL, r.HTMLURL)
	if err != nil {
		return outcome{}, err
	}
	p, err := newPush(urls, pl.Ref, pl.After, "gitea push")
	if err != nil {
		return outcome{}, err
	}
	return outcome{pushes: []Push{p}}, nil
}
