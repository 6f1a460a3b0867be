package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable clock shared by the store and the API, so soft-delete
// times and gc cut-offs are under the test's control.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is an API server on a real, isolated store, served over HTTP.
type fixture struct {
	store *store.Store
	url   string
	clock *clock
	token string
}

// setup starts the API on a fresh store of backend. opts adjust the API's
// configuration (a token, a small body limit).
func setup(t *testing.T, backend string, opts ...func(*api.Config)) *fixture {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := storetest.OpenOptions(t, backend, store.Options{Now: clk.Now})
	cfg := api.Config{Now: clk.Now}
	for _, o := range opts {
		o(&cfg)
	}
	srv := httptest.NewServer(api.New(st, cfg).Handler())
	t.Cleanup(srv.Close)
	return &fixture{store: st, url: srv.URL, clock: clk, token: cfg.Token}
}

// forEachBackend runs fn as a parallel subtest per store backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Helper()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, backend)
		})
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// request sends one request; header holds "Name: value" pairs.
func (f *fixture) request(t *testing.T, method, path, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	for _, h := range header {
		if h == "" {
			continue
		}
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (f *fixture) get(t *testing.T, path string) response {
	t.Helper()
	return f.request(t, http.MethodGet, path, "", "")
}

// postJSON sends v as a JSON body.
func (f *fixture) postJSON(t *testing.T, path string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return f.request(t, http.MethodPost, path, "application/json", string(b))
}

// apply applies req and decodes the report, which a 409 carries in details.
func (f *fixture) apply(t *testing.T, req api.ApplyRequest) (int, api.ApplyResponse) {
	t.Helper()
	r := f.postJSON(t, "/v1/jobdefs/apply", req)
	return r.status, r.report(t)
}

// mustApply applies req and fails unless the answer is 200.
func (f *fixture) mustApply(t *testing.T, req api.ApplyRequest) api.ApplyResponse {
	t.Helper()
	r := f.postJSON(t, "/v1/jobdefs/apply", req)
	if r.status != http.StatusOK {
		t.Fatalf("apply: status %d: %s", r.status, r.body)
	}
	return r.report(t)
}

// report decodes an apply or diff answer, from the body or, for an error,
// from its details.
func (r response) report(t *testing.T) api.ApplyResponse {
	t.Helper()
	var out api.ApplyResponse
	body := r.body
	if r.status >= 300 {
		body = r.errorBody(t).Details
	}
	if len(body) > 0 && string(body) != "null" {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("decode report: %v\n%s", err, r.body)
		}
	}
	return out
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, r.body)
	}
}

type errorBody struct {
	Error   string          `json:"error"`
	Details json.RawMessage `json:"details"`
}

// errorBody checks that an error answer is JSON {error, details} and returns it.
func (r response) errorBody(t *testing.T) errorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil {
		t.Fatalf("error answer is not a JSON object: %v\n%s", err, r.body)
	}
	for k := range fields {
		if k != "error" && k != "details" {
			t.Errorf("error answer has field %q; want only error and details", k)
		}
	}
	var e errorBody
	r.decode(t, &e)
	if e.Error == "" {
		t.Errorf("error answer without a message: %s", r.body)
	}
	return e
}

// wantError checks the status and that the message contains want.
func (r response) wantError(t *testing.T, status int, want string) errorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	e := r.errorBody(t)
	if !strings.Contains(e.Error, want) {
		t.Errorf("error %q does not contain %q", e.Error, want)
	}
	return e
}

// jobYAML is a small valid manifest. labels are "key=value" pairs.
func jobYAML(alias string, labels ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n", alias)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	b.WriteString("  annotations:\n    owner: test@example.com\nsteps:\n  - name: main\n    image: alpine:3.20\n")
	return b.String()
}

// request builds an apply request of one document per manifest.
func request(sourceID string, manifests ...string) api.ApplyRequest {
	req := api.ApplyRequest{SourceID: sourceID, Documents: []api.Document{}}
	for i, m := range manifests {
		req.Documents = append(req.Documents, api.Document{Name: fmt.Sprintf("jobs/%02d.yaml", i), Content: m})
	}
	return req
}

// numbered returns n manifests prefix-00, prefix-01, ….
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = jobYAML(fmt.Sprintf("%s-%02d", prefix, i))
	}
	return out
}

// examples reads ../examples as an apply request and parses it, for the
// expected jobs.
func examples(t *testing.T) (api.ApplyRequest, map[string]*schema.Job) {
	t.Helper()
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	req := api.ApplyRequest{}
	want := map[string]*schema.Job{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := "examples/" + filepath.Base(f)
		req.Documents = append(req.Documents, api.Document{Name: name, Content: string(data)})
		docs, diags := schema.Parse(name, data, schema.DefaultLimits)
		if schema.HasErrors(diags) {
			t.Fatalf("%s: %v", f, diags)
		}
		for _, d := range docs {
			want[d.Job.Metadata.Alias] = d.Job
		}
	}
	return req, want
}

// live lists the live jobs' aliases, straight from the store.
func (f *fixture) live(t *testing.T) []string {
	t.Helper()
	jobs, err := f.store.ListJobs(context.Background(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		out = append(out, j.Alias)
	}
	return out
}

func (f *fixture) applies(t *testing.T, query string) []store.ApplyRecord {
	t.Helper()
	r := f.get(t, "/v1/applies"+query)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/applies%s: %d %s", query, r.status, r.body)
	}
	var h api.ApplyHistory
	r.decode(t, &h)
	return h.Applies
}

func outcome(rep api.ApplyResponse, alias string) (reconcile.Outcome, bool) {
	for _, o := range rep.Outcomes {
		if o.Alias == alias {
			return o, true
		}
	}
	return reconcile.Outcome{}, false
}

func TestHealth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend, func(c *api.Config) { c.Token = "s3cret" })
		f.token = "" // health needs no token
		for _, path := range []string{"/healthz", "/readyz"} {
			if r := f.get(t, path); r.status != http.StatusOK {
				t.Errorf("GET %s = %d %s, want 200", path, r.status, r.body)
			}
		}
		if err := f.store.Close(); err != nil {
			t.Fatal(err)
		}
		if r := f.get(t, "/healthz"); r.status != http.StatusOK {
			t.Errorf("GET /healthz with the store closed = %d, want 200: the process still serves", r.status)
		}
		f.get(t, "/readyz").wantError(t, http.StatusServiceUnavailable, "database unavailable")
	})
}

// TestApplyExamples applies examples/, reads every job back with its labels,
// annotations and provenance, and re-applies: all unchanged, no row written.
func TestApplyExamples(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		req, want := examples(t)

		rep := f.mustApply(t, req)
		if rep.Summary.Created != len(want) || rep.Report.Failed() || rep.HistoryID == 0 {
			t.Fatalf("first apply: summary %+v, historyId %d; want %d created", rep.Summary, rep.HistoryID, len(want))
		}

		var list api.JobList
		f.get(t, "/v1/jobs").decode(t, &list)
		if len(list.Jobs) != len(want) {
			t.Fatalf("GET /v1/jobs: %d jobs, want %d", len(list.Jobs), len(want))
		}
		for _, j := range list.Jobs {
			w := want[j.Alias]
			if w == nil {
				t.Errorf("unexpected job %s", j.Alias)
				continue
			}
			var one store.Job
			f.get(t, "/v1/jobs/"+j.Alias).decode(t, &one)
			if len(one.Labels) == 0 || !mapsEqual(one.Labels, w.Metadata.Labels) {
				t.Errorf("%s labels = %v, want %v", j.Alias, one.Labels, w.Metadata.Labels)
			}
			if len(one.Annotations) == 0 || !mapsEqual(one.Annotations, w.Metadata.Annotations) {
				t.Errorf("%s annotations = %v, want %v", j.Alias, one.Annotations, w.Metadata.Annotations)
			}
			if one.Provenance.SourceID != reconcile.ManualSource || !strings.HasPrefix(one.Provenance.Path, "examples/") {
				t.Errorf("%s provenance = %+v, want source manual and an examples/ path", j.Alias, one.Provenance)
			}
			if one.Version != 1 || one.Hash == "" || len(one.Spec) == 0 {
				t.Errorf("%s: version %d, hash %q, spec %d bytes", j.Alias, one.Version, one.Hash, len(one.Spec))
			}
		}

		before := f.store.Stats().Writes
		rep = f.mustApply(t, req)
		if got := f.store.Stats().Writes - before; got != 0 {
			t.Errorf("re-apply wrote %d rows, want 0", got)
		}
		if rep.Summary.Unchanged != len(want) || rep.Summary.Created+rep.Summary.Updated+rep.Summary.Deleted != 0 || rep.HistoryID != 0 {
			t.Errorf("re-apply: summary %+v, historyId %d; want all %d unchanged and no history", rep.Summary, rep.HistoryID, len(want))
		}
		for _, o := range rep.Outcomes {
			if o.Action != reconcile.ActionUnchanged || o.Applied {
				t.Errorf("re-apply %s: action %s applied %v", o.Alias, o.Action, o.Applied)
			}
		}
		if n := len(f.applies(t, "")); n != 1 {
			t.Errorf("apply history has %d records, want 1 (a no-op records nothing)", n)
		}

		// The same manifests as one YAML stream: same content, but the
		// provenance path becomes the request's, so each job is updated
		// once, without a new version.
		var stream strings.Builder
		for i, d := range req.Documents {
			if i > 0 {
				stream.WriteString("\n---\n")
			}
			stream.WriteString(d.Content)
		}
		r := f.request(t, http.MethodPost, "/v1/jobdefs/apply", "application/yaml", stream.String())
		if r.status != http.StatusOK {
			t.Fatalf("YAML apply: %d %s", r.status, r.body)
		}
		rep = r.report(t)
		if rep.Summary.Updated != len(want) {
			t.Errorf("YAML apply: summary %+v, want %d updated (provenance path only)", rep.Summary, len(want))
		}
		for _, o := range rep.Outcomes {
			if len(o.Diff) != 1 || o.Diff[0].Path != "provenance.path" {
				t.Errorf("%s diff = %+v, want only provenance.path", o.Alias, o.Diff)
			}
		}
		var one store.Job
		f.get(t, "/v1/jobs/nightly-etl").decode(t, &one)
		if one.Version != 1 || one.Provenance.Path != "<request>" {
			t.Errorf("nightly-etl after the YAML apply: version %d, path %q; want 1, <request>", one.Version, one.Provenance.Path)
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestApplyYAMLStreamWithQueryOptions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		stream := strings.Join(numbered("stream", 3), "---\n")

		// A dry run writes nothing.
		before := f.store.Stats().Writes
		r := f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&dryRun=true", "application/yaml", stream)
		if rep := r.report(t); r.status != http.StatusOK || !rep.DryRun || rep.Summary.Created != 3 {
			t.Fatalf("dry run: %d %s", r.status, r.body)
		}
		if w := f.store.Stats().Writes - before; w != 0 || len(f.live(t)) != 0 {
			t.Fatalf("dry run wrote %d rows, %d jobs live", w, len(f.live(t)))
		}

		for _, ct := range []string{"application/yaml", "application/x-yaml", "text/yaml; charset=utf-8", "text/plain", ""} {
			r := f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&atomic=1", ct, stream)
			if r.status != http.StatusOK {
				t.Errorf("Content-Type %q: %d %s", ct, r.status, r.body)
			}
		}
		var j store.Job
		f.get(t, "/v1/jobs/stream-01").decode(t, &j)
		if j.Provenance.SourceID != "team-a" || j.Provenance.Path != "<request>" {
			t.Errorf("provenance = %+v, want team-a, <request>", j.Provenance)
		}
		recs := f.applies(t, "?source=team-a")
		if len(recs) != 1 || !recs[0].Atomic || recs[0].Created != 3 {
			t.Errorf("history = %+v, want one atomic apply of 3 creates", recs)
		}

		// prune, maxDeletions and force from the query string.
		one := numbered("stream", 1)[0]
		r = f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&prune=true&maxDeletions=1", "application/yaml", one)
		if rep := r.report(t); r.status != http.StatusOK || !strings.Contains(rep.PruneRefused, "more than maxDeletions (1)") {
			t.Errorf("prune over maxDeletions=1: %d %s", r.status, r.body)
		}
		r = f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&prune=true&maxDeletions=1&force=true", "application/yaml", one)
		if rep := r.report(t); r.status != http.StatusOK || rep.Summary.Deleted != 2 {
			t.Errorf("forced prune: %d %s", r.status, r.body)
		}
		if got := f.live(t); !slices.Equal(got, []string{"stream-00"}) {
			t.Errorf("live = %v, want [stream-00]", got)
		}

		// An empty stream prunes only with allowEmpty.
		r = f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&prune=true", "application/yaml", "# nothing\n")
		if rep := r.report(t); r.status != http.StatusOK || !strings.Contains(rep.PruneRefused, "declares no jobs") {
			t.Errorf("empty prune: %d %s", r.status, r.body)
		}
		r = f.request(t, http.MethodPost, "/v1/jobdefs/apply?sourceId=team-a&prune=true&allowEmpty=true", "application/yaml", "# nothing\n")
		if rep := r.report(t); r.status != http.StatusOK || rep.Summary.Deleted != 1 {
			t.Errorf("empty prune allowed: %d %s", r.status, r.body)
		}
	})
}

func TestLint(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		t.Cleanup(func() { // after the parallel subtests
			if w := f.store.Stats().Writes; w != 0 {
				t.Errorf("lint wrote %d rows", w)
			}
		})
		tests := []struct {
			name      string
			send      func(t *testing.T) response
			wantValid bool
			wantJobs  int
			wantDiag  string
		}{
			{
				name: "JSON, valid",
				send: func(t *testing.T) response {
					return f.postJSON(t, "/v1/jobdefs/lint", request("", jobYAML("a"), jobYAML("b")))
				},
				wantValid: true, wantJobs: 2,
			},
			{
				name: "JSON, invalid",
				send: func(t *testing.T) response {
					return f.postJSON(t, "/v1/jobdefs/lint", request("", strings.Replace(jobYAML("a"), "image:", "imagee:", 1)))
				},
				wantJobs: 1, wantDiag: `jobs/00.yaml:9:5: steps[0].imagee: unknown field "imagee"`,
			},
			{
				name: "JSON, alias twice across files",
				send: func(t *testing.T) response {
					return f.postJSON(t, "/v1/jobdefs/lint", request("", jobYAML("a"), jobYAML("a")))
				},
				wantJobs: 2, wantDiag: "jobs/01.yaml:4:10",
			},
			{
				name: "YAML stream, valid with a warning",
				send: func(t *testing.T) response {
					return f.request(t, http.MethodPost, "/v1/jobdefs/lint", "application/yaml", jobYAML("a")+"    retryDelay: 10s\n")
				},
				wantValid: true, wantJobs: 1, wantDiag: "<request>:10:17: steps[0].retryDelay: warning:",
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := tt.send(t)
				if r.status != http.StatusOK {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				var lr api.LintResponse
				r.decode(t, &lr)
				if lr.Valid != tt.wantValid || lr.Jobs != tt.wantJobs {
					t.Errorf("valid %v jobs %d, want %v %d", lr.Valid, lr.Jobs, tt.wantValid, tt.wantJobs)
				}
				if lr.Diagnostics == nil {
					t.Error("diagnostics is null, want a list")
				}
				var lines []string
				for _, d := range lr.Diagnostics {
					lines = append(lines, d.String())
				}
				if tt.wantDiag != "" && !strings.Contains(strings.Join(lines, "\n"), tt.wantDiag) {
					t.Errorf("diagnostics %q do not contain %q", lines, tt.wantDiag)
				}
			})
		}

	})
}

func TestDiff(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("", jobYAML("a", "team=data"), jobYAML("b")))
		before := f.store.Stats().Writes

		changed := request("", jobYAML("a", "team=web"), jobYAML("c"))
		r := f.postJSON(t, "/v1/jobdefs/diff", changed)
		if r.status != http.StatusOK {
			t.Fatalf("diff: %d %s", r.status, r.body)
		}
		rep := r.report(t)
		if !rep.DryRun || rep.Summary.Updated != 1 || rep.Summary.Created != 1 {
			t.Errorf("diff summary %+v dryRun %v, want 1 update, 1 create", rep.Summary, rep.DryRun)
		}
		o, _ := outcome(rep, "a")
		if len(o.Diff) != 1 || o.Diff[0].Path != "metadata.labels.team" || string(o.Diff[0].Old) != `"data"` || string(o.Diff[0].New) != `"web"` {
			t.Errorf("diff of a = %+v, want metadata.labels.team data -> web", o.Diff)
		}
		// diff is a dry run even when asked otherwise.
		changed.DryRun = false
		f.postJSON(t, "/v1/jobdefs/diff", changed)
		if w := f.store.Stats().Writes - before; w != 0 {
			t.Errorf("diff wrote %d rows", w)
		}
		var j store.Job
		f.get(t, "/v1/jobs/a").decode(t, &j)
		if j.Labels["team"] != "data" {
			t.Errorf("diff changed the job: labels %v", j.Labels)
		}
		if len(f.applies(t, "")) != 1 {
			t.Error("diff recorded an apply")
		}
	})
}

func TestConflictAndForce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("team-a", jobYAML("shared")))

		for _, from := range []string{"team-b", ""} {
			status, rep := f.apply(t, request(from, jobYAML("shared", "changed=yes"), jobYAML("other-"+strings.TrimPrefix(from+"manual", "team-"))))
			if status != http.StatusConflict {
				t.Fatalf("apply from %q: status %d, want 409", from, status)
			}
			r := f.postJSON(t, "/v1/jobdefs/apply", request(from, jobYAML("shared")))
			r.wantError(t, http.StatusConflict, `owned by source "team-a"`)
			o, _ := outcome(rep, "shared")
			if o.Action != reconcile.ActionConflict || !strings.Contains(o.Reason, `"team-a"`) || rep.Summary.Conflicts != 1 {
				t.Errorf("apply from %q: outcome %+v", from, o)
			}
			// The job without a conflict was applied all the same.
			if rep.Summary.Created != 1 {
				t.Errorf("apply from %q: summary %+v, want the other job created", from, rep.Summary)
			}
		}
		// A conflict also shows in a diff, as 409.
		f.postJSON(t, "/v1/jobdefs/diff", request("team-b", jobYAML("shared"))).wantError(t, http.StatusConflict, `owned by source "team-a"`)

		var j store.Job
		f.get(t, "/v1/jobs/shared").decode(t, &j)
		if j.Provenance.SourceID != "team-a" || j.Labels["changed"] != "" {
			t.Fatalf("conflict changed the job: %+v labels %v", j.Provenance, j.Labels)
		}

		req := request("team-b", jobYAML("shared"))
		req.Force = true
		rep := f.mustApply(t, req)
		o, _ := outcome(rep, "shared")
		if o.Action != reconcile.ActionUpdate || o.Transfer == nil || o.Transfer.From != "team-a" || o.Transfer.To != "team-b" || !o.Applied {
			t.Errorf("forced apply outcome %+v", o)
		}
		f.get(t, "/v1/jobs/shared").decode(t, &j)
		if j.Provenance.SourceID != "team-b" || j.Version != 1 {
			t.Errorf("after force: provenance %+v version %d, want team-b at version 1", j.Provenance, j.Version)
		}
		recs := f.applies(t, "?source=team-b&limit=1")
		want := []store.OwnershipTransfer{{Alias: "shared", From: "team-a", To: "team-b"}}
		if len(recs) != 1 || !recs[0].Force || !slices.Equal(recs[0].Transfers, want) {
			t.Errorf("history = %+v, want a forced apply with transfers %v", recs, want)
		}
	})
}

func TestPrune(t *testing.T) {
	t.Parallel()
	type seed struct {
		source    string
		manifests []string
	}
	modified := strings.Replace(jobYAML("team-00"), "alpine:3.20", "alpine:3.21", 1)
	tests := []struct {
		name        string
		seeds       []seed
		req         api.ApplyRequest
		wantRefused string
		wantLive    []string // nil: check wantLiveN
		wantLiveN   int
	}{
		{
			name:     "deletes only the pruning source's jobs",
			seeds:    []seed{{"team-a", []string{jobYAML("a1"), jobYAML("a2")}}, {"team-b", []string{jobYAML("b1")}}, {"", []string{jobYAML("m1")}}},
			req:      api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", jobYAML("a1")).Documents},
			wantLive: []string{"a1", "b1", "m1"},
		},
		{
			name:     "never a job labelled caesium.io/prune: disabled",
			seeds:    []seed{{"team-a", []string{jobYAML("a1"), jobYAML("keep", "caesium.io/prune=disabled"), jobYAML("a2")}}},
			req:      api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", jobYAML("a1")).Documents},
			wantLive: []string{"a1", "keep"},
		},
		{
			name:        "an empty set is refused",
			seeds:       []seed{{"team-a", []string{jobYAML("a1"), jobYAML("a2")}}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: []api.Document{}},
			wantRefused: "the revision declares no jobs",
			wantLive:    []string{"a1", "a2"},
		},
		{
			name:        "force does not lift the empty guard",
			seeds:       []seed{{"team-a", []string{jobYAML("a1"), jobYAML("a2")}}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, Force: true, Documents: []api.Document{}},
			wantRefused: "the revision declares no jobs",
			wantLive:    []string{"a1", "a2"},
		},
		{
			name:     "an empty set with allowEmpty",
			seeds:    []seed{{"team-a", []string{jobYAML("a1"), jobYAML("a2")}}, {"team-b", []string{jobYAML("b1")}}},
			req:      api.ApplyRequest{SourceID: "team-a", Prune: true, AllowEmpty: true, Documents: []api.Document{}},
			wantLive: []string{"b1"},
		},
		{
			name:        "more than 10 deletions is refused",
			seeds:       []seed{{"team-a", numbered("team", 12)}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", numbered("team", 1)...).Documents},
			wantRefused: `refusing to prune 11 of 12 jobs of source "team-a": more than maxDeletions (10)`,
			wantLiveN:   12,
		},
		{
			name:      "force lifts maxDeletions",
			seeds:     []seed{{"team-a", numbered("team", 12)}},
			req:       api.ApplyRequest{SourceID: "team-a", Prune: true, Force: true, Documents: request("", numbered("team", 1)...).Documents},
			wantLive:  []string{"team-00"},
			wantLiveN: 1,
		},
		{
			name:     "an explicit maxDeletions allows",
			seeds:    []seed{{"team-a", numbered("team", 12)}},
			req:      api.ApplyRequest{SourceID: "team-a", Prune: true, MaxDeletions: 11, Documents: request("", numbered("team", 1)...).Documents},
			wantLive: []string{"team-00"},
		},
		{
			name:        "an explicit maxDeletions refuses",
			seeds:       []seed{{"team-a", numbered("team", 4)}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, MaxDeletions: 2, Documents: request("", numbered("team", 1)...).Documents},
			wantRefused: "more than maxDeletions (2)",
			wantLiveN:   4,
		},
		{
			name:        "25% of a large source is the limit: over",
			seeds:       []seed{{"team-a", numbered("team", 60)}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", numbered("team", 40)...).Documents},
			wantRefused: "refusing to prune 20 of 60 jobs of source \"team-a\": more than maxDeletions (15)",
			wantLiveN:   60,
		},
		{
			name:      "25% of a large source is the limit: at",
			seeds:     []seed{{"team-a", numbered("team", 48)}},
			req:       api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", numbered("team", 36)...).Documents},
			wantLiveN: 36,
		},
		{
			name:        "a refused prune still applies creates and updates",
			seeds:       []seed{{"team-a", numbered("team", 12)}},
			req:         api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", modified, jobYAML("fresh")).Documents},
			wantRefused: "more than maxDeletions (10)",
			wantLiveN:   13,
		},
		{
			name:        "jobs applied by hand are never pruned",
			seeds:       []seed{{"", []string{jobYAML("m1"), jobYAML("m2")}}},
			req:         api.ApplyRequest{Prune: true, Force: true, Documents: request("", jobYAML("m1")).Documents},
			wantRefused: "refusing to prune 1 jobs applied by hand",
			wantLive:    []string{"m1", "m2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, backend string) {
				f := setup(t, backend)
				for _, s := range tt.seeds {
					f.mustApply(t, request(s.source, s.manifests...))
				}
				rep := f.mustApply(t, tt.req)
				if tt.wantRefused == "" && rep.PruneRefused != "" {
					t.Errorf("prune refused: %s", rep.PruneRefused)
				}
				if !strings.Contains(rep.PruneRefused, tt.wantRefused) {
					t.Errorf("pruneRefused = %q, want %q", rep.PruneRefused, tt.wantRefused)
				}
				if tt.wantRefused != "" && rep.Summary.Deleted != 0 {
					t.Errorf("a refused prune deleted %d jobs", rep.Summary.Deleted)
				}
				live := f.live(t)
				if tt.wantLive != nil && !slices.Equal(live, tt.wantLive) {
					t.Errorf("live = %v, want %v", live, tt.wantLive)
				}
				if tt.wantLiveN != 0 && len(live) != tt.wantLiveN {
					t.Errorf("%d jobs live, want %d", len(live), tt.wantLiveN)
				}
				recs := f.applies(t, "?limit=1")
				if len(recs) != 1 || recs[0].PruneRefused != rep.PruneRefused || recs[0].Deleted != rep.Summary.Deleted {
					t.Errorf("history %+v does not match the report %+v", recs, rep.Summary)
				}
			})
		})
	}

	// The refused prune above still created and updated.
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("team-a", numbered("team", 12)...))
		rep := f.mustApply(t, api.ApplyRequest{SourceID: "team-a", Prune: true, Documents: request("", modified, jobYAML("fresh")).Documents})
		if rep.Summary.Created != 1 || rep.Summary.Updated != 1 || rep.Summary.Deleted != 0 || rep.PruneRefused == "" {
			t.Errorf("summary %+v refused %q; want 1 created, 1 updated, prune refused", rep.Summary, rep.PruneRefused)
		}
		var j store.Job
		f.get(t, "/v1/jobs/team-00").decode(t, &j)
		if j.Version != 2 || !strings.Contains(string(j.Spec), "alpine:3.21") {
			t.Errorf("team-00: version %d, spec %s", j.Version, j.Spec)
		}
	})
}

func TestListJobsSelector(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("team-a", jobYAML("etl", "team=data", "tier=batch"), jobYAML("report", "team=data", "tier=critical")))
		f.mustApply(t, request("", jobYAML("web", "team=web", "tier=critical"), jobYAML("bare")))
		tests := []struct {
			query string
			want  []string
		}{
			{query: "", want: []string{"bare", "etl", "report", "web"}},
			{query: "?selector=team%3Ddata", want: []string{"etl", "report"}},
			{query: "?selector=team%3D%3Ddata", want: []string{"etl", "report"}},
			{query: "?selector=team!%3Ddata", want: []string{"bare", "web"}},
			{query: "?selector=tier", want: []string{"etl", "report", "web"}},
			{query: "?selector=!tier", want: []string{"bare"}},
			{query: "?selector=" + urlEscape("tier in (critical,gold)"), want: []string{"report", "web"}},
			{query: "?selector=" + urlEscape("tier notin (critical),team"), want: []string{"etl"}},
			{query: "?selector=" + urlEscape("team=data,tier=critical"), want: []string{"report"}},
			{query: "?selector=team%3Dnobody", want: []string{}},
			{query: "?source=team-a", want: []string{"etl", "report"}},
			{query: "?source=manual&selector=tier", want: []string{"web"}},
		}
		for _, tt := range tests {
			r := f.get(t, "/v1/jobs"+tt.query)
			if r.status != http.StatusOK {
				t.Errorf("GET /v1/jobs%s: %d %s", tt.query, r.status, r.body)
				continue
			}
			if !strings.Contains(string(r.body), `"jobs":[`) {
				t.Errorf("GET /v1/jobs%s: jobs is not a list: %s", tt.query, r.body)
			}
			var list api.JobList
			r.decode(t, &list)
			got := []string{}
			for _, j := range list.Jobs {
				got = append(got, j.Alias)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("GET /v1/jobs%s = %v, want %v", tt.query, got, tt.want)
			}
		}
	})
}

func urlEscape(s string) string {
	r := strings.NewReplacer(" ", "%20", "=", "%3D", ",", "%2C", "(", "%28", ")", "%29", "!", "%21")
	return r.Replace(s)
}

func TestDeleteAndGC(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("", jobYAML("by-hand")))
		f.mustApply(t, request("team-a", jobYAML("from-git")))

		r := f.request(t, http.MethodDelete, "/v1/jobs/by-hand", "", "")
		if r.status != http.StatusOK {
			t.Fatalf("DELETE by-hand: %d %s", r.status, r.body)
		}
		var rep reconcile.Report
		r.decode(t, &rep)
		if rep.Summary.Deleted != 1 {
			t.Errorf("DELETE report %+v", rep.Summary)
		}
		f.get(t, "/v1/jobs/by-hand").wantError(t, http.StatusNotFound, `job "by-hand" not found`)
		f.request(t, http.MethodDelete, "/v1/jobs/by-hand", "", "").wantError(t, http.StatusNotFound, `job "by-hand" not found`)

		f.request(t, http.MethodDelete, "/v1/jobs/from-git", "", "").wantError(t, http.StatusConflict, `owned by source "team-a"`)
		f.request(t, http.MethodDelete, "/v1/jobs/from-git?force=maybe", "", "").wantError(t, http.StatusBadRequest, "force")
		if got := f.live(t); !slices.Equal(got, []string{"from-git"}) {
			t.Fatalf("live = %v", got)
		}
		if r := f.request(t, http.MethodDelete, "/v1/jobs/from-git?force=true", "", ""); r.status != http.StatusOK {
			t.Fatalf("forced DELETE: %d %s", r.status, r.body)
		}

		// Both rows are soft-deleted: still in the store, until gc.
		all, err := f.store.ListJobs(context.Background(), store.ListOptions{IncludeDeleted: true})
		if err != nil || len(all) != 2 || all[0].DeletedAt == nil || all[1].DeletedAt == nil {
			t.Fatalf("after delete: %+v, %v; want two soft-deleted rows", all, err)
		}
		// Re-applying a deleted alias creates a new job.
		rep2 := f.mustApply(t, request("", jobYAML("by-hand")))
		if rep2.Summary.Created != 1 {
			t.Errorf("re-apply of a deleted alias: %+v", rep2.Summary)
		}

		f.clock.Advance(2 * time.Hour)
		gc := func(olderThan string) int {
			t.Helper()
			r := f.request(t, http.MethodPost, "/v1/jobs/gc?olderThan="+olderThan, "", "")
			if r.status != http.StatusOK {
				t.Fatalf("gc %s: %d %s", olderThan, r.status, r.body)
			}
			var out api.GCResponse
			r.decode(t, &out)
			return out.Purged
		}
		if n := gc("3h"); n != 0 {
			t.Errorf("gc olderThan=3h purged %d, want 0: deleted 2h ago", n)
		}
		if n := gc("1h"); n != 2 {
			t.Errorf("gc olderThan=1h purged %d, want 2", n)
		}
		all, _ = f.store.ListJobs(context.Background(), store.ListOptions{IncludeDeleted: true})
		if len(all) != 1 || all[0].Alias != "by-hand" || all[0].DeletedAt != nil {
			t.Errorf("after gc: %+v, want only the live by-hand", all)
		}
		if n := gc("0s"); n != 0 {
			t.Errorf("gc purged a live job")
		}
	})
}

func TestApplyHistory(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("team-a", jobYAML("a1")))
		f.clock.Advance(time.Minute)
		f.mustApply(t, request("team-b", jobYAML("b1")))
		f.clock.Advance(time.Minute)
		f.mustApply(t, request("team-a", jobYAML("a1", "x=y")))

		recs := f.applies(t, "")
		if len(recs) != 3 || recs[0].SourceID != "team-a" || recs[0].Updated != 1 || recs[2].Created != 1 {
			t.Fatalf("history = %+v, want 3, newest first", recs)
		}
		if recs[0].Actor != "api" || !recs[0].StartedAt.Equal(f.clock.Now()) {
			t.Errorf("newest record %+v", recs[0])
		}
		if recs := f.applies(t, "?limit=2"); len(recs) != 2 {
			t.Errorf("limit=2 gave %d", len(recs))
		}
		if recs := f.applies(t, "?source=team-b"); len(recs) != 1 || recs[0].SourceID != "team-b" {
			t.Errorf("source=team-b gave %+v", recs)
		}
		if recs := f.applies(t, "?source=nobody"); len(recs) != 0 {
			t.Errorf("source=nobody gave %+v", recs)
		}
		if r := f.get(t, "/v1/applies?source=nobody"); !strings.Contains(string(r.body), `"applies":[]`) {
			t.Errorf("an empty history is %s, want an empty list", r.body)
		}
	})
}

// TestErrorStatuses checks every error status the API answers, and that
// each answer is JSON {error, details}.
func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	valid := jobYAML("ok")
	invalid := strings.Replace(jobYAML("bad"), "image:", "imagee:", 1)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		setup       func(t *testing.T, f *fixture)
		want        int
		wantErr     string
		wantDetails string // substring of details
	}{
		{name: "bad JSON", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: `{"documents": [`, want: 400, wantErr: "invalid JSON body"},
		{name: "empty JSON body", method: "POST", path: "/v1/jobdefs/lint", contentType: "application/json", body: ``, want: 400, wantErr: "invalid JSON body"},
		{name: "unknown JSON field", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: `{"documents": [], "prunee": true}`, want: 400, wantErr: `unknown field "prunee"`},
		{name: "JSON of the wrong type", method: "POST", path: "/v1/jobdefs/diff", contentType: "application/json", body: `{"documents": "x"}`, want: 400, wantErr: "invalid JSON body"},
		{name: "data after the JSON body", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: `{"documents": []} {"prune": true}`, want: 400, wantErr: "data after"},
		{name: "negative maxDeletions in JSON", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: `{"documents": [], "maxDeletions": -1}`, want: 400, wantErr: "maxDeletions"},
		{name: "query boolean", method: "POST", path: "/v1/jobdefs/apply?prune=yes", contentType: "application/yaml", body: valid, want: 400, wantErr: `prune="yes" is not a boolean`},
		{name: "query maxDeletions", method: "POST", path: "/v1/jobdefs/apply?maxDeletions=-2", contentType: "application/yaml", body: valid, want: 400, wantErr: "maxDeletions"},
		{name: "bad selector", method: "GET", path: "/v1/jobs?selector=" + urlEscape("tier in batch"), want: 400, wantErr: "parenthesised list"},
		{name: "gc without olderThan", method: "POST", path: "/v1/jobs/gc", want: 400, wantErr: "olderThan"},
		{name: "gc with a bad olderThan", method: "POST", path: "/v1/jobs/gc?olderThan=a-while", want: 400, wantErr: "olderThan"},
		{name: "gc with a negative olderThan", method: "POST", path: "/v1/jobs/gc?olderThan=-1h", want: 400, wantErr: "olderThan"},
		{name: "applies limit 0", method: "GET", path: "/v1/applies?limit=0", want: 400, wantErr: "limit"},
		{name: "applies limit too large", method: "GET", path: "/v1/applies?limit=1001", want: 400, wantErr: "limit"},
		{name: "applies limit not a number", method: "GET", path: "/v1/applies?limit=ten", want: 400, wantErr: "limit"},
		{name: "delete force not a boolean", method: "DELETE", path: "/v1/jobs/ok?force=please", want: 400, wantErr: "force"},

		{name: "unknown job", method: "GET", path: "/v1/jobs/nope", want: 404, wantErr: `job "nope" not found`},
		{name: "delete unknown job", method: "DELETE", path: "/v1/jobs/nope", want: 404, wantErr: `job "nope" not found`},
		{name: "unknown endpoint", method: "GET", path: "/v1/nope", want: 404, wantErr: "no such endpoint"},
		{name: "unknown endpoint outside v1", method: "POST", path: "/v2/jobdefs/apply", want: 404, wantErr: "no such endpoint"},

		{name: "GET on apply", method: "GET", path: "/v1/jobdefs/apply", want: 405, wantErr: "method not allowed"},
		{name: "PUT on a job", method: "PUT", path: "/v1/jobs/ok", want: 405, wantErr: "method not allowed"},
		{name: "DELETE on the job list", method: "DELETE", path: "/v1/jobs", want: 405, wantErr: "method not allowed"},
		{name: "unknown sub-path", method: "GET", path: "/v1/applies/x", want: 404, wantErr: "no such endpoint"},

		{
			name: "apply conflict", method: "POST", path: "/v1/jobdefs/apply?sourceId=team-b", contentType: "application/yaml", body: valid,
			setup: func(t *testing.T, f *fixture) { f.mustApply(t, request("team-a", valid)) },
			want:  409, wantErr: `job "ok" is owned by source "team-a"`, wantDetails: `"action":"conflict"`,
		},
		{
			name: "two conflicts", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: mustJSON(request("", valid, jobYAML("ok2"))),
			setup: func(t *testing.T, f *fixture) { f.mustApply(t, request("team-a", valid, jobYAML("ok2"))) },
			want:  409, wantErr: `2 conflicts; first: job "ok" is owned by source "team-a"`, wantDetails: `"conflicts":2`,
		},
		{
			name: "delete a source's job", method: "DELETE", path: "/v1/jobs/ok",
			setup: func(t *testing.T, f *fixture) { f.mustApply(t, request("team-a", valid)) },
			want:  409, wantErr: `owned by source "team-a"`,
		},

		{name: "JSON body too large", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: mustJSON(request("", strings.Repeat("# padding\n", 200)+valid)), want: 413, wantErr: "larger than 1024 bytes"},
		{name: "YAML body too large", method: "POST", path: "/v1/jobdefs/lint", contentType: "application/yaml", body: strings.Repeat("# padding\n", 200), want: 413, wantErr: "larger than 1024 bytes"},

		{name: "XML", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/xml", body: "<job/>", want: 415, wantErr: "application/json or application/yaml"},
		{name: "form", method: "POST", path: "/v1/jobdefs/diff", contentType: "application/x-www-form-urlencoded", body: "a=b", want: 415, wantErr: "application/json or application/yaml"},

		{name: "invalid manifest, JSON", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: mustJSON(request("", valid, invalid)), want: 422, wantErr: "1 invalid manifest(s); nothing was applied",
			wantDetails: `"file":"jobs/01.yaml","line":9,"column":5,"path":"steps[0].imagee","severity":"error"`},
		{name: "invalid manifest, YAML", method: "POST", path: "/v1/jobdefs/diff", contentType: "application/yaml", body: "apiVersion: v1\nkind: Job\n", want: 422, wantErr: "nothing was applied", wantDetails: `"file":"\u003crequest\u003e"`},
		{name: "YAML syntax", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/yaml", body: "apiVersion: [v1\n", want: 422, wantErr: "invalid manifest", wantDetails: `"line":`},
		{name: "alias twice", method: "POST", path: "/v1/jobdefs/apply", contentType: "application/json", body: mustJSON(request("", valid, valid)), want: 422, wantErr: "invalid manifest", wantDetails: `"file":"jobs/01.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, backend string) {
				f := setup(t, backend, func(c *api.Config) { c.MaxBodyBytes = 1024 })
				if tt.setup != nil {
					tt.setup(t, f)
				}
				before := f.store.Stats().Writes
				r := f.request(t, tt.method, tt.path, tt.contentType, tt.body)
				e := r.wantError(t, tt.want, tt.wantErr)
				if !strings.Contains(string(e.Details), tt.wantDetails) {
					t.Errorf("details %s do not contain %s", e.Details, tt.wantDetails)
				}
				if tt.want != http.StatusConflict {
					if w := f.store.Stats().Writes - before; w != 0 {
						t.Errorf("a %d wrote %d rows", tt.want, w)
					}
				}
			})
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend, func(c *api.Config) { c.Token = "s3cret" })
		f.token = ""
		endpoints := []struct{ method, path, contentType, body string }{
			{"POST", "/v1/jobdefs/lint", "application/yaml", jobYAML("a")},
			{"POST", "/v1/jobdefs/diff", "application/yaml", jobYAML("a")},
			{"POST", "/v1/jobdefs/apply", "application/yaml", jobYAML("a")},
			{"GET", "/v1/jobs", "", ""},
			{"GET", "/v1/jobs/a", "", ""},
			{"DELETE", "/v1/jobs/a", "", ""},
			{"POST", "/v1/jobs/gc?olderThan=1h", "", ""},
			{"GET", "/v1/applies", "", ""},
		}
		for _, auth := range []string{"", "Authorization: Bearer wrong", "Authorization: s3cret", "Authorization: Basic czNjcmV0", "Authorization: Bearer s3cret2", "Authorization: bearer s3cret"} {
			for _, ep := range endpoints {
				r := f.request(t, ep.method, ep.path, ep.contentType, ep.body, auth)
				r.wantError(t, http.StatusUnauthorized, "missing or invalid bearer token")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate %q", ep.method, ep.path, got)
				}
			}
		}
		if len(f.live(t)) != 0 {
			t.Fatal("an unauthenticated apply wrote jobs")
		}
		for _, ep := range endpoints {
			r := f.request(t, ep.method, ep.path, ep.contentType, ep.body, "Authorization: Bearer s3cret")
			if r.status == http.StatusUnauthorized || r.status >= 500 {
				t.Errorf("%s %s with the token: %d %s", ep.method, ep.path, r.status, r.body)
			}
		}
	})
}

// TestStoreUnavailable closes the store under the API: every endpoint that
// needs the database answers 503.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		f.mustApply(t, request("", jobYAML("a")))
		if err := f.store.Close(); err != nil {
			t.Fatal(err)
		}
		for _, ep := range []struct{ method, path, contentType, body string }{
			{"POST", "/v1/jobdefs/diff", "application/yaml", jobYAML("a")},
			{"POST", "/v1/jobdefs/apply", "application/yaml", jobYAML("a")},
			{"POST", "/v1/jobdefs/apply", "application/json", mustJSON(request("", jobYAML("b")))},
			{"GET", "/v1/jobs", "", ""},
			{"GET", "/v1/jobs/a", "", ""},
			{"DELETE", "/v1/jobs/a", "", ""},
			{"POST", "/v1/jobs/gc?olderThan=1h", "", ""},
			{"GET", "/v1/applies", "", ""},
			{"GET", "/readyz", "", ""},
		} {
			t.Run(ep.method+" "+ep.path, func(t *testing.T) {
				t.Parallel()
				f.request(t, ep.method, ep.path, ep.contentType, ep.body).wantError(t, http.StatusServiceUnavailable, "unavailable")
			})
		}
		// Lint needs no database.
		if r := f.request(t, "POST", "/v1/jobdefs/lint", "application/yaml", jobYAML("a")); r.status != http.StatusOK {
			t.Errorf("lint with the store closed: %d %s", r.status, r.body)
		}
	})
}

// TestConcurrentApplies sends applies at once, from one source and from
// competing ones: each answer is 200 or 409, never a 5xx, and the end state
// is consistent.
func TestConcurrentApplies(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend string) {
		f := setup(t, backend)
		const n = 8
		var wg sync.WaitGroup
		statuses := make([]int, n)
		bodies := make([][]byte, n)
		for i := range n {
			wg.Go(func() {
				src := fmt.Sprintf("team-%d", i%2)
				b, _ := json.Marshal(request(src, append(numbered("shared", 5), jobYAML(fmt.Sprintf("own-%d", i)))...))
				req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/jobdefs/apply", bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses[i] = -1
					return
				}
				defer resp.Body.Close()
				statuses[i] = resp.StatusCode
				bodies[i], _ = io.ReadAll(resp.Body)
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusOK && s != http.StatusConflict {
				t.Errorf("apply %d: status %d %s", i, s, bodies[i])
			}
		}
		live := f.live(t)
		if len(live) != 5+n {
			t.Errorf("%d jobs live, want %d: %v", len(live), 5+n, live)
		}
		var list api.JobList
		f.get(t, "/v1/jobs?selector=").decode(t, &list)
		owners := map[string]bool{}
		for _, j := range list.Jobs {
			if strings.HasPrefix(j.Alias, "shared-") {
				owners[j.Provenance.SourceID] = true
				if j.Version != 1 {
					t.Errorf("%s at version %d, want 1", j.Alias, j.Version)
				}
			}
		}
		if len(owners) != 1 {
			t.Errorf("shared jobs owned by %v, want one source", owners)
		}
	})
}
