package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/caesium-io/caesium/store"
)

// Errors a Sources implementation returns.
var (
	ErrUnknownSource = errors.New("no such source")
	ErrNotLeader     = errors.New("this agent is not the leader; the leading agent syncs sources")
)

// Sources is the agent's side of the source endpoints.
type Sources interface {
	// Sync queues a sync of the source now. It returns an error wrapping
	// ErrUnknownSource for an id that is not configured, and ErrNotLeader
	// when this agent does not reconcile.
	Sync(id string) error
	// SourceIDs lists the configured sources.
	SourceIDs() []string
	// IsLeader reports whether this agent holds the reconciler lease.
	IsLeader() bool
}

// SourceList is the answer of GET /v1/sources.
type SourceList struct {
	Sources []store.Source `json:"sources"`
}

// SyncResponse is the answer of POST /v1/sources/{id}/sync.
type SyncResponse struct {
	Source string `json:"source"`
	Queued bool   `json:"queued"`
}

// listSources answers every configured source, with its stored status when
// it has synced at least once, and sources that synced before but are no
// longer configured.
func (s *Server) listSources(c *gin.Context) {
	stored, err := s.store.ListSources(c.Request.Context())
	if err != nil {
		storeError(c, err)
		return
	}
	seen := map[string]bool{}
	out := make([]store.Source, 0, len(stored))
	for _, src := range stored {
		seen[src.ID] = true
		out = append(out, src)
	}
	if s.cfg.Sources != nil {
		for _, id := range s.cfg.Sources.SourceIDs() {
			if !seen[id] {
				out = append(out, store.Source{ID: id})
			}
		}
	}
	c.JSON(http.StatusOK, SourceList{Sources: out})
}

func (s *Server) getSource(c *gin.Context) {
	id := c.Param("id")
	src, err := s.store.GetSource(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) && s.configured(id) {
		c.JSON(http.StatusOK, store.Source{ID: id})
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		abort(c, http.StatusNotFound, "source "+quote(id)+" not found", nil)
		return
	}
	if err != nil {
		storeError(c, err)
		return
	}
	c.JSON(http.StatusOK, src)
}

func (s *Server) syncSource(c *gin.Context) {
	id := c.Param("id")
	if s.cfg.Sources == nil {
		abort(c, http.StatusNotFound, "source "+quote(id)+" not found", nil)
		return
	}
	err := s.cfg.Sources.Sync(id)
	switch {
	case errors.Is(err, ErrUnknownSource):
		abort(c, http.StatusNotFound, "source "+quote(id)+" not found", nil)
	case errors.Is(err, ErrNotLeader):
		abort(c, http.StatusServiceUnavailable, err.Error(), nil)
	case err != nil:
		abort(c, http.StatusInternalServerError, err.Error(), nil)
	default:
		c.JSON(http.StatusAccepted, SyncResponse{Source: id, Queued: true})
	}
}

func (s *Server) configured(id string) bool {
	if s.cfg.Sources == nil {
		return false
	}
	for _, known := range s.cfg.Sources.SourceIDs() {
		if known == id {
			return true
		}
	}
	return false
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
