package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const committedSchema = "job.v1.json"

// -update rewrites golden files. Other golden tests of this package may
// define the flag first; define it only if they have not.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestJSONSchemaCommitted keeps job.v1.json equal to JSONSchema(). After a
// change to the types: go test ./schema -run TestJSONSchemaCommitted -update
func TestJSONSchemaCommitted(t *testing.T) {
	t.Parallel()
	got := schema.JSONSchema()
	if updating() {
		if err := os.WriteFile(committedSchema, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from JSONSchema(); run go test ./schema -run TestJSONSchemaCommitted -update (or make schema)", committedSchema)
	}
	if !bytes.HasSuffix(got, []byte("}\n")) || !bytes.HasPrefix(got, []byte("{\n  ")) {
		t.Errorf("JSONSchema() is not pretty-printed with a trailing newline")
	}
	if !bytes.Equal(got, schema.JSONSchema()) {
		t.Errorf("JSONSchema() differs between calls")
	}
	var top struct {
		Schema      string `json:"$schema"`
		ID          string `json:"$id"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(got, &top); err != nil {
		t.Fatal(err)
	}
	if top.Schema != "https://json-schema.org/draft/2020-12/schema" || top.ID != schema.SchemaID || top.Title == "" || top.Description == "" {
		t.Errorf("header = %+v", top)
	}
}

const (
	header   = "apiVersion: v1\nkind: Job\nmetadata:\n  alias: nightly-etl\n"
	oneStep  = "steps:\n  - name: extract\n    image: alpine:3.20\n"
	twoSteps = oneStep + "  - name: load\n    image: alpine:3.20\n"
)

// TestJSONSchemaValidation checks the schema against the parser on the same
// documents: the schema must accept every document Parse accepts, rejects
// what it can tell from the document alone, and leaves the rest (lintOnly)
// to lint.
func TestJSONSchemaValidation(t *testing.T) {
	t.Parallel()
	sch := compileJobSchema(t, schema.JSONSchema())
	tests := []struct {
		name string
		doc  string
		// wantErr is a substring of the schema's error; "" means valid. The
		// validator misplaces propertyNames errors, so those match the name.
		wantErr  string
		lintOnly bool // valid for the schema, an error for Parse
	}{
		// Valid documents.
		{name: "minimal", doc: header + oneStep},
		{name: "full", doc: `$schema: https://caesium.io/schema/job.v1.json
apiVersion: v1
kind: Job
metadata:
  alias: nightly-etl
  labels:
    team: data
    app.kubernetes.io/name: etl
    empty: ""
    caesium.io/prune: disabled
  annotations:
    example.com/owner: "Data team <data@example.com>"
  maxParallelTasks: 2
  taskTimeout: 10m
  runTimeout: 1h30m
  concurrency:
    maxRuns: 2
    strategy: skip
trigger:
  type: cron
  configuration:
    expression: "0 2 * * *"
    timezone: Europe/Berlin
    catchup: true
callbacks:
  - url: https://hooks.example.com/caesium?x=1
    on: [failure]
    headers:
      Authorization: secret://vault/kv/team/hooks#token?version=3
      X-Plain: hello
steps:
  - name: extract
    image: ghcr.io/acme/etl:1.4
    command: ["etl", "extract"]
    env:
      DB_PASSWORD: secret://file/db/password
      MODE: full
    workdir: /work
    next: [transform]
    retries: 3
    retryDelay: 30s
    timeout: .5h
  - name: transform
    engine: podman
    image: ghcr.io/acme/etl:1.4
    next: load
    triggerRule: all_done
  - name: load
    engine: local
    command: '["sh", "-c", "echo done"]'
    workdir: relative/is/fine/locally
    timeout: +90s
`},
		{name: "http trigger", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /hooks/nightly-etl\n    secret: secret://env/NIGHTLY_TOKEN\n    signatureScheme: bearer\n" + oneStep},
		{name: "manual trigger with empty configuration", doc: header + "trigger:\n  type: manual\n  configuration: {}\n" + oneStep},
		{name: "dependsOn list", doc: header + twoSteps + "    dependsOn: [extract]\n"},
		{name: "YAML anchors and merge keys", doc: header + "steps:\n  - &base\n    name: extract\n    image: alpine\n    env: {A: b}\n  - <<: *base\n    name: load\n"},
		{name: "uppercase URL scheme", doc: header + "callbacks:\n  - url: HTTPS://hooks.example.com\n" + oneStep},
		{name: "63-character label name", doc: header + "  labels:\n    example.com/" + strings.Repeat("a", 63) + ": x\n" + oneStep},
		{name: "micro seconds", doc: header + "  taskTimeout: 500µs\n  runTimeout: 2μs\n" + oneStep},
		// Null and "" read as absent; the schema must take them too.
		{name: "null optional fields", doc: header + "  labels:\n  annotations: ~\n  concurrency:\n  maxParallelTasks:\ntrigger:\ncallbacks:\nsteps:\n  - name: extract\n    image: alpine\n    engine:\n    env:\n    next:\n    dependsOn: ~\n    retries:\n    triggerRule:\n    workdir:\n"},
		{name: "null trigger type and configuration", doc: header + "trigger:\n  type:\n  configuration:\n" + oneStep},
		{name: "empty enums", doc: header + "  concurrency:\n    strategy: \"\"\ntrigger:\n  type: \"\"\ncallbacks:\n  - url: http://x\n    type: \"\"\nsteps:\n  - name: extract\n    image: alpine\n    engine: \"\"\n    triggerRule: \"\"\n"},
		{name: "null wherever a field is optional", doc: header + "  taskTimeout:\n  runTimeout:\n  concurrency:\n    maxRuns:\n    strategy:\ncallbacks:\n  - url: https://x\n    on:\n    headers:\n    type:\nsteps:\n  - name: extract\n    image: alpine\n    command:\n    timeout:\n    retryDelay:\n"},
		{name: "null settings of another trigger type", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n    secret: secret://env/X\n    expression:\n    timezone:\n    catchup:\n" + oneStep},
		{name: "null settings of a manual trigger", doc: header + "trigger:\n  configuration:\n    expression:\n    path: ~\n" + oneStep},
		{name: "null cron timezone", doc: header + "trigger:\n  type: cron\n  configuration:\n    expression: \"@daily\"\n    timezone:\n" + oneStep},
		{name: "null command argument", doc: header + oneStep + "    command: [echo, ~]\n"},
		{name: "http with empty signature scheme", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n    secret: secret://env/X\n    signatureScheme:\n" + oneStep},

		// Valid for the schema; lint finds the error.
		{name: "cycle", lintOnly: true, doc: header + "steps:\n  - {name: a, image: x, next: b}\n  - {name: b, image: x, next: c}\n  - {name: c, image: x, next: a}\n"},
		{name: "bad cron expression", lintOnly: true, doc: header + "trigger:\n  type: cron\n  configuration:\n    expression: \"61 * * * *\"\n" + oneStep},
		{name: "unknown time zone", lintOnly: true, doc: header + "trigger:\n  type: cron\n  configuration:\n    expression: \"@hourly\"\n    timezone: Mars/Olympus\n" + oneStep},
		{name: "edge to a missing step", lintOnly: true, doc: header + oneStep + "    next: lod\n"},
		{name: "duplicate step names", lintOnly: true, doc: header + oneStep + "  - name: extract\n    image: alpine\n"},
		{name: "secret file path with ..", lintOnly: true, doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n    secret: secret://file/../etc/passwd\n" + oneStep},

		// Rejected by both.
		{name: "unknown field imagee", wantErr: "'imagee' not allowed", doc: header + "steps:\n  - name: extract\n    imagee: alpine\n"},
		{name: "bad engine", wantErr: "'/steps/0/engine'", doc: header + oneStep + "    engine: dockr\n"},
		{name: "bad trigger type", wantErr: "'/trigger/type'", doc: header + "trigger:\n  type: weekly\n" + oneStep},
		{name: "missing alias", wantErr: "missing property 'alias'", doc: "apiVersion: v1\nkind: Job\nmetadata:\n  labels: {a: b}\n" + oneStep},
		{name: "cron fields on an http trigger", wantErr: "'/trigger/configuration/expression'", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n    secret: secret://env/X\n    expression: \"@hourly\"\n" + oneStep},
		{name: "http trigger without secret", wantErr: "missing property 'secret'", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n" + oneStep},
		{name: "http secret written in clear", wantErr: "'/trigger/configuration/secret'", doc: header + "trigger:\n  type: http\n  configuration:\n    path: /x\n    secret: hunter2\n" + oneStep},
		{name: "cron without expression", wantErr: "missing property 'expression'", doc: header + "trigger:\n  type: cron\n  configuration:\n    timezone: UTC\n" + oneStep},
		{name: "cron without configuration", wantErr: "missing property 'configuration'", doc: header + "trigger:\n  type: cron\n" + oneStep},
		{name: "cron zone in expression", wantErr: "'/trigger/configuration/expression'", doc: header + "trigger:\n  type: cron\n  configuration:\n    expression: \"TZ=UTC 0 2 * * *\"\n" + oneStep},
		{name: "manual trigger with configuration", wantErr: "'/trigger/configuration/catchup'", doc: header + "trigger:\n  configuration:\n    catchup: true\n" + oneStep},
		{name: "missing image on a docker step", wantErr: "missing property 'image'", doc: header + "steps:\n  - name: extract\n    command: [true]\n"},
		{name: "local step with null command", wantErr: "'/steps/0/command'", doc: header + "steps:\n  - name: extract\n    engine: local\n    command:\n"},
		{name: "http trigger with null path", wantErr: "'/trigger/configuration/path'", doc: header + "trigger:\n  type: http\n  configuration:\n    path:\n    secret: secret://env/X\n" + oneStep},
		{name: "cron with empty timezone", wantErr: "'/trigger/configuration/timezone'", doc: header + "trigger:\n  type: cron\n  configuration:\n    expression: \"@daily\"\n    timezone: \"\"\n" + oneStep},
		{name: "empty duration", wantErr: "'/steps/0/timeout'", doc: header + oneStep + "    timeout: \"\"\n"},
		{name: "integer out of range", wantErr: "'/metadata/maxParallelTasks'", doc: header + "  maxParallelTasks: 2147483648\n" + oneStep},
		{name: "local step without command", wantErr: "missing property 'command'", doc: header + "steps:\n  - name: extract\n    engine: local\n"},
		{name: "empty command", wantErr: "'/steps/0/command'", doc: header + oneStep + "    command: []\n"},
		{name: "relative workdir in a container", wantErr: "'/steps/0/workdir'", doc: header + oneStep + "    workdir: src\n"},
		{name: "alias with uppercase", wantErr: "'/metadata/alias'", doc: "apiVersion: v1\nkind: Job\nmetadata:\n  alias: Nightly\n" + oneStep},
		{name: "alias too long", wantErr: "'/metadata/alias'", doc: "apiVersion: v1\nkind: Job\nmetadata:\n  alias: " + strings.Repeat("a", 64) + "\n" + oneStep},
		{name: "bad step name", wantErr: "'/steps/0/name'", doc: header + "steps:\n  - name: -extract\n    image: alpine\n"},
		{name: "bad label key", wantErr: "invalid propertyName 'Example.com/team'", doc: header + "  labels:\n    Example.com/team: data\n" + oneStep},
		{name: "label name too long", wantErr: "invalid propertyName 'aaaa", doc: header + "  labels:\n    " + strings.Repeat("a", 64) + ": x\n" + oneStep},
		{name: "label prefix too long", wantErr: "invalid propertyName 'a.a.a.", doc: header + "  labels:\n    " + strings.Repeat("a.", 127) + "a/x: y\n" + oneStep},
		{name: "bad label value", wantErr: "'/metadata/labels/team'", doc: header + "  labels:\n    team: data team\n" + oneStep},
		{name: "prune label not disabled", wantErr: "'/metadata/labels/caesium.io~1prune'", doc: header + "  labels:\n    caesium.io/prune: \"false\"\n" + oneStep},
		{name: "bad env name", wantErr: "invalid propertyName '1BAD'", doc: header + oneStep + "    env:\n      1BAD: x\n"},
		{name: "bad secret reference in env", wantErr: "'/steps/0/env/TOKEN'", doc: header + oneStep + "    env:\n      TOKEN: secret://s3/bucket\n"},
		{name: "bad callback event", wantErr: "'/callbacks/0/on/0'", doc: header + "callbacks:\n  - url: https://x\n    on: [sucess]\n" + oneStep},
		{name: "callback event twice", wantErr: "'/callbacks/0/on'", doc: header + "callbacks:\n  - url: https://x\n    on: [success, success]\n" + oneStep},
		{name: "callback url not http", wantErr: "'/callbacks/0/url'", doc: header + "callbacks:\n  - url: ftp://x\n" + oneStep},
		{name: "callback url with credentials", wantErr: "'/callbacks/0/url'", doc: header + "callbacks:\n  - url: https://user:pw@x\n" + oneStep},
		{name: "bad header name", wantErr: "invalid propertyName 'X Bad'", doc: header + "callbacks:\n  - url: https://x\n    headers:\n      \"X Bad\": y\n" + oneStep},
		{name: "duration without unit", wantErr: "'/metadata/taskTimeout'", doc: header + "  taskTimeout: 10\n" + oneStep},
		{name: "negative duration", wantErr: "'/steps/0/timeout'", doc: header + oneStep + "    timeout: -5s\n"},
		{name: "too many retries", wantErr: "'/steps/0/retries'", doc: header + oneStep + "    retries: 101\n"},
		{name: "edge listed twice", wantErr: "'/steps/0/next'", doc: header + twoSteps[:len(oneStep)] + "    next: [load, load]\n" + twoSteps[len(oneStep):]},
		{name: "empty edge", wantErr: "'/steps/0/next'", doc: header + oneStep + "    next: \"\"\n"},
		{name: "no steps", wantErr: "'/steps'", doc: header + "steps: []\n"},
		{name: "wrong kind", wantErr: "'/kind'", doc: "apiVersion: v1\nkind: Jobs\nmetadata:\n  alias: a\n" + oneStep},
		{name: "string where a number goes", wantErr: "'/steps/0/retries'", doc: header + oneStep + "    retries: \"3\"\n"},
		{name: "null required field", wantErr: "'/metadata'", doc: "apiVersion: v1\nkind: Job\nmetadata:\n" + oneStep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, fileDiags := schema.Parse("job.yaml", []byte(tt.doc), schema.Limits{})
			if len(docs) != 1 {
				t.Fatalf("Parse returned %d documents, %v", len(docs), fileDiags)
			}
			diags := append(fileDiags, docs[0].Diagnostics...)
			parseOK := !schema.HasErrors(diags)

			err := sch.Validate(yamlToJSONValue(t, []byte(tt.doc)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("schema rejects a document it should accept:\n%v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("schema accepts the document, want an error with %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("schema error does not mention %q:\n%v", tt.wantErr, err)
			}

			// The schema is never stricter than the parser.
			wantParseOK := tt.wantErr == "" && !tt.lintOnly
			if parseOK != wantParseOK {
				t.Errorf("Parse valid = %v, want %v; diagnostics:\n%s", parseOK, wantParseOK, diagLines(diags))
			}
		})
	}
}

// compileJobSchema compiles a job JSON Schema, as editors would load it.
func compileJobSchema(t testing.TB, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schema.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schema.SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// yamlToJSONValue converts a one-document manifest to the JSON value an
// editor would validate.
func yamlToJSONValue(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	j, err := manifestJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// manifestJSON turns a value decoded from YAML into one decoded from JSON:
// map keys become strings, scalars go through their JSON form.
func manifestJSON(v any) (any, error) {
	b, err := json.Marshal(stringKeys(v))
	if err != nil {
		return nil, fmt.Errorf("YAML to JSON: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func stringKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = stringKeys(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = stringKeys(e)
		}
		return out
	}
	return v
}

// yamlDocuments decodes every document of a file, empty ones as nil, so
// that indexes match Document.Index.
func yamlDocuments(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, v)
	}
}

func diagLines(diags []schema.Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}
