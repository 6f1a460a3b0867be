package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const job = "apiVersion: v1\nkind: Job\nmetadata:\n  alias: %s\n  labels:\n    team: data\nsteps:\n  - name: main\n    image: alpine:3.20\n"

func manifest(alias string) api.Document {
	return api.Document{Name: "jobs/" + alias + ".yaml", Content: strings.Replace(job, "%s", alias, 1)}
}

// setup serves the real API on a fresh store of backend and returns a
// client for it, and the server's URL.
func setup(t *testing.T, backend, token string) (*client.Client, string) {
	t.Helper()
	srv := httptest.NewServer(api.New(storetest.Open(t, backend), api.Config{Token: token}).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL+"/", token) // a trailing slash is fine
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server  string
		wantErr bool
	}{
		{server: "http://127.0.0.1:8080"},
		{server: "https://caesium.example.com/"},
		{server: "127.0.0.1:8080", wantErr: true},
		{server: "ftp://caesium.example.com", wantErr: true},
		{server: "http://", wantErr: true},
		{server: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			t.Parallel()
			_, err := client.New(tt.server, "")
			if (err != nil) != tt.wantErr {
				t.Errorf("New(%q) error = %v, want error %v", tt.server, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "must be an http or https URL") {
				t.Errorf("error %q does not say what is expected", err)
			}
		})
	}
}

func TestClient(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, _ := setup(t, backend, "s3cret")

			lint, err := c.Lint(ctx, api.ApplyRequest{Documents: []api.Document{manifest("a"), {Name: "bad.yaml", Content: "kind: Job\n"}}})
			if err != nil || lint.Valid || lint.Files != 2 || len(lint.Diagnostics) == 0 {
				t.Errorf("Lint = %+v, %v", lint, err)
			}

			diff, err := c.Diff(ctx, api.ApplyRequest{SourceID: "team-a", Documents: []api.Document{manifest("a")}})
			if err != nil || !diff.DryRun || diff.Summary.Created != 1 {
				t.Errorf("Diff = %+v, %v", diff, err)
			}
			rep, err := c.Apply(ctx, api.ApplyRequest{SourceID: "team-a", Documents: []api.Document{manifest("a"), manifest("b")}})
			if err != nil || rep.Summary.Created != 2 || rep.HistoryID == 0 {
				t.Fatalf("Apply = %+v, %v", rep, err)
			}

			// A conflict is an *Error with status 409, and the report alongside.
			rep, err = c.Apply(ctx, api.ApplyRequest{SourceID: "team-b", Documents: []api.Document{manifest("a"), manifest("c")}})
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || client.StatusOf(err) != http.StatusConflict {
				t.Fatalf("conflicting Apply error = %v, want a 409 *client.Error", err)
			}
			if !strings.Contains(err.Error(), `owned by source "team-a"`) || !strings.HasSuffix(err.Error(), "(HTTP 409)") {
				t.Errorf("conflict error = %q", err)
			}
			if rep.Summary.Conflicts != 1 || rep.Summary.Created != 1 || len(rep.Outcomes) != 2 || rep.Outcomes[0].Action != reconcile.ActionConflict {
				t.Errorf("conflict report = %+v", rep.Report)
			}

			// Invalid manifests: 422 and the diagnostics.
			_, err = c.Apply(ctx, api.ApplyRequest{Documents: []api.Document{{Name: "bad.yaml", Content: "kind: Job\n"}}})
			if client.StatusOf(err) != http.StatusUnprocessableEntity || len(client.Diagnostics(err)) == 0 {
				t.Errorf("invalid Apply: %v, diagnostics %s", err, client.Diagnostics(err))
			}
			if client.Diagnostics(errors.New("other")) != nil || client.Diagnostics(nil) != nil {
				t.Error("Diagnostics of a non-422 error is not nil")
			}

			jobs, err := c.ListJobs(ctx, "team=data")
			if err != nil || len(jobs) != 3 {
				t.Errorf("ListJobs = %d jobs, %v", len(jobs), err)
			}
			if _, err := c.ListJobs(ctx, "team in"); client.StatusOf(err) != http.StatusBadRequest {
				t.Errorf("ListJobs with a bad selector: %v", err)
			}
			j, err := c.GetJob(ctx, "a")
			if err != nil || j.Alias != "a" || j.Labels["team"] != "data" || j.Provenance.SourceID != "team-a" {
				t.Errorf("GetJob = %+v, %v", j, err)
			}
			if _, err := c.GetJob(ctx, "nope"); client.StatusOf(err) != http.StatusNotFound || err.Error() != `job "nope" not found (HTTP 404)` {
				t.Errorf("GetJob(nope) = %v", err)
			}
			if err := c.DeleteJob(ctx, "a", false); client.StatusOf(err) != http.StatusConflict {
				t.Errorf("DeleteJob without force = %v, want 409", err)
			}
			if err := c.DeleteJob(ctx, "a", true); err != nil {
				t.Errorf("DeleteJob with force = %v", err)
			}
			if n, err := c.GC(ctx, time.Hour); err != nil || n != 0 {
				t.Errorf("GC(1h) = %d, %v", n, err)
			}
			recs, err := c.ListApplies(ctx, "team-a", 10)
			if err != nil || len(recs) != 2 || recs[0].Deleted != 1 {
				t.Errorf("ListApplies = %+v, %v", recs, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c, url := setup(t, "sqlite", "s3cret")
	wrong, err := client.New(url, "wrong")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.ListJobs(context.Background(), ""); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("wrong token: %v, want 401", err)
	}

	// A proxy in front of the agent answers in plain text.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream timed out", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	pc, _ := client.New(proxy.URL, "")
	if _, err := pc.GetJob(context.Background(), "a"); err == nil || err.Error() != "upstream timed out (HTTP 502)" {
		t.Errorf("plain-text error = %v", err)
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(empty.Close)
	ec, _ := client.New(empty.URL, "")
	if _, err := ec.GetJob(context.Background(), "a"); err == nil || err.Error() != "503 Service Unavailable (HTTP 503)" {
		t.Errorf("empty error = %v", err)
	}

	// Nothing listening.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	dc, _ := client.New(addr, "")
	_, err = dc.ListJobs(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the agent at "+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable agent: %v", err)
	}
	if client.StatusOf(err) != 0 {
		t.Errorf("StatusOf a transport error = %d, want 0", client.StatusOf(err))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ListJobs(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

// onceJob may have one run in flight and skips the others.
const onceJob = "apiVersion: v1\nkind: Job\nmetadata:\n  alias: once\n  concurrency:\n    maxRuns: 1\n    strategy: skip\nsteps:\n  - name: main\n    image: alpine:3.20\n"

func TestRuns(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, _ := setup(t, backend, "s3cret")
			if _, err := c.Apply(ctx, api.ApplyRequest{Documents: []api.Document{manifest("a"), {Name: "once.yaml", Content: onceJob}}}); err != nil {
				t.Fatal(err)
			}

			first, err := c.StartRun(ctx, "a", "alice")
			if err != nil || first.ID == 0 || first.Status != store.RunQueued || first.Actor != "alice" || first.JobAlias != "a" || first.JobVersion != 1 {
				t.Fatalf("StartRun = %+v, %v", first, err)
			}
			if r, err := c.StartRun(ctx, "a", ""); err != nil || r.Actor != "api" {
				t.Errorf("StartRun without an actor = %+v, %v; want actor api", r, err)
			}
			if _, err := c.StartRun(ctx, "nope", ""); client.StatusOf(err) != http.StatusNotFound || err.Error() != `job "nope" not found (HTTP 404)` {
				t.Errorf("StartRun(nope) = %v", err)
			}

			// Refused by the job's concurrency: the recorded run and a 409.
			once, err := c.StartRun(ctx, "once", "")
			if err != nil {
				t.Fatal(err)
			}
			skipped, err := c.StartRun(ctx, "once", "")
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
				t.Fatalf("second StartRun(once) error = %v, want a 409 *client.Error", err)
			}
			if skipped.ID <= once.ID || skipped.Status != store.RunSkipped || skipped.Error == "" {
				t.Errorf("skipped run = %+v", skipped)
			}
			if !strings.Contains(err.Error(), "skipped: not started") {
				t.Errorf("409 error = %q", err)
			}

			all, err := c.ListRuns(ctx, store.RunFilter{})
			if err != nil || len(all) != 4 || all[0].ID != skipped.ID {
				t.Errorf("ListRuns = %d runs, %v", len(all), err)
			}
			page, err := c.ListRuns(ctx, store.RunFilter{JobAlias: "a", Status: store.RunQueued, Limit: 1, BeforeID: skipped.ID})
			if err != nil || len(page) != 1 || page[0].JobAlias != "a" || page[0].ID == first.ID {
				t.Errorf("ListRuns(a, queued, 1, before) = %+v, %v", page, err)
			}
			if _, err := c.ListRuns(ctx, store.RunFilter{Status: "done"}); client.StatusOf(err) != http.StatusBadRequest {
				t.Errorf("ListRuns(status done) = %v, want 400", err)
			}

			got, err := c.GetRun(ctx, first.ID)
			if err != nil || got.ID != first.ID || got.Status != store.RunQueued {
				t.Errorf("GetRun = %+v, %v", got, err)
			}
			if _, err := c.GetRun(ctx, 999999); client.StatusOf(err) != http.StatusNotFound || err.Error() != "run 999999 not found (HTTP 404)" {
				t.Errorf("GetRun(999999) = %v", err)
			}

			cancelled, err := c.CancelRun(ctx, first.ID)
			if err != nil || cancelled.Status != store.RunCancelled {
				t.Errorf("CancelRun = %+v, %v", cancelled, err)
			}
			if _, err := c.CancelRun(ctx, first.ID); client.StatusOf(err) != http.StatusConflict {
				t.Errorf("CancelRun of a finished run = %v, want 409", err)
			}
			if _, err := c.CancelRun(ctx, 999999); client.StatusOf(err) != http.StatusNotFound {
				t.Errorf("CancelRun(999999) = %v, want 404", err)
			}
		})
	}
}
