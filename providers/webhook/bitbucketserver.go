package webhook

import (
	"fmt"
	"net/http"
)

// Bitbucket Server and Data Center sign with HMAC-SHA256 in X-Hub-Signature
// ("sha256=<hex>"). The Test connection button sends diagnostics:ping; it is
// answered only once verified like any other delivery.
var bitbucketServerForge = forge{
	credential:      prefixedHMAC("X-Hub-Signature"),
	event:           headerEvent("X-Event-Key"),
	deliveryHeaders: []string{"X-Request-Id"},
	parse:           parseBitbucketServer,
}

// parseBitbucketServerSignature parses Bitbucket Server's X-Hub-Signature.
func parseBitbucketServerSignature(v string) ([]byte, error) { return parsePrefixedSHA256(v) }

func parseBitbucketServer(_ http.Header, event string, body []byte) (outcome, error) {
	switch event {
	case "repo:refs_changed":
		return parseBitbucketServerPush(body)
	case "diagnostics:ping":
		return parseBitbucketServerPing(body)
	}
	return ignoredEvent(event), nil
}

// bitbucketServerPush holds the fields of a repo:refs_changed payload the
// agent uses. Bitbucket Server before 7 sent no repository links; such a
// payload names no URL and is malformed.
type bitbucketServerPush struct {
	Repository struct {
		Links struct {
			Clone []struct {
				Href string `json:"href"`
			} `json:"clone"`
			Self []struct {
				Href string `json:"href"`
			} `json:"self"`
		} `json:"links"`
	} `json:"repository"`
	Changes []struct {
		RefID string `json:"refId"`
		Ref   struct {
			ID string `json:"id"`
		} `json:"ref"`
		ToHash string `json:"toHash"` // all zeros for DELETE
	} `json:"changes"`
}

func parseBitbucketServerPush(body []byte) (outcome, error) {
	var pl bitbucketServerPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("bitbucket-server repo:refs_changed", err)
	}
	var cands []string
	for _, l := range pl.Repository.Links.Clone {
		cands = append(cands, l.Href)
	}
	for _, l := range pl.Repository.Links.Self {
		cands = append(cands, l.Href)
	}
	urls, err := repoURLs(cands...)
	if err != nil {
		return outcome{}, err
	}
	var out outcome
	for i, c := range pl.Changes {
		ref := c.RefID
		if ref == "" {
			ref = c.Ref.ID
		}
		p, err := newPush(urls, ref, c.ToHash, fmt.Sprintf("bitbucket-server repo:refs_changed change %d", i))
		if err != nil {
			return outcome{}, err
		}
		out.pushes = append(out.pushes, p)
	}
	return out, nil
}

func parseBitbucketServerPing(body []byte) (outcome, error) {
	var pl struct {
		Test bool `json:"test"`
	}
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("bitbucket-server diagnostics:ping", err)
	}
	return outcome{ping: true}, nil
}
