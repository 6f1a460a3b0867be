package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func dur(s string) Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration(d)
}

// TestParseValid parses valid manifests and compares the whole normalized
// job with what Normalize is documented to produce.
func TestParseValid(t *testing.T) {
	t.Parallel()
	manual := Trigger{Type: TriggerManual}
	oneAtATime := Concurrency{MaxRuns: 1, Strategy: ConcurrencyQueue}
	tests := []struct {
		name  string
		input string
		want  Job
	}{
		{
			name: "minimal job gets every default",
			input: `$schema: ../schema/job.v1.json
apiVersion: v1
kind: Job
metadata:
  alias: demo
steps:
  - name: a
    image: alpine
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "demo", Concurrency: oneAtATime},
				Trigger:  manual,
				Steps:    []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
		{
			name: "steps without edges run in file order and inherit taskTimeout",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: 10m
steps:
  - name: extract
    image: alpine
    command: [sh, -c, echo hi]
  - name: transform
    image: alpine
    timeout: 1m
    command: '["echo", "done"]'
  - name: load
    engine: local
    command: ["date"]
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "demo", TaskTimeout: dur("10m"), Concurrency: oneAtATime},
				Trigger:  manual,
				Steps: []Step{
					{Name: "extract", Engine: EngineDocker, Image: "alpine", Command: Command{"sh", "-c", "echo hi"}, TriggerRule: RuleAllSuccess, Timeout: dur("10m")},
					{Name: "transform", Engine: EngineDocker, Image: "alpine", Command: Command{"echo", "done"}, TriggerRule: RuleAllSuccess, Timeout: dur("1m"), DependsOn: StringList{"extract"}},
					{Name: "load", Engine: EngineLocal, Command: Command{"date"}, TriggerRule: RuleAllSuccess, Timeout: dur("10m"), DependsOn: StringList{"transform"}},
				},
			},
		},
		{
			name: "cron trigger defaults to UTC",
			input: `apiVersion: v1
kind: Job
metadata: {alias: nightly}
trigger:
  type: cron
  configuration:
    expression: "0 2 * * *"
steps: [{name: a, image: alpine}]
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "nightly", Concurrency: oneAtATime},
				Trigger:  Trigger{Type: TriggerCron, Configuration: TriggerConfiguration{Expression: "0 2 * * *", Timezone: "UTC"}},
				Steps:    []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
		{
			name: "cron trigger keeps its time zone and catchup",
			input: `apiVersion: v1
kind: Job
metadata: {alias: nightly}
trigger:
  type: cron
  configuration: {expression: "@every 90m", timezone: Europe/Berlin, catchup: true}
steps: [{name: a, image: alpine}]
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "nightly", Concurrency: oneAtATime},
				Trigger:  Trigger{Type: TriggerCron, Configuration: TriggerConfiguration{Expression: "@every 90m", Timezone: "Europe/Berlin", Catchup: true}},
				Steps:    []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
		{
			name: "http trigger defaults to hmac-sha256",
			input: `apiVersion: v1
kind: Job
metadata: {alias: deploy}
trigger:
  type: http
  configuration:
    path: /hooks/deploy
    secret: secret://vault/kv/ci/deploy#token?version=2
steps: [{name: a, image: alpine}]
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "deploy", Concurrency: oneAtATime},
				Trigger: Trigger{Type: TriggerHTTP, Configuration: TriggerConfiguration{
					Path: "/hooks/deploy", Secret: "secret://vault/kv/ci/deploy#token?version=2", SignatureScheme: SignatureHMACSHA256,
				}},
				Steps: []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
		{
			name: "callbacks default to webhook on success and failure",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  concurrency: {maxRuns: 3, strategy: skip}
callbacks:
  - url: https://example.com/all
  - url: https://example.com/failures
    on: [failure]
    headers:
      Authorization: secret://env/HOOK_TOKEN
      Content-Type: application/json
steps: [{name: a, image: alpine}]
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "demo", Concurrency: Concurrency{MaxRuns: 3, Strategy: ConcurrencySkip}},
				Trigger:  manual,
				Callbacks: []Callback{
					{Type: CallbackWebhook, URL: "https://example.com/all", On: []string{OnSuccess, OnFailure}},
					{Type: CallbackWebhook, URL: "https://example.com/failures", On: []string{OnFailure},
						Headers: map[string]string{"Authorization": "secret://env/HOOK_TOKEN", "Content-Type": "application/json"}},
				},
				Steps: []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
		{
			name: "next as a string and as a list; declared edges switch file order off",
			input: `apiVersion: v1
kind: Job
metadata: {alias: fan}
steps:
  - name: a
    image: alpine
    next: b
  - name: b
    image: alpine
    next: [c, d]
  - name: c
    image: alpine
  - name: d
    image: alpine
    dependsOn: c
    triggerRule: all_done
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "fan", Concurrency: oneAtATime},
				Trigger:  manual,
				Steps: []Step{
					{Name: "a", Engine: EngineDocker, Image: "alpine", Next: StringList{"b"}, TriggerRule: RuleAllSuccess},
					{Name: "b", Engine: EngineDocker, Image: "alpine", Next: StringList{"c", "d"}, TriggerRule: RuleAllSuccess},
					{Name: "c", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess},
					{Name: "d", Engine: EngineDocker, Image: "alpine", DependsOn: StringList{"c"}, TriggerRule: RuleAllDone},
				},
			},
		},
		{
			name: "anchors and merge keys",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels: &labels {team: data, app.kubernetes.io/part-of: warehouse}
  annotations: *labels
steps:
  - &base
    name: a
    image: alpine
    env: &env {A: "1"}
    retries: 2
    retryDelay: 30s
  - <<: *base
    name: b
    env: {<<: *env, B: "2"}
  - <<: [{name: c, image: first}, {image: second, retries: 1}]
    workdir: /srv
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{
					Alias:       "demo",
					Labels:      map[string]string{"team": "data", "app.kubernetes.io/part-of": "warehouse"},
					Annotations: map[string]string{"team": "data", "app.kubernetes.io/part-of": "warehouse"},
					Concurrency: oneAtATime,
				},
				Trigger: manual,
				Steps: []Step{
					{Name: "a", Engine: EngineDocker, Image: "alpine", Env: map[string]string{"A": "1"}, Retries: 2, RetryDelay: dur("30s"), TriggerRule: RuleAllSuccess},
					{Name: "b", Engine: EngineDocker, Image: "alpine", Env: map[string]string{"A": "1", "B": "2"}, Retries: 2, RetryDelay: dur("30s"), TriggerRule: RuleAllSuccess, DependsOn: StringList{"a"}},
					{Name: "c", Engine: EngineDocker, Image: "first", Retries: 1, Workdir: "/srv", TriggerRule: RuleAllSuccess, DependsOn: StringList{"b"}},
				},
			},
		},
		{
			name: "explicit nulls read as absent",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: ~
  labels:
trigger:
callbacks:
steps:
  - name: a
    image: alpine
    timeout: null
    command:
    next:
`,
			want: Job{
				APIVersion: "v1", Kind: "Job",
				Metadata: Metadata{Alias: "demo", Concurrency: oneAtATime},
				Trigger:  manual,
				Steps:    []Step{{Name: "a", Engine: EngineDocker, Image: "alpine", TriggerRule: RuleAllSuccess}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseValid(t, tt.input)
			if !reflect.DeepEqual(*got, tt.want) {
				gb, _ := got.CanonicalJSON()
				wb, _ := tt.want.CanonicalJSON()
				t.Errorf("job differs\ngot:  %s\nwant: %s", gb, wb)
			}
			// The normalized job is a fixed point of Normalize, and survives
			// a trip through its canonical JSON, which is also YAML.
			c := got.Clone()
			Normalize(c)
			if c.Hash() != got.Hash() || !reflect.DeepEqual(c, got) {
				t.Errorf("Normalize(Normalize(job)) differs from Normalize(job)")
			}
			b, err := got.CanonicalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again := parseValid(t, string(b))
			if again.Hash() != got.Hash() {
				t.Errorf("re-parsing the canonical JSON changed the hash\nfirst:  %s\nsecond: %s", b, mustJSON(again))
			}
		})
	}
}

func mustJSON(j *Job) string {
	b, err := j.CanonicalJSON()
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestParseValidWithWarnings checks that warnings leave a document valid.
func TestParseValidWithWarnings(t *testing.T) {
	t.Parallel()
	doc := parseOne(t, `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
  - name: b
    image: alpine
    dependsOn: a
  - name: lint
    image: alpine
`)
	if !doc.Valid() {
		t.Fatalf("Valid() = false, want true; diagnostics: %v", doc.Diagnostics)
	}
	assertDiags(t, doc.Diagnostics, []wantDiag{
		{"steps[2]", 10, 5, sevW, `step "lint" has no next or dependsOn while other steps do, so it runs as an independent root`},
	})
	// An isolated step is a root: Normalize adds no file-order edge to it.
	if got := doc.Job.Steps[2].DependsOn; got != nil {
		t.Errorf("lint.dependsOn = %v, want none", got)
	}
}

func TestParseMultiDocument(t *testing.T) {
	t.Parallel()
	input := `# leading comment
---
# a document holding only a comment
---
apiVersion: v1
kind: Job
metadata: {alias: one}
steps: [{name: a, image: alpine}]
---
---
~
...
---
apiVersion: v1
kind: Job
metadata: {alias: two}
steps: [{name: a, image: alpine}]
---
apiVersion: v1
kind: Job
metadata: {alias: three}
steps: [{name: a, image: alpine}]
`
	for range 3 { // the order must not depend on anything but the file
		docs, diags := Parse("multi.yaml", []byte(input), Limits{})
		if len(diags) != 0 {
			t.Fatalf("file diagnostics: %v", diags)
		}
		type got struct {
			index, line int
			alias       string
		}
		var gots []got
		for _, d := range docs {
			if !d.Valid() {
				t.Errorf("document %d: %v", d.Index, d.Diagnostics)
			}
			gots = append(gots, got{d.Index, d.Line, d.Job.Metadata.Alias})
		}
		want := []got{{1, 5, "one"}, {4, 14, "two"}, {5, 19, "three"}}
		if !reflect.DeepEqual(gots, want) {
			t.Fatalf("documents = %+v, want %+v", gots, want)
		}
	}
}

func TestEdges(t *testing.T) {
	t.Parallel()
	const head = "apiVersion: v1\nkind: Job\nmetadata: {alias: demo}\nsteps:\n"
	tests := []struct {
		name  string
		steps string
		want  []Edge
	}{
		{
			name:  "single step",
			steps: "  - {name: a, image: alpine}\n",
			want:  nil,
		},
		{
			name:  "file order",
			steps: "  - {name: c, image: alpine}\n  - {name: a, image: alpine}\n  - {name: b, image: alpine}\n",
			want:  []Edge{{"a", "b"}, {"c", "a"}},
		},
		{
			name: "next and dependsOn, sorted by from then to",
			steps: `  - {name: load, image: alpine, dependsOn: [transform, extract]}
  - {name: extract, image: alpine, next: transform}
  - {name: transform, image: alpine}
  - {name: audit, image: alpine, dependsOn: extract, next: [load]}
`,
			want: []Edge{{"audit", "load"}, {"extract", "audit"}, {"extract", "load"}, {"extract", "transform"}, {"transform", "load"}},
		},
		{
			name: "fan-in",
			steps: `  - {name: a, image: alpine, next: join}
  - {name: b, image: alpine, next: join}
  - {name: join, image: alpine, triggerRule: one_success}
`,
			want: []Edge{{"a", "join"}, {"b", "join"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job := parseValid(t, head+tt.steps)
			if got := job.Edges(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Edges() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEdgesDeduplicates(t *testing.T) {
	t.Parallel()
	// Not a valid job (the edge is declared twice), but Edges must still
	// list it once.
	j := &Job{Steps: []Step{{Name: "a", Next: StringList{"b"}}, {Name: "b", DependsOn: StringList{"a"}}}}
	if got, want := j.Edges(), []Edge{{"a", "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Edges() = %v, want %v", got, want)
	}
}

func TestNormalizeIdempotent(t *testing.T) {
	t.Parallel()
	j := &Job{
		Schema: "x", APIVersion: "v1", Kind: "Job", Metadata: Metadata{Alias: "demo", TaskTimeout: dur("5m")},
		Trigger:   Trigger{Type: TriggerCron, Configuration: TriggerConfiguration{Expression: "@daily"}},
		Callbacks: []Callback{{URL: "https://example.com"}},
		Steps:     []Step{{Name: "a", Image: "alpine"}, {Name: "b", Image: "alpine"}},
	}
	once := j.Clone()
	Normalize(once)
	if once.Schema != "" {
		t.Errorf("$schema = %q after Normalize, want it dropped", once.Schema)
	}
	twice := once.Clone()
	Normalize(twice)
	if !reflect.DeepEqual(once, twice) || once.Hash() != twice.Hash() {
		t.Errorf("Normalize is not idempotent:\nonce:  %s\ntwice: %s", mustJSON(once), mustJSON(twice))
	}
	if j.Clone().Hash() == once.Hash() {
		t.Errorf("Normalize changed nothing; the test needs a job with defaults to fill")
	}
}

func TestHashSeesEveryField(t *testing.T) {
	t.Parallel()
	base := parseValid(t, `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine, command: [echo, hi]}]
`)
	changes := map[string]func(j *Job){
		"image":   func(j *Job) { j.Steps[0].Image = "busybox" },
		"command": func(j *Job) { j.Steps[0].Command = Command{"echo", "ho"} },
		"label":   func(j *Job) { j.Metadata.Labels = map[string]string{"a": "b"} },
		"timeout": func(j *Job) { j.Steps[0].Timeout = dur("1s") },
		"trigger": func(j *Job) { j.Trigger.Type = TriggerHTTP },
	}
	for name, change := range changes {
		c := base.Clone()
		change(c)
		if c.Hash() == base.Hash() {
			t.Errorf("changing %s left the hash unchanged", name)
		}
	}
	// Labels are a map; the hash must not depend on its iteration order.
	a, b := base.Clone(), base.Clone()
	a.Metadata.Labels = map[string]string{"x": "1", "y": "2", "z": "3"}
	b.Metadata.Labels = map[string]string{"z": "3", "y": "2", "x": "1"}
	for range 20 {
		if a.Hash() != b.Hash() {
			t.Fatal("equal jobs hash differently")
		}
	}
}

func TestCheckSet(t *testing.T) {
	t.Parallel()
	job := func(alias, trigger string) string {
		return "apiVersion: v1\nkind: Job\nmetadata:\n  alias: " + alias + "\n" + trigger + "steps: [{name: a, image: alpine}]\n"
	}
	hook := func(path string) string {
		return "trigger:\n  type: http\n  configuration: {path: " + path + ", secret: secret://env/T}\n"
	}
	type file struct{ name, data string }
	tests := []struct {
		name  string
		files []file
		want  []Diagnostic
	}{
		{
			name:  "distinct",
			files: []file{{"a.yaml", job("one", hook("/hooks/one"))}, {"b.yaml", job("two", hook("/hooks/two"))}},
		},
		{
			name: "same alias in two files",
			files: []file{
				{"jobs/a.yaml", job("nightly", "")},
				{"jobs/b.yaml", "# another team\n" + job("other", "") + "---\n" + job("nightly", "")},
			},
			want: []Diagnostic{{File: "jobs/b.yaml", Line: 11, Column: 10, Path: "metadata.alias", Severity: SeverityError,
				Message: `alias "nightly" is already defined at jobs/a.yaml:4`}},
		},
		{
			name: "same alias three times is reported on each reuse",
			files: []file{
				{"a.yaml", job("x", "")},
				{"b.yaml", job("x", "")},
				{"c.yaml", job("x", "")},
			},
			want: []Diagnostic{
				{File: "b.yaml", Line: 4, Column: 10, Path: "metadata.alias", Severity: SeverityError, Message: `alias "x" is already defined at a.yaml:4`},
				{File: "c.yaml", Line: 4, Column: 10, Path: "metadata.alias", Severity: SeverityError, Message: `alias "x" is already defined at a.yaml:4`},
			},
		},
		{
			name:  "same http path",
			files: []file{{"a.yaml", job("one", hook("/hooks/x"))}, {"b.yaml", job("two", hook("/hooks/x"))}},
			want: []Diagnostic{{File: "b.yaml", Line: 7, Column: 25, Path: "trigger.configuration.path", Severity: SeverityError,
				Message: `http trigger path "/hooks/x" is already used by job "one" at a.yaml:7`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var docs []*Document
			for _, f := range tt.files {
				ds, diags := Parse(f.name, []byte(f.data), Limits{})
				if len(diags) != 0 {
					t.Fatalf("%s: %v", f.name, diags)
				}
				for _, d := range ds {
					if !d.Valid() {
						t.Fatalf("%s: %v", f.name, d.Diagnostics)
					}
				}
				docs = append(docs, ds...)
			}
			if got := CheckSet(docs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CheckSet =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestParseSecretRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    SecretRef
		wantErr string
	}{
		{name: "env", input: "secret://env/API_TOKEN", want: SecretRef{Backend: "env", Name: "API_TOKEN"}},
		{name: "file", input: "secret://file/db/password", want: SecretRef{Backend: "file", Path: "db/password"}},
		{name: "file path is cleaned", input: "secret://file/db/./password", want: SecretRef{Backend: "file", Path: "db/password"}},
		{name: "vault", input: "secret://vault/kv/team/db#password", want: SecretRef{Backend: "vault", Mount: "kv", Path: "team/db", Field: "password"}},
		{name: "vault version after field", input: "secret://vault/kv/team/db#password?version=3", want: SecretRef{Backend: "vault", Mount: "kv", Path: "team/db", Field: "password", Version: 3}},
		{name: "vault version before field", input: "secret://vault/kv/team/db?version=3#password", want: SecretRef{Backend: "vault", Mount: "kv", Path: "team/db", Field: "password", Version: 3}},
		{name: "not a reference", input: "env://API_TOKEN", wantErr: `"env://API_TOKEN" is not a secret reference`},
		{name: "unknown backend", input: "secret://aws/token", wantErr: `unknown backend "aws"; use env, file or vault`},
		{name: "env without name", input: "secret://env/", wantErr: "env needs a variable name"},
		{name: "env name with a dash", input: "secret://env/API-TOKEN", wantErr: "env needs a variable name"},
		{name: "file without path", input: "secret://file/", wantErr: "file needs a path below the secrets directory"},
		{name: "file absolute path", input: "secret://file//etc/passwd", wantErr: "drop the leading /"},
		{name: "file parent directory", input: "secret://file/../etc/passwd", wantErr: "file paths may not contain .."},
		{name: "file parent directory inside", input: "secret://file/a/../../etc/passwd", wantErr: "file paths may not contain .."},
		{name: "vault without field", input: "secret://vault/kv/x", wantErr: "vault needs a field: secret://vault/MOUNT/PATH#FIELD"},
		{name: "vault empty field", input: "secret://vault/kv/x#", wantErr: "vault needs a field"},
		{name: "vault without path", input: "secret://vault/kv#password", wantErr: "vault needs a mount and a path"},
		{name: "vault without mount", input: "secret://vault//x#password", wantErr: "vault needs a mount and a path"},
		{name: "vault parent directory", input: "secret://vault/kv/a/../b#password", wantErr: `vault path "a/../b" has an empty, . or .. segment`},
		{name: "vault version zero", input: "secret://vault/kv/x#f?version=0", wantErr: "version must be a positive integer"},
		{name: "vault version not a number", input: "secret://vault/kv/x#f?version=latest", wantErr: "version must be a positive integer"},
		{name: "vault unknown option", input: "secret://vault/kv/x#f?ttl=5", wantErr: `unknown option "ttl"; only version=N is supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSecretRef(tt.input)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSecretRef(%q) error = %v, want one containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecretRef(%q): %v", tt.input, err)
			}
			if got.String() != tt.input {
				t.Errorf("String() = %q, want the reference as written", got.String())
			}
			tt.want.raw = tt.input
			if got != tt.want {
				t.Errorf("ParseSecretRef(%q) = %+v, want %+v", tt.input, got, tt.want)
			}
		})
	}
}

func TestDiagnosticString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Diagnostic
		want string
	}{
		{"error", Diagnostic{File: "a.yaml", Line: 3, Column: 7, Path: "steps[0].image", Severity: SeverityError, Message: "m"}, "a.yaml:3:7: steps[0].image: m"},
		{"warning", Diagnostic{File: "a.yaml", Line: 1, Column: 1, Path: "steps[1]", Severity: SeverityWarning, Message: "m"}, "a.yaml:1:1: steps[1]: warning: m"},
		{"document", Diagnostic{File: "a.yaml", Line: 1, Column: 1, Severity: SeverityError, Message: "m"}, "a.yaml:1:1: (document): m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDocumentPos(t *testing.T) {
	t.Parallel()
	doc := parseOne(t, `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
    app.kubernetes.io/name: demo
steps:
  - name: a
    image: alpine
`)
	tests := []struct {
		path string
		want Position
	}{
		{"metadata.alias", Position{4, 10}},
		{`metadata.labels["app.kubernetes.io/name"]`, Position{6, 5}},
		{`metadata.labels["app.kubernetes.io/other"]`, Position{6, 5}}, // nearest ancestor: the labels mapping
		{"steps[0].image", Position{9, 12}},
		{"steps[0].timeout", Position{8, 5}},
		{"trigger.type", Position{1, 1}},
	}
	for _, tt := range tests {
		if got := doc.Pos(tt.path); got != tt.want {
			t.Errorf("Pos(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestReadLimited(t *testing.T) {
	t.Parallel()
	got, err := ReadLimited(strings.NewReader(strings.Repeat("x", 100)), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 {
		t.Errorf("read %d bytes, want limit+1 = 11", len(got))
	}
	_, diags := Parse("big.yaml", got, Limits{MaxFileBytes: 10})
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "file is 11 bytes; the limit is 10 bytes") {
		t.Errorf("Parse of limit+1 bytes: %v", diags)
	}
}
