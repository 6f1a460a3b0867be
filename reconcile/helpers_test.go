package reconcile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// Sources used across the tests.
const (
	srcPlatform = "platform-jobs"
	srcData     = "data-jobs"
	testRepo    = "https://git.example.com/platform/jobs.git"
	testRef     = "refs/heads/main"
	commitA     = "1111111111111111111111111111111111111111"
	commitB     = "2222222222222222222222222222222222222222"
)

// fixture is the small bundle of helpers every planner test starts from.
type fixture struct {
	t testing.TB
}

func setup(t testing.TB) *fixture {
	t.Helper()
	return &fixture{t: t}
}

// parse runs a manifest through schema.Parse, so that tests plan real
// normalized specs, and fails the test on any error diagnostic.
func (f *fixture) parse(file, manifest string) []*schema.Job {
	f.t.Helper()
	docs, diags := schema.Parse(file, []byte(manifest), schema.Limits{})
	for _, d := range docs {
		diags = append(diags, d.Diagnostics...)
	}
	if schema.HasErrors(diags) {
		f.t.Fatalf("manifest %s does not parse:\n%v\n%s", file, diags, manifest)
	}
	jobs := make([]*schema.Job, 0, len(docs))
	for _, d := range docs {
		jobs = append(jobs, d.Job)
	}
	return jobs
}

// job parses a manifest holding exactly one job.
func (f *fixture) job(manifest string) *schema.Job {
	f.t.Helper()
	jobs := f.parse("job.yaml", manifest)
	if len(jobs) != 1 {
		f.t.Fatalf("manifest holds %d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

// desired parses a one-job manifest declared at path.
func (f *fixture) desired(path, manifest string) Desired {
	f.t.Helper()
	return f.desiredJob(f.job(manifest), prov("", path, commitA))
}

func (f *fixture) desiredJob(j *schema.Job, p store.Provenance) Desired {
	f.t.Helper()
	d, err := NewDesired(j, p)
	if err != nil {
		f.t.Fatalf("NewDesired: %v", err)
	}
	return d
}

// actual is the stored row a previous apply of manifest by source would
// have left: the same canonical spec and hash.
func (f *fixture) actual(source, path, manifest string) store.Job {
	f.t.Helper()
	return f.actualJob(f.job(manifest), prov(source, path, commitA))
}

func (f *fixture) actualJob(j *schema.Job, p store.Provenance) store.Job {
	f.t.Helper()
	spec, err := j.CanonicalJSON()
	if err != nil {
		f.t.Fatalf("CanonicalJSON: %v", err)
	}
	return store.Job{
		Alias:      j.Metadata.Alias,
		Spec:       spec,
		Hash:       j.Hash(),
		Version:    1,
		Labels:     j.Metadata.Labels,
		Provenance: p,
	}
}

func prov(source, path, commit string) store.Provenance {
	return store.Provenance{SourceID: source, Repo: testRepo, Ref: testRef, Path: path, Commit: commit}
}

// simpleJob is a small valid manifest; labels are "key: value" lines.
func simpleJob(alias string, labels ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n", alias)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for _, l := range labels {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	b.WriteString("steps:\n  - name: run\n    image: busybox:1.36\n    command: [\"true\"]\n")
	return b.String()
}

// edit replaces old by new in s and fails unless old occurs exactly once, so
// a table case can never silently test an unedited manifest.
func edit(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times in the manifest, want 1", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// summary renders a change's diff as "path kind" lines, the form the table
// tests compare.
func diffSummary(diff []FieldDiff) []string {
	out := make([]string, 0, len(diff))
	for _, d := range diff {
		out = append(out, d.Path+" "+d.Kind())
	}
	return out
}

// writes counts the changes of a changeset that would write.
func writes(cs *Changeset) int {
	n := cs.Counts()
	return n.Created + n.Updated + n.Deleted
}

// byAlias finds the change for alias.
func byAlias(t testing.TB, cs *Changeset, alias string) Change {
	t.Helper()
	for _, ch := range cs.Changes {
		if ch.Alias == alias {
			return ch
		}
	}
	t.Fatalf("no change for %q in the changeset", alias)
	return Change{}
}
