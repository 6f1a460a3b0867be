package schema

import (
	"strings"
	"testing"
)

const (
	sevE = SeverityError
	sevW = SeverityWarning
)

// TestParseInvalid lists manifests with one mistake each (or a few, spelt
// out) and the exact diagnostics they must produce: nothing more, nothing
// less. Lines and columns are 1-based; a missing field is reported at the
// nearest enclosing value that is present.
func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []wantDiag
	}{
		// ---- document ----
		{
			name:  "document is a list",
			input: "- a\n- b\n",
			want:  []wantDiag{{"", 1, 1, sevE, "expected a mapping, got a list"}},
		},
		{
			name: "missing apiVersion",
			input: `kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"apiVersion", 1, 1, sevE, "apiVersion is required; set it to v1"}},
		},
		{
			name: "null apiVersion reads as missing",
			input: `apiVersion:
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"apiVersion", 1, 12, sevE, "apiVersion is required; set it to v1"}},
		},
		{
			name: "unsupported apiVersion",
			input: `apiVersion: v2
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"apiVersion", 1, 13, sevE, `apiVersion "v2" is not supported; use v1`}},
		},
		{
			name: "apiVersion is an integer",
			input: `apiVersion: 1
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"apiVersion", 1, 13, sevE, `expected a string, got integer 1; quote it ("1")`}},
		},
		{
			name: "missing kind",
			input: `apiVersion: v1
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"kind", 1, 1, sevE, "kind is required; set it to Job"}},
		},
		{
			name: "unsupported kind",
			input: `apiVersion: v1
kind: CronJob
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"kind", 2, 7, sevE, `kind "CronJob" is not supported; use Job`}},
		},
		{
			name: "misspelt top-level field suggests and is not reported missing too",
			input: `apiVersion: v1
kinds: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"kinds", 2, 1, sevE, `unknown field "kinds"; did you mean "kind"?`}},
		},
		{
			name: "unknown top-level field without a close match lists the allowed ones",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
spec: {}
`,
			want: []wantDiag{{"spec", 5, 1, sevE, `unknown field "spec"; allowed: $schema, apiVersion, kind, metadata, trigger, callbacks, steps`}},
		},
		{
			name: "$schema is an integer",
			input: `$schema: 5
apiVersion: v1
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"$schema", 1, 10, sevE, "expected a string, got integer 5"}},
		},
		{
			name: "duplicate key",
			input: `apiVersion: v1
kind: Job
kind: Job
metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"kind", 3, 1, sevE, `duplicate key "kind" (first set at line 2)`}},
		},
		{
			name: "duplicate key on one line",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo, alias: other}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 3, 25, sevE, `duplicate key "alias" (first set at line 3, column 12)`}},
		},
		{
			name: "merge key with a scalar",
			input: `apiVersion: v1
kind: Job
metadata:
  <<: 5
  alias: demo
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`metadata["<<"]`, 4, 7, sevE, "the merge key << needs a mapping or a list of mappings, got integer 5"}},
		},
		{
			name: "merge list holding a scalar",
			input: `apiVersion: v1
kind: Job
metadata:
  <<: [{alias: demo}, 5]
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`metadata["<<"][1]`, 4, 23, sevE, "the merge key << needs a mapping or a list of mappings; this item is integer 5"}},
		},
		{
			name: "alias inside its own anchor",
			input: `apiVersion: v1
kind: Job
metadata: &m {alias: demo, labels: *m}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.labels", 3, 36, sevE, "alias *m is used inside its own anchor"}},
		},
		{
			name: "alias to an anchor of an earlier document",
			input: `apiVersion: v1
kind: Job
metadata: {alias: &a demo}
steps: [{name: a, image: alpine}]
---
apiVersion: v1
kind: Job
metadata: {alias: *a}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 8, 19, sevE, "alias *a refers to an anchor in an earlier document"}},
		},
		{
			name: "unknown anchor is located by its alias",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: *img
`,
			want: []wantDiag{{"", 6, 1, sevE, "invalid YAML: unknown anchor 'img' referenced"}},
		},
		{
			name: "unknown anchor used as a key at the start of a line",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
*k : v
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"", 6, 1, sevE, "invalid YAML: unknown anchor 'k' referenced"}},
		},
		{
			name:  "invalid UTF-8 is located",
			input: "apiVersion: v1\nkind: Job\nmetadata: {alias: demo}\nsteps: [{name: a, image: \"al\xffpine\"}]\n",
			want:  []wantDiag{{"", 4, 29, sevE, "invalid YAML: invalid leading UTF-8 octet"}},
		},
		{
			name:  "control character is located",
			input: "apiVersion: v1\nkind: Job\nmetadata: {alias: démo\x7f}\nsteps: [{name: a, image: alpine}]\n",
			// Columns count characters, as YAML does: é is one.
			want: []wantDiag{{"", 3, 23, sevE, "invalid YAML: control characters are not allowed"}},
		},
		{
			name: "YAML syntax error",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo
steps: [{name: a, image: alpine}]
`,
			// The flow mapping that is never closed opens on line 3.
			want: []wantDiag{{"", 3, 1, sevE, "invalid YAML: did not find expected ',' or '}'"}},
		},
		{
			name: "YAML syntax error in a block sequence",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
  image: alpine
`,
			// Reported where the block sequence that "image" breaks begins.
			want: []wantDiag{{"", 5, 1, sevE, "invalid YAML: did not find expected '-' indicator"}},
		},
		{
			name: "YAML scanner error",
			input: `apiVersion: v1
kind: Job
 metadata: {alias: demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"", 3, 1, sevE, "invalid YAML: mapping values are not allowed in this context"}},
		},

		// ---- metadata ----
		{
			name: "missing metadata",
			input: `apiVersion: v1
kind: Job
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata", 1, 1, sevE, "metadata is required, with at least an alias"}},
		},
		{
			name: "metadata is a list",
			input: `apiVersion: v1
kind: Job
metadata: [demo]
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata", 3, 11, sevE, "expected a mapping, got a list"}},
		},
		{
			name: "missing alias",
			input: `apiVersion: v1
kind: Job
metadata: {labels: {team: data}}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 3, 11, sevE, "alias is required"}},
		},
		{
			name: "alias with uppercase letters",
			input: `apiVersion: v1
kind: Job
metadata: {alias: Nightly_ETL}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 3, 19, sevE, `alias "Nightly_ETL" may hold only lowercase letters, digits and '-', and must start and end with a letter or digit`}},
		},
		{
			name: "alias too long",
			input: `apiVersion: v1
kind: Job
metadata: {alias: ` + strings.Repeat("a", 64) + `}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 3, 19, sevE, "is 64 characters; the limit is 63"}},
		},
		{
			name: "alias with a leading dash",
			input: `apiVersion: v1
kind: Job
metadata: {alias: -demo}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.alias", 3, 19, sevE, `alias "-demo" may hold only lowercase letters`}},
		},
		{
			name: "misspelt labels",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  lables: {team: data}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.lables", 5, 3, sevE, `unknown field "lables"; did you mean "labels"?`}},
		},
		{
			name: "label key with an uppercase prefix",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
    Example.com/team: data
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`metadata.labels["Example.com/team"]`, 6, 5, sevE, `label key "Example.com/team": prefix "Example.com" must be a lowercase DNS subdomain`}},
		},
		{
			name: "label value with a space",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
    team: data platform
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.labels.team", 6, 5, sevE, `label value "data platform" must be at most 63 characters of letters, digits, '-', '_' and '.'`}},
		},
		{
			name: "label value is a number",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
    tier: 1
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.labels.tier", 6, 11, sevE, `expected a string, got integer 1; quote it ("1")`}},
		},
		{
			name: "prune label with another value",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  labels:
    caesium.io/prune: "off"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`metadata.labels["caesium.io/prune"]`, 6, 5, sevE, `label caesium.io/prune accepts only "disabled"`}},
		},
		{
			name: "annotation key starting with a dot",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  annotations:
    .owner: data@example.com
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`metadata.annotations[".owner"]`, 6, 5, sevE, `annotation key ".owner": name ".owner" must be 1 to 63 characters`}},
		},
		{
			name: "negative maxParallelTasks",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  maxParallelTasks: -1
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.maxParallelTasks", 5, 21, sevE, "maxParallelTasks must be 0 (no limit) or more, got -1"}},
		},
		{
			name: "maxParallelTasks is a fraction",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  maxParallelTasks: 1.5
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.maxParallelTasks", 5, 21, sevE, "expected an integer, got number 1.5"}},
		},
		{
			name: "concurrency maxRuns zero",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  concurrency:
    maxRuns: 0
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.concurrency.maxRuns", 6, 14, sevE, "maxRuns must be at least 1, got 0"}},
		},
		{
			name: "misspelt maxRuns",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  concurrency: {maxruns: 2}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.concurrency.maxruns", 5, 17, sevE, `unknown field "maxruns"; did you mean "maxRuns"?`}},
		},
		{
			name: "unknown concurrency strategy",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  concurrency:
    strategy: queu
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.concurrency.strategy", 6, 15, sevE, `strategy "queu" is not one of queue, replace, skip, fail; did you mean "queue"?`}},
		},
		{
			name: "zero taskTimeout",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: 0s
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.taskTimeout", 5, 16, sevE, "duration must be positive, got 0s"}},
		},
		{
			name: "negative runTimeout",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  runTimeout: -5m
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.runTimeout", 5, 15, sevE, "duration must be positive, got -5m0s"}},
		},
		{
			name: "taskTimeout as a bare number",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: 600
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.taskTimeout", 5, 16, sevE, "expected a duration with a unit such as 600s, got the bare number 600"}},
		},
		{
			name: "taskTimeout in words",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: 10 minutes
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.taskTimeout", 5, 16, sevE, `"10 minutes" is not a duration; write a number with a unit such as 30s, 10m or 1h30m`}},
		},
		{
			name: "empty taskTimeout",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: ""
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.taskTimeout", 5, 16, sevE, "duration is empty; write a number with a unit"}},
		},
		{
			name: "taskTimeout longer than runTimeout",
			input: `apiVersion: v1
kind: Job
metadata:
  alias: demo
  taskTimeout: 2h
  runTimeout: 1h
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"metadata.taskTimeout", 5, 16, sevW, "taskTimeout 2h0m0s is longer than runTimeout 1h0m0s"}},
		},

		// ---- trigger ----
		{
			name: "unknown trigger type",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: crn
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.type", 5, 9, sevE, `trigger type "crn" is not one of cron, http, manual; did you mean "cron"?`}},
		},
		{
			name: "trigger type of the wrong type does not cascade",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: 5
  configuration: {expression: "@daily"}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.type", 5, 9, sevE, `expected a string, got integer 5`}},
		},
		{
			name: "cron without expression",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expression", 5, 3, sevE, `a cron trigger needs an expression, such as "0 2 * * *" or @hourly`}},
		},
		{
			name: "cron minute out of range",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "61 * * * *"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expression", 7, 17, sevE, `cron expression "61 * * * *" does not parse: end of range (61) above maximum (59)`}},
		},
		{
			name: "cron time zone inside the expression",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "CRON_TZ=Europe/Berlin 0 2 * * *"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expression", 7, 17, sevE, "set the time zone with trigger.configuration.timezone, not inside the expression"}},
		},
		{
			name: "unknown time zone",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "@hourly"
    timezone: Mars/Olympus
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.timezone", 8, 15, sevE, `unknown time zone "Mars/Olympus"; use an IANA name such as Europe/Berlin or UTC`}},
		},
		{
			name: "Local time zone",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "@hourly"
    timezone: Local
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.timezone", 8, 15, sevE, "timezone must be an IANA name such as Europe/Berlin or UTC"}},
		},
		{
			name: "catchup is not a boolean",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "@hourly"
    catchup: "yes"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.catchup", 8, 14, sevE, `expected true or false, got string "yes"`}},
		},
		{
			name: "http field on a cron trigger",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expression: "@hourly"
    path: /hooks/demo
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.path", 8, 11, sevE, "path is not a setting of a cron trigger (it belongs to the http trigger); allowed: expression, timezone, catchup"}},
		},
		{
			name: "misspelt expression",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration:
    expresion: "@hourly"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expresion", 7, 5, sevE, `unknown field "expresion"; did you mean "expression"?`}},
		},
		{
			name: "configuration on a manual trigger",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: manual
  configuration:
    expression: "@daily"
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expression", 7, 17, sevE, "A manual trigger takes no configuration; expression belongs to the cron trigger"}},
		},
		{
			name: "http without path",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    secret: secret://env/DEMO_TOKEN
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.path", 7, 5, sevE, "an http trigger needs a path such as /hooks/nightly-etl"}},
		},
		{
			name: "http path without leading slash",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: hooks/demo
    secret: secret://env/DEMO_TOKEN
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.path", 7, 11, sevE, `path "hooks/demo" must start with / and hold only URL path characters, without // or ..`}},
		},
		{
			name: "http without secret",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: /hooks/demo
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.secret", 7, 5, sevE, "an http trigger needs a secret, as a secret:// reference"}},
		},
		{
			name: "literal secret in an http trigger",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: /hooks/demo
    secret: hunter2
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.secret", 8, 13, sevE, "secret must be a secret:// reference, not the secret itself"}},
		},
		{
			name: "vault secret without field",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: /hooks/demo
    secret: secret://vault/kv/x
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.secret", 8, 13, sevE, `secret reference "secret://vault/kv/x": vault needs a field: secret://vault/MOUNT/PATH#FIELD`}},
		},
		{
			name: "@every below one second",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: cron
  configuration: {expression: "@every 500ms"}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.expression", 6, 31, sevE, "@every 500ms is shorter than the minimum interval of 1s"}},
		},
		{
			name: "secret file reference to the directory itself",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env: {TOKEN: "secret://file/./"}
`,
			want: []wantDiag{{"steps[0].env.TOKEN", 7, 11, sevE, "not the directory itself"}},
		},
		{
			name: "vault version given twice",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env: {TOKEN: "secret://vault/kv/app#token?version=2&version=3"}
`,
			want: []wantDiag{{"steps[0].env.TOKEN", 7, 11, sevE, "give version once"}},
		},
		{
			name: "vault field with a hash",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env: {TOKEN: "secret://vault/kv/app#f#g"}
`,
			want: []wantDiag{{"steps[0].env.TOKEN", 7, 11, sevE, `vault field "f#g" may not contain #, ? or /`}},
		},
		{
			name: "secret reference inside a longer value",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://hooks.example.com/x
    headers: {Authorization: "Bearer secret://env/TOKEN"}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].headers.Authorization", 6, 15, sevW, "a secret reference must be the whole value"}},
		},
		{
			name: "header name with parentheses",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://hooks.example.com/x
    headers: {"X(y)": "1"}
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`callbacks[0].headers["X(y)"]`, 6, 15, sevE, `"X(y)" is not a valid header name`}},
		},
		{
			name: "cron fields on an http trigger",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: /hooks/demo
    secret: secret://env/DEMO_TOKEN
    expression: "@daily"
    catchup: true
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{
				{"trigger.configuration.expression", 9, 17, sevE, "expression is not a setting of an http trigger (it belongs to the cron trigger); allowed: path, secret, signatureScheme"},
				{"trigger.configuration.catchup", 10, 14, sevE, "catchup is not a setting of an http trigger (it belongs to the cron trigger)"},
			},
		},
		{
			name: "unknown signatureScheme",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
trigger:
  type: http
  configuration:
    path: /hooks/demo
    secret: secret://env/DEMO_TOKEN
    signatureScheme: Bearer
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"trigger.configuration.signatureScheme", 9, 22, sevE, `signatureScheme "Bearer" is not one of hmac-sha256, bearer; did you mean "bearer"?`}},
		},

		// ---- callbacks ----
		{
			name: "unknown callback type",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - type: slack
    url: https://example.com/hook
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].type", 5, 11, sevE, `callback type "slack" is not one of webhook`}},
		},
		{
			name: "callback without url",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - type: webhook
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].url", 5, 5, sevE, "a callback needs a url"}},
		},
		{
			name: "callback as a string does not cascade",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - https://example.com/hook
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0]", 5, 5, sevE, `expected a mapping, got string "https://example.com/hook"`}},
		},
		{
			name: "callback url that is not http",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: ftp://example.com/hook
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].url", 5, 10, sevE, `url "ftp://example.com/hook" must be an absolute http or https URL`}},
		},
		{
			name: "callback url with credentials",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://bot:pw@example.com/hook
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].url", 5, 10, sevE, "url must not carry credentials"}},
		},
		{
			name: "unknown callback event",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://example.com/hook
    on: [succes]
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].on[0]", 6, 10, sevE, `callback event "succes" is not one of success, failure; did you mean "success"?`}},
		},
		{
			name: "callback event twice",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://example.com/hook
    on: [success, success]
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].on[1]", 6, 19, sevE, `event "success" is listed twice`}},
		},
		{
			name: "callback on empty",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://example.com/hook
    on: []
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].on", 6, 9, sevE, "on is empty, so the callback would never be sent"}},
		},
		{
			name: "callback header with a bad secret reference",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://example.com/hook
    headers:
      Authorization: secret://env/
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{"callbacks[0].headers.Authorization", 7, 7, sevE, `secret reference "secret://env/": env needs a variable name`}},
		},
		{
			name: "callback header name with a space",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
callbacks:
  - url: https://example.com/hook
    headers:
      "X Token": abc
steps: [{name: a, image: alpine}]
`,
			want: []wantDiag{{`callbacks[0].headers["X Token"]`, 7, 7, sevE, `"X Token" is not a valid header name`}},
		},

		// ---- steps ----
		{
			name: "missing steps",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
`,
			want: []wantDiag{{"steps", 1, 1, sevE, "steps is required; a job needs at least one step"}},
		},
		{
			name: "empty steps",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps: []
`,
			want: []wantDiag{{"steps", 4, 8, sevE, "steps is empty; a job needs at least one step"}},
		},
		{
			name: "steps is a mapping",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps: {a: {image: alpine}}
`,
			want: []wantDiag{{"steps", 4, 8, sevE, "expected a list, got a mapping"}},
		},
		{
			name: "step is a string does not cascade",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - alpine
`,
			want: []wantDiag{{"steps[0]", 5, 5, sevE, `expected a mapping, got string "alpine"`}},
		},
		{
			name: "step without name",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - image: alpine
`,
			want: []wantDiag{{"steps[0].name", 5, 5, sevE, "a step needs a name"}},
		},
		{
			name: "step name is an integer",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: 123
    image: alpine
`,
			want: []wantDiag{{"steps[0].name", 5, 11, sevE, `expected a string, got integer 123; quote it ("123") if it is meant as text`}},
		},
		{
			name: "step name with a space",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: load data
    image: alpine
`,
			want: []wantDiag{{"steps[0].name", 5, 11, sevE, `step name "load data" may hold only letters, digits, '-', '_' and '.'`}},
		},
		{
			name: "docker step without image",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    command: [date]
`,
			want: []wantDiag{{"steps[0].image", 5, 5, sevE, "a step on the docker engine needs an image"}},
		},
		{
			name: "command argument is a boolean",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: [true]
`,
			want: []wantDiag{{"steps[0].command[0]", 7, 15, sevE, `expected a string, got boolean true; quote it ("true")`}},
		},
		{
			name: "misspelt image suggests and is not reported missing too",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    imagee: alpine
`,
			want: []wantDiag{{"steps[0].imagee", 6, 5, sevE, `unknown field "imagee"; did you mean "image"?`}},
		},
		{
			name: "unknown engine",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    engine: dockr
`,
			want: []wantDiag{{"steps[0].engine", 7, 13, sevE, `engine "dockr" is not one of docker, podman, kubernetes, local; did you mean "docker"?`}},
		},
		{
			name: "engine as a list does not cascade",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    engine: [local]
    command: [date]
`,
			want: []wantDiag{{"steps[0].engine", 6, 13, sevE, "expected a string, got a list"}},
		},
		{
			name: "unknown triggerRule",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    triggerRule: all_sucess
`,
			want: []wantDiag{{"steps[0].triggerRule", 7, 18, sevE, `triggerRule "all_sucess" is not one of all_success, all_done, one_success, all_failed, always; did you mean "all_success"?`}},
		},
		{
			name: "local step without command",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    engine: local
`,
			want: []wantDiag{{"steps[0].command", 5, 5, sevE, "a step on the local engine needs a command"}},
		},
		{
			name: "local step with an empty command is reported once",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    engine: local
    command: []
`,
			want: []wantDiag{{"steps[0].command", 7, 14, sevE, "command is empty; a step on the local engine needs a command"}},
		},
		{
			name: "local step ignores image",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    engine: local
    image: alpine
    command: [date]
`,
			want: []wantDiag{{"steps[0].image", 7, 12, sevW, "the local engine runs commands on the agent's host and ignores image"}},
		},
		{
			name: "relative workdir",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    workdir: app
`,
			want: []wantDiag{{"steps[0].workdir", 7, 14, sevE, `workdir "app" must be an absolute path inside the container`}},
		},
		{
			name: "image with a space",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine latest
`,
			want: []wantDiag{{"steps[0].image", 6, 12, sevE, `image "alpine latest" must not contain spaces`}},
		},
		{
			name: "duplicate key in a step",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    image: busybox
`,
			want: []wantDiag{{"steps[0].image", 7, 5, sevE, `duplicate key "image" (first set at line 6)`}},
		},
		{
			name: "command as a shell line",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: "echo hi"
`,
			want: []wantDiag{{"steps[0].command", 7, 14, sevE, `must be a list of strings (or a string holding a JSON array); to run a shell line write ["sh", "-c", "echo hi"]`}},
		},
		{
			name: "command as a JSON array with a number",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: '["sleep", 10]'
`,
			want: []wantDiag{{"steps[0].command", 7, 14, sevE, "string is not a JSON array of strings"}},
		},
		{
			name: "command as a mapping",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: {sh: echo}
`,
			want: []wantDiag{{"steps[0].command", 7, 14, sevE, "expected a list of strings, got a mapping"}},
		},
		{
			name: "command argument is a number",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: [sleep, 10]
`,
			want: []wantDiag{{"steps[0].command[1]", 7, 22, sevE, `expected a string, got integer 10; quote it ("10")`}},
		},
		{
			name: "empty command",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    command: []
`,
			want: []wantDiag{{"steps[0].command", 7, 14, sevE, "command is empty; remove it to run the image's default command"}},
		},
		{
			name: "env as a list",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env: [A=1]
`,
			want: []wantDiag{{"steps[0].env", 7, 10, sevE, "expected a mapping of names to strings, got a list"}},
		},
		{
			name: "env name starting with a digit",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      1PASS: x
`,
			want: []wantDiag{{"steps[0].env.1PASS", 8, 7, sevE, `"1PASS" is not a valid environment variable name`}},
		},
		{
			name: "env name with a dash",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      DB-HOST: x
`,
			want: []wantDiag{{"steps[0].env.DB-HOST", 8, 7, sevE, `"DB-HOST" is not a valid environment variable name`}},
		},
		{
			name: "env value empty",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      TOKEN:
`,
			want: []wantDiag{{"steps[0].env.TOKEN", 8, 13, sevE, `value is empty; write "" for an empty string`}},
		},
		{
			name: "env value is a number",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      PORT: 8080
`,
			want: []wantDiag{{"steps[0].env.PORT", 8, 13, sevE, `expected a string, got integer 8080; quote it ("8080")`}},
		},
		{
			name: "file secret escaping the secrets directory",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      PASSWD: secret://file/../etc/passwd
`,
			want: []wantDiag{{"steps[0].env.PASSWD", 8, 7, sevE, `secret reference "secret://file/../etc/passwd": file paths may not contain ..`}},
		},
		{
			name: "unknown secret backend",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      TOKEN: secret://aws/token
`,
			want: []wantDiag{{"steps[0].env.TOKEN", 8, 7, sevE, `unknown backend "aws"; use env, file or vault`}},
		},
		{
			name: "negative retries",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: -1
`,
			want: []wantDiag{{"steps[0].retries", 7, 14, sevE, "retries must be 0 or more, got -1"}},
		},
		{
			name: "too many retries",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: 101
`,
			want: []wantDiag{{"steps[0].retries", 7, 14, sevE, "retries must be at most 100, got 101"}},
		},
		{
			name: "retries as a string",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: "3"
`,
			want: []wantDiag{{"steps[0].retries", 7, 14, sevE, `expected an integer, got string "3"`}},
		},
		{
			name: "retries out of range",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: 99999999999
`,
			want: []wantDiag{{"steps[0].retries", 7, 14, sevE, "integer 99999999999 is out of range -2147483648 to 2147483647"}},
		},
		{
			name: "retries tagged as an integer by hand",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: !!int three
`,
			want: []wantDiag{{"steps[0].retries", 7, 14, sevE, `expected an integer, got "three"`}},
		},
		{
			name: "timeout as a bare number is reported once",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    timeout: 10
`,
			want: []wantDiag{{"steps[0].timeout", 7, 14, sevE, "expected a duration with a unit such as 10s, got the bare number 10"}},
		},
		{
			name: "negative timeout",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    timeout: -1s
`,
			want: []wantDiag{{"steps[0].timeout", 7, 14, sevE, "duration must be positive, got -1s"}},
		},
		{
			name: "zero retryDelay",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retries: 2
    retryDelay: 0s
`,
			want: []wantDiag{{"steps[0].retryDelay", 8, 17, sevE, "duration must be positive, got 0s"}},
		},
		{
			name: "retryDelay without retries",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    retryDelay: 30s
`,
			want: []wantDiag{{"steps[0].retryDelay", 7, 17, sevW, "retryDelay has no effect without retries"}},
		},
		{
			name: "env name the agent sets",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    env:
      CAESIUM_RUN_ID: "7"
`,
			want: []wantDiag{{"steps[0].env.CAESIUM_RUN_ID", 8, 7, sevW, "CAESIUM_RUN_ID is set by the agent in every step"}},
		},
		{
			name: "step timeout longer than runTimeout",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo, runTimeout: 1h}
steps:
  - name: a
    image: alpine
    timeout: 2h
`,
			want: []wantDiag{{"steps[0].timeout", 7, 14, sevW, "timeout 2h0m0s is longer than metadata.runTimeout 1h0m0s"}},
		},

		// ---- edges ----
		{
			name: "duplicate step names",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
  - name: a
    image: alpine
`,
			want: []wantDiag{{"steps[1].name", 7, 11, sevE, `step name "a" is already used by steps[0]`}},
		},
		{
			name: "misspelt dependsOn",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
  - name: b
    image: alpine
    dependson: [a]
`,
			want: []wantDiag{{"steps[1].dependson", 9, 5, sevE, `unknown field "dependson"; did you mean "dependsOn"?`}},
		},
		{
			name: "edge to an unknown step",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: load
    image: alpine
  - name: report
    image: alpine
    dependsOn: [lod]
`,
			want: []wantDiag{
				{"steps[0]", 5, 5, sevW, `step "load" has no next or dependsOn while other steps do, so it runs as an independent root`},
				{"steps[1].dependsOn[0]", 9, 17, sevE, `no step is named "lod"; did you mean "load"?`},
			},
		},
		{
			name: "next to an unknown step",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: extract
    image: alpine
    next: [transform, publish]
  - name: transform
    image: alpine
`,
			want: []wantDiag{{"steps[0].next[1]", 7, 23, sevE, `no step is named "publish"`}},
		},
		{
			name: "self edge",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    next: a
`,
			want: []wantDiag{{"steps[0].next[0]", 7, 11, sevE, `step "a" cannot depend on itself`}},
		},
		{
			name: "empty edge target",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
  - name: b
    image: alpine
    dependsOn: ""
`,
			want: []wantDiag{
				{"steps[0]", 5, 5, sevW, `step "a" has no next or dependsOn`},
				{"steps[1].dependsOn[0]", 9, 16, sevE, "step name is empty"},
			},
		},
		{
			name: "duplicate edge in one list",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
  - name: b
    image: alpine
    dependsOn: [a, a]
`,
			want: []wantDiag{{"steps[1].dependsOn[1]", 9, 20, sevE, "edge a -> b is declared twice (also at steps[1].dependsOn[0])"}},
		},
		{
			name: "duplicate edge as next and dependsOn",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    next: b
  - name: b
    image: alpine
    dependsOn: a
`,
			want: []wantDiag{{"steps[1].dependsOn[0]", 10, 16, sevE, "edge a -> b is declared twice (also at steps[0].next[0])"}},
		},
		{
			name: "next as a mapping",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    next: {b: true}
  - name: b
    image: alpine
    dependsOn: [a]
`,
			want: []wantDiag{{"steps[0].next", 7, 11, sevE, "expected a step name or a list of step names, got a mapping"}},
		},
		{
			name: "cycle",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: a
    image: alpine
    next: b
  - name: b
    image: alpine
    next: c
  - name: c
    image: alpine
    next: a
`,
			want: []wantDiag{{"steps[0]", 5, 5, sevE, "steps form a cycle: a -> b -> c -> a"}},
		},
		{
			name: "cycle through dependsOn after a root",
			input: `apiVersion: v1
kind: Job
metadata: {alias: demo}
steps:
  - name: init
    image: alpine
    next: build
  - name: build
    image: alpine
    dependsOn: [test]
  - name: test
    image: alpine
    dependsOn: [build]
`,
			want: []wantDiag{{"steps[1]", 8, 5, sevE, "steps form a cycle: build -> test -> build"}},
		},
		{
			name: "isolated step once edges are declared",
			input: `apiVersion: v1
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
`,
			want: []wantDiag{{"steps[2]", 10, 5, sevW, `step "lint" has no next or dependsOn while other steps do, so it runs as an independent root`}},
		},
	}
	if len(tests) < 45 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := parseAll(t, "job.yaml", tt.input, Limits{})
			assertDiags(t, got, tt.want)
			for _, d := range got {
				if d.File != "job.yaml" {
					t.Errorf("diagnostic %v: file %q, want job.yaml", d, d.File)
				}
			}
		})
	}
}

// TestParseReportsEveryProblem checks that one file reports all of its
// problems at once, across fields, steps and documents, sorted by position.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	input := `apiVersion: v2
kind: Job
metadata:
  alias: Demo
  lables: {team: data}
trigger:
  type: cron
  configuration:
    expression: "61 * * * *"
    timezone: Mars/Olympus
steps:
  - name: extract
    imagee: alpine
    retries: -1
  - name: load
    image: alpine
    timeout: 10
    dependsOn: [extrct]
---
apiVersion: v1
kind: Job
metadata: {alias: second}
steps: [{name: a}]
`
	docs, got := parseAll(t, "many.yaml", input, Limits{})
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	want := []wantDiag{
		{"apiVersion", 1, 13, sevE, `apiVersion "v2" is not supported`},
		{"metadata.alias", 4, 10, sevE, `alias "Demo" may hold only lowercase letters`},
		{"metadata.lables", 5, 3, sevE, `did you mean "labels"?`},
		{"trigger.configuration.expression", 9, 17, sevE, `cron expression "61 * * * *" does not parse`},
		{"trigger.configuration.timezone", 10, 15, sevE, `unknown time zone "Mars/Olympus"`},
		{"steps[0]", 12, 5, sevW, `step "extract" has no next or dependsOn`},
		{"steps[0].imagee", 13, 5, sevE, `did you mean "image"?`},
		{"steps[0].retries", 14, 14, sevE, "retries must be 0 or more, got -1"},
		{"steps[1].timeout", 17, 14, sevE, "got the bare number 10"},
		{"steps[1].dependsOn[0]", 18, 17, sevE, `no step is named "extrct"; did you mean "extract"?`},
		{"steps[0].image", 23, 9, sevE, "a step on the docker engine needs an image"},
	}
	assertDiags(t, got, want)
	if docs[0].Valid() || docs[1].Valid() {
		t.Errorf("Valid() = %v, %v; want both false", docs[0].Valid(), docs[1].Valid())
	}
}

// TestDecodeErrorsAreNotRepeated checks that a field whose value could not be
// read gets exactly one diagnostic: the semantic checks, which see the field
// as zero, do not report it (or what hangs off it) again.
func TestDecodeErrorsAreNotRepeated(t *testing.T) {
	t.Parallel()
	const head = "apiVersion: v1\nkind: Job\nmetadata: {alias: demo}\n"
	tests := []struct {
		name  string
		input string
		path  string
	}{
		{"bare number timeout", head + "steps: [{name: a, image: alpine, timeout: 10}]\n", "steps[0].timeout"},
		{"bare number taskTimeout", "apiVersion: v1\nkind: Job\nmetadata: {alias: demo, taskTimeout: 10}\nsteps: [{name: a, image: alpine}]\n", "metadata.taskTimeout"},
		{"metadata as a string", "apiVersion: v1\nkind: Job\nmetadata: demo\nsteps: [{name: a, image: alpine}]\n", "metadata"},
		{"step as a list", head + "steps: [[a]]\n", "steps[0]"},
		{"name as a number", head + "steps: [{name: 1, image: alpine}]\n", "steps[0].name"},
		{"maxRuns as a string", "apiVersion: v1\nkind: Job\nmetadata: {alias: demo, concurrency: {maxRuns: one}}\nsteps: [{name: a, image: alpine}]\n", "metadata.concurrency.maxRuns"},
		{"trigger type as a list", head + "trigger: {type: [cron], configuration: {expression: x}}\nsteps: [{name: a, image: alpine}]\n", "trigger.type"},
		{"callback as a number", head + "callbacks: [1]\nsteps: [{name: a, image: alpine}]\n", "callbacks[0]"},
		{"misspelt steps", head + "step: [{name: a, image: alpine}]\n", "step"},
		{"misspelt metadata", "apiVersion: v1\nkind: Job\nmetadat: {alias: demo}\nsteps: [{name: a, image: alpine}]\n", "metadat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, got := parseAll(t, "job.yaml", tt.input, Limits{})
			if len(got) != 1 || got[0].Path != tt.path || got[0].Severity != SeverityError {
				t.Errorf("want exactly one error at %s, got:\n%s", tt.path, diagLines(got))
			}
		})
	}
}

func diagLines(diags []Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
