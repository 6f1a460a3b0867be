package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/caesium-io/caesium/schema"
)

// FieldDiff is one changed field between the actual and the desired spec.
// Old and New are JSON values; Old is absent for an added field and New for
// a removed one.
type FieldDiff struct {
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// Kind says whether the field was added, removed or changed.
func (d FieldDiff) Kind() string {
	switch {
	case d.Old == nil:
		return "added"
	case d.New == nil:
		return "removed"
	}
	return "changed"
}

// String renders the change for people: "+ path: new", "- path: old" or
// "~ path: old -> new".
func (d FieldDiff) String() string {
	switch d.Kind() {
	case "added":
		return fmt.Sprintf("+ %s: %s", d.Path, FormatValue(d.New))
	case "removed":
		return fmt.Sprintf("- %s: %s", d.Path, FormatValue(d.Old))
	}
	return fmt.Sprintf("~ %s: %s -> %s", d.Path, FormatValue(d.Old), FormatValue(d.New))
}

// DiffSpecs compares two specs written as canonical JSON and lists every
// changed leaf field, in a stable order. Steps are matched by name, not
// position, so inserting a step shows one added step rather than every later
// step changed; a reordering shows as a change of steps order.
func DiffSpecs(oldSpec, newSpec []byte) ([]FieldDiff, error) {
	o, err := decodeSpec(oldSpec)
	if err != nil {
		return nil, fmt.Errorf("decode actual spec: %w", err)
	}
	n, err := decodeSpec(newSpec)
	if err != nil {
		return nil, fmt.Errorf("decode desired spec: %w", err)
	}
	var out []FieldDiff
	diffValue(&out, "", o, n)
	return out, nil
}

// decodeSpec reads JSON keeping numbers as written: through float64, two
// integers beyond 2^53 would compare equal.
func decodeSpec(spec []byte) (any, error) {
	if len(spec) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the top-level value")
	}
	return v, nil
}

func diffValue(out *[]FieldDiff, path string, o, n any) {
	switch ov := o.(type) {
	case map[string]any:
		if nv, ok := n.(map[string]any); ok {
			diffMap(out, path, ov, nv)
			return
		}
	case []any:
		if nv, ok := n.([]any); ok {
			if names, ok := stepNames(path, ov, nv); ok {
				diffNamed(out, path, ov, nv, names)
				return
			}
			diffList(out, path, ov, nv)
			return
		}
	}
	if jsonEqual(o, n) {
		return
	}
	*out = append(*out, FieldDiff{Path: path, Old: raw(o), New: raw(n)})
}

func diffMap(out *[]FieldDiff, path string, o, n map[string]any) {
	keys := make([]string, 0, len(o)+len(n))
	for k := range o {
		keys = append(keys, k)
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		ov, inOld := o[k]
		nv, inNew := n[k]
		p := schema.JoinPath(path, k)
		switch {
		case !inOld:
			*out = append(*out, FieldDiff{Path: p, New: raw(nv)})
		case !inNew:
			*out = append(*out, FieldDiff{Path: p, Old: raw(ov)})
		default:
			diffValue(out, p, ov, nv)
		}
	}
}

// diffList compares lists element by element; lists of scalars that differ
// are reported whole, which reads better for commands and edge lists.
func diffList(out *[]FieldDiff, path string, o, n []any) {
	if jsonEqual(o, n) {
		return
	}
	if allScalars(o) && allScalars(n) {
		*out = append(*out, FieldDiff{Path: path, Old: raw(o), New: raw(n)})
		return
	}
	for i := 0; i < max(len(o), len(n)); i++ {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case i >= len(o):
			*out = append(*out, FieldDiff{Path: p, New: raw(n[i])})
		case i >= len(n):
			*out = append(*out, FieldDiff{Path: p, Old: raw(o[i])})
		default:
			diffValue(out, p, o[i], n[i])
		}
	}
}

// stepNames returns the step names of both lists when path is the job's
// steps and every step has a unique name.
func stepNames(path string, o, n []any) ([]string, bool) {
	if path != "steps" {
		return nil, false
	}
	var names []string
	seen := map[string]bool{}
	for _, list := range [][]any{o, n} {
		local := map[string]bool{}
		for _, s := range list {
			m, ok := s.(map[string]any)
			if !ok {
				return nil, false
			}
			name, ok := m["name"].(string)
			if !ok || local[name] {
				return nil, false
			}
			local[name] = true
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names, true
}

func diffNamed(out *[]FieldDiff, path string, o, n []any, names []string) {
	byName := func(list []any) (map[string]any, []any) {
		m := make(map[string]any, len(list))
		order := make([]any, 0, len(list))
		for _, s := range list {
			name := s.(map[string]any)["name"].(string)
			m[name] = s
			order = append(order, name)
		}
		return m, order
	}
	om, oOrder := byName(o)
	nm, nOrder := byName(n)
	for _, name := range names {
		p := fmt.Sprintf("%s[%s]", path, name)
		ov, inOld := om[name]
		nv, inNew := nm[name]
		switch {
		case !inOld:
			*out = append(*out, FieldDiff{Path: p, New: raw(nv)})
		case !inNew:
			*out = append(*out, FieldDiff{Path: p, Old: raw(ov)})
		default:
			diffValue(out, p, ov, nv)
		}
	}
	// Order matters when steps run in file order, so a reordering is a change.
	common := func(order []any, other map[string]any) []any {
		var c []any
		for _, name := range order {
			if _, ok := other[name.(string)]; ok {
				c = append(c, name)
			}
		}
		return c
	}
	if oc, nc := common(oOrder, nm), common(nOrder, om); !jsonEqual(oc, nc) {
		*out = append(*out, FieldDiff{Path: path + ".order", Old: raw(oOrder), New: raw(nOrder)})
	}
}

func allScalars(list []any) bool {
	for _, v := range list {
		switch v.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(strconv.Quote(fmt.Sprint(v)))
	}
	return b
}

func jsonEqual(a, b any) bool {
	return bytes.Equal(raw(a), raw(b))
}

// FormatValue renders a diff value for people: strings without quotes when
// they are plain, everything else as compact JSON.
func FormatValue(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil && s != "" && !strings.ContainsAny(s, "\n\"") && strings.TrimSpace(s) == s {
		return s
	}
	return string(v)
}
