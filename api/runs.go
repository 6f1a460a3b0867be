package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/caesium-io/caesium/store"
)

// RunList is the answer of GET /v1/runs and GET /v1/jobs/{alias}/runs.
type RunList struct {
	Runs []store.Run `json:"runs"`
}

// StartRunRequest is the optional JSON body of POST /v1/jobs/{alias}/runs.
type StartRunRequest struct {
	// Actor says who started the run, for the run history; default "api".
	Actor string `json:"actor,omitempty"`
}

// maxActor bounds the free-text actor of a manual run.
const maxActor = 200

// maxStartRunBody bounds the body of POST /v1/jobs/{alias}/runs, which only
// ever holds an actor.
const maxStartRunBody = 64 << 10

// startRun queues a manual run of a live job at its current version. The
// job's concurrency decides: 202 with the queued run, or 409 with the run,
// recorded as skipped or failed, in the error's details when maxRuns are
// already in flight.
func (s *Server) startRun(c *gin.Context) {
	alias := c.Param("alias")
	req, ok := readStartRun(c)
	if !ok {
		return
	}
	if req.Actor == "" {
		req.Actor = "api"
	}
	if len(req.Actor) > maxActor {
		abort(c, http.StatusBadRequest, fmt.Sprintf("actor is longer than %d bytes", maxActor), nil)
		return
	}
	run, err := s.store.CreateRun(c.Request.Context(), store.NewRun{JobAlias: alias, Trigger: "manual", Actor: req.Actor})
	if err != nil {
		jobError(c, alias, err)
		return
	}
	if run.Status != store.RunQueued {
		// Recorded in the history, but not queued: an error answer like
		// every other 409, with the run in the details.
		why := run.Error
		if why == "" {
			why = "not queued"
		}
		abort(c, http.StatusConflict, fmt.Sprintf("run %d of job %q %s: %s", run.ID, run.JobAlias, run.Status, why), run)
		return
	}
	if s.cfg.RunQueued != nil {
		s.cfg.RunQueued()
	}
	c.JSON(http.StatusAccepted, run)
}

// readStartRun reads the optional JSON body of a start-run request. An
// empty body (or none) takes the defaults; unknown fields are refused, so a
// misspelt "actor" is not silently dropped.
func readStartRun(c *gin.Context) (StartRunRequest, bool) {
	var req StartRunRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxStartRunBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			abort(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxStartRunBody), nil)
		} else {
			abort(c, http.StatusBadRequest, "read body: "+err.Error(), nil)
		}
		return req, false
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err := dec.Decode(&req)
		if err == nil {
			if _, tail := dec.Token(); tail != io.EOF {
				err = errors.New("data after the top-level object")
			}
		}
		if err != nil {
			abort(c, http.StatusBadRequest, "body must be a JSON object such as {\"actor\": \"alice\"}: "+err.Error(), nil)
			return req, false
		}
	}
	return req, true
}

// listRuns answers runs newest first: ?job=ALIAS, ?status=S, ?limit=N
// (1..1000, default 50), ?before=ID for the next page.
func (s *Server) listRuns(c *gin.Context) {
	f := store.RunFilter{JobAlias: c.Param("alias"), Status: store.RunStatus(c.Query("status"))}
	if f.JobAlias == "" {
		f.JobAlias = c.Query("job")
	}
	if f.Status != "" && !f.Status.Valid() {
		abort(c, http.StatusBadRequest, fmt.Sprintf("status %q is not one of queued, running, succeeded, failed, cancelled, skipped", f.Status), nil)
		return
	}
	var ok bool
	if f.Limit, ok = intQuery(c, "limit", 50, 1, 1000); !ok {
		return
	}
	if v := c.Query("before"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			abort(c, http.StatusBadRequest, fmt.Sprintf("before=%q is not a run id (a positive integer)", v), nil)
			return
		}
		f.BeforeID = id
	}
	runs, err := s.store.ListRuns(c.Request.Context(), f)
	if err != nil {
		storeError(c, err)
		return
	}
	if runs == nil {
		runs = []store.Run{}
	}
	c.JSON(http.StatusOK, RunList{Runs: runs})
}

func (s *Server) getRun(c *gin.Context) {
	id, ok := runID(c)
	if !ok {
		return
	}
	run, err := s.store.GetRun(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		abort(c, http.StatusNotFound, fmt.Sprintf("run %d not found", id), nil)
		return
	}
	if err != nil {
		storeError(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

// cancelRun cancels a queued run at once and asks the agent running a
// running one to stop it (202); a finished run answers 409.
func (s *Server) cancelRun(c *gin.Context) {
	id, ok := runID(c)
	if !ok {
		return
	}
	run, err := s.store.RequestCancel(c.Request.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		abort(c, http.StatusNotFound, fmt.Sprintf("run %d not found", id), nil)
		return
	case errors.Is(err, store.ErrConflict):
		abort(c, http.StatusConflict, fmt.Sprintf("run %d has already finished", id), nil)
		return
	case err != nil:
		storeError(c, err)
		return
	}
	if s.cfg.RunQueued != nil {
		s.cfg.RunQueued() // the runner checks cancel requests when it wakes
	}
	c.JSON(http.StatusAccepted, run)
}

func runID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		abort(c, http.StatusBadRequest, fmt.Sprintf("run id %q is not a positive integer", c.Param("id")), nil)
		return 0, false
	}
	return id, true
}

// intQuery reads an optional integer query parameter within [lo, hi].
func intQuery(c *gin.Context, name string, def, lo, hi int) (int, bool) {
	v := c.Query(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		abort(c, http.StatusBadRequest, fmt.Sprintf("%s must be between %d and %d", name, lo, hi), nil)
		return 0, false
	}
	return n, true
}
