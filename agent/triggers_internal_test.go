package agent

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/schema"
)

func TestVerifyTrigger(t *testing.T) {
	t.Parallel()
	const secret = "shared-secret-0123456789"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"reason":"deploy"}`)
	signed := func(ts time.Time, key string, b []byte) http.Header {
		h := http.Header{}
		h.Set(api.HeaderTriggerTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(api.HeaderTriggerSignature, api.SignTrigger(key, ts, b))
		return h
	}
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	tests := []struct {
		name    string
		scheme  string
		header  http.Header
		body    []byte
		wantErr error
	}{
		{name: "signed now", scheme: schema.SignatureHMACSHA256, header: signed(now, secret, body), body: body},
		{name: "empty scheme is hmac", scheme: "", header: signed(now, secret, body), body: body},
		{name: "within the skew, past", scheme: "hmac-sha256", header: signed(now.Add(-4*time.Minute), secret, body), body: body},
		{name: "within the skew, future", scheme: "hmac-sha256", header: signed(now.Add(4*time.Minute), secret, body), body: body},
		{name: "too old", scheme: "hmac-sha256", header: signed(now.Add(-6*time.Minute), secret, body), body: body, wantErr: errTriggerStale},
		{name: "too far ahead", scheme: "hmac-sha256", header: signed(now.Add(6*time.Minute), secret, body), body: body, wantErr: errTriggerStale},
		{name: "other secret", scheme: "hmac-sha256", header: signed(now, "other", body), body: body, wantErr: errTriggerUnsigned},
		{name: "body changed", scheme: "hmac-sha256", header: signed(now, secret, body), body: []byte(`{"reason":"deploy!"}`), wantErr: errTriggerUnsigned},
		{name: "timestamp changed", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, strconv.FormatInt(now.Unix()+1, 10)), body: body, wantErr: errTriggerUnsigned},
		{name: "timestamp with a plus sign", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, "+"+strconv.FormatInt(now.Unix(), 10)), body: body, wantErr: errTriggerUnsigned},
		{name: "timestamp not a number", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerTimestamp, "soon"), body: body, wantErr: errTriggerUnsigned},
		{name: "no signature", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerSignature, ""), body: body, wantErr: errTriggerUnsigned},
		{name: "signature without prefix", scheme: "hmac-sha256", header: with(signed(now, secret, body), api.HeaderTriggerSignature, api.SignTrigger(secret, now, body)[len("sha256="):]), body: body, wantErr: errTriggerUnsigned},
		{name: "nothing", scheme: "hmac-sha256", header: http.Header{}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"Bearer " + secret}}, body: body},
		{name: "bearer wrong", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"Bearer " + secret + "x"}}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer lower-case scheme word", scheme: schema.SignatureBearer, header: http.Header{"Authorization": {"bearer " + secret}}, body: body, wantErr: errTriggerUnsigned},
		{name: "bearer job given an hmac signature", scheme: schema.SignatureBearer, header: signed(now, secret, body), body: body, wantErr: errTriggerUnsigned},
		{name: "hmac job given the bearer token", scheme: "hmac-sha256", header: http.Header{"Authorization": {"Bearer " + secret}}, body: body, wantErr: errTriggerUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := verifyTrigger(tt.scheme, secret, tt.header, tt.body, now, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("verifyTrigger: %v, want %v", err, tt.wantErr)
			}
			if err == nil && tt.scheme != schema.SignatureBearer && sig != tt.header.Get(api.HeaderTriggerSignature) {
				t.Errorf("replay key %q, want the signature", sig)
			}
		})
	}
	if _, err := verifyTrigger("md5", secret, signed(now, secret, body), body, now, time.Minute); err == nil {
		t.Error("an unknown scheme was accepted")
	}
}

// FuzzVerifyTrigger: whatever the headers and body, verification never
// panics and accepts only what was signed with the secret.
func FuzzVerifyTrigger(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("1800000000", api.SignTrigger("k", now, []byte("x")), []byte("x"))
	f.Add("", "", []byte{})
	f.Add("-9223372036854775808", "sha256=", []byte("{}"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(api.HeaderTriggerTimestamp, ts)
		h.Set(api.HeaderTriggerSignature, sig)
		if _, err := verifyTrigger("hmac-sha256", "k", h, body, now, 5*time.Minute); err == nil {
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || strconv.FormatInt(sec, 10) != ts || sig != api.SignTrigger("k", time.Unix(sec, 0), body) {
				t.Fatalf("accepted ts=%q sig=%q", ts, sig)
			}
		}
	})
}
