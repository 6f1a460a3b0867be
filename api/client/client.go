// Package client is the typed client of Caesium's REST API, used by the
// caesium CLI.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/store"
)

// Client talks to one agent.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client for the agent at server (http://host:port).
func New(server, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q must be an http or https URL such as http://127.0.0.1:8080", server)
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
	Details json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// StatusOf returns the HTTP status of an API error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		err = UnwrapURLError(err)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("cannot reach the agent at %s (is caesium-agent running there? set --server or CAESIUM_SERVER): %w", c.base.Redacted(), err)
		}
		return fmt.Errorf("%s %s: %w", method, c.base.Redacted()+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorResponse
		apiErr := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			apiErr.Message = e.Error
			if e.Details != nil {
				apiErr.Details, _ = json.Marshal(e.Details)
			}
		} else {
			apiErr.Message = strings.TrimSpace(string(data))
			if apiErr.Message == "" {
				apiErr.Message = resp.Status
			}
		}
		return apiErr
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// UnwrapURLError returns the cause inside a *url.Error, whose text repeats
// the method and the whole URL; other errors are returned as they are.
func UnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Lint checks manifests on the server.
func (c *Client) Lint(ctx context.Context, req api.ApplyRequest) (api.LintResponse, error) {
	var out api.LintResponse
	err := c.do(ctx, http.MethodPost, "/v1/jobdefs/lint", nil, req, &out)
	return out, err
}

// Diff plans manifests against the server's store without writing.
func (c *Client) Diff(ctx context.Context, req api.ApplyRequest) (api.ApplyResponse, error) {
	return c.applyLike(ctx, "/v1/jobdefs/diff", req)
}

// Apply applies manifests. A conflict comes back as an *Error with status
// 409 and the response alongside.
func (c *Client) Apply(ctx context.Context, req api.ApplyRequest) (api.ApplyResponse, error) {
	return c.applyLike(ctx, "/v1/jobdefs/apply", req)
}

// applyLike decodes the response also from a 409 or 503, whose details
// carry the report.
func (c *Client) applyLike(ctx context.Context, path string, req api.ApplyRequest) (api.ApplyResponse, error) {
	var out api.ApplyResponse
	err := c.do(ctx, http.MethodPost, path, nil, req, &out)
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusConflict || e.Status == http.StatusServiceUnavailable) && len(e.Details) > 0 {
		_ = json.Unmarshal(e.Details, &out)
	}
	return out, err
}

// Diagnostics returns the manifest diagnostics of a 422 answer.
func Diagnostics(err error) []json.RawMessage {
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity {
		return nil
	}
	var out []json.RawMessage
	_ = json.Unmarshal(e.Details, &out)
	return out
}

// ListJobs lists live jobs matching a label selector.
func (c *Client) ListJobs(ctx context.Context, selector string) ([]store.Job, error) {
	q := url.Values{}
	if selector != "" {
		q.Set("selector", selector)
	}
	var out api.JobList
	err := c.do(ctx, http.MethodGet, "/v1/jobs", q, nil, &out)
	return out.Jobs, err
}

// GetJob reads one job.
func (c *Client) GetJob(ctx context.Context, alias string) (store.Job, error) {
	var out store.Job
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(alias), nil, nil, &out)
	return out, err
}

// DeleteJob soft-deletes one job; force is needed for a job a Git source owns.
func (c *Client) DeleteJob(ctx context.Context, alias string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	return c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(alias), q, nil, nil)
}

// GC hard-deletes jobs soft-deleted longer than olderThan ago.
func (c *Client) GC(ctx context.Context, olderThan time.Duration) (int, error) {
	var out api.GCResponse
	err := c.do(ctx, http.MethodPost, "/v1/jobs/gc", url.Values{"olderThan": {olderThan.String()}}, nil, &out)
	return out.Purged, err
}

// ListApplies reads the apply history, newest first.
func (c *Client) ListApplies(ctx context.Context, source string, limit int) ([]store.ApplyRecord, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if source != "" {
		q.Set("source", source)
	}
	var out api.ApplyHistory
	err := c.do(ctx, http.MethodGet, "/v1/applies", q, nil, &out)
	return out.Applies, err
}

// ListSources lists the agent's sources with their sync status.
func (c *Client) ListSources(ctx context.Context) ([]store.Source, error) {
	var out api.SourceList
	err := c.do(ctx, http.MethodGet, "/v1/sources", nil, nil, &out)
	return out.Sources, err
}

// GetSource reads one source and its sync status.
func (c *Client) GetSource(ctx context.Context, id string) (store.Source, error) {
	var out store.Source
	err := c.do(ctx, http.MethodGet, "/v1/sources/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// SyncSource asks the agent to sync a source now.
func (c *Client) SyncSource(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/sources/"+url.PathEscape(id)+"/sync", nil, nil, nil)
}

// ListDeliveries reads the newest webhook deliveries.
func (c *Client) ListDeliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	var out api.DeliveryList
	err := c.do(ctx, http.MethodGet, "/v1/webhooks/deliveries", url.Values{"limit": {fmt.Sprint(limit)}}, nil, &out)
	return out.Deliveries, err
}

// StartRun queues a manual run of the job alias; actor says who started it
// ("" lets the server say "api"). When the job's concurrency refuses the
// run (strategy skip or fail with maxRuns in flight) the run is still
// recorded: it comes back together with an *Error of status 409.
func (c *Client) StartRun(ctx context.Context, alias, actor string) (store.Run, error) {
	var out store.Run
	err := c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(alias)+"/runs", nil, api.StartRunRequest{Actor: actor}, &out)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusConflict && len(e.Details) > 0 {
		_ = json.Unmarshal(e.Details, &out)
	}
	return out, err
}

// ListRuns lists runs newest first, without their steps. Zero fields of f
// are not filters; a zero Limit takes the server's default (50).
func (c *Client) ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	q := url.Values{}
	if f.JobAlias != "" {
		q.Set("job", f.JobAlias)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.Limit != 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	if f.BeforeID != 0 {
		q.Set("before", fmt.Sprint(f.BeforeID))
	}
	var out api.RunList
	err := c.do(ctx, http.MethodGet, "/v1/runs", q, nil, &out)
	return out.Runs, err
}

// GetRun reads one run with its steps.
func (c *Client) GetRun(ctx context.Context, id int64) (store.Run, error) {
	var out store.Run
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/runs/%d", id), nil, nil, &out)
	return out, err
}

// CancelRun cancels a queued run at once, or asks the agent running it to
// stop it; a finished run is an *Error of status 409.
func (c *Client) CancelRun(ctx context.Context, id int64) (store.Run, error) {
	var out store.Run
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/runs/%d/cancel", id), nil, nil, &out)
	return out, err
}
