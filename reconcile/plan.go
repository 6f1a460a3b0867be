package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// ManualSource owns jobs applied by hand without --source-id.
const ManualSource = "manual"

// Action is what a plan does with one job.
type Action string

// Actions.
const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	ActionDelete    Action = "delete"
	ActionConflict  Action = "conflict"
)

// Desired is one job as a manifest declares it.
type Desired struct {
	Job        *schema.Job // normalized
	Hash       string      // Job.Hash()
	Spec       []byte      // Job.CanonicalJSON()
	Provenance store.Provenance
}

// NewDesired builds a Desired from a normalized job.
func NewDesired(j *schema.Job, prov store.Provenance) (Desired, error) {
	spec, err := j.CanonicalJSON()
	if err != nil {
		return Desired{}, fmt.Errorf("encode %s: %w", j.Metadata.Alias, err)
	}
	return Desired{Job: j, Hash: schema.SpecHash(spec), Spec: spec, Provenance: prov}, nil
}

// Options steer a plan.
type Options struct {
	// SourceID is who applies: a source's id, or ManualSource.
	SourceID string
	// Force takes over jobs owned by another source (the transfer is
	// recorded) and lifts the maxDeletions guard. It never lifts AllowEmpty.
	Force bool
	// Prune deletes the source's jobs that the desired set no longer has.
	Prune bool
	// AllowEmpty permits a prune when the desired set is empty.
	AllowEmpty bool
	// MaxDeletions caps how many jobs one prune may delete. Zero means the
	// default: 10 jobs or 25% of the source's jobs, whichever is larger.
	MaxDeletions int
}

// Transfer is an ownership change forced onto a job.
type Transfer struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Change is the plan for one job.
type Change struct {
	Action   Action      `json:"action"`
	Alias    string      `json:"alias"`
	Diff     []FieldDiff `json:"diff,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	Transfer *Transfer   `json:"transfer,omitempty"`

	Desired *Desired   `json:"-"` // nil for delete
	Actual  *store.Job `json:"-"` // nil for create
}

// Changeset is a complete plan.
type Changeset struct {
	SourceID string   `json:"sourceId"`
	Changes  []Change `json:"changes"` // sorted by alias
	// PruneRefused says why a prune was refused; its deletions were left out
	// of Changes, while creates and updates stay.
	PruneRefused string `json:"pruneRefused,omitempty"`
	// PruneCandidates counts the jobs a refused prune would have deleted.
	PruneCandidates int `json:"pruneCandidates,omitempty"`
}

// Counts tallies a changeset by action.
type Counts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"`
	Conflicts int `json:"conflicts"`
}

// Counts tallies the planned changes.
func (c *Changeset) Counts() Counts {
	var n Counts
	for _, ch := range c.Changes {
		switch ch.Action {
		case ActionCreate:
			n.Created++
		case ActionUpdate:
			n.Updated++
		case ActionUnchanged:
			n.Unchanged++
		case ActionDelete:
			n.Deleted++
		case ActionConflict:
			n.Conflicts++
		}
	}
	return n
}

// HasChanges reports whether applying the plan would write anything.
func (c *Changeset) HasChanges() bool {
	n := c.Counts()
	return n.Created+n.Updated+n.Deleted > 0
}

// Plan compares desired jobs with the actual live jobs and classifies every
// job. It does no I/O. Desired aliases must be unique (schema.CheckSet).
//
// A job owned by another source is a conflict unless Force; a job whose hash
// and provenance (source, repository, ref, path) are unchanged is left
// alone, whatever commit it was last written at. Prune only ever deletes
// jobs of opts.SourceID, never one labelled caesium.io/prune: disabled, and
// is refused whole when a guard trips.
//
// Plan does not modify desired or actual. The changeset's Desired pointers
// refer to its own copies, which carry opts.SourceID as their source.
func Plan(desired []Desired, actual []store.Job, opts Options) (*Changeset, error) {
	if opts.SourceID == "" {
		opts.SourceID = ManualSource
	}
	cs := &Changeset{SourceID: opts.SourceID}
	// A copy, so that setting the source below does not write to the
	// caller's slice (which may be planned again for another source, or
	// concurrently) and the changeset cannot change under its owner.
	desired = slices.Clone(desired)
	live := make(map[string]*store.Job, len(actual))
	for i := range actual {
		if actual[i].DeletedAt == nil {
			live[actual[i].Alias] = &actual[i]
		}
	}
	want := make(map[string]bool, len(desired))
	for i := range desired {
		d := &desired[i]
		alias := d.Job.Metadata.Alias
		if want[alias] {
			return nil, fmt.Errorf("alias %q is declared twice in the desired set", alias)
		}
		want[alias] = true
		d.Provenance.SourceID = opts.SourceID
		ch, err := planOne(d, live[alias], opts)
		if err != nil {
			return nil, err
		}
		cs.Changes = append(cs.Changes, ch)
	}
	if opts.Prune {
		planPrune(cs, actual, want, opts)
	}
	slices.SortStableFunc(cs.Changes, func(a, b Change) int { return strings.Compare(a.Alias, b.Alias) })
	return cs, nil
}

func planOne(d *Desired, a *store.Job, opts Options) (Change, error) {
	alias := d.Job.Metadata.Alias
	if a == nil {
		return Change{Action: ActionCreate, Alias: alias, Desired: d}, nil
	}
	ch := Change{Alias: alias, Desired: d, Actual: a}
	owner := a.Provenance.SourceID
	if owner != opts.SourceID {
		if !opts.Force {
			ch.Action = ActionConflict
			ch.Reason = fmt.Sprintf("job %q is owned by source %q%s; apply with --force to take it over", alias, owner, describeOrigin(a.Provenance))
			return ch, nil
		}
		ch.Transfer = &Transfer{From: owner, To: opts.SourceID}
	}
	// The hash is the SHA-256 of the canonical spec: equal hashes are equal
	// specs, so only a changed job costs decoding two specs. Unchanged jobs
	// do not even need their stored spec (store.ListOptions.OmitSpec).
	var diff []FieldDiff
	if a.Hash != d.Hash {
		var err error
		if len(a.Spec) > 0 {
			if diff, err = DiffSpecs(a.Spec, d.Spec); err != nil {
				return Change{}, fmt.Errorf("diff %s: %w", alias, err)
			}
		}
		if len(diff) == 0 {
			// The stored spec was not loaded, or it is equal content under
			// an older hashing of the same spec: the hash says it changed.
			diff = append(diff, FieldDiff{Path: "hash", Old: raw(a.Hash), New: raw(d.Hash)})
		}
	}
	diff = append(diff, provenanceDiff(a.Provenance, d.Provenance)...)
	if len(diff) == 0 {
		ch.Action = ActionUnchanged
		return ch, nil
	}
	ch.Action = ActionUpdate
	ch.Diff = diff
	return ch, nil
}

// provenanceDiff compares where a job comes from. The commit is left out on
// purpose: a new commit that does not touch a job must not rewrite it.
func provenanceDiff(a, d store.Provenance) []FieldDiff {
	var out []FieldDiff
	add := func(field, o, n string) {
		if o != n {
			out = append(out, FieldDiff{Path: "provenance." + field, Old: raw(o), New: raw(n)})
		}
	}
	add("sourceId", a.SourceID, d.SourceID)
	add("repo", a.Repo, d.Repo)
	add("ref", a.Ref, d.Ref)
	add("path", a.Path, d.Path)
	return out
}

func describeOrigin(p store.Provenance) string {
	var parts []string
	if p.Repo != "" {
		parts = append(parts, p.Repo)
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func planPrune(cs *Changeset, actual []store.Job, want map[string]bool, opts Options) {
	// The size of the source, which the default limit is a quarter of, is
	// counted as this revision leaves it, the jobs to delete included: the
	// desired jobs it owns once applied plus its live jobs no longer
	// declared. Counting only the jobs it owns now would let the next plan,
	// after this revision's creates, pass a prune this one refuses.
	var size int
	for _, ch := range cs.Changes {
		if ch.Action != ActionConflict {
			size++
		}
	}
	var candidates []Change
	for i := range actual {
		a := &actual[i]
		if a.DeletedAt != nil || a.Provenance.SourceID != opts.SourceID || want[a.Alias] {
			continue
		}
		size++
		if a.Labels[schema.PruneLabel] == schema.PruneDisabled {
			cs.Changes = append(cs.Changes, Change{Action: ActionUnchanged, Alias: a.Alias, Actual: a,
				Reason: fmt.Sprintf("no longer declared, kept: labelled %s: %s", schema.PruneLabel, schema.PruneDisabled)})
			continue
		}
		candidates = append(candidates, Change{Action: ActionDelete, Alias: a.Alias, Actual: a,
			Reason: fmt.Sprintf("no longer declared by source %q", opts.SourceID)})
	}
	if len(candidates) == 0 {
		return
	}
	limit := opts.MaxDeletions
	if limit <= 0 {
		// Rounded down: deleting more than a quarter is refused.
		limit = max(10, size/4)
	}
	switch {
	case opts.SourceID == ManualSource:
		// Jobs applied by hand come from anyone's files, so no one apply
		// declares all of them: a manual prune would delete other people's
		// jobs.
		cs.PruneRefused = fmt.Sprintf("refusing to prune %d jobs applied by hand: prune deletes only jobs of a source (--source-id); delete hand-applied (%s) jobs by name", len(candidates), ManualSource)
	case len(want) == 0 && !opts.AllowEmpty:
		cs.PruneRefused = fmt.Sprintf("refusing to prune all %d jobs of source %q: the revision declares no jobs (an emptied directory or a wrong path?); set allowEmpty to permit it", len(candidates), opts.SourceID)
	case len(candidates) > limit && !opts.Force:
		cs.PruneRefused = fmt.Sprintf("refusing to prune %d of %d jobs of source %q: more than maxDeletions (%d); apply with --force if this is intended", len(candidates), size, opts.SourceID, limit)
	default:
		cs.Changes = append(cs.Changes, candidates...)
		return
	}
	cs.PruneCandidates = len(candidates)
}
