package schema

import (
	"fmt"
	"strings"
	"testing"
)

// wantDiag is one expected diagnostic. Column 0 means the column is not
// checked; msg is a fragment the message must contain.
type wantDiag struct {
	path string
	line int
	col  int
	sev  Severity
	msg  string
}

func (w wantDiag) String() string {
	return fmt.Sprintf("%d:%d: %s: [%s] ...%s...", w.line, w.col, w.path, w.sev, w.msg)
}

func (w wantDiag) matches(d Diagnostic) bool {
	return d.Path == w.path && d.Line == w.line && (w.col == 0 || d.Column == w.col) &&
		d.Severity == w.sev && strings.Contains(d.Message, w.msg)
}

// parseAll parses one file and returns every diagnostic it produced, file
// level and per document, in the order SortDiagnostics gives.
func parseAll(t testing.TB, file, input string, limits Limits) ([]*Document, []Diagnostic) {
	t.Helper()
	docs, diags := Parse(file, []byte(input), limits)
	for _, d := range docs {
		diags = append(diags, d.Diagnostics...)
	}
	SortDiagnostics(diags)
	return docs, diags
}

// assertDiags checks that got holds exactly the wanted diagnostics, in order.
func assertDiags(t *testing.T, got []Diagnostic, want []wantDiag) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i].matches(got[i])
	}
	if ok {
		return
	}
	var b strings.Builder
	b.WriteString("diagnostics differ\ngot:\n")
	for _, d := range got {
		fmt.Fprintf(&b, "  %s [%s]\n", d, d.Severity)
	}
	b.WriteString("want:\n")
	for _, w := range want {
		fmt.Fprintf(&b, "  %s\n", w)
	}
	t.Error(b.String())
}

// parseOne parses input that must hold exactly one document and no file
// level diagnostics.
func parseOne(t testing.TB, input string) *Document {
	t.Helper()
	docs, diags := Parse("job.yaml", []byte(input), Limits{})
	if len(diags) != 0 || len(docs) != 1 {
		t.Fatalf("Parse: %d documents, file diagnostics %v; want one document and none", len(docs), diags)
	}
	return docs[0]
}

// parseValid parses input that must be one valid document without warnings.
func parseValid(t testing.TB, input string) *Job {
	t.Helper()
	doc := parseOne(t, input)
	if !doc.Valid() || len(doc.Diagnostics) != 0 {
		t.Fatalf("want a valid document without diagnostics, got %v", doc.Diagnostics)
	}
	return doc.Job
}
