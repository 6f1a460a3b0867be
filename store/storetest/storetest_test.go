package storetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

// TestMissingPostgres: without CAESIUM_TEST_POSTGRES_URL a PostgreSQL test
// skips, except with CI=true, where it fails. The test runs itself in a child
// process with the environment under test.
func TestMissingPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv("STORETEST_CHILD") == "1" {
		storetest.PostgresURL(t)
		return
	}
	tests := []struct {
		name     string
		ci       string
		wantFail bool
		wantOut  string
	}{
		{name: "local run skips", ci: "", wantOut: "SKIP"},
		{name: "CI fails", ci: "true", wantFail: true, wantOut: "CI=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingPostgres$", "-test.v")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, storetest.EnvPostgresURL+"=") && !strings.HasPrefix(kv, "CI=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, "STORETEST_CHILD=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed = %v (%v), want %v; output:\n%s", failed, err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("child output does not contain %q:\n%s", tc.wantOut, out)
			}
		})
	}
}

func TestOpenIsolated(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			a, b := storetest.Open(t, backend), storetest.Open(t, backend)
			if a.Dialect() != backend {
				t.Errorf("Dialect() = %q, want %q", a.Dialect(), backend)
			}
			if err := a.UpsertSource(t.Context(), store.Source{ID: "only-in-a"}); err != nil {
				t.Fatal(err)
			}
			srcs, err := b.ListSources(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(srcs) != 0 {
				t.Errorf("a second store sees the first one's rows: %+v", srcs)
			}
		})
	}
}
