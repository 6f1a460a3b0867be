package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// Store is what the API needs from the store. Errors wrap store.ErrNotFound,
// store.ErrConflict or store.ErrUnavailable where those apply.
type Store interface {
	reconcile.Store
	ListJobs(ctx context.Context, opts store.ListOptions) ([]store.Job, error)
	GetJob(ctx context.Context, alias string) (store.Job, error)
	PurgeDeleted(ctx context.Context, before time.Time) (int, error)
	ListApplies(ctx context.Context, sourceID string, limit int) ([]store.ApplyRecord, error)
	ListSources(ctx context.Context) ([]store.Source, error)
	ListDeliveries(ctx context.Context, limit int) ([]store.Delivery, error)
	GetSource(ctx context.Context, id string) (store.Source, error)
	CreateRun(ctx context.Context, r store.NewRun) (store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error)
	GetRun(ctx context.Context, id int64) (store.Run, error)
	RequestCancel(ctx context.Context, id int64) (store.Run, error)
	Ping(ctx context.Context) error
}

// Config of the API.
type Config struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every /v1 request.
	Token string
	// Limits bound each manifest file.
	Limits schema.Limits
	// MaxBodyBytes bounds a request body; default 64 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sources triggers source syncs; nil when the agent has none.
	Sources Sources
	// Metrics, when set, is served on GET /metrics.
	Metrics http.Handler
	// RunQueued, when set, is called after a run is queued or a cancel is
	// requested through the API: it wakes the agent's runner.
	RunQueued func()
}

// Server holds the API's routes on a gin engine that other components
// (webhooks, console) can mount on as well.
type Server struct {
	cfg    Config
	store  Store
	engine *gin.Engine
	// applyMu serialises applies in this process, so two concurrent applies
	// do not plan against the same state; across agents the store's version
	// check catches a stale plan.
	applyMu sync.Mutex
}

// New builds the API server.
func New(st Store, cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// Handlers hand c.Request.Context() to the store, never c itself: gin
	// recycles its Context for the next request, while database drivers
	// watch the context they were given from goroutines of their own.
	e.ContextWithFallback = true
	s := &Server{cfg: cfg, store: st, engine: e}
	e.Use(s.recoverJSON, s.logRequests)
	e.NoRoute(func(c *gin.Context) { abort(c, http.StatusNotFound, "no such endpoint", nil) })
	e.NoMethod(func(c *gin.Context) { abort(c, http.StatusMethodNotAllowed, "method not allowed", nil) })
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	if cfg.Metrics != nil {
		e.GET("/metrics", gin.WrapH(cfg.Metrics))
	}

	v1 := e.Group("/v1", s.auth)
	v1.POST("/jobdefs/lint", s.lint)
	v1.POST("/jobdefs/diff", s.diff)
	v1.POST("/jobdefs/apply", s.apply)
	v1.GET("/jobs", s.listJobs)
	v1.GET("/jobs/:alias", s.getJob)
	v1.DELETE("/jobs/:alias", s.deleteJob)
	v1.POST("/jobs/gc", s.gc)
	v1.GET("/applies", s.listApplies)
	v1.GET("/webhooks/deliveries", s.listDeliveries)
	v1.GET("/sources", s.listSources)
	v1.GET("/sources/:id", s.getSource)
	v1.POST("/sources/:id/sync", s.syncSource)
	v1.POST("/jobs/:alias/runs", s.startRun)
	v1.GET("/jobs/:alias/runs", s.listRuns)
	v1.GET("/runs", s.listRuns)
	v1.GET("/runs/:id", s.getRun)
	v1.POST("/runs/:id/cancel", s.cancelRun)
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine returns the gin engine, for other components to mount routes on.
func (s *Server) Engine() *gin.Engine { return s.engine }

// Mount serves h for method and path (gin syntax: /v1/webhooks/:provider)
// on the shared server, outside the bearer-token group: such routes
// authenticate their requests themselves (webhooks by signature). The path
// parameters are passed to h as request path values (r.PathValue).
func (s *Server) Mount(method, path string, h http.Handler) {
	s.engine.Handle(method, path, func(c *gin.Context) {
		for _, p := range c.Params {
			c.Request.SetPathValue(p.Key, p.Value)
		}
		h.ServeHTTP(c.Writer, c.Request)
	})
}

func (s *Server) listDeliveries(c *gin.Context) {
	limit, ok := intQuery(c, "limit", 100, 1, store.MaxDeliveries)
	if !ok {
		return
	}
	ds, err := s.store.ListDeliveries(c.Request.Context(), limit)
	if err != nil {
		storeError(c, err)
		return
	}
	if ds == nil {
		ds = []store.Delivery{}
	}
	c.JSON(http.StatusOK, DeliveryList{Deliveries: ds})
}

func (s *Server) recoverJSON(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logger.Error("handler panic", "path", c.FullPath(), "panic", fmt.Sprint(r))
			abort(c, http.StatusInternalServerError, "internal error", nil)
		}
	}()
	c.Next()
}

func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.cfg.Logger.Debug("request", "method", c.Request.Method, "path", c.FullPath(), "status", c.Writer.Status(), "duration_ms", time.Since(start).Milliseconds())
}

func (s *Server) auth(c *gin.Context) {
	if s.cfg.Token == "" {
		return
	}
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="caesium"`)
		abort(c, http.StatusUnauthorized, "missing or invalid bearer token", nil)
	}
}

// ready answers 200 when the database answers. With ?role=leader it also
// requires this agent to lead, so a load balancer can send webhooks to the
// agent that syncs.
func (s *Server) ready(c *gin.Context) {
	if err := s.store.Ping(c.Request.Context()); err != nil {
		abort(c, http.StatusServiceUnavailable, "database unavailable", nil)
		return
	}
	if c.Query("role") == "leader" && (s.cfg.Sources == nil || !s.cfg.Sources.IsLeader()) {
		abort(c, http.StatusServiceUnavailable, "this agent is not the leader", nil)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func abort(c *gin.Context, status int, msg string, details any) {
	c.AbortWithStatusJSON(status, ErrorResponse{Error: msg, Details: details})
}

// storeError maps a store error to a status and answers with it.
func storeError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		abort(c, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		abort(c, http.StatusConflict, err.Error(), nil)
	case errors.Is(err, store.ErrUnavailable):
		abort(c, http.StatusServiceUnavailable, err.Error(), nil)
	case errors.Is(err, context.Canceled):
		abort(c, 499, "request cancelled", nil)
	default:
		abort(c, http.StatusInternalServerError, err.Error(), nil)
	}
}

// jobError answers a store error about one job; not found names the job
// rather than the store's operation.
func jobError(c *gin.Context, alias string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		abort(c, http.StatusNotFound, fmt.Sprintf("job %q not found", alias), nil)
		return
	}
	storeError(c, err)
}

// readRequest reads a JSON ApplyRequest, or a YAML stream with options in
// the query string.
func (s *Server) readRequest(c *gin.Context) (ApplyRequest, bool) {
	var req ApplyRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			abort(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes), nil)
		} else {
			abort(c, http.StatusBadRequest, "read body: "+err.Error(), nil)
		}
		return req, false
	}
	ct := c.ContentType()
	switch {
	case ct == "application/json":
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			abort(c, http.StatusBadRequest, "invalid JSON body: "+err.Error(), nil)
			return req, false
		}
		if _, err := dec.Token(); err != io.EOF {
			abort(c, http.StatusBadRequest, "invalid JSON body: data after the top-level object", nil)
			return req, false
		}
	case ct == "" || strings.Contains(ct, "yaml") || ct == "text/plain":
		req.Documents = []Document{{Name: "<request>", Content: string(body)}}
		q := c.Request.URL.Query()
		req.SourceID = q.Get("sourceId")
		for name, dst := range map[string]*bool{"force": &req.Force, "prune": &req.Prune, "allowEmpty": &req.AllowEmpty, "dryRun": &req.DryRun, "atomic": &req.Atomic} {
			if v := q.Get(name); v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					abort(c, http.StatusBadRequest, fmt.Sprintf("query parameter %s=%q is not a boolean", name, v), nil)
					return req, false
				}
				*dst = b
			}
		}
		if v := q.Get("maxDeletions"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				abort(c, http.StatusBadRequest, fmt.Sprintf("query parameter maxDeletions=%q is not a non-negative integer", v), nil)
				return req, false
			}
			req.MaxDeletions = n
		}
	default:
		abort(c, http.StatusUnsupportedMediaType, "send application/json or application/yaml", nil)
		return req, false
	}
	if req.SourceID == "" {
		req.SourceID = reconcile.ManualSource
	}
	if req.MaxDeletions < 0 {
		abort(c, http.StatusBadRequest, "maxDeletions must not be negative", nil)
		return req, false
	}
	return req, true
}

// parse decodes every document of the request and runs the checks that
// span them.
func (s *Server) parse(req ApplyRequest) ([]*schema.Document, []schema.Diagnostic) {
	var docs []*schema.Document
	var diags []schema.Diagnostic
	for _, d := range req.Documents {
		name := d.Name
		if name == "" {
			name = "<unnamed>"
		}
		fileDocs, fileDiags := schema.Parse(name, []byte(d.Content), s.cfg.Limits)
		diags = append(diags, fileDiags...)
		for _, doc := range fileDocs {
			diags = append(diags, doc.Diagnostics...)
		}
		docs = append(docs, fileDocs...)
	}
	diags = append(diags, schema.CheckSet(docs)...)
	schema.SortDiagnostics(diags)
	if diags == nil {
		diags = []schema.Diagnostic{}
	}
	return docs, diags
}

func (s *Server) lint(c *gin.Context) {
	req, ok := s.readRequest(c)
	if !ok {
		return
	}
	docs, diags := s.parse(req)
	c.JSON(http.StatusOK, LintResponse{Valid: !schema.HasErrors(diags), Files: len(req.Documents), Jobs: len(docs), Diagnostics: diags})
}

func (s *Server) diff(c *gin.Context) {
	req, ok := s.readRequest(c)
	if !ok {
		return
	}
	req.DryRun = true
	s.plan(c, req)
}

func (s *Server) apply(c *gin.Context) {
	req, ok := s.readRequest(c)
	if !ok {
		return
	}
	s.plan(c, req)
}

func (s *Server) plan(c *gin.Context, req ApplyRequest) {
	docs, diags := s.parse(req)
	if schema.HasErrors(diags) {
		abort(c, http.StatusUnprocessableEntity, fmt.Sprintf("%d invalid manifest(s); nothing was applied", schema.CountErrors(diags)), diags)
		return
	}
	desired := make([]reconcile.Desired, 0, len(docs))
	for _, d := range docs {
		des, err := reconcile.NewDesired(d.Job, store.Provenance{SourceID: req.SourceID, Path: d.File})
		if err != nil {
			abort(c, http.StatusInternalServerError, err.Error(), nil)
			return
		}
		desired = append(desired, des)
	}
	if !req.DryRun {
		s.applyMu.Lock()
		defer s.applyMu.Unlock()
	}
	actual, err := s.store.ListJobs(c.Request.Context(), store.ListOptions{})
	if err != nil {
		storeError(c, err)
		return
	}
	cs, err := reconcile.Plan(desired, actual, reconcile.Options{
		SourceID: req.SourceID, Force: req.Force, Prune: req.Prune, AllowEmpty: req.AllowEmpty, MaxDeletions: req.MaxDeletions,
	})
	if err != nil {
		abort(c, http.StatusBadRequest, err.Error(), nil)
		return
	}
	resp := ApplyResponse{DryRun: req.DryRun, Diagnostics: warnings(diags)}
	if req.DryRun {
		resp.Report = reconcile.Preview(cs)
	} else {
		rep, err := reconcile.Apply(c.Request.Context(), s.store, cs, reconcile.ApplyOptions{
			Atomic: req.Atomic, Actor: "api", Force: req.Force, Now: s.cfg.Now,
		})
		if err != nil {
			s.cfg.Logger.Warn("apply failed", "source_id", req.SourceID, "err", err)
			if rep == nil {
				storeError(c, err)
				return
			}
			if errors.Is(err, store.ErrUnavailable) {
				abort(c, http.StatusServiceUnavailable, err.Error(), ApplyResponse{Report: *rep})
				return
			}
		}
		resp.Report = *rep
	}
	if n := resp.Summary.Conflicts; n > 0 {
		abort(c, http.StatusConflict, conflictMessage(resp.Report), resp)
		return
	}
	c.JSON(http.StatusOK, resp)
}

func conflictMessage(r reconcile.Report) string {
	first := r.FirstConflict()
	switch {
	case first == "":
		return "conflict"
	case r.Summary.Conflicts == 1:
		return first
	}
	return fmt.Sprintf("%d conflicts; first: %s", r.Summary.Conflicts, first)
}

func warnings(diags []schema.Diagnostic) []schema.Diagnostic {
	var out []schema.Diagnostic
	for _, d := range diags {
		if d.Severity == schema.SeverityWarning {
			out = append(out, d)
		}
	}
	return out
}

func (s *Server) listJobs(c *gin.Context) {
	sel, err := ParseSelector(c.Query("selector"))
	if err != nil {
		abort(c, http.StatusBadRequest, err.Error(), nil)
		return
	}
	jobs, err := s.store.ListJobs(c.Request.Context(), store.ListOptions{SourceID: c.Query("source")})
	if err != nil {
		storeError(c, err)
		return
	}
	out := make([]store.Job, 0, len(jobs))
	for _, j := range jobs {
		if sel.Matches(j.Labels) {
			out = append(out, j)
		}
	}
	c.JSON(http.StatusOK, JobList{Jobs: out})
}

func (s *Server) getJob(c *gin.Context) {
	j, err := s.store.GetJob(c.Request.Context(), c.Param("alias"))
	if err != nil {
		jobError(c, c.Param("alias"), err)
		return
	}
	c.JSON(http.StatusOK, j)
}

// deleteJob soft-deletes one job. A job owned by a Git source would come
// back on the source's next sync, so deleting one needs force=true.
func (s *Server) deleteJob(c *gin.Context) {
	force := false
	if v := c.Query("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			abort(c, http.StatusBadRequest, fmt.Sprintf("query parameter force=%q is not a boolean", v), nil)
			return
		}
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	j, err := s.store.GetJob(c.Request.Context(), c.Param("alias"))
	if err != nil {
		jobError(c, c.Param("alias"), err)
		return
	}
	if owner := j.Provenance.SourceID; owner != reconcile.ManualSource && !force {
		abort(c, http.StatusConflict, fmt.Sprintf("job %q is owned by source %q and would be recreated by its next sync; remove its manifest instead, or delete with --force", j.Alias, owner), nil)
		return
	}
	cs := &reconcile.Changeset{SourceID: j.Provenance.SourceID, Changes: []reconcile.Change{{
		Action: reconcile.ActionDelete, Alias: j.Alias, Actual: &j, Reason: "deleted through the API",
	}}}
	rep, err := reconcile.Apply(c.Request.Context(), s.store, cs, reconcile.ApplyOptions{Actor: "api", Force: force, Now: s.cfg.Now})
	if err != nil {
		storeError(c, err)
		return
	}
	if rep.Summary.Deleted != 1 {
		abort(c, http.StatusConflict, rep.Outcomes[0].Error, nil)
		return
	}
	c.JSON(http.StatusOK, rep)
}

func (s *Server) gc(c *gin.Context) {
	older, err := time.ParseDuration(c.Query("olderThan"))
	if err != nil || older < 0 {
		abort(c, http.StatusBadRequest, "olderThan must be a duration such as 720h", nil)
		return
	}
	n, err := s.store.PurgeDeleted(c.Request.Context(), s.cfg.Now().Add(-older))
	if err != nil {
		storeError(c, err)
		return
	}
	c.JSON(http.StatusOK, GCResponse{Purged: n})
}

func (s *Server) listApplies(c *gin.Context) {
	limit, ok := intQuery(c, "limit", 50, 1, 1000)
	if !ok {
		return
	}
	recs, err := s.store.ListApplies(c.Request.Context(), c.Query("source"), limit)
	if err != nil {
		storeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ApplyHistory{Applies: recs})
}
