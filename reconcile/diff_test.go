package reconcile

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// renderDiff writes a diff the way a plan shows it to people.
func renderDiff(diff []FieldDiff) string {
	var b strings.Builder
	for _, d := range diff {
		switch d.Kind() {
		case "added":
			fmt.Fprintf(&b, "+ %s: %s\n", d.Path, FormatValue(d.New))
		case "removed":
			fmt.Fprintf(&b, "- %s: %s\n", d.Path, FormatValue(d.Old))
		default:
			fmt.Fprintf(&b, "~ %s: %s -> %s\n", d.Path, FormatValue(d.Old), FormatValue(d.New))
		}
	}
	return b.String()
}

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestDiffSpecsGolden(t *testing.T) {
	t.Parallel()
	f := setup(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		jobs := f.parse(name, string(b))
		if len(jobs) != 1 {
			t.Fatalf("%s holds %d jobs", name, len(jobs))
		}
		spec, err := jobs[0].CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return spec
	}
	oldSpec, newSpec := read("nightly-etl.old.yaml"), read("nightly-etl.new.yaml")

	diff, err := DiffSpecs(oldSpec, newSpec)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "nightly-etl.diff.golden", renderDiff(diff))

	// The reverse diff names the same fields, with added and removed swapped.
	back, err := DiffSpecs(newSpec, oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flipped(back), sortedSummary(diff); !slices.Equal(got, want) {
		t.Errorf("reverse diff:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// flipped summarizes a diff as the diff in the other direction would be,
// sorted: the order of steps in a diff follows the first spec's.
func flipped(diff []FieldDiff) []string {
	out := make([]string, 0, len(diff))
	for _, d := range diff {
		d.Old, d.New = d.New, d.Old
		out = append(out, d.Path+" "+d.Kind())
	}
	slices.Sort(out)
	return out
}

func sortedSummary(diff []FieldDiff) []string {
	out := diffSummary(diff)
	slices.Sort(out)
	return out
}

func TestDiffSpecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new string
		want     []string // "path kind old new", values as JSON
		wantErr  string
	}{
		{name: "equal", old: `{"a":1,"b":{"c":[1,2]}}`, new: `{"b":{"c":[1,2]},"a":1}`},
		{name: "both empty", old: ``, new: ``},
		{name: "scalar changed", old: `{"a":1}`, new: `{"a":2}`, want: []string{"a changed 1 2"}},
		{name: "type changed", old: `{"a":"1"}`, new: `{"a":1}`, want: []string{`a changed "1" 1`}},
		{name: "object replaced by scalar", old: `{"a":{"b":1}}`, new: `{"a":true}`, want: []string{`a changed {"b":1} true`}},
		{name: "nested key added and removed", old: `{"m":{"x":1}}`, new: `{"m":{"y":2}}`, want: []string{"m.x removed 1 ", "m.y added  2"}},
		{name: "keys that are not identifiers are quoted", old: `{"labels":{"app.kubernetes.io/name":"a","":"e"}}`, new: `{"labels":{"app.kubernetes.io/name":"b","":"f"}}`,
			want: []string{`labels[""] changed "e" "f"`, `labels["app.kubernetes.io/name"] changed "a" "b"`}},
		{name: "scalar list reported whole", old: `{"c":["a","b"]}`, new: `{"c":["a","x","b"]}`, want: []string{`c changed ["a","b"] ["a","x","b"]`}},
		{name: "object list by position", old: `{"cb":[{"u":"a"},{"u":"b"}]}`, new: `{"cb":[{"u":"a"},{"u":"c"},{"u":"d"}]}`,
			want: []string{`cb[1].u changed "b" "c"`, `cb[2] added  {"u":"d"}`}},
		{name: "steps matched by name", old: `{"steps":[{"name":"a","x":1},{"name":"b","x":1}]}`, new: `{"steps":[{"name":"n","x":0},{"name":"a","x":1},{"name":"b","x":2}]}`,
			want: []string{`steps[b].x changed 1 2`, `steps[n] added  {"name":"n","x":0}`}},
		{name: "steps reordered", old: `{"steps":[{"name":"a"},{"name":"b"}]}`, new: `{"steps":[{"name":"b"},{"name":"a"}]}`,
			want: []string{`steps.order changed ["a","b"] ["b","a"]`}},
		{name: "steps removed around a reorder of the rest", old: `{"steps":[{"name":"a"},{"name":"x"},{"name":"b"}]}`, new: `{"steps":[{"name":"a"},{"name":"b"}]}`,
			want: []string{`steps[x] removed {"name":"x"} `}},
		{name: "steps with duplicate names fall back to positions", old: `{"steps":[{"name":"a","x":1},{"name":"a","x":2}]}`, new: `{"steps":[{"name":"a","x":1},{"name":"a","x":3}]}`,
			want: []string{`steps[1].x changed 2 3`}},
		{name: "a list named steps below the top is positional", old: `{"m":{"steps":[{"name":"a"},{"name":"b"}]}}`, new: `{"m":{"steps":[{"name":"b"},{"name":"a"}]}}`,
			want: []string{`m.steps[0].name changed "a" "b"`, `m.steps[1].name changed "b" "a"`}},
		{name: "large integers are compared exactly", old: `{"n":9007199254740993}`, new: `{"n":9007199254740992}`,
			want: []string{`n changed 9007199254740993 9007199254740992`}},
		{name: "invalid actual spec", old: `{"a":`, new: `{}`, wantErr: "decode actual spec"},
		{name: "invalid desired spec", old: `{}`, new: `[1,`, wantErr: "decode desired spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			diff, err := DiffSpecs([]byte(tt.old), []byte(tt.new))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range diff {
				got = append(got, fmt.Sprintf("%s %s %s %s", d.Path, d.Kind(), d.Old, d.New))
				for _, v := range []json.RawMessage{d.Old, d.New} {
					if v != nil && !json.Valid(v) {
						t.Errorf("%s: value %q is not JSON", d.Path, v)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("diff =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{in: ``, want: ``},
		{in: `"plain"`, want: `plain`},
		{in: `"secret://vault/kv/a#b"`, want: `secret://vault/kv/a#b`},
		{in: `""`, want: `""`},
		{in: `" padded"`, want: `" padded"`},
		{in: `"two\nlines"`, want: `"two\nlines"`},
		{in: `"say \"hi\""`, want: `"say \"hi\""`},
		{in: `42`, want: `42`},
		{in: `true`, want: `true`},
		{in: `["a","b"]`, want: `["a","b"]`},
		{in: `{"k":"v"}`, want: `{"k":"v"}`},
	}
	for _, tt := range tests {
		var in json.RawMessage
		if tt.in != "" {
			in = json.RawMessage(tt.in)
		}
		if got := FormatValue(in); got != tt.want {
			t.Errorf("FormatValue(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFieldDiffKind(t *testing.T) {
	t.Parallel()
	v := json.RawMessage(`1`)
	for _, tt := range []struct {
		d    FieldDiff
		want string
	}{
		{FieldDiff{New: v}, "added"},
		{FieldDiff{Old: v}, "removed"},
		{FieldDiff{Old: v, New: v}, "changed"},
	} {
		if got := tt.d.Kind(); got != tt.want {
			t.Errorf("Kind(%+v) = %s, want %s", tt.d, got, tt.want)
		}
	}
	// JSON round trip keeps the kind: absent values stay absent.
	b, err := json.Marshal(FieldDiff{Path: "p", New: v})
	if err != nil || !bytes.Equal(b, []byte(`{"path":"p","new":1}`)) {
		t.Errorf("marshal = %s, %v", b, err)
	}
}
