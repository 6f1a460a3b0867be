package schema

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// nodeDecoder is implemented by types that read themselves from a YAML node.
// They report problems through the decoder so every problem is located.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// decoder turns one YAML document into Go values strictly: unknown fields,
// wrong types and duplicate keys are errors, and it goes on after each one so
// that a document reports all its problems at once. It records the position of
// every field path it sees, for the semantic checks that run afterwards.
type decoder struct {
	file  string
	diags []Diagnostic
	pos   map[string]Position
	// failed holds the paths that already have a decoding error, so that
	// semantic checks do not report the same field again.
	failed map[string]bool
	// null holds the paths written with an explicit null, which reads as
	// absent: the position is kept for messages, but the field is not "set".
	null map[string]bool
	// dupReported holds the key nodes already reported as duplicates, so a
	// mapping brought in by several merge keys is reported once.
	dupReported map[*yaml.Node]bool

	maxAliasNodes int
	maxSteps      int
	aliasDepth    int // > 0 while walking nodes reached through an alias
	aliasNodes    int // nodes visited through aliases
	aborted       bool
	dropped       bool // a diagnostic was left out: there were too many
}

func newDecoder(file string, limits Limits) *decoder {
	return &decoder{
		file:          file,
		pos:           make(map[string]Position),
		failed:        make(map[string]bool),
		null:          make(map[string]bool),
		maxAliasNodes: limits.MaxAliasNodes,
		maxSteps:      limits.MaxSteps,
	}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(SeverityError, posOf(n), path, fmt.Sprintf(format, args...))
}

func (d *decoder) add(sev Severity, p Position, path, msg string) {
	if sev == SeverityError {
		d.failed[path] = true
	}
	if d.full() {
		d.dropped = true
		return
	}
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: p.Line, Column: p.Column, Path: path, Severity: sev, Message: msg})
}

// full reports whether the document has as many diagnostics as it may.
func (d *decoder) full() bool { return len(d.diags) >= maxDiagnostics }

func posOf(n *yaml.Node) Position {
	if n == nil {
		return Position{Line: 1, Column: 1}
	}
	return Position{Line: n.Line, Column: n.Column}
}

// enter follows aliases, charging every node reached through one against
// the alias budget, so that an expansion bomb stops after a bounded amount of
// work instead of exhausting memory.
func (d *decoder) enter(n *yaml.Node, path string) (*yaml.Node, func(), bool) {
	leave := func() {}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errorf(n, path, "alias *%s does not refer to an anchor", n.Value)
			return nil, leave, false
		}
		d.aliasDepth++
		leave = func() { d.aliasDepth-- }
		n = n.Alias
	}
	if d.aliasDepth > 0 {
		d.aliasNodes++
		if d.aliasNodes > d.maxAliasNodes {
			d.errorf(n, path, "document expands to more than %d nodes through YAML aliases; refusing to expand it further (alias bomb?)", d.maxAliasNodes)
			d.aborted = true
			return nil, leave, false
		}
	}
	return n, leave, true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.aborted {
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = posOf(n)
	}
	n, leave, ok := d.enter(n, path)
	defer leave()
	if !ok {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.null[path] = true // an explicit null reads as absent
		return
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, path)
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeStringMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if s, ok := d.scalarString(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int:
		if i, ok := d.scalarInt(n, path); ok {
			v.SetInt(i)
		}
	case reflect.Bool:
		if b, ok := d.scalarBool(n, path); ok {
			v.SetBool(b)
		}
	default:
		panic(fmt.Sprintf("schema: no decoder for %s", v.Type()))
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
}

func (d *decoder) scalarString(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", kindName(n))
		return "", false
	}
	if n.Tag != "!!str" {
		d.errorf(n, path, "expected a string, got %s; quote it (\"%s\") if it is meant as text", kindName(n), n.Value)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) scalarInt(n *yaml.Node, path string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, path, "expected an integer, got %s", kindName(n))
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.errorf(n, path, "integer %s is out of range %d to %d", n.Value, math.MinInt32, math.MaxInt32)
		return 0, false
	case err != nil: // tagged !!int by hand
		d.errorf(n, path, "expected an integer, got %q", n.Value)
		return 0, false
	}
	return i, true
}

func (d *decoder) scalarBool(n *yaml.Node, path string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, path, "expected true or false, got %s", kindName(n))
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		d.errorf(n, path, "expected true or false, got %q", n.Value)
		return false, false
	}
	return b, true
}

// pair is one key/value of a mapping after merge keys are expanded.
type pair struct {
	key   *yaml.Node
	value *yaml.Node
}

// pairs lists a mapping's entries. Keys must be strings and unique; entries
// brought in with the YAML merge key (<<: *base) yield to explicit ones.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var explicit, merged []pair
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergePairs(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !d.dupReported[k] {
				if d.dupReported == nil {
					d.dupReported = make(map[*yaml.Node]bool)
				}
				d.dupReported[k] = true
				where := fmt.Sprintf("line %d", first.Line)
				if first.Line == k.Line {
					where += fmt.Sprintf(", column %d", first.Column)
				}
				d.errorf(k, JoinPath(path, k.Value), "duplicate key %q (first set at %s)", k.Value, where)
			}
			continue
		}
		seen[k.Value] = k
		explicit = append(explicit, pair{k, v})
	}
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; dup {
			continue
		}
		seen[p.key.Value] = p.key
		explicit = append(explicit, p)
	}
	return explicit
}

// mergePairs reads the value of a merge key: a mapping or a list of
// mappings. Problems with the value itself are reported at the merge key's
// path (metadata["<<"]); entries are read as entries of the mapping at path.
func (d *decoder) mergePairs(v *yaml.Node, path string) []pair {
	mp := JoinPath(path, "<<")
	v, leave, ok := d.enter(v, mp)
	defer leave()
	if !ok {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for i, item := range v.Content {
			for _, p := range d.mergeItem(item, path, fmt.Sprintf("%s[%d]", mp, i)) {
				if !seen[p.key.Value] { // earlier maps in a merge list win
					seen[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.errorf(v, mp, "the merge key << needs a mapping or a list of mappings, got %s", kindName(v))
	return nil
}

// mergeItem reads one item of a merge list, which must be a mapping.
func (d *decoder) mergeItem(item *yaml.Node, path, itemPath string) []pair {
	v, leave, ok := d.enter(item, itemPath)
	defer leave()
	if !ok {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.errorf(v, itemPath, "the merge key << needs a mapping or a list of mappings; this item is %s", kindName(v))
		return nil
	}
	return d.pairs(v, path)
}

type fieldInfo struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var out []fieldInfo
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, fieldInfo{name: name, index: i})
	}
	fieldCache.Store(t, out)
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	ps := d.pairs(n, path)
	for _, p := range ps {
		key := p.key.Value
		idx := -1
		for _, f := range fields {
			if f.name == key {
				idx = f.index
				break
			}
		}
		if idx < 0 {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.name
			}
			msg := fmt.Sprintf("unknown field %q", key)
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
				if !hasKey(ps, s) {
					d.failed[JoinPath(path, s)] = true // "image is required" would only repeat this
				}
			} else {
				msg += "; allowed: " + strings.Join(names, ", ")
			}
			d.errorf(p.key, JoinPath(path, key), "%s", msg)
			continue
		}
		d.decode(p.value, v.Field(idx), JoinPath(path, key))
	}
}

func hasKey(ps []pair, key string) bool {
	for _, p := range ps {
		if p.key.Value == key {
			return true
		}
	}
	return false
}

// decodeStringMap reads a map of strings to strings (labels, env, headers).
func (d *decoder) decodeStringMap(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
		panic(fmt.Sprintf("schema: no decoder for %s", v.Type()))
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of names to strings, got %s", kindName(n))
		return
	}
	ps := d.pairs(n, path)
	if len(ps) == 0 {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(ps)))
	}
	for _, p := range ps {
		kp := JoinPath(path, p.key.Value)
		d.pos[kp] = posOf(p.key)
		if d.aborted {
			return
		}
		val, leave, ok := d.enter(p.value, kp)
		if !ok {
			leave()
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			d.errorf(val, kp, "value is empty; write \"\" for an empty string")
		} else if s, ok := d.scalarString(val, kp); ok {
			v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), reflect.ValueOf(s).Convert(v.Type().Elem()))
		}
		leave()
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	if path == "steps" && len(n.Content) > d.maxSteps {
		// Checked before decoding, so that a huge list costs no more work.
		d.errorf(n, path, "job has %d steps; the limit is %d", len(n.Content), d.maxSteps)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// JoinPath appends a mapping key to a field path, quoting keys that are not
// plain identifiers: metadata.labels["app.kubernetes.io/name"]. Diagnostics
// and diffs name fields the same way.
func JoinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return fmt.Sprintf("%s[%s]", path, strconv.Quote(key))
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func (dur *Duration) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		d.errorf(n, path, "expected a duration with a unit such as %ss, got the bare number %s", n.Value, n.Value)
		return
	}
	s, ok := d.scalarString(n, path)
	if !ok {
		return
	}
	if strings.TrimSpace(s) == "" {
		d.errorf(n, path, "duration is empty; write a number with a unit such as 30s, 10m or 1h30m, or remove the field")
		return
	}
	v, err := parseDuration(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	*dur = v
}

func (l *StringList) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := d.scalarString(n, path); ok {
			*l = StringList{s}
			d.pos[path+"[0]"] = posOf(n)
		}
	case yaml.SequenceNode:
		out := make(StringList, len(n.Content))
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			d.decode(item, reflect.ValueOf(&out[i]).Elem(), ip)
		}
		*l = out
	default:
		d.errorf(n, path, "expected a step name or a list of step names, got %s", kindName(n))
	}
}

func (c *Command) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.SequenceNode:
		out := make(Command, len(n.Content))
		for i, item := range n.Content {
			d.decode(item, reflect.ValueOf(&out[i]).Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
		*c = out
	case yaml.ScalarNode:
		s, ok := d.scalarString(n, path)
		if !ok {
			return
		}
		cmd, err := parseJSONCommand(s)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		*c = cmd
	default:
		d.errorf(n, path, "expected a list of strings, got %s", kindName(n))
	}
}
