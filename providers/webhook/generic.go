package webhook

import "net/http"

// Generic is Caesium's own format for CI systems and forges without a
// provider here:
//
//	POST <endpoint>
//	X-Signature: sha256=<hex HMAC-SHA256 of the raw body under the secret>
//	X-Delivery-Id: <optional id>
//	X-Event: push | ping   (optional; absent means push)
//	Content-Type: application/json
//
//	{"repository": "https://git.example.com/acme/jobs.git", "ref": "refs/heads/main", "after": "<sha>"}
//
// Unknown fields are ignored, so senders may add their own.
var genericForge = forge{
	credential:      prefixedHMAC("X-Signature"),
	event:           genericEvent,
	deliveryHeaders: []string{"X-Delivery-Id"},
	parse:           parseGeneric,
}

// parseGenericSignature parses X-Signature.
func parseGenericSignature(v string) ([]byte, error) { return parsePrefixedSHA256(v) }

func genericEvent(h http.Header) (string, bool, error) {
	event, ok, err := headerEvent("X-Event")(h)
	if err != nil || ok {
		return event, ok, err
	}
	return "push", true, nil
}

func parseGeneric(_ http.Header, event string, body []byte) (outcome, error) {
	switch event {
	case "push":
		return parseGenericPush(body)
	case "ping":
		if err := decodeObject(body, &struct{}{}); err != nil {
			return outcome{}, decodeErr("generic ping", err)
		}
		return outcome{ping: true}, nil
	}
	return ignoredEvent(event), nil
}

type genericPush struct {
	Repository string `json:"repository"`
	Ref        string `json:"ref"`
	After      string `json:"after"`
}

func parseGenericPush(body []byte) (outcome, error) {
	var pl genericPush
	if err := decodeObject(body, &pl); err != nil {
		return outcome{}, decodeErr("generic push", err)
	}
	urls, err := repoURLs(pl.Repository)
	if err != nil {
		return outcome{}, err
	}
	p, err := newPush(urls, pl.Ref, pl.After, "generic push")
	if err != nil {
		return outcome{}, err
	}
	return outcome{pushes: []Push{p}}, nil
}
