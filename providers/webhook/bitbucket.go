package webhook

import (
	"fmt"
	"net/http"
)

// Bitbucket Cloud signs with the webhook secret (since 2023): X-Hub-Signature
// holds "sha256=<hex>". X-Hook-UUID names the webhook and is public (it is in
// the webhook's API resource), so it is no credential. X-Request-UUID is the
// delivery id.
var bitbucketForge = forge{
	credential:      prefixedHMAC("X-Hub-Signature"),
	event:           headerEvent("X-Event-Key"),
	deliveryHeaders: []string{"X-Request-UUID"},
	parse:           parseBitbucket,
}

// parseBitbucketSignature parses Bitbucket Cloud's X-Hub-Signature.
func parseBitbucketSignature(v string) ([]byte, error) { return parsePrefixedSHA256(v) }

func parseBitbucket(_ http.Header, event string, body []byte) (outcome, error) {
	if event != "repo:push" {
		return ignoredEvent(event), nil
	}
	return parseBitbucketPush(body)
}

// bitbucketPush holds the fields of a repo:push payload the agent uses. The
// repository entity carries only its web link; it normalises to the same
// key as the clone URLs.
type bitbucketPush struct {
	Repository struct {
		Links struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"`
		} `json:"links"`
	} `json:"repository"`
	Push struct {
		Changes []struct {
			New *bitbucketRef `json:"new"` // null when the ref was deleted
			Old *bitbucketRef `json:"old"` // null when the ref was created
		} `json:"changes"`
	} `json:"push"`
}

type bitbucketRef struct {
	Type   string `json:"type"` // "branch" or "tag"
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

func parseBitbucketPush(body []byte) (outcome, error) {
	var pl bitbucketPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("bitbucket repo:push", err)
	}
	urls, err := repoURLs(pl.Repository.Links.HTML.Href)
	if err != nil {
		return outcome{}, err
	}
	var out outcome
	for i, c := range pl.Push.Changes {
		what := fmt.Sprintf("bitbucket repo:push change %d", i)
		ref, after := c.New, ""
		if ref != nil {
			after = ref.Target.Hash
		} else if ref = c.Old; ref != nil {
			after = ZeroSHA // deleted
		} else {
			return outcome{}, fmt.Errorf("%w: %s has neither new nor old", ErrMalformed, what)
		}
		var full string
		switch ref.Type {
		case "branch":
			full = "refs/heads/" + ref.Name
		case "tag":
			full = "refs/tags/" + ref.Name
		default:
			continue // Mercurial named branches and bookmarks: gone from Bitbucket, nothing to fetch
		}
		p, err := newPush(urls, full, after, what)
		if err != nil {
			return outcome{}, err
		}
		out.pushes = append(out.pushes, p)
	}
	return out, nil
}
