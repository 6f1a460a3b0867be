package agent_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/caesium-io/caesium"

// TestDependencyDirection checks the layout table of docs/ARCHITECTURE.md:
// each heavy dependency is imported by one package only, and nothing
// imports upward.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	direct := map[string][]string{}
	deps := map[string]map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("unexpected go list line %q", line)
		}
		pkg := strings.TrimPrefix(parts[0], module+"/")
		direct[pkg] = strings.Fields(parts[1])
		deps[pkg] = map[string]bool{}
		for _, d := range strings.Fields(parts[2]) {
			deps[pkg][d] = true
		}
	}
	// Heavy dependencies and the only packages that may import them directly.
	owners := map[string][]string{
		"github.com/uptrace/bun":      {"store"},
		"github.com/gin-gonic/gin":    {"api"},
		"github.com/go-git/go-git/v5": {"providers/git"},
		"github.com/spf13/viper":      {"config"},
		"github.com/docker/docker":    {"executor/docker"},
		"github.com/hashicorp/vault":  {"providers/vault"},
	}
	for pkg, imports := range direct {
		for _, imp := range imports {
			for dep, allowed := range owners {
				if imp != dep && !strings.HasPrefix(imp, dep+"/") {
					continue
				}
				ok := false
				for _, a := range allowed {
					if pkg == a || strings.HasPrefix(pkg, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", pkg, imp, allowed)
				}
			}
		}
	}
	// A provider never imports another provider: the agent wires them.
	for pkg, imports := range direct {
		if !strings.HasPrefix(pkg, "providers/") {
			continue
		}
		own := strings.SplitN(pkg, "/", 3)[:2]
		for _, imp := range imports {
			rel, ok := strings.CutPrefix(imp, module+"/providers/")
			if !ok {
				continue
			}
			if other := strings.SplitN(rel, "/", 2)[0]; other != own[1] {
				t.Errorf("%s imports %s: providers may not import each other", pkg, imp)
			}
		}
	}
	// Nothing imports upward (transitively).
	forbidden := map[string][]string{
		"schema":    {"store", "reconcile", "api", "agent", "config", "providers", "executor"},
		"config":    {"schema", "store", "reconcile", "api", "agent", "providers", "executor"},
		"store":     {"reconcile", "api", "agent", "config", "providers", "executor"},
		"reconcile": {"api", "agent", "config", "providers", "executor"},
		"providers": {"store", "reconcile", "api", "agent", "config", "executor"},
		"executor":  {"store", "reconcile", "api", "agent", "config", "providers"},
		"api":       {"agent", "config", "providers", "executor"},
	}
	for pkg, ds := range deps {
		if strings.HasSuffix(pkg, "test") { // test helper packages
			continue
		}
		for layer, banned := range forbidden {
			if pkg != layer && !strings.HasPrefix(pkg, layer+"/") {
				continue
			}
			for _, b := range banned {
				for d := range ds {
					if d == module+"/"+b || strings.HasPrefix(d, module+"/"+b+"/") {
						t.Errorf("%s depends on %s: %s may not import %s", pkg, strings.TrimPrefix(d, module+"/"), layer, b)
					}
				}
			}
		}
	}
}
