package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"unicode/utf8"

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

// maxDiagnostics bounds the diagnostics of one document. Past it a document
// is not worth reading problem by problem, and an input built to produce a
// problem per byte would otherwise cost memory in proportion.
const maxDiagnostics = 1000

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
	null   map[string]bool
	// dropped is set when diagnostics were left out, past maxDiagnostics.
	dropped bool
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
		return nil, []Diagnostic{fileError(file, 1, fmt.Sprintf("file is %s; the limit is %s: split it into smaller files", humanBytes(int64(len(data))), humanBytes(limits.MaxFileBytes)))}
	}
	var (
		docs  []*Document
		diags []Diagnostic
	)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	lastLine := 0 // line of the last document read
	for index := 0; ; index++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			diags = append(diags, syntaxError(file, data, lastLine, err))
			break
		}
		lastLine = root.Line
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
	if diag, ok := checkAliases(file, body, limits.MaxAliasNodes); !ok {
		doc.Diagnostics = []Diagnostic{diag}
		return doc
	}
	d := newDecoder(file, limits)
	var job Job
	d.decode(body, reflect.ValueOf(&job).Elem(), "")
	doc.pos = d.pos
	doc.failed = d.failed
	doc.null = d.null
	doc.dropped = d.dropped
	doc.Diagnostics = d.diags
	if d.aborted || body.Kind != yaml.MappingNode {
		truncate(doc)
		return doc
	}
	v := &validator{doc: doc, limits: limits}
	v.validate(&job)
	truncate(doc)
	Normalize(&job)
	doc.Job = &job
	return doc
}

// truncate sorts the document's diagnostics and, when some were left out,
// says so first.
func truncate(doc *Document) {
	SortDiagnostics(doc.Diagnostics)
	if doc.dropped {
		doc.Diagnostics = append([]Diagnostic{{
			File: doc.File, Line: doc.Line, Column: 1, Severity: SeverityError,
			Message: fmt.Sprintf("document has more than %d problems; only the first %d found are reported", maxDiagnostics, maxDiagnostics),
		}}, doc.Diagnostics...)
	}
}

// checkAliases measures how far YAML aliases would expand the document before
// anything walks it, so that an expansion bomb ("billion laughs") is rejected
// in time linear in the file, wherever in the document it hides. Every alias
// costs the size of the subtree it stands for; aliases inside that subtree
// count again each time it is reached. An alias inside its own anchor would
// expand forever and is rejected too.
func checkAliases(file string, root *yaml.Node, limit int) (Diagnostic, bool) {
	s := aliasScan{limit: limit, size: map[*yaml.Node]int{}, active: map[*yaml.Node]bool{}, anchors: map[*yaml.Node]bool{}}
	s.walk(root)
	if s.bad == nil {
		return Diagnostic{}, true
	}
	return Diagnostic{File: file, Line: s.bad.Line, Column: s.bad.Column, Path: s.badPath, Severity: SeverityError, Message: s.msg}, false
}

type aliasScan struct {
	limit  int
	total  int                // nodes reached through aliases so far
	size   map[*yaml.Node]int // expanded size of a node, capped at limit+1
	active map[*yaml.Node]bool
	// anchors holds the anchored nodes met so far in this document.
	anchors map[*yaml.Node]bool
	// segs is the field path of the node being walked, built into a string
	// only when there is something to report.
	segs    []string
	bad     *yaml.Node
	badPath string
	msg     string
}

// walk visits the nodes as written (not following aliases) and charges each
// alias the expanded size of its target.
func (s *aliasScan) walk(n *yaml.Node) {
	if s.bad != nil || n == nil {
		return
	}
	if n.Anchor != "" {
		s.anchors[n] = true
	}
	switch n.Kind {
	case yaml.AliasNode:
		size, cyclic := s.expand(n.Alias)
		switch {
		case !s.anchors[n.Alias]:
			// The YAML decoder keeps anchors from one document to the next;
			// YAML scopes them to their document.
			s.fail(n, fmt.Sprintf("alias *%s refers to an anchor in an earlier document; anchors are local to their document", n.Value))
		case cyclic:
			s.fail(n, fmt.Sprintf("alias *%s is used inside its own anchor, so the document would expand forever", n.Value))
		default:
			s.total = min(s.total+size, s.limit+1)
			if s.total > s.limit {
				s.fail(n, fmt.Sprintf("document expands to more than %d nodes through YAML aliases; refusing to expand it (alias bomb?)", s.limit))
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			s.walk(k)
			seg := "" // a key that is not a string: stay on the mapping
			if k.Kind == yaml.ScalarNode {
				seg = k.Value // the merge key too: metadata["<<"], as the decoder says
			}
			s.segs = append(s.segs, "."+seg)
			s.walk(v)
			s.segs = s.segs[:len(s.segs)-1]
		}
	default:
		for i, c := range n.Content {
			s.segs = append(s.segs, "["+strconv.Itoa(i))
			s.walk(c)
			s.segs = s.segs[:len(s.segs)-1]
		}
	}
}

// expand returns the number of nodes n stands for once every alias in it is
// expanded (capped at limit+1), and whether n contains an alias to itself.
func (s *aliasScan) expand(n *yaml.Node) (int, bool) {
	if n == nil {
		return 0, false
	}
	if size, ok := s.size[n]; ok {
		return size, false
	}
	if s.active[n] {
		return 0, true
	}
	if n.Kind == yaml.AliasNode {
		return s.expand(n.Alias)
	}
	s.active[n] = true
	defer delete(s.active, n)
	size := 1
	for _, c := range n.Content {
		cs, cyclic := s.expand(c)
		if cyclic {
			return 0, true
		}
		size = min(size+cs, s.limit+1)
	}
	s.size[n] = size
	return size, false
}

func (s *aliasScan) fail(n *yaml.Node, msg string) {
	s.bad, s.msg = n, msg
	var path string
	for _, seg := range s.segs {
		switch {
		case seg[0] == '[':
			path += seg + "]"
		case seg == ".":
		default:
			path = JoinPath(path, seg[1:])
		}
	}
	s.badPath = path
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

var (
	yamlLine          = regexp.MustCompile(`line (\d+)`)
	yamlUnknownAnchor = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)
	// Problems of the YAML reader, which reports no position.
	yamlReaderProblem = regexp.MustCompile(`^yaml: (invalid leading UTF-8 octet|incomplete UTF-8 octet sequence|invalid trailing UTF-8 octet|invalid length of a UTF-8 sequence|invalid Unicode character|control characters are not allowed)$`)
	// Problems raised by the YAML parser, as opposed to its scanner.
	yamlParserProblem = regexp.MustCompile(`^yaml: line \d+: (did not find expected (<stream-start>|<document start>|node content|'-' indicator|key|',' or '\]'|',' or '\}')|found undefined tag handle|found duplicate %(YAML|TAG) directive|found incompatible YAML document)$`)
)

// syntaxError turns a YAML error into a diagnostic. Most carry their line.
// Those that do not are located here: an unknown anchor by its alias, looked
// for in the documents after the last one read; a byte the YAML reader
// refuses (invalid UTF-8, a control character) by finding it.
func syntaxError(file string, data []byte, lastLine int, err error) Diagnostic {
	pos := Position{Line: 1, Column: 1}
	text := err.Error()
	if m := yamlLine.FindStringSubmatch(text); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		if yamlParserProblem.MatchString(text) {
			// The YAML parser (unlike its scanner) reports the 0-based line
			// of the construct it was reading; the first line goes without.
			pos.Line++
		}
	} else if m := yamlUnknownAnchor.FindStringSubmatch(text); m != nil {
		pos.Line = findAlias(data, m[1], lastLine)
	} else if yamlReaderProblem.MatchString(text) && !bytes.HasPrefix(data, []byte{0xff, 0xfe}) && !bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		// (UTF-16 input, told by its byte order mark, is not searched.)
		if i := firstUnreadable(data); i >= 0 {
			pos = positionAt(data, i)
		}
	}
	msg := yamlLinePrefix.ReplaceAllString(text, "")
	return Diagnostic{File: file, Line: pos.Line, Column: pos.Column, Severity: SeverityError, Message: "invalid YAML: " + msg}
}

// firstUnreadable returns the offset of the first byte that is not valid
// UTF-8 or starts a character YAML does not allow in a file, or -1.
func firstUnreadable(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return i
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85 || r == 0xfeff:
		case r < 0x20, r >= 0x7f && r < 0xa0, r == 0xfffe, r == 0xffff:
			return i
		}
		i += size
	}
	return -1
}

// positionAt returns the 1-based line and column (in characters) of offset i.
func positionAt(data []byte, i int) Position {
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	return Position{
		Line:   bytes.Count(data[:start], []byte("\n")) + 1,
		Column: utf8.RuneCount(data[start:i]) + 1,
	}
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)

// findAlias returns the line of the first use of *name after line after, or
// 1 when there is none.
func findAlias(data []byte, name string, after int) int {
	re, err := regexp.Compile(`(?m)(^|[\s\[{,:-])\*` + regexp.QuoteMeta(name) + `($|[\s\]},])`)
	if err != nil {
		return 1
	}
	offset := 0
	line := 1
	for line <= after {
		i := bytes.IndexByte(data[offset:], '\n')
		if i < 0 {
			return 1
		}
		offset += i + 1
		line++
	}
	loc := re.FindIndex(data[offset:])
	if loc == nil {
		return 1
	}
	return line + bytes.Count(data[offset:offset+loc[0]+1], []byte("\n"))
}

func fileError(file string, line int, msg string) Diagnostic {
	return Diagnostic{File: file, Line: line, Column: 1, Severity: SeverityError, Message: msg}
}

// humanBytes writes a size in bytes, with a rounded unit after it when that
// is shorter to read: 1048577 bytes (1.0 MiB). The exact count stays, so
// that a file just over the limit does not read as equal to it.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d bytes (%.1f KiB)", n, float64(n)/(1<<10))
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
