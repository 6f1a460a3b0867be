package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ApplyRecord is one apply (manual or from a source), kept as history.
type ApplyRecord struct {
	ID       int64  `json:"id"`
	SourceID string `json:"sourceId,omitempty"`
	Revision string `json:"revision,omitempty"` // the commit applied, or ""
	Actor    string `json:"actor"`              // "manual", "agent", …

	DryRun bool `json:"dryRun"`
	Force  bool `json:"force"`
	Atomic bool `json:"atomic"`

	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
	Conflicts int `json:"conflicts"`
	Failed    int `json:"failed"`

	PruneRefused string              `json:"pruneRefused,omitempty"` // why a prune was refused, "" otherwise
	Transfers    []OwnershipTransfer `json:"transfers,omitempty"`    // aliases moved between sources (forced)
	Error        string              `json:"error,omitempty"`

	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// OwnershipTransfer is a job moved from one source to another.
type OwnershipTransfer struct {
	Alias string `json:"alias"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// RecordApply stores rec (its ID is ignored) and returns the new record's ID.
// Times are kept at microsecond precision, in UTC. Errors: ErrUnavailable.
func (s *Store) RecordApply(ctx context.Context, rec ApplyRecord) (int64, error) {
	if err := s.check(); err != nil {
		return 0, s.wrap("record apply", err)
	}
	transfers, err := marshalJSON(rec.Transfers, len(rec.Transfers), "[]")
	if err != nil {
		return 0, fmt.Errorf("record apply: %w", err)
	}
	row := applyRow{
		SourceID:     rec.SourceID,
		Revision:     rec.Revision,
		Actor:        rec.Actor,
		DryRun:       rec.DryRun,
		Force:        rec.Force,
		Atomic:       rec.Atomic,
		Created:      rec.Created,
		Updated:      rec.Updated,
		Deleted:      rec.Deleted,
		Unchanged:    rec.Unchanged,
		Conflicts:    rec.Conflicts,
		Failed:       rec.Failed,
		PruneRefused: rec.PruneRefused,
		Transfers:    transfers,
		Error:        rec.Error,
		StartedAt:    dbTime(rec.StartedAt),
		FinishedAt:   dbTime(rec.FinishedAt),
	}
	if _, err := s.db.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
		return 0, s.wrap("record apply", err)
	}
	return row.ID, nil
}

// ListApplies returns up to limit records, newest (by StartedAt) first, of
// one source or of all when sourceID is "". limit <= 0 means no limit.
// Errors: ErrUnavailable.
func (s *Store) ListApplies(ctx context.Context, sourceID string, limit int) ([]ApplyRecord, error) {
	if err := s.check(); err != nil {
		return nil, s.wrap("list applies", err)
	}
	var rows []applyRow
	q := s.rdb.NewSelect().Model(&rows).OrderExpr("a.id DESC") // insertion order: agents' clocks may disagree
	if sourceID != "" {
		q = q.Where("a.source_id = ?", sourceID)
	}
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, s.wrap("list applies", err)
	}
	out := make([]ApplyRecord, len(rows))
	for i, r := range rows {
		out[i] = ApplyRecord{
			ID:           r.ID,
			SourceID:     r.SourceID,
			Revision:     r.Revision,
			Actor:        r.Actor,
			DryRun:       r.DryRun,
			Force:        r.Force,
			Atomic:       r.Atomic,
			Created:      r.Created,
			Updated:      r.Updated,
			Deleted:      r.Deleted,
			Unchanged:    r.Unchanged,
			Conflicts:    r.Conflicts,
			Failed:       r.Failed,
			PruneRefused: r.PruneRefused,
			Error:        r.Error,
			StartedAt:    r.StartedAt.UTC(),
			FinishedAt:   r.FinishedAt.UTC(),
		}
		if len(r.Transfers) > 0 {
			if err := json.Unmarshal(r.Transfers, &out[i].Transfers); err != nil {
				return nil, fmt.Errorf("list applies: record %d transfers: %w", r.ID, err)
			}
			if len(out[i].Transfers) == 0 {
				out[i].Transfers = nil
			}
		}
	}
	return out, nil
}

// dbTime is t as both databases keep it: UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
