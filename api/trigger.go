package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Headers of a signed HTTP trigger request (POST /v1/triggers/{path}). They
// live here, not in the agent that verifies them, so the CLI can sign
// without importing the agent.
const (
	HeaderTriggerTimestamp = "X-Caesium-Timestamp"
	HeaderTriggerSignature = "X-Caesium-Signature"
)

// SignTrigger returns the X-Caesium-Signature value for a request sent at
// ts with body: "sha256=" and the hex HMAC-SHA256, keyed by the shared
// secret, of the decimal Unix timestamp, a dot and the body.
func SignTrigger(secret string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
