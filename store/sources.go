package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Source is a Git source of manifests and how far its sync has come.
type Source struct {
	ID                  string          `json:"id"`
	Repo                string          `json:"repo"`
	Ref                 string          `json:"ref,omitempty"`
	Path                string          `json:"path,omitempty"`
	LastAttemptedCommit string          `json:"lastAttemptedCommit,omitempty"`
	LastAppliedCommit   string          `json:"lastAppliedCommit,omitempty"`
	Status              json.RawMessage `json:"status,omitempty"` // the syncer's own JSON document
	UpdatedAt           time.Time       `json:"updatedAt"`
}

// UpsertSource creates the source or replaces every field of the one with its
// ID. UpdatedAt is set by the store. Errors: ErrUnavailable.
func (s *Store) UpsertSource(ctx context.Context, src Source) error {
	op := "upsert source " + src.ID
	if err := s.check(); err != nil {
		return s.wrap(op, err)
	}
	if src.ID == "" {
		return fmt.Errorf("%s: no id", op)
	}
	if len(src.Status) > 0 && !json.Valid(src.Status) {
		return fmt.Errorf("%s: status is not JSON", op)
	}
	row := sourceRow{
		ID:                  src.ID,
		Repo:                src.Repo,
		Ref:                 src.Ref,
		Path:                src.Path,
		LastAttemptedCommit: src.LastAttemptedCommit,
		LastAppliedCommit:   src.LastAppliedCommit,
		Status:              jsonText(src.Status),
		UpdatedAt:           s.timestamp(),
	}
	if len(row.Status) == 0 {
		row.Status = nil // NULL, not ''
	}
	_, err := s.db.NewInsert().Model(&row).
		On("CONFLICT (id) DO UPDATE").
		Set("repo = EXCLUDED.repo").
		Set("ref = EXCLUDED.ref").
		Set("path = EXCLUDED.path").
		Set("last_attempted_commit = EXCLUDED.last_attempted_commit").
		Set("last_applied_commit = EXCLUDED.last_applied_commit").
		Set("status = EXCLUDED.status").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// GetSource returns the source with that ID. Errors: ErrNotFound, ErrUnavailable.
func (s *Store) GetSource(ctx context.Context, id string) (Source, error) {
	op := "get source " + id
	if err := s.check(); err != nil {
		return Source{}, s.wrap(op, err)
	}
	var row sourceRow
	err := s.rdb.NewSelect().Model(&row).Where("s.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Source{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Source{}, s.wrap(op, err)
	}
	return row.source(), nil
}

// ListSources returns every source ordered by ID. Errors: ErrUnavailable.
func (s *Store) ListSources(ctx context.Context) ([]Source, error) {
	if err := s.check(); err != nil {
		return nil, s.wrap("list sources", err)
	}
	var rows []sourceRow
	if err := s.rdb.NewSelect().Model(&rows).OrderExpr("s.id").Scan(ctx); err != nil {
		return nil, s.wrap("list sources", err)
	}
	out := make([]Source, len(rows))
	for i := range rows {
		out[i] = rows[i].source()
	}
	return out, nil
}

func (r *sourceRow) source() Source {
	src := Source{
		ID:                  r.ID,
		Repo:                r.Repo,
		Ref:                 r.Ref,
		Path:                r.Path,
		LastAttemptedCommit: r.LastAttemptedCommit,
		LastAppliedCommit:   r.LastAppliedCommit,
		UpdatedAt:           r.UpdatedAt.UTC(),
	}
	if len(r.Status) > 0 && string(r.Status) != "null" {
		src.Status = json.RawMessage(r.Status)
	}
	return src
}
