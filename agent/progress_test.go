package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
)

// TestOnceProgress checks the lines a terminal sees during a sync: the
// fetch, how many manifests were read, and N of M jobs applied.
func TestOnceProgress(t *testing.T) {
	t.Parallel()
	w := newWorkRepo(t)
	w.write("a.yaml", manifest("a", "1"))
	w.write("b.yaml", manifest("b", "1"))
	commit := w.commit("first")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = "sqlite://caesium.db"
	cfg.Sources = []config.Source{sourceConfig("progress", w.Dir)}
	var out bytes.Buffer
	if _, err := agent.Once(context.Background(), cfg, slog.New(slog.DiscardHandler), false, agent.WithProgress(&out)); err != nil {
		t.Fatal(err)
	}
	want := "progress: fetching " + commit[:12] + "\n" +
		"progress: read 2 manifest files: 2 jobs\n" +
		"progress: applied 2 of 2 changed jobs\n"
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out.String(), want)
	}

	// Without a terminal nothing is written.
	out.Reset()
	w.write("a.yaml", manifest("a", "2"))
	w.commit("second")
	if _, err := agent.Once(context.Background(), cfg, slog.New(slog.DiscardHandler), false); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "" {
		t.Errorf("progress written without WithProgress: %q", out.String())
	}
}
