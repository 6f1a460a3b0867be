package secrets_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/secrets"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	values := map[string]string{
		"secret://env/TOKEN":  "tok-abc123",
		"secret://env/LONGER": "tok-abc123-and-more",
		"secret://env/SHORT":  "abc",
		"secret://env/ODD":    "p@ss word/with\"quote",
		"secret://file/key": "-----BEGIN KEY-----\n" +
			"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" +
			"BKcwggSjAgEAAoIBAQC7\n" +
			"-----END KEY-----",
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "nothing to do", in: "job started", want: "job started"},
		{name: "value", in: "token=tok-abc123 rejected", want: "token=[REDACTED] rejected"},
		{name: "every occurrence", in: "tok-abc123tok-abc123", want: "[REDACTED][REDACTED]"},
		{name: "longest first", in: "got tok-abc123-and-more", want: "got [REDACTED]"},
		{name: "short values left alone", in: "abc def", want: "abc def"},
		{name: "quoted form", in: `password "p@ss word/with\"quote" refused`, want: `password "[REDACTED]" refused`},
		{name: "query escaped", in: "GET /?pw=p%40ss+word%2Fwith%22quote", want: "GET /?pw=[REDACTED]"},
		{name: "path escaped", in: "https://u:p@ss%20word%2Fwith%22quote@host", want: "https://u:[REDACTED]@host"},
		{name: "multi-line value", in: "key:\n" + values["secret://file/key"] + "\n", want: "key:\n[REDACTED]\n"},
		{name: "multi-line value quoted", in: fmt.Sprintf("key %q", values["secret://file/key"]), want: `key "[REDACTED]"`},
		{name: "one line of it", in: "bad line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", want: "bad line [REDACTED]"},
		{name: "marker line of it", in: "-----END KEY-----", want: "[REDACTED]"},
	}
	fx := setup(t, 0)
	for ref, v := range values {
		fx.env.set(ref, v)
		fx.file.set(ref, v)
		if _, err := fx.router.Resolve(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fx.router.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ttl  time.Duration
		// after advancing the clock by each, is the value still redacted?
		advance []time.Duration
		want    []bool
	}{
		{name: "an hour without cache", ttl: 0, advance: []time.Duration{59 * time.Minute, time.Minute}, want: []bool{true, false}},
		{name: "longer cache", ttl: 3 * time.Hour, advance: []time.Duration{2 * time.Hour, 59 * time.Minute, time.Minute}, want: []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := setup(t, tt.ttl)
			if _, err := fx.router.Resolve(context.Background(), "secret://env/API_TOKEN"); err != nil {
				t.Fatal(err)
			}
			for i, d := range tt.advance {
				fx.clock.Advance(d)
				got := fx.router.Redact("env-token-value") == secrets.Redacted
				if got != tt.want[i] {
					t.Errorf("after step %d: redacted = %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

// Resolving a value again, from the cache or not, keeps it redacted.
func TestRedactRefreshedByUse(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{0, 10 * time.Minute} {
		t.Run(ttl.String(), func(t *testing.T) {
			t.Parallel()
			fx := setup(t, ttl)
			for range 3 {
				if _, err := fx.router.Resolve(context.Background(), "secret://env/API_TOKEN"); err != nil {
					t.Fatal(err)
				}
				fx.clock.Advance(50 * time.Minute)
			}
			if got := fx.router.Redact("env-token-value"); got != secrets.Redacted {
				t.Errorf("Redact = %q, want it redacted 50 minutes after the last use", got)
			}
		})
	}
}

// Memory is bounded: past the limit, the least recently resolved values
// are forgotten first.
func TestRedactBounded(t *testing.T) {
	t.Parallel()
	fx := setup(t, 0)
	const n = 1100
	for i := range n {
		ref := fmt.Sprintf("secret://env/V%d", i)
		fx.env.set(ref, fmt.Sprintf("value-%04d", i))
		if _, err := fx.router.Resolve(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(time.Millisecond)
	}
	if got := fx.router.Redact("value-0000"); got != "value-0000" {
		t.Errorf("oldest value still remembered: %q", got)
	}
	if got := fx.router.Redact("value-1099"); got != secrets.Redacted {
		t.Errorf("newest value forgotten: %q", got)
	}
}

func TestRedactNilRouter(t *testing.T) {
	t.Parallel()
	var r *secrets.Router
	if got := r.Redact("text"); got != "text" {
		t.Errorf("Redact = %q", got)
	}
}

func BenchmarkRedact(b *testing.B) {
	fx := setup(b, 0)
	for i := range 50 {
		ref := fmt.Sprintf("secret://env/V%d", i)
		fx.env.set(ref, fmt.Sprintf("secret-value-%d-%s", i, strings.Repeat("x", 20)))
		if _, err := fx.router.Resolve(context.Background(), ref); err != nil {
			b.Fatal(err)
		}
	}
	line := `time=2026-01-01T00:00:00Z level=INFO msg="job finished" job=nightly-backup run=42 exit_code=0 duration=3.2s`
	b.ReportAllocs()
	for b.Loop() {
		fx.router.Redact(line)
	}
}
