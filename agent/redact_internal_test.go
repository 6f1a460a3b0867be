package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/schema"
)

// TestRedactHandler: a value the resolver handed out is removed from log
// messages and from string, error, Stringer and grouped attributes, also
// those bound with With.
func TestRedactHandler(t *testing.T) {
	t.Parallel()
	const value = "s3cr3t-value-e8a41c77"
	r := secrets.New(map[string]secrets.Backend{
		schema.SecretEnv: env.New(func(string) (string, bool) { return value, true }),
	}, secrets.Options{})
	if _, err := r.Resolve(context.Background(), "secret://env/TOKEN"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(newRedactHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), r))
	log = log.With("bound", "with "+value)
	log.WithGroup("component").Info("message with "+value,
		"err", errors.New("dial https://user:"+value+"@git.example.com: refused"),
		"plain", value,
		"stringer", label("ok "+value),
		slog.Group("nested", "inner", value),
		"count", 3,
	)
	out := buf.String()
	if strings.Contains(out, value) {
		t.Fatalf("the log shows the secret:\n%s", out)
	}
	for _, want := range []string{secrets.Redacted, `"count":3`, `"stringer":"ok [REDACTED]"`, `"component"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// label is a fmt.Stringer, as many values logged with slog are.
type label string

func (l label) String() string { return string(l) }
