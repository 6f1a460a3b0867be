package schema

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// Hostile input: files from a repository are untrusted. Each limit must
// turn an expensive input into one clear error, cheaply. Time is measured in
// benchmarks, never asserted; memory is bounded and asserted.

const validHead = "apiVersion: v1\nkind: Job\nmetadata: {alias: demo}\n"

// billionLaughs is the classic alias bomb: nine levels of ten aliases each,
// a billion strings once expanded. hide is the key the bomb sits under.
func billionLaughs(hide string) string {
	var b strings.Builder
	b.WriteString(`l0: &l0 "lol"` + "\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for k := range 10 {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString(hide + ": *l9\n")
	return b.String()
}

// mergeBomb reaches the same size through merge keys, which a decoder
// expands even where plain aliases would be rejected as the wrong type: each
// level merges the previous one ten times.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString(validHead)
	b.WriteString("x:\n  m0: &m0 {A: lol}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  m%d: &m%d {<<: [", i, i)
		for k := range 10 {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("steps:\n  - name: a\n    image: alpine\n    env: {<<: *m9}\n")
	return b.String()
}

// nestedMergeBomb nests merge lists in lists, so that a walk over merge
// values recurses as deep as the aliases go.
func nestedMergeBomb() string {
	var b strings.Builder
	b.WriteString(validHead)
	b.WriteString("x:\n  - &s0 [{A: lol}]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  - &s%d [", i)
		for k := range 10 {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*s%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("steps:\n  - <<: *s9\n    name: a\n    image: alpine\n")
	return b.String()
}

func TestAliasBombs(t *testing.T) {
	t.Parallel()
	const bombMsg = "document expands to more than 10000 nodes through YAML aliases; refusing to expand it (alias bomb?)"
	tests := []struct {
		name  string
		input string
		want  wantDiag
	}{
		{
			name:  "billion laughs under an unknown key",
			input: billionLaughs("lol"),
			// Each alias costs the size of what it expands to: l1 10 x 1,
			// l2 10 x 11, l3 10 x 111, then 1111 per alias of l4: the budget
			// runs out at the eighth (1230 + 8 x 1111 > 10000).
			want: wantDiag{"l4[7]", 5, 45, sevE, bombMsg},
		},
		{
			name:  "billion laughs as steps",
			input: validHead + billionLaughs("steps"),
			want:  wantDiag{"l4[7]", 8, 45, sevE, bombMsg},
		},
		{
			name:  "merge keys",
			input: mergeBomb(),
			// m0 is 3 nodes, m1 30+3, m2 330+3, m3 3330+3: 3690 spent
			// before m4, whose second alias goes over.
			want: wantDiag{`x.m4["<<"][1]`, 9, 22, sevE, bombMsg},
		},
		{
			name:  "merge lists nested in lists",
			input: nestedMergeBomb(),
			// s0 is 4 nodes, s1 40+1, s2 410+1, s3 4110+1: 4560 spent
			// before s4, whose second alias goes over.
			want: wantDiag{"x[4][1]", 9, 15, sevE, bombMsg},
		},
		{
			name:  "alias inside its own anchor",
			input: validHead + "steps: &s [*s]\n",
			want:  wantDiag{"steps[0]", 4, 12, sevE, "alias *s is used inside its own anchor, so the document would expand forever"},
		},
		{
			name:  "merge of its own mapping",
			input: validHead + "steps:\n  - &s {name: a, image: alpine, <<: *s}\n",
			want:  wantDiag{`steps[0]["<<"]`, 5, 37, sevE, "alias *s is used inside its own anchor"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, diags := parseAll(t, "bomb.yaml", tt.input, Limits{})
			assertDiags(t, diags, []wantDiag{tt.want})
			if len(docs) != 1 || docs[0].Job != nil {
				t.Errorf("want one document without a job, got %d documents", len(docs))
			}
		})
	}
}

// TestAliasBombMemory asserts that rejecting a bomb costs little memory. It
// reads the process-wide allocation counter, so it does not run in parallel
// with other tests (a test without t.Parallel runs before the parallel ones
// are released).
func TestAliasBombMemory(t *testing.T) {
	const limit = 64 << 20
	for _, input := range []string{billionLaughs("steps"), mergeBomb(), nestedMergeBomb()} {
		data := []byte(input)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			docs, _ := Parse("bomb.yaml", data, Limits{})
			if len(docs) != 1 || !strings.Contains(docs[0].Diagnostics[0].Message, "alias bomb") {
				t.Fatalf("bomb not rejected: %v", docs[0].Diagnostics)
			}
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / 10; perRun > limit {
			t.Errorf("rejecting a bomb allocated %d bytes per parse; want under %d", perRun, limit)
		}
	}
}

// TestAliasesWithinBudget checks that ordinary use of anchors, even a lot of
// it, is not mistaken for a bomb.
func TestAliasesWithinBudget(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(validHead)
	b.WriteString("steps:\n")
	b.WriteString("  - &base {name: s0, image: alpine, retries: 2, retryDelay: 10s, env: &env {A: a, B: b, C: c, D: d}}\n")
	for i := 1; i < 256; i++ {
		fmt.Fprintf(&b, "  - {<<: *base, name: s%d, env: {<<: *env, E: e}}\n", i)
	}
	docs, diags := parseAll(t, "anchors.yaml", b.String(), Limits{})
	if len(diags) != 0 || len(docs) != 1 || !docs[0].Valid() {
		t.Fatalf("want a valid job, got:\n%s", diagLines(diags))
	}
	if got := len(docs[0].Job.Steps); got != 256 {
		t.Errorf("got %d steps, want 256", got)
	}
}

// TestFileTooLarge counts allocations, which testing.AllocsPerRun refuses
// to do in a parallel test.
func TestFileTooLarge(t *testing.T) {
	// Over the limit by one byte, and not YAML at all: if Parse decoded it,
	// it would report a syntax error as well.
	data := []byte(strings.Repeat("[", 1<<20+1))
	docs, diags := Parse("big.yaml", data, Limits{})
	if len(docs) != 0 {
		t.Errorf("got %d documents, want none", len(docs))
	}
	assertDiags(t, diags, []wantDiag{{"", 1, 1, sevE, "file is 1048577 bytes (1.0 MiB); the limit is 1048576 bytes (1.0 MiB): split it into smaller files"}})
	// Rejecting it allocates little more than the message: nothing was
	// decoded (decoding even the smallest job costs hundreds).
	if allocs := testing.AllocsPerRun(10, func() { Parse("big.yaml", data, Limits{}) }); allocs > 30 {
		t.Errorf("rejecting an oversized file made %.0f allocations, want at most 30", allocs)
	}
	// Exactly at the limit is allowed.
	small := []byte(validHead + "steps: [{name: a, image: alpine}]\n")
	if _, diags := Parse("small.yaml", small, Limits{MaxFileBytes: int64(len(small))}); len(diags) != 0 {
		t.Errorf("file at the limit: %v", diags)
	}
	if _, diags := Parse("small.yaml", small, Limits{MaxFileBytes: int64(len(small) - 1)}); len(diags) != 1 {
		t.Errorf("file one byte over the limit: %v", diags)
	}
}

func TestTooManyDocuments(t *testing.T) {
	t.Parallel()
	doc := func(i int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Job\nmetadata: {alias: job-%d}\nsteps: [{name: a, image: alpine}]\n", i)
	}
	tests := []struct {
		name     string
		docs     int
		limits   Limits
		wantDocs int
		want     []wantDiag
	}{
		{name: "at the default limit", docs: 100, wantDocs: 100},
		{
			name: "over the default limit", docs: 101, wantDocs: 100,
			// Each document takes five lines: the 101st starts on line 501.
			want: []wantDiag{{"", 501, 1, sevE, "file has more than 100 YAML documents; split it into several files"}},
		},
		{
			name: "over a configured limit", docs: 4, limits: Limits{MaxDocuments: 3}, wantDocs: 3,
			want: []wantDiag{{"", 16, 1, sevE, "file has more than 3 YAML documents"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			for i := range tt.docs {
				b.WriteString("---\n" + doc(i))
			}
			docs, diags := parseAll(t, "many.yaml", b.String(), tt.limits)
			assertDiags(t, diags, tt.want)
			if len(docs) != tt.wantDocs {
				t.Errorf("got %d documents, want %d", len(docs), tt.wantDocs)
			}
		})
	}
}

func TestTooManySteps(t *testing.T) {
	t.Parallel()
	steps := func(n int, step string) string {
		var b strings.Builder
		b.WriteString(validHead + "steps:\n")
		for i := range n {
			fmt.Fprintf(&b, step, i)
		}
		return b.String()
	}
	tests := []struct {
		name   string
		input  string
		limits Limits
		want   []wantDiag
	}{
		{name: "at the limit", input: steps(256, "  - {name: s%d, image: alpine}\n")},
		{
			name:  "over the limit",
			input: steps(257, "  - {name: s%d, image: alpine}\n"),
			want:  []wantDiag{{"steps", 5, 3, sevE, "job has 257 steps; the limit is 256"}},
		},
		{
			// The steps are not read one by one, so their own problems do
			// not flood the output.
			name:  "over the limit with broken steps",
			input: steps(100000, "  - %d\n"),
			want:  []wantDiag{{"steps", 5, 3, sevE, "job has 100000 steps; the limit is 256"}},
		},
		{
			name:   "over a configured limit",
			input:  steps(3, "  - {name: s%d, image: alpine}\n"),
			limits: Limits{MaxSteps: 2},
			want:   []wantDiag{{"steps", 5, 3, sevE, "job has 3 steps; the limit is 2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, diags := parseAll(t, "steps.yaml", tt.input, tt.limits)
			assertDiags(t, diags, tt.want)
		})
	}
}

// TestDeepNesting feeds input nested far deeper than any manifest; the YAML
// decoder refuses it and Parse must report that, not crash.
func TestDeepNesting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  wantDiag
	}{
		{"flow sequences", strings.Repeat("[", 100000), wantDiag{"", 1, 1, sevE, "invalid YAML: exceeded max depth of 10000"}},
		{"flow mappings", strings.Repeat("{a: ", 100000), wantDiag{"", 1, 1, sevE, "invalid YAML: exceeded max depth of 10000"}},
		{"flow sequences as steps", validHead + "steps: " + strings.Repeat("[", 100000), wantDiag{"", 4, 1, sevE, "invalid YAML: exceeded max depth of 10000"}},
		// Indentation makes block nesting cost its depth squared in bytes:
		// 1 MiB allows about 1400 levels, which the YAML decoder accepts.
		{"block sequences", validHead + "steps:\n" + blockNest(1400), wantDiag{"steps[0]", 6, 2, sevE, "expected a mapping, got a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, diags := parseAll(t, "deep.yaml", tt.input, Limits{})
			assertDiags(t, diags, []wantDiag{tt.want})
		})
	}
}

// blockNest writes n block sequences, each inside the one before.
func blockNest(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.Repeat(" ", i) + "-\n")
	}
	return b.String()
}

func BenchmarkAliasBomb(b *testing.B) {
	for _, bb := range []struct {
		name  string
		input string
	}{
		{"billion-laughs", billionLaughs("steps")},
		{"merge-keys", mergeBomb()},
		{"nested-merge-lists", nestedMergeBomb()},
	} {
		data := []byte(bb.input)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				docs, _ := Parse("bomb.yaml", data, Limits{})
				if len(docs) != 1 || docs[0].Job != nil {
					b.Fatal("bomb not rejected")
				}
			}
		})
	}
}

// unknownKeys is a valid job followed by n unknown top-level fields: n
// problems.
func unknownKeys(n int) string {
	var b strings.Builder
	b.WriteString(validHead + "steps: [{name: a, image: alpine}]\n")
	for i := range n {
		fmt.Fprintf(&b, "k%d: x\n", i)
	}
	return b.String()
}

// edgeFlood is a job of 256 steps, each with 100 edges to steps that do not
// exist, named like the real ones so that each invites a suggestion.
func edgeFlood() string {
	var b strings.Builder
	b.WriteString(validHead + "steps:\n")
	for i := range 256 {
		fmt.Fprintf(&b, "  - name: step-%03d\n    image: alpine\n    next: [", i)
		for k := range 100 {
			fmt.Fprintf(&b, "stap-%03d, ", k)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestDiagnosticsCapped(t *testing.T) {
	t.Parallel()
	const truncated = "document has more than 1000 problems; only the first 1000 found are reported"
	tests := []struct {
		name      string
		input     string
		wantCount int
		wantFirst wantDiag
	}{
		{
			name:      "1000 problems are all reported",
			input:     unknownKeys(1000),
			wantCount: 1000,
			wantFirst: wantDiag{"k0", 5, 1, sevE, `unknown field "k0"`},
		},
		{
			name:      "1001 problems",
			input:     unknownKeys(1001),
			wantCount: 1001,
			wantFirst: wantDiag{"", 1, 1, sevE, truncated},
		},
		{
			name:      "duplicate keys",
			input:     validHead + "steps: [{name: a, image: alpine}]\n" + strings.Repeat("x: 1\n", 100000),
			wantCount: 1001,
			wantFirst: wantDiag{"", 1, 1, sevE, truncated},
		},
		{
			name:      "edges to missing steps",
			input:     edgeFlood(),
			wantCount: 1001,
			wantFirst: wantDiag{"", 1, 1, sevE, truncated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, diags := Parse("flood.yaml", []byte(tt.input), Limits{})
			if len(diags) != 0 || len(docs) != 1 {
				t.Fatalf("got %d documents and file diagnostics %v", len(docs), diags)
			}
			got := docs[0].Diagnostics
			if len(got) != tt.wantCount {
				t.Errorf("got %d diagnostics, want %d", len(got), tt.wantCount)
			}
			if len(got) == 0 || !tt.wantFirst.matches(got[0]) {
				t.Errorf("first diagnostic %v, want %v", got[0], tt.wantFirst)
			}
		})
	}
}

// TestEdgeFloodMemory bounds the cost of suggestions for edges to missing
// steps: each compares a name with every step, so without a budget this
// input (256 steps, 25,600 bad edges) allocates over a gigabyte. Reads the
// process-wide allocation counter, so it does not run in parallel.
func TestEdgeFloodMemory(t *testing.T) {
	const limit = 64 << 20
	data := []byte(edgeFlood())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	docs, _ := Parse("flood.yaml", data, Limits{})
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("parsing allocated %d bytes; want under %d", got, limit)
	}
	suggested := 0
	for _, d := range docs[0].Diagnostics {
		if strings.Contains(d.Message, "did you mean") {
			suggested++
		}
	}
	if suggested == 0 || suggested > 20 {
		t.Errorf("%d diagnostics suggest a step; want between 1 and 20", suggested)
	}
}
