package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caesium-io/caesium/store"
)

// Store is what Apply needs from the store.
//
// ApplyChanges runs all given changes in one transaction, all or nothing;
// it returns an error wrapping store.ErrConflict when a row changed since it
// was planned and store.ErrUnavailable when the database cannot be reached.
// RecordApply appends to the apply history.
type Store interface {
	ApplyChanges(ctx context.Context, changes []store.Change) ([]store.Job, error)
	RecordApply(ctx context.Context, rec store.ApplyRecord) (int64, error)
}

// ApplyOptions steer how a changeset is written.
type ApplyOptions struct {
	// Atomic writes the whole changeset in one transaction: any failure
	// applies nothing. Otherwise each job is its own unit: one job's failure
	// leaves the others applied.
	Atomic bool
	// BatchSize is how many jobs share a transaction when not Atomic. A
	// batch that fails is retried job by job, so the outcome is that of one
	// transaction per job at a fraction of the commits. Default 500.
	BatchSize int
	// QuietRefusals leaves out of the history an apply that wrote nothing and
	// only refused again (conflicts, a refused prune): a source retrying the
	// same stuck revision must not grow the history on every retry.
	QuietRefusals bool
	// Progress, when set, is called after each batch with the number of
	// writing changes done so far and their total.
	Progress func(done, total int)
	// Actor and Revision go to the apply history.
	Actor    string
	Revision string
	Force    bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Outcome is what happened to one change.
type Outcome struct {
	Change
	Applied bool   `json:"applied"`
	Error   string `json:"error,omitempty"`
}

// Report is the result of applying a changeset.
type Report struct {
	SourceID     string    `json:"sourceId"`
	Outcomes     []Outcome `json:"changes"`
	PruneRefused string    `json:"pruneRefused,omitempty"`
	Summary      Summary   `json:"summary"`
	HistoryID    int64     `json:"historyId,omitempty"`
}

// Summary counts what was done; Failed counts changes that were planned but
// not written.
type Summary struct {
	Counts
	Failed int `json:"failed"`
}

// FirstConflict is the reason of the first conflict, or "".
func (r *Report) FirstConflict() string {
	for _, o := range r.Outcomes {
		if o.Action == ActionConflict {
			return o.Reason
		}
	}
	return ""
}

// Failed reports whether anything went wrong: a conflict, a failed write or
// a refused prune.
func (r *Report) Failed() bool {
	return r.Summary.Conflicts > 0 || r.Summary.Failed > 0 || r.PruneRefused != ""
}

// Apply writes a changeset and records it in the apply history. Unchanged
// jobs and conflicts cost no writes. It returns an error only when the store
// is unreachable or the history cannot be written; failures of single jobs
// are in the report.
func Apply(ctx context.Context, st Store, cs *Changeset, opts ApplyOptions) (*Report, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	started := now()
	rep := &Report{SourceID: cs.SourceID, PruneRefused: cs.PruneRefused}
	rep.Outcomes = make([]Outcome, len(cs.Changes))
	var pending []int // indexes of changes that write
	for i, ch := range cs.Changes {
		rep.Outcomes[i] = Outcome{Change: ch}
		if ch.Action == ActionCreate || ch.Action == ActionUpdate || ch.Action == ActionDelete {
			pending = append(pending, i)
		}
	}
	var fatal error
	if opts.Atomic {
		fatal = applyGroup(ctx, st, rep, pending, false)
	} else {
		for start := 0; start < len(pending) && fatal == nil; start += opts.BatchSize {
			end := min(start+opts.BatchSize, len(pending))
			fatal = applyGroup(ctx, st, rep, pending[start:end], true)
			if opts.Progress != nil {
				opts.Progress(end, len(pending))
			}
		}
	}
	if fatal != nil {
		// The batches after the one that hit the error were never tried;
		// each outcome still says why it was not applied.
		markFailed(rep, pending, fmt.Errorf("not attempted: %w", fatal))
	}
	rep.Summary = summarize(rep.Outcomes)
	rec := store.ApplyRecord{
		SourceID: cs.SourceID, Revision: opts.Revision, Actor: opts.Actor, Force: opts.Force, Atomic: opts.Atomic,
		Created: rep.Summary.Created, Updated: rep.Summary.Updated, Deleted: rep.Summary.Deleted,
		Unchanged: rep.Summary.Unchanged, Conflicts: rep.Summary.Conflicts, Failed: rep.Summary.Failed,
		PruneRefused: cs.PruneRefused, StartedAt: started, FinishedAt: now(),
	}
	for _, o := range rep.Outcomes {
		if o.Applied && o.Transfer != nil {
			rec.Transfers = append(rec.Transfers, store.OwnershipTransfer{Alias: o.Alias, From: o.Transfer.From, To: o.Transfer.To})
		}
	}
	if fatal != nil {
		rec.Error = fatal.Error()
	}
	if !rep.wroteOrFailed() && fatal == nil {
		return rep, nil // a no-op writes nothing, not even history
	}
	if s := rep.Summary; opts.QuietRefusals && fatal == nil && s.Created+s.Updated+s.Deleted+s.Failed == 0 {
		return rep, nil
	}
	// The history must be written even when the apply was cancelled.
	id, err := st.RecordApply(context.WithoutCancel(ctx), rec)
	if err != nil {
		return rep, errors.Join(fatal, fmt.Errorf("record apply: %w", err))
	}
	rep.HistoryID = id
	return rep, fatal
}

func (r *Report) wroteOrFailed() bool {
	s := r.Summary
	return s.Created+s.Updated+s.Deleted+s.Conflicts+s.Failed > 0 || r.PruneRefused != ""
}

// applyGroup writes the changes at idx in one transaction. With isolate, a
// failed group is retried one change per transaction, so one bad job cannot
// hold back the others. An unreachable store stops everything.
func applyGroup(ctx context.Context, st Store, rep *Report, idx []int, isolate bool) error {
	if len(idx) == 0 {
		return nil
	}
	changes := make([]store.Change, len(idx))
	for k, i := range idx {
		changes[k] = toStoreChange(rep.Outcomes[i].Change)
	}
	_, err := st.ApplyChanges(ctx, changes)
	if err == nil {
		for _, i := range idx {
			rep.Outcomes[i].Applied = true
		}
		return nil
	}
	// An unreachable store, or a lease lost to another agent, fails every
	// job alike: retrying them one by one would only repeat the error.
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotLeader) || ctx.Err() != nil {
		markFailed(rep, idx, err)
		return err
	}
	if !isolate || len(idx) == 1 {
		markFailed(rep, idx, err)
		return nil
	}
	for _, i := range idx {
		if err := applyGroup(ctx, st, rep, []int{i}, false); err != nil {
			return err
		}
	}
	return nil
}

// markFailed sets the error of the changes at idx that have neither been
// applied nor failed already.
func markFailed(rep *Report, idx []int, err error) {
	for _, i := range idx {
		if !rep.Outcomes[i].Applied && rep.Outcomes[i].Error == "" {
			rep.Outcomes[i].Error = err.Error()
		}
	}
}

func toStoreChange(ch Change) store.Change {
	sc := store.Change{Alias: ch.Alias}
	switch ch.Action {
	case ActionCreate:
		sc.Op = store.OpCreate
	case ActionUpdate:
		sc.Op = store.OpUpdate
	case ActionDelete:
		sc.Op = store.OpDelete
	}
	if ch.Desired != nil {
		sc.Job = ch.Desired.Job
		sc.Hash = ch.Desired.Hash
		sc.Provenance = ch.Desired.Provenance
	}
	if ch.Actual != nil {
		sc.ID = ch.Actual.ID
		sc.Version = ch.Actual.Version
	}
	return sc
}

func summarize(outcomes []Outcome) Summary {
	var s Summary
	for _, o := range outcomes {
		switch {
		case o.Action == ActionUnchanged:
			s.Unchanged++
		case o.Action == ActionConflict:
			s.Conflicts++
		case !o.Applied:
			s.Failed++
		case o.Action == ActionCreate:
			s.Created++
		case o.Action == ActionUpdate:
			s.Updated++
		case o.Action == ActionDelete:
			s.Deleted++
		}
	}
	return s
}

// Preview renders a changeset as the report a dry run shows: every change
// with Applied false.
func Preview(cs *Changeset) Report {
	rep := Report{SourceID: cs.SourceID, PruneRefused: cs.PruneRefused, Outcomes: make([]Outcome, len(cs.Changes))}
	for i, ch := range cs.Changes {
		rep.Outcomes[i] = Outcome{Change: ch}
	}
	c := cs.Counts()
	rep.Summary = Summary{Counts: c}
	return rep
}
