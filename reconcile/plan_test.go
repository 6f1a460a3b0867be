package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/store"
)

// cronJob touches every kind of field a job has, so that each update case
// below can change exactly one of them.
const cronJob = `apiVersion: v1
kind: Job
metadata:
  alias: nightly-etl
  labels:
    team: data-platform
    tier: critical
    app.kubernetes.io/part-of: data-warehouse
  annotations:
    owner: data-platform@example.com
  maxParallelTasks: 2
  taskTimeout: 45m
  runTimeout: 3h
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
  - url: https://hooks.example.com/etl
    on: [failure]
    headers:
      X-Token: secret://env/HOOK_TOKEN
steps:
  - name: extract
    image: registry.example.com/etl:1.14.2
    workdir: /app
    command: [python, -m, etl.extract]
    env:
      SOURCE_DSN: secret://vault/kv/oltp#dsn
      AWS_REGION: eu-central-1
    retries: 3
    retryDelay: 2m
    timeout: 30m
    next: [transform]
  - name: transform
    image: registry.example.com/etl:1.14.2
    command: [python, -m, etl.transform]
  - name: load
    engine: local
    command: [psql, -c, "CALL load()"]
    dependsOn: [transform]
    triggerRule: all_done
`

// The last two steps of cronJob, for edits that move them.
const (
	transformStep = `  - name: transform
    image: registry.example.com/etl:1.14.2
    command: [python, -m, etl.transform]
`
	loadStep = `  - name: load
    engine: local
    command: [psql, -c, "CALL load()"]
    dependsOn: [transform]
    triggerRule: all_done
`
)

// httpJob covers the http trigger's configuration.
const httpJob = `apiVersion: v1
kind: Job
metadata:
  alias: deploy-hook
trigger:
  type: http
  configuration:
    path: /hooks/deploy
    secret: secret://env/DEPLOY_TOKEN
steps:
  - name: deploy
    image: registry.example.com/deploy:2.0
`

func TestPlanClassifies(t *testing.T) {
	t.Parallel()
	f := setup(t)

	// The same job written differently: defaults spelled out, a scalar
	// dependsOn, a JSON-string command, other key order and comments.
	const cronJobRewritten = `# the same job, spelled differently
kind: Job
apiVersion: v1
metadata:
  alias: nightly-etl
  annotations: {owner: data-platform@example.com}
  labels: {tier: critical, team: data-platform, app.kubernetes.io/part-of: data-warehouse}
  runTimeout: 180m
  taskTimeout: 2700s
  maxParallelTasks: 2
  concurrency: {strategy: skip, maxRuns: 2}
trigger:
  type: cron
  configuration: {timezone: Europe/Berlin, expression: "0 2 * * *", catchup: true}
callbacks:
  - type: webhook
    url: https://hooks.example.com/etl
    on: [failure]
    headers: {X-Token: "secret://env/HOOK_TOKEN"}
steps:
  - name: extract
    engine: docker
    image: registry.example.com/etl:1.14.2
    workdir: /app
    command: '["python", "-m", "etl.extract"]'
    env: {AWS_REGION: eu-central-1, SOURCE_DSN: "secret://vault/kv/oltp#dsn"}
    retries: 3
    retryDelay: 120s
    timeout: 30m
    next: transform
    triggerRule: all_success
  - name: transform
    image: registry.example.com/etl:1.14.2
    command: [python, -m, etl.transform]
    timeout: 45m
  - name: load
    engine: local
    command: [psql, -c, "CALL load()"]
    dependsOn: transform
    triggerRule: all_done
`
	deletedAt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	softDeleted := f.actual(srcPlatform, "etl/nightly.yaml", cronJob)
	softDeleted.DeletedAt = &deletedAt

	atCommitB := f.actual(srcPlatform, "etl/nightly.yaml", cronJob)
	atCommitB.Provenance.Commit = commitB

	staleHash := f.actual(srcPlatform, "etl/nightly.yaml", cronJob)
	staleHash.Hash = "sha256-of-an-older-hashing"

	// Listed with store.ListOptions{OmitSpec: true}: hash and provenance only.
	noSpec := f.actual(srcPlatform, "etl/nightly.yaml", cronJob)
	noSpec.Spec = nil
	noSpecMoved := noSpec
	noSpecMoved.Provenance.Path = "old/nightly.yaml"

	tests := []struct {
		name       string
		actual     []store.Job // nil: none
		manifest   string      // desired, at etl/nightly.yaml
		opts       Options
		want       Action
		wantDiff   []string
		wantReason []string // substrings
		wantXfer   *Transfer
	}{
		{
			name:     "create when no job has the alias",
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionCreate,
		},
		{
			name:     "create over a soft-deleted row",
			actual:   []store.Job{softDeleted},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionCreate,
		},
		{
			name:     "unchanged when spec and provenance are equal",
			actual:   []store.Job{f.actual(srcPlatform, "etl/nightly.yaml", cronJob)},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUnchanged,
		},
		{
			name:     "unchanged: same spec at a new commit",
			actual:   []store.Job{atCommitB},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUnchanged,
		},
		{
			name:     "unchanged: same job written differently normalizes equal",
			actual:   []store.Job{f.actual(srcPlatform, "etl/nightly.yaml", cronJob)},
			manifest: cronJobRewritten,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUnchanged,
		},
		{
			name:     "unchanged: manual job re-applied by hand",
			actual:   []store.Job{f.actual(ManualSource, "etl/nightly.yaml", cronJob)},
			manifest: cronJob,
			opts:     Options{},
			want:     ActionUnchanged,
		},
		{
			name:     "update: equal spec under a stale hash rewrites the hash",
			actual:   []store.Job{staleHash},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUpdate,
			wantDiff: []string{"hash changed"},
		},
		{
			name:     "unchanged: stored spec not loaded, same hash",
			actual:   []store.Job{noSpec},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUnchanged,
		},
		{
			name:     "update: stored spec not loaded, the hash tells the change",
			actual:   []store.Job{noSpec},
			manifest: edit(t, cronJob, "retries: 3", "retries: 4"),
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUpdate,
			wantDiff: []string{"hash changed"},
		},
		{
			name:     "update: stored spec not loaded, moved file",
			actual:   []store.Job{noSpecMoved},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform},
			want:     ActionUpdate,
			wantDiff: []string{"provenance.path changed"},
		},
		{
			name:       "conflict: another source owns the job",
			actual:     []store.Job{f.actual(srcData, "etl/nightly.yaml", cronJob)},
			manifest:   cronJob,
			opts:       Options{SourceID: srcPlatform},
			want:       ActionConflict,
			wantReason: []string{`"data-jobs"`, testRepo, "etl/nightly.yaml", "--force"},
		},
		{
			name:       "conflict: a manual apply cannot overwrite a source's job",
			actual:     []store.Job{f.actual(srcData, "etl/nightly.yaml", cronJob)},
			manifest:   cronJob,
			opts:       Options{},
			want:       ActionConflict,
			wantReason: []string{`"data-jobs"`},
		},
		{
			name:       "conflict: a source cannot overwrite a hand-applied job",
			actual:     []store.Job{f.actual(ManualSource, "etl/nightly.yaml", cronJob)},
			manifest:   cronJob,
			opts:       Options{SourceID: srcPlatform},
			want:       ActionConflict,
			wantReason: []string{`"manual"`},
		},
		{
			name:       "conflict even when the spec changed too",
			actual:     []store.Job{f.actual(srcData, "etl/nightly.yaml", cronJob)},
			manifest:   edit(t, cronJob, "retries: 3", "retries: 4"),
			opts:       Options{SourceID: srcPlatform},
			want:       ActionConflict,
			wantReason: []string{`"data-jobs"`},
		},
		{
			name:     "force transfers ownership from another source",
			actual:   []store.Job{f.actual(srcData, "etl/nightly.yaml", cronJob)},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform, Force: true},
			want:     ActionUpdate,
			wantDiff: []string{"provenance.sourceId changed"},
			wantXfer: &Transfer{From: srcData, To: srcPlatform},
		},
		{
			name:     "force transfers a hand-applied job to a source, with its edits",
			actual:   []store.Job{f.actual(ManualSource, "etl/nightly.yaml", cronJob)},
			manifest: edit(t, cronJob, "retries: 3", "retries: 4"),
			opts:     Options{SourceID: srcPlatform, Force: true},
			want:     ActionUpdate,
			wantDiff: []string{"steps[extract].retries changed", "provenance.sourceId changed"},
			wantXfer: &Transfer{From: ManualSource, To: srcPlatform},
		},
		{
			name:     "force by hand takes a source's job to manual",
			actual:   []store.Job{f.actual(srcData, "etl/nightly.yaml", cronJob)},
			manifest: cronJob,
			opts:     Options{Force: true},
			want:     ActionUpdate,
			wantDiff: []string{"provenance.sourceId changed"},
			wantXfer: &Transfer{From: srcData, To: ManualSource},
		},
		{
			name:     "force on an owned job transfers nothing",
			actual:   []store.Job{f.actual(srcPlatform, "etl/nightly.yaml", cronJob)},
			manifest: cronJob,
			opts:     Options{SourceID: srcPlatform, Force: true},
			want:     ActionUnchanged,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			d := f.desired("etl/nightly.yaml", tt.manifest)
			cs, err := Plan([]Desired{d}, tt.actual, tt.opts)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if len(cs.Changes) != 1 {
				t.Fatalf("got %d changes, want 1: %+v", len(cs.Changes), cs.Changes)
			}
			ch := cs.Changes[0]
			if ch.Action != tt.want {
				t.Fatalf("action = %s, want %s (diff %v, reason %q)", ch.Action, tt.want, diffSummary(ch.Diff), ch.Reason)
			}
			if got := diffSummary(ch.Diff); !slices.Equal(got, tt.wantDiff) && len(got)+len(tt.wantDiff) > 0 {
				t.Errorf("diff =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantDiff, "\n  "))
			}
			for _, s := range tt.wantReason {
				if !strings.Contains(ch.Reason, s) {
					t.Errorf("reason %q does not contain %q", ch.Reason, s)
				}
			}
			if tt.want != ActionConflict && ch.Reason != "" {
				t.Errorf("reason = %q, want none", ch.Reason)
			}
			switch {
			case tt.wantXfer == nil && ch.Transfer != nil:
				t.Errorf("transfer = %+v, want none", *ch.Transfer)
			case tt.wantXfer != nil && (ch.Transfer == nil || *ch.Transfer != *tt.wantXfer):
				t.Errorf("transfer = %+v, want %+v", ch.Transfer, *tt.wantXfer)
			}
			if ch.Desired == nil || ch.Desired.Hash != d.Hash {
				t.Errorf("change does not carry the desired job")
			}
			if wantSrc := cmpOr(tt.opts.SourceID, ManualSource); ch.Desired.Provenance.SourceID != wantSrc || cs.SourceID != wantSrc {
				t.Errorf("source = %q (changeset %q), want %q", ch.Desired.Provenance.SourceID, cs.SourceID, wantSrc)
			}
			if (ch.Actual == nil) != (tt.want == ActionCreate) {
				t.Errorf("actual = %v for a %s", ch.Actual, ch.Action)
			}
			if n := writes(cs); (n > 0) != (tt.want == ActionCreate || tt.want == ActionUpdate) || n > 1 {
				t.Errorf("changeset writes %d jobs", n)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPlanUpdateDiff changes one kind of field at a time and checks that the
// update names exactly that field.
func TestPlanUpdateDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		base     string // cronJob when empty
		old, new string // edit of the manifest
		path     string // provenance path of the desired job; etl/nightly.yaml when empty
		wantDiff []string
	}{
		// steps: env
		{name: "env value added", old: "      AWS_REGION: eu-central-1\n", new: "      AWS_REGION: eu-central-1\n      LOG_LEVEL: debug\n",
			wantDiff: []string{"steps[extract].env.LOG_LEVEL added"}},
		{name: "env value changed", old: "AWS_REGION: eu-central-1", new: "AWS_REGION: eu-west-1",
			wantDiff: []string{"steps[extract].env.AWS_REGION changed"}},
		{name: "env value removed", old: "      AWS_REGION: eu-central-1\n", new: "",
			wantDiff: []string{"steps[extract].env.AWS_REGION removed"}},
		{name: "env secret reference changed", old: "secret://vault/kv/oltp#dsn", new: "secret://vault/kv/oltp-replica#dsn",
			wantDiff: []string{"steps[extract].env.SOURCE_DSN changed"}},
		{name: "env added to a step without env", old: "    command: [python, -m, etl.transform]\n", new: "    command: [python, -m, etl.transform]\n    env: {WORKERS: \"8\"}\n",
			wantDiff: []string{"steps[transform].env added"}},
		{name: "last env values removed", old: "    env:\n      SOURCE_DSN: secret://vault/kv/oltp#dsn\n      AWS_REGION: eu-central-1\n", new: "",
			wantDiff: []string{"steps[extract].env removed"}},
		// steps: edges
		{name: "next added", old: "next: [transform]", new: "next: [transform, load]",
			wantDiff: []string{"steps[extract].next changed"}},
		{name: "next replaced by the same edge as dependsOn", old: "    next: [transform]\n" + transformStep, new: transformStep + "    dependsOn: [extract]\n",
			wantDiff: []string{"steps[extract].next removed", "steps[transform].dependsOn added"}},
		{name: "dependsOn changed", old: "dependsOn: [transform]", new: "dependsOn: [transform, extract]",
			wantDiff: []string{"steps[load].dependsOn changed"}},
		{name: "edges removed falls back to file order", old: "    dependsOn: [transform]\n", new: "",
			base:     strings.Replace(cronJob, "    next: [transform]\n", "", 1),
			wantDiff: []string{"steps[transform].dependsOn added"}},
		// steps: scalar fields
		{name: "retries", old: "retries: 3", new: "retries: 5", wantDiff: []string{"steps[extract].retries changed"}},
		{name: "retries removed", old: "    retries: 3\n    retryDelay: 2m\n", new: "",
			wantDiff: []string{"steps[extract].retries removed", "steps[extract].retryDelay removed"}},
		{name: "retryDelay", old: "retryDelay: 2m", new: "retryDelay: 90s", wantDiff: []string{"steps[extract].retryDelay changed"}},
		{name: "timeout", old: "timeout: 30m", new: "timeout: 1h", wantDiff: []string{"steps[extract].timeout changed"}},
		{name: "timeout equal to the default made explicit is unchanged", old: "    command: [python, -m, etl.transform]\n", new: "    command: [python, -m, etl.transform]\n    timeout: 45m\n"},
		{name: "taskTimeout reaches the steps that inherit it", old: "taskTimeout: 45m", new: "taskTimeout: 50m",
			wantDiff: []string{"metadata.taskTimeout changed", "steps[transform].timeout changed", "steps[load].timeout changed"}},
		{name: "triggerRule", old: "triggerRule: all_done", new: "triggerRule: one_success", wantDiff: []string{"steps[load].triggerRule changed"}},
		{name: "engine", old: "  - name: transform\n", new: "  - name: transform\n    engine: podman\n", wantDiff: []string{"steps[transform].engine changed"}},
		{name: "image", old: "    image: registry.example.com/etl:1.14.2\n    command: [python, -m, etl.transform]", new: "    image: registry.example.com/etl:1.15.0\n    command: [python, -m, etl.transform]",
			wantDiff: []string{"steps[transform].image changed"}},
		{name: "command", old: "command: [python, -m, etl.extract]", new: "command: [python, -m, etl.extract, --since=yesterday]",
			wantDiff: []string{"steps[extract].command changed"}},
		{name: "command removed", old: "    command: [python, -m, etl.transform]\n", new: "", wantDiff: []string{"steps[transform].command removed"}},
		{name: "workdir", old: "workdir: /app", new: "workdir: /srv/app", wantDiff: []string{"steps[extract].workdir changed"}},
		// steps: the list
		{name: "step added", old: "    triggerRule: all_done\n", new: "    triggerRule: all_done\n  - name: verify\n    image: busybox:1.36\n    dependsOn: [load]\n",
			wantDiff: []string{"steps[verify] added"}},
		{name: "step removed", old: loadStep, new: "",
			wantDiff: []string{"steps[load] removed"}},
		{name: "steps reordered", old: transformStep + loadStep, new: loadStep + transformStep,
			wantDiff: []string{"steps.order changed"}},
		{name: "step renamed", old: "  - name: load\n", new: "  - name: publish\n",
			wantDiff: []string{"steps[load] removed", "steps[publish] added"}},
		// trigger
		{name: "trigger type cron to manual", old: "trigger:\n  type: cron\n  configuration:\n    expression: \"0 2 * * *\"\n    timezone: Europe/Berlin\n    catchup: true\n", new: "",
			wantDiff: []string{"trigger.configuration removed", "trigger.type changed"}},
		{name: "trigger type cron to http", old: "  type: cron\n  configuration:\n    expression: \"0 2 * * *\"\n    timezone: Europe/Berlin\n    catchup: true\n",
			new:      "  type: http\n  configuration:\n    path: /hooks/etl\n    secret: secret://env/ETL_TOKEN\n",
			wantDiff: []string{"trigger.configuration.catchup removed", "trigger.configuration.expression removed", "trigger.configuration.path added", "trigger.configuration.secret added", "trigger.configuration.signatureScheme added", "trigger.configuration.timezone removed", "trigger.type changed"}},
		{name: "cron expression", old: `expression: "0 2 * * *"`, new: `expression: "30 2 * * *"`, wantDiff: []string{"trigger.configuration.expression changed"}},
		{name: "cron timezone", old: "timezone: Europe/Berlin", new: "timezone: America/New_York", wantDiff: []string{"trigger.configuration.timezone changed"}},
		{name: "cron timezone removed defaults to UTC", old: "    timezone: Europe/Berlin\n", new: "", wantDiff: []string{"trigger.configuration.timezone changed"}},
		{name: "cron catchup", old: "catchup: true", new: "catchup: false", wantDiff: []string{"trigger.configuration.catchup removed"}},
		{name: "http path", base: httpJob, old: "path: /hooks/deploy", new: "path: /hooks/deploy-v2", wantDiff: []string{"trigger.configuration.path changed"}},
		{name: "http secret", base: httpJob, old: "secret://env/DEPLOY_TOKEN", new: "secret://vault/kv/deploy#token", wantDiff: []string{"trigger.configuration.secret changed"}},
		{name: "http signatureScheme", base: httpJob, old: "    secret: secret://env/DEPLOY_TOKEN\n", new: "    secret: secret://env/DEPLOY_TOKEN\n    signatureScheme: bearer\n",
			wantDiff: []string{"trigger.configuration.signatureScheme changed"}},
		{name: "http signatureScheme default spelled out is unchanged", base: httpJob, old: "    secret: secret://env/DEPLOY_TOKEN\n", new: "    secret: secret://env/DEPLOY_TOKEN\n    signatureScheme: hmac-sha256\n"},
		// metadata
		{name: "label changed", old: "tier: critical", new: "tier: standard", wantDiff: []string{"metadata.labels.tier changed"}},
		{name: "label added", old: "    tier: critical\n", new: "    tier: critical\n    cost-center: \"4711\"\n", wantDiff: []string{`metadata.labels.cost-center added`}},
		{name: "qualified label removed", old: "    app.kubernetes.io/part-of: data-warehouse\n", new: "", wantDiff: []string{`metadata.labels["app.kubernetes.io/part-of"] removed`}},
		{name: "prune label added", old: "    tier: critical\n", new: "    tier: critical\n    caesium.io/prune: disabled\n", wantDiff: []string{`metadata.labels["caesium.io/prune"] added`}},
		{name: "annotation changed", old: "owner: data-platform@example.com", new: "owner: dwh@example.com", wantDiff: []string{"metadata.annotations.owner changed"}},
		{name: "annotations removed", old: "  annotations:\n    owner: data-platform@example.com\n", new: "", wantDiff: []string{"metadata.annotations removed"}},
		{name: "concurrency maxRuns", old: "maxRuns: 2", new: "maxRuns: 3", wantDiff: []string{"metadata.concurrency.maxRuns changed"}},
		{name: "concurrency strategy", old: "strategy: skip", new: "strategy: replace", wantDiff: []string{"metadata.concurrency.strategy changed"}},
		{name: "maxParallelTasks", old: "maxParallelTasks: 2", new: "maxParallelTasks: 4", wantDiff: []string{"metadata.maxParallelTasks changed"}},
		{name: "runTimeout", old: "runTimeout: 3h", new: "runTimeout: 4h", wantDiff: []string{"metadata.runTimeout changed"}},
		// callbacks
		{name: "callback url", old: "url: https://hooks.example.com/etl", new: "url: https://hooks.example.com/etl-v2", wantDiff: []string{"callbacks[0].url changed"}},
		{name: "callback on", old: "on: [failure]", new: "on: [failure, success]", wantDiff: []string{"callbacks[0].on changed"}},
		{name: "callback on removed defaults to both", old: "    on: [failure]\n", new: "", wantDiff: []string{"callbacks[0].on changed"}},
		{name: "callback header changed", old: "X-Token: secret://env/HOOK_TOKEN", new: "X-Token: secret://env/HOOK_TOKEN_V2", wantDiff: []string{"callbacks[0].headers.X-Token changed"}},
		{name: "callback header added", old: "      X-Token: secret://env/HOOK_TOKEN\n", new: "      X-Token: secret://env/HOOK_TOKEN\n      X-Source: caesium\n", wantDiff: []string{"callbacks[0].headers.X-Source added"}},
		{name: "callback added", old: "steps:\n", new: "  - url: https://hooks.example.com/heartbeat\n    on: [success]\nsteps:\n", wantDiff: []string{"callbacks[1] added"}},
		{name: "callbacks removed", old: "callbacks:\n  - url: https://hooks.example.com/etl\n    on: [failure]\n    headers:\n      X-Token: secret://env/HOOK_TOKEN\n", new: "",
			wantDiff: []string{"callbacks removed"}},
		// provenance
		{name: "provenance path moved", old: "", new: "", path: "etl/nightly-etl.yaml", wantDiff: []string{"provenance.path changed"}},
		{name: "provenance path moved with an edit", old: "retries: 3", new: "retries: 2", path: "warehouse/nightly.yaml",
			wantDiff: []string{"steps[extract].retries changed", "provenance.path changed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			base := cmpOr(tt.base, cronJob)
			manifest := base
			if tt.old != "" {
				manifest = edit(t, base, tt.old, tt.new)
			}
			actual := f.actual(srcPlatform, "etl/nightly.yaml", base)
			d := f.desired(cmpOr(tt.path, "etl/nightly.yaml"), manifest)
			cs, err := Plan([]Desired{d}, []store.Job{actual}, Options{SourceID: srcPlatform})
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			ch := byAlias(t, cs, d.Job.Metadata.Alias)
			want := ActionUpdate
			if len(tt.wantDiff) == 0 {
				want = ActionUnchanged
			}
			if ch.Action != want {
				t.Errorf("action = %s, want %s", ch.Action, want)
			}
			if got := diffSummary(ch.Diff); !slices.Equal(got, tt.wantDiff) && len(got)+len(tt.wantDiff) > 0 {
				t.Errorf("diff =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantDiff, "\n  "))
			}
			// Every reported field really holds the values it names.
			for _, fd := range ch.Diff {
				if fd.Old == nil && fd.New == nil {
					t.Errorf("%s: neither old nor new value", fd.Path)
				}
			}
		})
	}
}

func TestPlanPrune(t *testing.T) {
	t.Parallel()

	// jobs returns n stored jobs of source, aliases prefix-000…
	type jobs struct {
		source string
		prefix string
		n      int
		labels []string
		gone   bool // soft-deleted
	}
	tests := []struct {
		name    string
		actual  []jobs
		keep    int      // desired: the first keep jobs of the first group
		extra   []string // desired: new aliases
		opts    Options
		wantDel []string // aliases deleted; nil: none
		// wantKept are aliases that must stay unchanged with a reason.
		wantKept    []string
		wantRefused []string // substrings of PruneRefused
		wantCands   int
	}{
		{
			name:    "deletes only jobs of the pruning source",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 12}, {source: srcData, prefix: "d", n: 3}, {source: ManualSource, prefix: "m", n: 3}},
			keep:    10,
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: []string{"p-010", "p-011"},
		},
		{
			name:   "no prune without the option",
			actual: []jobs{{source: srcPlatform, prefix: "p", n: 12}},
			keep:   10,
			opts:   Options{SourceID: srcPlatform},
		},
		{
			name:     "label-protected job is kept",
			actual:   []jobs{{source: srcPlatform, prefix: "p", n: 4}, {source: srcPlatform, prefix: "q", n: 2, labels: []string{"caesium.io/prune: disabled"}}},
			keep:     3,
			opts:     Options{SourceID: srcPlatform, Prune: true},
			wantDel:  []string{"p-003"},
			wantKept: []string{"q-000", "q-001"},
		},
		{
			name:     "a job labelled for another purpose is pruned",
			actual:   []jobs{{source: srcPlatform, prefix: "p", n: 4}, {source: srcPlatform, prefix: "q", n: 1, labels: []string{"tier: critical"}}},
			keep:     4,
			opts:     Options{SourceID: srcPlatform, Prune: true},
			wantDel:  []string{"q-000"},
			wantKept: nil,
		},
		{
			name:   "soft-deleted rows are neither deleted again nor counted",
			actual: []jobs{{source: srcPlatform, prefix: "p", n: 40}, {source: srcPlatform, prefix: "x", n: 20, gone: true}},
			keep:   29,
			opts:   Options{SourceID: srcPlatform, Prune: true},
			// 11 of 40 live jobs: over the limit of 10, though 11 of 60 rows would not be.
			wantRefused: []string{"11 of 40", "maxDeletions (10)"},
			wantCands:   11,
		},
		{
			name:        "pruning to an empty desired set is refused",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 3}},
			opts:        Options{SourceID: srcPlatform, Prune: true},
			wantRefused: []string{"all 3 jobs", "declares no jobs", "allowEmpty"},
			wantCands:   3,
		},
		{
			name:    "allowEmpty permits pruning to nothing",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 3}, {source: srcData, prefix: "d", n: 1}},
			opts:    Options{SourceID: srcPlatform, Prune: true, AllowEmpty: true},
			wantDel: []string{"p-000", "p-001", "p-002"},
		},
		{
			name:        "force does not lift allowEmpty",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 3}},
			opts:        Options{SourceID: srcPlatform, Prune: true, Force: true},
			wantRefused: []string{"declares no jobs"},
			wantCands:   3,
		},
		{
			name:   "empty desired set with nothing to prune is fine",
			actual: []jobs{{source: srcData, prefix: "d", n: 3}},
			opts:   Options{SourceID: srcPlatform, Prune: true},
		},
		// The default limit: max(10, 25% of the source).
		{
			name:    "40 jobs: 10 deletions pass",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 40}},
			keep:    30,
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: aliases("p", 30, 40),
		},
		{
			name:        "40 jobs: 11 deletions are refused",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 40}},
			keep:        29,
			opts:        Options{SourceID: srcPlatform, Prune: true},
			wantRefused: []string{"11 of 40", "maxDeletions (10)", "--force"},
			wantCands:   11,
		},
		{
			name:    "12 jobs: the floor of 10 lets 10 go",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 12}},
			keep:    2,
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: aliases("p", 2, 12),
		},
		{
			name:    "100 jobs: 25 deletions pass",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 100}},
			keep:    75,
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: aliases("p", 75, 100),
		},
		{
			name:        "100 jobs: 26 deletions are refused",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 100}},
			keep:        74,
			opts:        Options{SourceID: srcPlatform, Prune: true},
			wantRefused: []string{"26 of 100", "maxDeletions (25)"},
			wantCands:   26,
		},
		{
			// 25% of 41 is 10.25: 11 deletions would be more than a quarter.
			name:        "41 jobs: 11 deletions are more than 25%",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 41}},
			keep:        30,
			opts:        Options{SourceID: srcPlatform, Prune: true},
			wantRefused: []string{"11 of 41", "maxDeletions (10)"},
			wantCands:   11,
		},
		{
			name:    "44 jobs: 11 deletions are exactly 25%",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 44}},
			keep:    33,
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: aliases("p", 33, 44),
		},
		{
			// 48 jobs: the limit is 12, and the 8 kept ones are no candidates.
			name:     "protected jobs count toward the source but are no candidates",
			actual:   []jobs{{source: srcPlatform, prefix: "p", n: 40}, {source: srcPlatform, prefix: "q", n: 8, labels: []string{"caesium.io/prune: disabled"}}},
			keep:     28,
			opts:     Options{SourceID: srcPlatform, Prune: true},
			wantDel:  aliases("p", 28, 40),
			wantKept: aliases("q", 0, 8),
		},
		{
			name:        "other sources' jobs do not raise the limit",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 20}, {source: srcData, prefix: "d", n: 200}},
			keep:        9,
			opts:        Options{SourceID: srcPlatform, Prune: true},
			wantRefused: []string{"11 of 20", "maxDeletions (10)"},
			wantCands:   11,
		},
		{
			// The limit is taken of the source as this revision leaves it,
			// candidates included: 11 deletions of 40+20 jobs pass, and a
			// re-plan after the creates decides the same.
			name:    "new jobs of the same revision count toward the source",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 40}},
			keep:    29,
			extra:   aliases("n", 0, 20),
			opts:    Options{SourceID: srcPlatform, Prune: true},
			wantDel: aliases("p", 29, 40),
		},
		{
			name:        "explicit maxDeletions refuses one more",
			actual:      []jobs{{source: srcPlatform, prefix: "p", n: 100}},
			keep:        96,
			opts:        Options{SourceID: srcPlatform, Prune: true, MaxDeletions: 3},
			wantRefused: []string{"4 of 100", "maxDeletions (3)"},
			wantCands:   4,
		},
		{
			name:    "explicit maxDeletions lets its number go",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 100}},
			keep:    97,
			opts:    Options{SourceID: srcPlatform, Prune: true, MaxDeletions: 3},
			wantDel: aliases("p", 97, 100),
		},
		{
			name:    "explicit maxDeletions above the default",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 40}},
			keep:    10,
			opts:    Options{SourceID: srcPlatform, Prune: true, MaxDeletions: 30},
			wantDel: aliases("p", 10, 40),
		},
		{
			name:    "force lifts maxDeletions",
			actual:  []jobs{{source: srcPlatform, prefix: "p", n: 40}},
			keep:    1,
			opts:    Options{SourceID: srcPlatform, Prune: true, Force: true},
			wantDel: aliases("p", 1, 40),
		},
		{
			// Hand-applied jobs come from anyone's files: there is no set a
			// manual apply could prune against.
			name:        "a manual apply never prunes manual jobs",
			actual:      []jobs{{source: ManualSource, prefix: "m", n: 3}},
			keep:        1,
			opts:        Options{Prune: true, Force: true, AllowEmpty: true},
			wantRefused: []string{"manual"},
			wantCands:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var actual []store.Job
			var desired []Desired
			deletedAt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			for gi, g := range tt.actual {
				for i := range g.n {
					alias := fmt.Sprintf("%s-%03d", g.prefix, i)
					m := simpleJob(alias, g.labels...)
					a := f.actual(g.source, "jobs/"+alias+".yaml", m)
					if g.gone {
						a.DeletedAt = &deletedAt
					}
					actual = append(actual, a)
					if gi == 0 && i < tt.keep {
						desired = append(desired, f.desired("jobs/"+alias+".yaml", m))
					}
				}
			}
			for _, alias := range tt.extra {
				desired = append(desired, f.desired("jobs/"+alias+".yaml", simpleJob(alias)))
			}
			cs, err := Plan(desired, actual, tt.opts)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			var deleted []string
			for _, ch := range cs.Changes {
				if ch.Action == ActionDelete {
					deleted = append(deleted, ch.Alias)
					if ch.Actual == nil || ch.Actual.Provenance.SourceID != cs.SourceID || ch.Desired != nil {
						t.Errorf("delete %s: actual %+v, desired %v", ch.Alias, ch.Actual, ch.Desired)
					}
				}
			}
			if !slices.Equal(deleted, tt.wantDel) {
				t.Errorf("deleted %d %v\nwant %d %v", len(deleted), deleted, len(tt.wantDel), tt.wantDel)
			}
			for _, alias := range tt.wantKept {
				ch := byAlias(t, cs, alias)
				if ch.Action != ActionUnchanged || !strings.Contains(ch.Reason, "caesium.io/prune: disabled") {
					t.Errorf("%s: %s %q, want unchanged with the label as reason", alias, ch.Action, ch.Reason)
				}
			}
			if len(tt.wantRefused) == 0 && cs.PruneRefused != "" {
				t.Errorf("prune refused: %s", cs.PruneRefused)
			}
			for _, s := range tt.wantRefused {
				if !strings.Contains(cs.PruneRefused, s) {
					t.Errorf("PruneRefused %q does not contain %q", cs.PruneRefused, s)
				}
			}
			if cs.PruneCandidates != tt.wantCands {
				t.Errorf("PruneCandidates = %d, want %d", cs.PruneCandidates, tt.wantCands)
			}
			// A refused prune keeps the creates and updates of the revision.
			n := cs.Counts()
			if n.Unchanged != tt.keep+len(tt.wantKept) || n.Created != len(tt.extra) || n.Conflicts != 0 {
				t.Errorf("counts = %+v, want %d unchanged, %d created", n, tt.keep+len(tt.wantKept), len(tt.extra))
			}
			if !slices.IsSortedFunc(cs.Changes, func(a, b Change) int { return strings.Compare(a.Alias, b.Alias) }) {
				t.Errorf("changes are not sorted by alias")
			}
		})
	}
}

func aliases(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}

// A refused prune still applies the revision's creates and updates.
func TestPlanRefusedPruneKeepsWrites(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var actual []store.Job
	var desired []Desired
	for i := range 40 {
		alias := fmt.Sprintf("p-%03d", i)
		actual = append(actual, f.actual(srcPlatform, "jobs/"+alias+".yaml", simpleJob(alias)))
		switch {
		case i == 0:
			desired = append(desired, f.desired("jobs/"+alias+".yaml", simpleJob(alias, "tier: critical")))
		case i < 20:
			desired = append(desired, f.desired("jobs/"+alias+".yaml", simpleJob(alias)))
		}
	}
	desired = append(desired, f.desired("jobs/new.yaml", simpleJob("new")))
	cs, err := Plan(desired, actual, Options{SourceID: srcPlatform, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Created: 1, Updated: 1, Unchanged: 19}
	if got := cs.Counts(); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	if cs.PruneRefused == "" || cs.PruneCandidates != 20 {
		t.Errorf("PruneRefused = %q, candidates %d; want a refusal of 20", cs.PruneRefused, cs.PruneCandidates)
	}
	if !cs.HasChanges() {
		t.Errorf("HasChanges = false with a create and an update")
	}
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	corrupt := f.actual(srcPlatform, "a.yaml", simpleJob("a"))
	corrupt.Spec = []byte(`{"apiVersion":`)
	corrupt.Hash = "x"
	tests := []struct {
		name    string
		desired []Desired
		actual  []store.Job
		wantErr string
	}{
		{
			name:    "duplicate desired alias",
			desired: []Desired{f.desired("a.yaml", simpleJob("a")), f.desired("b.yaml", simpleJob("b")), f.desired("c.yaml", simpleJob("a"))},
			wantErr: `alias "a" is declared twice`,
		},
		{
			name:    "stored spec that is not JSON",
			desired: []Desired{f.desired("a.yaml", simpleJob("a"))},
			actual:  []store.Job{corrupt},
			wantErr: "diff a: decode actual spec",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs, err := Plan(tt.desired, tt.actual, Options{SourceID: srcPlatform})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if cs != nil {
				t.Errorf("changeset = %+v alongside an error", cs)
			}
		})
	}
}

func TestPlanSortsByAlias(t *testing.T) {
	t.Parallel()
	f := setup(t)
	desired := []Desired{
		f.desired("z.yaml", simpleJob("zeta")),
		f.desired("b.yaml", simpleJob("beta", "tier: low")),
		f.desired("m.yaml", simpleJob("mu")),
		f.desired("a.yaml", simpleJob("alpha")),
	}
	actual := []store.Job{
		f.actual(srcPlatform, "y.yaml", simpleJob("ypsilon")),
		f.actual(srcPlatform, "b.yaml", simpleJob("beta")),
		f.actual(srcData, "m.yaml", simpleJob("mu")),
		f.actual(srcPlatform, "c.yaml", simpleJob("gamma")),
		f.actual(srcPlatform, "a.yaml", simpleJob("alpha")),
	}
	cs, err := Plan(desired, actual, Options{SourceID: srcPlatform, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range cs.Changes {
		got = append(got, ch.Alias+":"+string(ch.Action))
	}
	want := []string{"alpha:unchanged", "beta:update", "gamma:delete", "mu:conflict", "ypsilon:delete", "zeta:create"}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %v\nwant      %v", got, want)
	}
}

// Plan is pure: it must not write to its inputs, so that one desired set can
// be planned for several sources, or concurrently for a dry run and an apply.
func TestPlanDoesNotModifyInputs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	desired := []Desired{f.desired("a.yaml", simpleJob("a")), f.desired("b.yaml", simpleJob("b"))}
	desired[0].Provenance.SourceID = "whatever-the-caller-had"
	actual := []store.Job{f.actual(srcData, "a.yaml", simpleJob("a")), f.actual(srcPlatform, "c.yaml", simpleJob("c"))}
	snapshot := func() string {
		var b strings.Builder
		for _, d := range desired {
			fmt.Fprintf(&b, "desired %s %s %+v\n", d.Job.Metadata.Alias, d.Hash, d.Provenance)
		}
		for _, a := range actual {
			fmt.Fprintf(&b, "actual %s %s %+v %v\n", a.Alias, a.Hash, a.Provenance, a.DeletedAt)
		}
		return b.String()
	}
	before := snapshot()

	csPlatform, err := Plan(desired, actual, Options{SourceID: srcPlatform, Prune: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	csData, err := Plan(desired, actual, Options{SourceID: srcData})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); after != before {
		t.Errorf("Plan modified its inputs:\nbefore %s\nafter  %s", before, after)
	}
	// Each changeset keeps the provenance of its own source.
	if got := byAlias(t, csPlatform, "b").Desired.Provenance.SourceID; got != srcPlatform {
		t.Errorf("platform changeset: source %q", got)
	}
	if got := byAlias(t, csData, "b").Desired.Provenance.SourceID; got != srcData {
		t.Errorf("data changeset: source %q", got)
	}
}

func TestChangesetCounts(t *testing.T) {
	t.Parallel()
	cs := &Changeset{Changes: []Change{
		{Action: ActionCreate}, {Action: ActionCreate}, {Action: ActionUpdate}, {Action: ActionUnchanged},
		{Action: ActionDelete}, {Action: ActionConflict}, {Action: ActionConflict}, {Action: ActionConflict},
	}}
	if got, want := cs.Counts(), (Counts{Created: 2, Updated: 1, Unchanged: 1, Deleted: 1, Conflicts: 3}); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
	if !cs.HasChanges() {
		t.Errorf("HasChanges = false")
	}
	quiet := &Changeset{Changes: []Change{{Action: ActionUnchanged}, {Action: ActionConflict}}}
	if quiet.HasChanges() {
		t.Errorf("HasChanges = true for unchanged and conflicts only")
	}
}
