package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the job manifest's JSON Schema.
const SchemaID = "https://caesium.io/schema/job.v1.json"

const schemaDescription = "A Caesium job definition (apiVersion v1, kind Job): a DAG of steps with a trigger and callbacks. " +
	"This schema lets editors complete and check manifests. It accepts every manifest the parser accepts and rejects " +
	"what can be told from one document alone: unknown fields, wrong types, bad enums and names, the settings of each " +
	"trigger type, a missing image. It cannot check what needs evaluation or the whole set of jobs: that next and " +
	"dependsOn name existing steps without cycles, cron expression syntax, time zone names, secret references in full, " +
	"duplicate aliases or http paths across files. Run `caesium job lint` for those."

// Patterns of the schema. The validator's regular expressions are reused
// where they say all; the others restate a check written in Go. Each must mean
// the same to ECMAScript (editors) and to Go's RE2 (the tests): no lookahead,
// no backreferences.
var (
	aliasPattern    = aliasRe.String()
	stepNamePattern = stepNameRe.String()
	envNamePattern  = envName.String()
	httpPathPattern = httpPathRe.String()
)

const (
	// A Kubernetes qualified name (at most 63 characters), optionally after a
	// lowercase DNS subdomain prefix and a slash.
	qualifiedKeyPattern = `^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`
	// The prefix of a qualified key is at most 253 characters.
	longPrefixPattern = `^[^/]{254,}/`
	labelValuePattern = `^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$`
	// A secret reference names a backend and enough of a location to parse.
	secretRefPattern = `^secret://(env/[A-Za-z_][A-Za-z0-9_]*$|file/[^/]|vault/[^/]+/.+#.)`
	// An absolute http(s) URL with a host and without user info.
	callbackURLPattern = `^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+([/?#]|$)`
	headerNamePattern  = `^[^ :\t\r\n]+$`
	imagePattern       = `^[^ \t\n]+$`
)

var (
	schemaOnce sync.Once
	schemaJSON []byte
)

// JSONSchema returns the JSON Schema (draft 2020-12) of a job manifest,
// generated from the Go types, pretty-printed, with a trailing newline. The
// output is deterministic; schema/job.v1.json is a copy of it.
func JSONSchema() []byte {
	schemaOnce.Do(func() {
		b, err := generateJSONSchema()
		if err != nil {
			panic(fmt.Sprintf("schema: generate JSON Schema: %v", err)) // the types are fixed; tests catch this
		}
		schemaJSON = b
	})
	return bytes.Clone(schemaJSON)
}

func generateJSONSchema() ([]byte, error) {
	r := &jsonschema.Reflector{
		// Inline every type: the tree reads like a manifest, and a property
		// can be made nullable where it is used.
		DoNotReference:             true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		AllowAdditionalProperties:  false, // unknown fields are errors, as in the parser
		RequiredFromJSONSchemaTags: true,
	}
	s := r.Reflect(&Job{})
	s.ID = SchemaID
	s.Title = "Caesium job (v1)"
	s.Description = schemaDescription

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return unescapeHTML(buf.Bytes()), nil
}

// unescapeHTML undoes the \u003c, \u003e and \u0026 escapes that
// Schema.MarshalJSON writes whatever the encoder is told, so that patterns
// read as written. Escapes are read left to right, so an escaped backslash
// followed by "u0026" stays as it is.
func unescapeHTML(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out, i = append(out, '<'), i+5
				continue
			case "003e":
				out, i = append(out, '>'), i+5
				continue
			case "0026":
				out, i = append(out, '&'), i+5
				continue
			}
		}
		out, i = append(out, b[i], b[i+1]), i+1
	}
	return out
}

// JSONSchemaExtend adds what the tags cannot say about a job.
func (Job) JSONSchemaExtend(s *jsonschema.Schema) {
	optionalMayBeNull(s)
}

// JSONSchemaExtend adds the name rules of metadata.
func (Metadata) JSONSchemaExtend(s *jsonschema.Schema) {
	alias := prop(s, "alias")
	alias.Pattern = aliasPattern
	alias.MaxLength = ptr(uint64(maxNameLength))

	labels := prop(s, "labels")
	labels.PropertyNames = qualifiedKey()
	labels.AdditionalProperties = &jsonschema.Schema{
		Type:        "string",
		Pattern:     labelValuePattern,
		Description: "Empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
	}
	labels.Properties = jsonschema.NewProperties()
	labels.Properties.Set(PruneLabel, &jsonschema.Schema{
		Type:        "string",
		Enum:        []any{PruneDisabled},
		Description: "Set to disabled to keep this job when its manifest disappears from its source",
	})
	prop(s, "annotations").PropertyNames = qualifiedKey()
	prop(s, "maxParallelTasks").Maximum = maxInt32
	optionalMayBeNull(s)
}

// The decoder reads integers as int32.
var maxInt32 = json.Number(strconv.Itoa(math.MaxInt32))

func qualifiedKey() *jsonschema.Schema {
	return &jsonschema.Schema{
		Pattern: qualifiedKeyPattern,
		Not:     &jsonschema.Schema{Pattern: longPrefixPattern},
	}
}

// JSONSchemaExtend marks the optional fields of concurrency.
func (Concurrency) JSONSchemaExtend(s *jsonschema.Schema) {
	prop(s, "maxRuns").Maximum = maxInt32
	orEmpty(prop(s, "strategy"))
	optionalMayBeNull(s)
}

// JSONSchemaExtend allows in configuration only the settings of the declared
// trigger type and requires those the type cannot do without, as the
// validator does: if type is cron, then configuration holds expression (and
// maybe timezone, catchup); if http, path and secret (and maybe
// signatureScheme); if manual (or absent, null or empty), nothing. A setting
// written as null counts as absent.
func (Trigger) JSONSchemaExtend(s *jsonschema.Schema) {
	orEmpty(prop(s, "type"))
	optionalMayBeNull(s)

	typeIs := func(types ...any) *jsonschema.Schema {
		return object("type", &jsonschema.Schema{Enum: types})
	}
	// configuration is an object whose settings other than allowed are null
	// (that is, absent) and that holds required. checks constrain values.
	configuration := func(typ string, allowed, required []string, checks map[string]*jsonschema.Schema) *jsonschema.Schema {
		c := &jsonschema.Schema{Type: "object", Required: required, Properties: jsonschema.NewProperties()}
		for _, f := range append(slices.Clone(cronFields), httpFields...) {
			switch {
			case checks[f] != nil:
				c.Properties.Set(f, checks[f])
			case !slices.Contains(allowed, f):
				owner := TriggerHTTP
				if slices.Contains(cronFields, f) {
					owner = TriggerCron
				}
				c.Properties.Set(f, &jsonschema.Schema{Type: "null", Description: fmt.Sprintf("%s is a setting of the %s trigger, not of the %s trigger", f, owner, typ)})
			}
		}
		if len(required) == 0 {
			return object("configuration", c)
		}
		return withRequired(object("configuration", c), "configuration")
	}
	str := func(pattern string, not *jsonschema.Schema) *jsonschema.Schema {
		return &jsonschema.Schema{Type: "string", MinLength: ptr(uint64(1)), Pattern: pattern, Not: not}
	}
	manual := configuration(TriggerManual, nil, nil, nil)
	manual.Properties.Value("configuration").Type = "" // null or an object

	s.AllOf = append(s.AllOf,
		&jsonschema.Schema{
			If: withRequired(typeIs(TriggerCron), "type"),
			Then: configuration(TriggerCron, cronFields, []string{"expression"}, map[string]*jsonschema.Schema{
				// The zone goes in timezone, not in the expression.
				"expression": str("", &jsonschema.Schema{Pattern: `^(CRON_)?TZ=`}),
				"timezone":   {MinLength: ptr(uint64(1)), Not: &jsonschema.Schema{Const: "Local"}},
			}),
		},
		&jsonschema.Schema{
			If: withRequired(typeIs(TriggerHTTP), "type"),
			Then: configuration(TriggerHTTP, httpFields, []string{"path", "secret"}, map[string]*jsonschema.Schema{
				"path":   str(httpPathPattern, nil),
				"secret": str(secretRefPattern, nil),
			}),
		},
		&jsonschema.Schema{
			If:   typeIs(TriggerManual, "", nil),
			Then: manual,
		},
	)
}

// JSONSchemaExtend marks the settings that may be left empty: the checks a
// trigger type needs live in Trigger's conditionals.
func (TriggerConfiguration) JSONSchemaExtend(s *jsonschema.Schema) {
	orEmpty(prop(s, "signatureScheme"))
	optionalMayBeNull(s)
}

// JSONSchemaExtend constrains callback URLs, events and headers.
func (Callback) JSONSchemaExtend(s *jsonschema.Schema) {
	orEmpty(prop(s, "type"))
	prop(s, "url").Pattern = callbackURLPattern
	on := prop(s, "on")
	on.Items.Enum = []any{OnSuccess, OnFailure}
	on.MinItems = ptr(uint64(1))
	on.UniqueItems = true
	headers := prop(s, "headers")
	headers.PropertyNames = &jsonschema.Schema{Pattern: headerNamePattern}
	headers.AdditionalProperties = secretOrText()
	optionalMayBeNull(s)
}

// JSONSchemaExtend constrains step names and edges, and requires an image
// unless the step runs on the local engine, where it needs a command instead.
func (Step) JSONSchemaExtend(s *jsonschema.Schema) {
	name := prop(s, "name")
	name.Pattern = stepNamePattern
	name.MaxLength = ptr(uint64(maxNameLength))
	orEmpty(prop(s, "engine"))

	cmd := prop(s, "command")
	cmd.Description = Command(nil).JSONSchema().Description // the field tag reset it
	cmd.OneOf[0].MinItems = ptr(uint64(1))
	// The decoder reads a null argument as "".
	cmd.OneOf[0].Items = &jsonschema.Schema{Extras: map[string]any{"type": []string{"string", "null"}}}

	env := prop(s, "env")
	env.PropertyNames = &jsonschema.Schema{Pattern: envNamePattern}
	env.AdditionalProperties = secretOrText()

	for _, edge := range []string{"next", "dependsOn"} {
		// A target is the name of a step, listed once.
		list := prop(s, edge)
		list.OneOf = []*jsonschema.Schema{
			stepRef(),
			{Type: "array", Items: stepRef(), UniqueItems: true},
		}
	}
	prop(s, "retries").Maximum = json.Number(strconv.Itoa(maxRetries))
	orEmpty(prop(s, "triggerRule"))

	s.If = withRequired(object("engine", &jsonschema.Schema{Const: EngineLocal}), "engine")
	s.Then = withRequired(object("command", &jsonschema.Schema{Not: &jsonschema.Schema{Type: "null"}}), "command")
	s.Else = withRequired(object("image", &jsonschema.Schema{Type: "string", Pattern: imagePattern}), "image")
	s.Else.Properties.Set("workdir", &jsonschema.Schema{Pattern: `^(/|$)`})

	optionalMayBeNull(s)
}

func stepRef() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: stepNamePattern, MaxLength: ptr(uint64(maxNameLength))}
}

// secretOrText is a value that may be a secret:// reference; one that says
// it is must look like one.
func secretOrText() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type: "string",
		If:   &jsonschema.Schema{Pattern: "^" + SecretScheme},
		Then: &jsonschema.Schema{Pattern: secretRefPattern},
	}
}

// prop returns the schema of a property the reflector generated. A missing
// one is a renamed field, which the tests catch at once.
func prop(s *jsonschema.Schema, name string) *jsonschema.Schema {
	p, ok := s.Properties.Get(name)
	if !ok {
		panic(fmt.Sprintf("schema: JSON Schema has no property %q", name))
	}
	return p
}

// object is a schema that constrains one property.
func object(name string, p *jsonschema.Schema) *jsonschema.Schema {
	s := &jsonschema.Schema{Properties: jsonschema.NewProperties()}
	s.Properties.Set(name, p)
	return s
}

func withRequired(s *jsonschema.Schema, names ...string) *jsonschema.Schema {
	s.Required = names
	return s
}

// optionalMayBeNull lets every optional property of a struct's schema be
// null. The parser reads an explicit null (a key with no value) as an absent
// field, so the schema must accept it wherever leaving the field out is
// valid. Call it last: it rewrites type, enum and oneOf.
func optionalMayBeNull(s *jsonschema.Schema) {
	for name, p := range s.Properties.FromOldest() {
		if slices.Contains(s.Required, name) {
			continue
		}
		switch {
		case p.OneOf != nil:
			p.OneOf = append(p.OneOf, &jsonschema.Schema{Type: "null"})
		case p.Type != "":
			if p.Extras == nil {
				p.Extras = map[string]any{}
			}
			// invopop's Type is a single string; a type list goes in Extras.
			p.Extras["type"] = []string{p.Type, "null"}
			p.Type = ""
		}
		if p.Enum != nil {
			p.Enum = append(p.Enum, nil)
		}
	}
}

// orEmpty adds "" to an enum: the parser reads an empty string as the
// default for these fields.
func orEmpty(p *jsonschema.Schema) {
	p.Enum = append(p.Enum, "")
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
