package api

import (
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// Document is one manifest file sent to the API.
type Document struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ApplyRequest is the JSON body of /v1/jobdefs/lint, /diff and /apply. The
// same options may be given as query parameters with a YAML body.
type ApplyRequest struct {
	Documents    []Document `json:"documents"`
	SourceID     string     `json:"sourceId,omitempty"`
	Force        bool       `json:"force,omitempty"`
	Prune        bool       `json:"prune,omitempty"`
	AllowEmpty   bool       `json:"allowEmpty,omitempty"`
	MaxDeletions int        `json:"maxDeletions,omitempty"`
	DryRun       bool       `json:"dryRun,omitempty"`
	Atomic       bool       `json:"atomic,omitempty"`
}

// LintResponse is the answer of /v1/jobdefs/lint.
type LintResponse struct {
	Valid       bool                `json:"valid"`
	Files       int                 `json:"files"`
	Jobs        int                 `json:"jobs"`
	Diagnostics []schema.Diagnostic `json:"diagnostics"`
}

// ApplyResponse is the answer of /v1/jobdefs/diff and /apply: every job's
// planned action, its field diff, and (unless a dry run) whether it was
// written.
type ApplyResponse struct {
	DryRun      bool                `json:"dryRun"`
	Diagnostics []schema.Diagnostic `json:"diagnostics,omitempty"`
	reconcile.Report
}

// ErrorResponse is the body of every error: a message and, where useful,
// structured details (diagnostics, the apply report).
type ErrorResponse struct {
	Error   string `json:"error"`
	Details any    `json:"details,omitempty"`
}

// JobList is the answer of GET /v1/jobs.
type JobList struct {
	Jobs []store.Job `json:"jobs"`
}

// GCResponse is the answer of POST /v1/jobs/gc.
type GCResponse struct {
	Purged int `json:"purged"`
}

// ApplyHistory is the answer of GET /v1/applies.
type ApplyHistory struct {
	Applies []store.ApplyRecord `json:"applies"`
}

// DeliveryList is the answer of GET /v1/webhooks/deliveries.
type DeliveryList struct {
	Deliveries []store.Delivery `json:"deliveries"`
}
