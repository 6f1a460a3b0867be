package schema

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and checks what must hold for any
// input: no panic; every diagnostic is located and says something; and for a
// valid document, Normalize is a fixed point and the canonical JSON carries
// the whole spec (decoding it, or parsing it as YAML, gives the same hash).
//
// The seeds in testdata/fuzz/FuzzParse run as ordinary tests with go test.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz.yaml"
		docs, diags := Parse(file, data, Limits{})
		checkDiagnostics(t, file, diags)
		for _, d := range docs {
			if d.File != file {
				t.Errorf("document %d: File = %q, want %q", d.Index, d.File, file)
			}
			if d.Line < 1 {
				t.Errorf("document %d: Line = %d, want >= 1", d.Index, d.Line)
			}
			checkDiagnostics(t, file, d.Diagnostics)
		}
		checkDiagnostics(t, file, CheckSet(docs))
		for _, d := range docs {
			if d.Job == nil {
				continue
			}
			hash := d.Job.Hash() // must not panic on a partial job either
			d.Job.Edges()
			if !d.Valid() {
				continue
			}
			c := d.Job.Clone()
			Normalize(c)
			if got := c.Hash(); got != hash {
				t.Errorf("document %d: Normalize is not idempotent\nbefore: %s\nafter:  %s", d.Index, mustJSON(d.Job), mustJSON(c))
			}
			b, err := d.Job.CanonicalJSON()
			if err != nil {
				t.Fatalf("document %d: CanonicalJSON: %v", d.Index, err)
			}
			var j Job
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatalf("document %d: canonical JSON does not decode: %v\n%s", d.Index, err, b)
			}
			if got := j.Hash(); got != hash {
				t.Errorf("document %d: canonical JSON round trip changed the hash\nbefore: %s\nafter:  %s", d.Index, b, mustJSON(&j))
			}
			// JSON is YAML: the canonical form parses back to the same job,
			// unless encoding/json left a character raw that YAML does not
			// take as it is.
			if !yamlPrintable(b) {
				continue
			}
			again, diags := Parse(file, b, Limits{})
			if len(diags) != 0 || len(again) != 1 || !again[0].Valid() {
				t.Fatalf("document %d: canonical JSON does not parse back\n%s\nfile: %v", d.Index, b, diags)
			}
			if got := again[0].Job.Hash(); got != hash {
				t.Errorf("document %d: parsing the canonical JSON changed the hash\nbefore: %s\nafter:  %s", d.Index, b, mustJSON(again[0].Job))
			}
			checkEdges(t, d.Job)
		}
	})
}

// yamlPrintable reports whether b holds only characters that YAML reads as
// themselves. encoding/json escapes control characters below U+0020 and
// U+2028/U+2029, but leaves DEL, the C1 controls and U+FFFE/U+FFFF raw,
// which YAML rejects, and NEL, which YAML 1.1 reads as a line break.
func yamlPrintable(b []byte) bool {
	for _, r := range string(b) {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0xfffe, r == 0xffff:
			return false
		}
	}
	return true
}

func checkDiagnostics(t *testing.T, file string, diags []Diagnostic) {
	t.Helper()
	for _, d := range diags {
		if d.File != file || d.Line < 1 || d.Column < 1 || d.Message == "" ||
			(d.Severity != SeverityError && d.Severity != SeverityWarning) {
			t.Errorf("malformed diagnostic %#v", d)
		}
	}
}

// checkEdges checks that a valid job's edges join steps that exist and form
// no cycle.
func checkEdges(t *testing.T, j *Job) {
	t.Helper()
	names := make([]string, 0, len(j.Steps))
	for _, s := range j.Steps {
		names = append(names, s.Name)
	}
	// Kahn's algorithm: every step can be ordered iff there is no cycle.
	indegree := map[string]int{}
	out := map[string][]string{}
	for _, e := range j.Edges() {
		if !slices.Contains(names, e.From) || !slices.Contains(names, e.To) || e.From == e.To {
			t.Errorf("edge %s -> %s of a valid job", e.From, e.To)
			return
		}
		out[e.From] = append(out[e.From], e.To)
		indegree[e.To]++
	}
	var ready []string
	for _, n := range names {
		if indegree[n] == 0 {
			ready = append(ready, n)
		}
	}
	ordered := 0
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		ordered++
		for _, m := range out[n] {
			if indegree[m]--; indegree[m] == 0 {
				ready = append(ready, m)
			}
		}
	}
	if ordered != len(names) {
		t.Errorf("valid job has a cycle: only %d of %d steps can be ordered", ordered, len(names))
	}
}
