// Package webhook verifies and parses push webhooks from Git forges: GitHub,
// GitLab, Bitbucket Cloud, Bitbucket Server/Data Center, Gitea (and Forgejo)
// and a generic HMAC-signed format. It is the pure core of webhook handling:
// it reads one delivery's headers and body and says what the delivery asks
// for. It performs no I/O beyond reading the body, keeps no state, and
// logs nothing; HTTP wiring, delivery records, the replay cache and the
// agent nudge belong to the caller.
//
// # Security model
//
// Verification is fail-closed and comes first. [Handle] refuses a request
// before reading its body when the credential header is missing, repeated
// or malformed, reads at most Config.MaxBodyBytes+1 bytes, checks the
// HMAC-SHA256 of the raw body (or, for GitLab, the token) in constant time,
// and only then looks at the event header or parses JSON. An unverified
// request yields an error wrapping [ErrUnauthorized] and nothing else: no
// event name, no "ignored" answer, no ping reply.
//
// Credentials accepted, and nothing weaker:
//
//	github            X-Hub-Signature-256: sha256=<hex HMAC-SHA256>   (SHA-1 X-Hub-Signature alone is refused)
//	gitlab            X-Gitlab-Token: <secret token>                  (compared as SHA-256 digests, constant time)
//	bitbucket         X-Hub-Signature: sha256=<hex HMAC-SHA256>       (X-Hook-UUID is an identifier, not a credential)
//	bitbucket-server  X-Hub-Signature: sha256=<hex HMAC-SHA256>
//	gitea / forgejo   X-Gitea-Signature and/or X-Forgejo-Signature: <hex HMAC-SHA256>  (every one present must verify)
//	generic           X-Signature: sha256=<hex HMAC-SHA256>
//
// The prefix is exactly "sha256=" (lower case); the digest is exactly 64 hex
// digits. A secret that is empty or blank is a configuration error, never
// "no verification". Errors never contain the secret, the token or a
// signature value.
//
// Headers are not covered by any forge's signature, so a captured delivery
// can be replayed with different X-*-Delivery or event headers. The caller
// detects replays with [Delivery.SignatureHash], which depends only on the
// provider, the verified body and its canonical MAC, not on header spelling.
//
// # What a delivery yields
//
// A verified delivery is a push (one [Push] per ref: Bitbucket reports
// several refs in one delivery), a ping (GitHub ping, Bitbucket Server
// diagnostics:ping, generic X-Event: ping) or an ignored event with a
// reason. Branch and tag deletions are pushes whose After is [ZeroSHA]; the
// agent treats every push as a nudge to fetch. The payload is trusted only
// for matching a configured source ([Delivery.PushesFor] and
// [NormalizeRepoURL]): the agent fetches from its own configured remote and
// never from a URL or commit named in a payload.
//
// # Errors and HTTP status
//
// Callers map the sentinels: [ErrUnauthorized] to 401, [ErrMalformed] to
// 400, [ErrTooLarge] to 413, [ErrConfig] to 500 (or 404 for an endpoint
// that is not configured). An ignored event is not an error (202 or 204).
//
// The library github.com/go-playground/webhooks (v6.4.0) is deliberately
// not used. Its Parse functions accept unsigned requests when no secret is
// set, check Bitbucket Cloud only by the (public) hook UUID, answer
// Bitbucket Server diagnostics:ping before any check, read bodies without
// bound, and panic on a Bitbucket Server X-Hub-Signature shorter than 7
// bytes. Its payload structs type hundreds of fields the agent does not
// need, so a push fails to decode when any of them changes type (GitHub's
// repository.created_at is a number in push payloads and a string in
// others), and decoding them costs several times the allocations. This
// package decodes only the fields it uses.
package webhook
