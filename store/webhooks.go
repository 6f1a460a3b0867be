package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Delivery is one webhook request as the agent handled it.
type Delivery struct {
	ID             int64     `json:"id"`
	Provider       string    `json:"provider"`
	Event          string    `json:"event,omitempty"`
	DeliveryID     string    `json:"deliveryId,omitempty"`
	Repository     string    `json:"repository,omitempty"`
	Ref            string    `json:"ref,omitempty"`
	After          string    `json:"after,omitempty"`
	Result         string    `json:"result"` // queued, ignored, duplicate, ...
	Reason         string    `json:"reason,omitempty"`
	MatchedSources []string  `json:"matchedSources"`
	Status         int       `json:"status"`
	DurationUS     int64     `json:"durationUs"`
	ReceivedAt     time.Time `json:"receivedAt"`
}

// MaxDeliveries is how many deliveries the store keeps; older ones are
// dropped as new ones arrive.
const MaxDeliveries = 1000

type deliveryRow struct {
	bun.BaseModel `bun:"table:webhook_deliveries,alias:d"`

	ID             int64     `bun:"id,pk,autoincrement,type:bigint"`
	Provider       string    `bun:"provider,type:text"`
	Event          string    `bun:"event,type:text"`
	DeliveryID     string    `bun:"delivery_id,type:text"`
	Repository     string    `bun:"repository,type:text"`
	Ref            string    `bun:"ref,type:text"`
	After          string    `bun:"after,type:text"`
	Result         string    `bun:"result,type:text"`
	Reason         string    `bun:"reason,type:text"`
	MatchedSources jsonText  `bun:"matched_sources,type:jsonb"`
	Status         int       `bun:"status,type:integer"`
	DurationUS     int64     `bun:"duration_us,type:bigint"`
	ReceivedAt     time.Time `bun:"received_at,type:timestamptz"`
}

type replayRow struct {
	bun.BaseModel `bun:"table:webhook_replays,alias:r"`

	Key    string    `bun:"key,pk,type:text"`
	SeenAt time.Time `bun:"seen_at,type:timestamptz"`
}

// RecordDelivery stores a delivery and drops those beyond MaxDeliveries.
// Errors: ErrUnavailable.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) (int64, error) {
	const op = "record delivery"
	if err := s.check(); err != nil {
		return 0, s.wrap(op, err)
	}
	matched := d.MatchedSources
	if matched == nil {
		matched = []string{}
	}
	m, err := json.Marshal(matched)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	row := deliveryRow{
		Provider: d.Provider, Event: d.Event, DeliveryID: d.DeliveryID, Repository: d.Repository, Ref: d.Ref, After: d.After,
		Result: d.Result, Reason: d.Reason, MatchedSources: m, Status: d.Status, DurationUS: d.DurationUS, ReceivedAt: dbTime(d.ReceivedAt),
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewDelete().Model((*deliveryRow)(nil)).Where("id <= ?", row.ID-MaxDeliveries).Exec(ctx)
		return err
	})
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return row.ID, nil
}

// ListDeliveries returns up to limit deliveries, newest first (limit <= 0:
// all kept). Errors: ErrUnavailable.
func (s *Store) ListDeliveries(ctx context.Context, limit int) ([]Delivery, error) {
	const op = "list deliveries"
	if err := s.check(); err != nil {
		return nil, s.wrap(op, err)
	}
	var rows []deliveryRow
	q := s.rdb.NewSelect().Model(&rows).OrderExpr("d.id DESC")
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, s.wrap(op, err)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = Delivery{
			ID: r.ID, Provider: r.Provider, Event: r.Event, DeliveryID: r.DeliveryID, Repository: r.Repository, Ref: r.Ref, After: r.After,
			Result: r.Result, Reason: r.Reason, Status: r.Status, DurationUS: r.DurationUS, ReceivedAt: r.ReceivedAt.UTC(),
		}
		if err := json.Unmarshal(r.MatchedSources, &out[i].MatchedSources); err != nil {
			return nil, fmt.Errorf("%s: delivery %d: %w", op, r.ID, err)
		}
	}
	return out, nil
}

// SeenReplay records the replay keys of a delivery (its delivery id and its
// signature+body hash) and reports whether any of them was recorded within
// window before now: a replay. It is atomic across agents sharing the
// database. Keys older than the window are purged along the way, within
// the namespaces of keys only (the text before a key's first colon, such as
// "sig" or "trigger"): callers with different windows share the ledger
// without purging each other's live keys. Errors: ErrUnavailable.
func (s *Store) SeenReplay(ctx context.Context, keys []string, window time.Duration) (bool, error) {
	const op = "check replay"
	if err := s.check(); err != nil {
		return false, s.wrap(op, err)
	}
	now := s.timestamp()
	cutoff := now.Add(-window)
	seen := false
	var spaces []string
	for _, k := range keys {
		if ns, _, ok := strings.Cut(k, ":"); ok && !slices.Contains(spaces, ns) {
			spaces = append(spaces, ns)
		}
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, ns := range spaces {
			prefix := ns + ":"
			if _, err := tx.NewDelete().Model((*replayRow)(nil)).Where("seen_at < ?", cutoff).
				Where("substr(key, 1, ?) = ?", len(prefix), prefix).Exec(ctx); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if k == "" {
				continue
			}
			res, err := tx.NewInsert().Model(&replayRow{Key: k, SeenAt: now}).On("CONFLICT (key) DO NOTHING").Exec(ctx)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				seen = true
			}
		}
		return nil
	})
	if err != nil {
		return false, s.wrap(op, err)
	}
	return seen, nil
}

// ForgetReplay removes replay keys recorded by SeenReplay, for a request
// that was accepted as new but then failed before it took effect: its
// sender's retry must not be answered as a replay. Errors: ErrUnavailable.
func (s *Store) ForgetReplay(ctx context.Context, keys []string) error {
	const op = "forget replay keys"
	if err := s.check(); err != nil {
		return s.wrap(op, err)
	}
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.db.NewDelete().Model((*replayRow)(nil)).Where("key IN (?)", bun.In(keys)).Exec(ctx); err != nil {
		return s.wrap(op, err)
	}
	return nil
}
