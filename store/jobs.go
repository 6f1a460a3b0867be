package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caesium-io/caesium/schema"
)

// Provenance says where a job's manifest came from.
type Provenance struct {
	SourceID string `json:"sourceId"`
	Repo     string `json:"repo,omitempty"`
	Ref      string `json:"ref,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Path     string `json:"path,omitempty"`
}

// Job is one live (or soft-deleted) job.
type Job struct {
	ID          int64             `json:"id"`
	Alias       string            `json:"alias"`
	Version     int64             `json:"version"` // 1 on create; +1 whenever Hash changes (runs pin ID+Version)
	Hash        string            `json:"hash"`
	Spec        json.RawMessage   `json:"spec"` // canonical JSON of the normalized schema.Job
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Provenance  Provenance        `json:"provenance"`
	CreatedAt   time.Time         `json:"createdAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	DeletedAt   *time.Time        `json:"deletedAt,omitempty"`
}

// Decode unmarshals Spec into the normalized job it was stored from.
func (j Job) Decode() (*schema.Job, error) {
	if len(j.Spec) == 0 {
		return nil, fmt.Errorf("decode job %s: no spec loaded", j.Alias)
	}
	var out schema.Job
	if err := json.Unmarshal(j.Spec, &out); err != nil {
		return nil, fmt.Errorf("decode job %s version %d: %w", j.Alias, j.Version, err)
	}
	return &out, nil
}

// ListOptions filters ListJobs.
type ListOptions struct {
	SourceID       string // only jobs whose provenance is this source; "" = all sources
	IncludeDeleted bool   // soft-deleted jobs too
	// OmitSpec leaves Job.Spec empty: the planner compares hashes and
	// provenance, and a spec is most of a row's bytes.
	OmitSpec bool
}

// ListJobs returns the jobs ordered by alias, then id (a soft-deleted alias
// may have several rows). Errors: ErrUnavailable.
func (s *Store) ListJobs(ctx context.Context, opts ListOptions) ([]Job, error) {
	if err := s.check(); err != nil {
		return nil, s.wrap("list jobs", err)
	}
	var rows []jobRow
	q := s.rdb.NewSelect().Model(&rows).OrderExpr("j.alias, j.id")
	if opts.OmitSpec {
		q = q.ExcludeColumn("spec")
	}
	if opts.SourceID != "" {
		q = q.Where("j.provenance_source_id = ?", opts.SourceID)
	}
	if !opts.IncludeDeleted {
		q = q.Where("j.deleted_at IS NULL")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, s.wrap("list jobs", err)
	}
	out := make([]Job, len(rows))
	for i := range rows {
		j, err := rows[i].job()
		if err != nil {
			return nil, s.wrap("list jobs", err)
		}
		out[i] = j
	}
	return out, nil
}

// GetJob returns the live job with that alias. Errors: ErrNotFound, ErrUnavailable.
func (s *Store) GetJob(ctx context.Context, alias string) (Job, error) {
	op := "get job " + alias
	if err := s.check(); err != nil {
		return Job{}, s.wrap(op, err)
	}
	var row jobRow
	err := s.rdb.NewSelect().Model(&row).
		Where("j.alias = ?", alias).
		Where("j.deleted_at IS NULL").
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	j, err := row.job()
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	return j, nil
}

// GetJobVersion returns the job as it was at that version: the spec a run
// pinned. It works after later updates and after a soft delete; Spec, Hash,
// Version and Provenance.Commit are the version's, the rest is the job's
// current row (Labels and Annotations come from the version's spec). Errors:
// ErrNotFound (no such job or version, or the job was purged), ErrUnavailable.
func (s *Store) GetJobVersion(ctx context.Context, id, version int64) (Job, error) {
	op := fmt.Sprintf("get job %d version %d", id, version)
	if err := s.check(); err != nil {
		return Job{}, s.wrap(op, err)
	}
	var row jobRow
	err := s.rdb.NewSelect().Model(&row).ExcludeColumn("spec").Where("j.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	var v jobVersionRow
	err = s.rdb.NewSelect().Model(&v).Where("v.job_id = ?", id).Where("v.version = ?", version).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	j, err := row.job()
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	j.Version, j.Hash, j.Spec = v.Version, v.SpecHash, json.RawMessage(v.Spec)
	j.Provenance.Commit = v.ProvenanceCommit
	var spec struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(v.Spec, &spec); err != nil {
		return Job{}, s.wrap(op, fmt.Errorf("decode spec: %w", err))
	}
	j.Labels, j.Annotations = nilIfEmpty(spec.Metadata.Labels), nilIfEmpty(spec.Metadata.Annotations)
	return j, nil
}

// job converts a row to the API type.
func (r *jobRow) job() (Job, error) {
	j := Job{
		ID:      r.ID,
		Alias:   r.Alias,
		Version: r.Version,
		Hash:    r.SpecHash,
		Spec:    json.RawMessage(r.Spec),
		Provenance: Provenance{
			SourceID: r.ProvenanceSourceID,
			Repo:     r.ProvenanceRepo,
			Ref:      r.ProvenanceRef,
			Commit:   r.ProvenanceCommit,
			Path:     r.ProvenancePath,
		},
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.DeletedAt != nil {
		t := r.DeletedAt.UTC()
		j.DeletedAt = &t
	}
	if err := unmarshalMap(r.Labels, &j.Labels); err != nil {
		return Job{}, fmt.Errorf("job %s labels: %w", r.Alias, err)
	}
	if err := unmarshalMap(r.Annotations, &j.Annotations); err != nil {
		return Job{}, fmt.Errorf("job %s annotations: %w", r.Alias, err)
	}
	return j, nil
}

// unmarshalMap reads a JSON object column; an empty object is a nil map.
func unmarshalMap(b []byte, m *map[string]string) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, m); err != nil {
		return err
	}
	*m = nilIfEmpty(*m)
	return nil
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
