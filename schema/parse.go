package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Limits bound the work and memory one manifest file may cost. Files from a
// repository are untrusted input: a file over a limit is rejected with a
// clear error before it can cost more.
type Limits struct {
	MaxFileBytes  int64 // bytes per file; default 1 MiB
	MaxDocuments  int   // YAML documents per file; default 100
	MaxSteps      int   // steps per job; default 256
	MaxAliasNodes int   // nodes a document may reach through YAML aliases; default 10,000
}

// DefaultLimits are the limits used where none are configured.
var DefaultLimits = Limits{
	MaxFileBytes:  1 << 20,
	MaxDocuments:  100,
	MaxSteps:      256,
	MaxAliasNodes: 10_000,
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if l.MaxDocuments <= 0 {
		l.MaxDocuments = DefaultLimits.MaxDocuments
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = DefaultLimits.MaxSteps
	}
	if l.MaxAliasNodes <= 0 {
		l.MaxAliasNodes = DefaultLimits.MaxAliasNodes
	}
	return l
}

// Document is one YAML document of a manifest file.
type Document struct {
	File  string // name the diagnostics use
	Index int    // 0-based position of the document in its file
	Line  int    // line on which the document starts

	// Job is the decoded, defaulted job. It is nil when the document could not
	// be decoded at all; it may be partial when Diagnostics holds errors.
	Job         *Job
	Diagnostics []Diagnostic

	pos    map[string]Position
	failed map[string]bool
}

// Valid reports whether the document decoded and has no error diagnostics.
func (d *Document) Valid() bool { return d.Job != nil && !HasErrors(d.Diagnostics) }

// Pos returns the position of the field path, or of its nearest ancestor
// present in the file.
func (d *Document) Pos(path string) Position {
	return lookupPos(d.pos, path, Position{Line: d.Line, Column: 1})
}

// Parse decodes every document of a manifest file, applies defaults and runs
// the per-job checks. Problems that concern the file as a whole (its size,
// YAML syntax, too many documents) come back as file diagnostics; problems of
// one document are in that Document's Diagnostics. Empty documents are
// skipped. Cross-document checks (duplicate aliases) are CheckSet's.
func Parse(file string, data []byte, limits Limits) ([]*Document, []Diagnostic) {
	limits = limits.withDefaults()
	if int64(len(data)) > limits.MaxFileBytes {
		return nil, []Diagnostic{fileError(file, 1, fmt.Sprintf("file is %s; the limit is %s", humanBytes(int64(len(data))), humanBytes(limits.MaxFileBytes)))}
	}
	var (
		docs  []*Document
		diags []Diagnostic
	)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for index := 0; ; index++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			diags = append(diags, syntaxError(file, err))
			break
		}
		if index >= limits.MaxDocuments {
			diags = append(diags, fileError(file, root.Line, fmt.Sprintf("file has more than %d YAML documents; split it into several files", limits.MaxDocuments)))
			break
		}
		if isEmptyDocument(&root) {
			continue
		}
		docs = append(docs, decodeJob(file, index, &root, limits))
	}
	return docs, diags
}

// ReadLimited reads at most limit+1 bytes, so that an oversized input is
// detected by Parse without being read whole.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimits.MaxFileBytes
	}
	return io.ReadAll(io.LimitReader(r, limit+1))
}

func decodeJob(file string, index int, root *yaml.Node, limits Limits) *Document {
	doc := &Document{File: file, Index: index, Line: root.Line}
	body := root
	if body.Kind == yaml.DocumentNode && len(body.Content) == 1 {
		body = body.Content[0]
	}
	doc.Line = body.Line
	d := newDecoder(file, limits.MaxAliasNodes)
	var job Job
	d.decode(body, reflect.ValueOf(&job).Elem(), "")
	doc.pos = d.pos
	doc.failed = d.failed
	doc.Diagnostics = d.diags
	if d.aborted || body.Kind != yaml.MappingNode && body.Kind != yaml.AliasNode {
		return doc
	}
	v := &validator{doc: doc, limits: limits}
	v.validate(&job)
	Normalize(&job)
	doc.Job = &job
	return doc
}

func isEmptyDocument(root *yaml.Node) bool {
	if root.Kind == 0 {
		return true
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return true
		}
		c := root.Content[0]
		return c.Kind == yaml.ScalarNode && c.Tag == "!!null"
	}
	return false
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func syntaxError(file string, err error) Diagnostic {
	line := 1
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	msg := err.Error()
	msg = yamlLinePrefix.ReplaceAllString(msg, "")
	return fileError(file, line, "invalid YAML: "+msg)
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)

func fileError(file string, line int, msg string) Diagnostic {
	return Diagnostic{File: file, Line: line, Column: 1, Severity: SeverityError, Message: msg}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// lookupPos finds the position of path or of its nearest recorded ancestor.
func lookupPos(pos map[string]Position, path string, fallback Position) Position {
	for {
		if p, ok := pos[path]; ok {
			return p
		}
		if path == "" {
			return fallback
		}
		path = parentPath(path)
	}
}

// parentPath strips the last element of a field path: steps[2].name ->
// steps[2] -> steps -> "".
func parentPath(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[:i]
		case '[':
			return path[:i]
		case '"':
			// inside a quoted key: skip to its opening bracket
			if j := lastUnquotedBracket(path[:i]); j >= 0 {
				return path[:j]
			}
		}
	}
	return ""
}

func lastUnquotedBracket(s string) int {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == '"' && s[i-1] == '[' {
			return i - 1
		}
	}
	return -1
}
