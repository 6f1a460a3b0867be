package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/caesium-io/caesium/schema"
)

// Op is what a Change does to a job.
type Op string

// The operations of a Change.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Change is one step of a plan.
type Change struct {
	Op    Op
	Alias string
	// Job is the normalized spec (create, update).
	Job *schema.Job
	// Hash is Job.Hash() (create, update); a job whose hash is unchanged keeps
	// its version and its child rows.
	Hash string
	// Provenance is the new provenance (create, update). An update may change
	// only the provenance (an ownership transfer, a moved file): then the
	// version stays and no version row is written.
	Provenance Provenance
	// ID and Version are the row the plan saw (update, delete). A mismatch
	// fails the whole call with ErrConflict.
	ID      int64
	Version int64
}

// Rows per multi-row statement. Bun writes values into the SQL text rather
// than binding them, so PostgreSQL's 65535 and SQLite's 32766 bind-parameter
// limits do not apply; the sizes bound the statement (~1 MB of specs per jobs
// chunk) and amortize its round trip.
const (
	wideChunk   = 500  // rows carrying a spec: jobs, job_versions
	narrowChunk = 1000 // tasks, edges, callbacks, triggers, id lists
)

// ApplyChanges executes the changes in one transaction, all or nothing, and
// returns the affected jobs' new state in input order.
//
// Creates insert the job at version 1 with its version row and child rows
// (trigger, tasks, task edges, callbacks). Updates whose hash differs from the
// stored one bump the version, write a version row and replace the child
// rows; updates that change only the provenance rewrite the job row alone;
// updates that change nothing write nothing. Deletes are soft: deleted_at is
// set and the row, its versions and its child rows stay for run history.
//
// Every update and delete names the row (ID, Version) its plan saw; the rows
// are checked (and on PostgreSQL locked) before anything is written.
//
// Errors: ErrConflict, naming the alias, when a row changed since the plan
// read it or a create's alias is live (and not deleted in the same call);
// ErrUnavailable; ErrNotLeader when ctx carries a lease (WithLease) that no
// longer leads; others (an invalid change) wrapped with context. On error
// nothing was written.
func (s *Store) ApplyChanges(ctx context.Context, changes []Change) ([]Job, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	if err := s.check(); err != nil {
		return nil, s.wrap("apply changes", err)
	}
	ps, err := prepare(changes)
	if err != nil {
		return nil, fmt.Errorf("apply changes: %w", err)
	}
	now := s.timestamp()
	var out []Job
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		var err error
		out, err = s.applyTx(ctx, tx, ps, now)
		return err
	})
	if err != nil {
		return nil, s.wrap("apply changes", err)
	}
	return out, nil
}

// pending is a validated change with its rows marshalled, ready to write.
type pending struct {
	Change
	spec        jsonText
	labels      jsonText
	annotations jsonText
	trigger     triggerRow
	tasks       []taskRow
	edges       []schema.Edge
	callbacks   []callbackRow
}

// prepare validates the changes and marshals their rows, outside the transaction.
func prepare(changes []Change) ([]pending, error) {
	ps := make([]pending, len(changes))
	writers := make(map[string]Op, len(changes)) // alias -> create/update
	deletes := make(map[string]bool)
	ids := make(map[int64]bool)
	for i, c := range changes {
		p := &ps[i]
		p.Change = c
		if c.Alias == "" {
			return nil, fmt.Errorf("change %d: no alias", i)
		}
		switch c.Op {
		case OpCreate, OpUpdate:
			if _, dup := writers[c.Alias]; dup {
				return nil, fmt.Errorf("%s job %s: alias appears twice in one call", c.Op, c.Alias)
			}
			writers[c.Alias] = c.Op
			if err := p.marshal(); err != nil {
				return nil, fmt.Errorf("%s job %s: %w", c.Op, c.Alias, err)
			}
		case OpDelete:
			if deletes[c.Alias] {
				return nil, fmt.Errorf("delete job %s: alias appears twice in one call", c.Alias)
			}
			deletes[c.Alias] = true
		default:
			return nil, fmt.Errorf("job %s: unknown op %q", c.Alias, c.Op)
		}
		if c.Op == OpUpdate || c.Op == OpDelete {
			if c.ID <= 0 || c.Version <= 0 {
				return nil, fmt.Errorf("%s job %s: no id and version of the row the plan saw", c.Op, c.Alias)
			}
			if ids[c.ID] {
				return nil, fmt.Errorf("%s job %s: id %d appears twice in one call", c.Op, c.Alias, c.ID)
			}
			ids[c.ID] = true
		}
	}
	for alias, op := range writers {
		if op == OpUpdate && deletes[alias] {
			return nil, fmt.Errorf("job %s: updated and deleted in one call", alias)
		}
	}
	return ps, nil
}

// marshal checks a create or update and builds its rows (job ids left zero).
func (p *pending) marshal() error {
	j := p.Job
	if j == nil {
		return errors.New("no job spec")
	}
	if j.Metadata.Alias != p.Alias {
		return fmt.Errorf("spec alias is %q", j.Metadata.Alias)
	}
	spec, err := j.CanonicalJSON()
	if err != nil {
		return err
	}
	if hash := schema.SpecHash(spec); hash != p.Hash {
		return fmt.Errorf("hash %q is not the spec's hash %s", p.Hash, hash)
	}
	p.spec = spec
	if p.labels, err = marshalJSON(j.Metadata.Labels, len(j.Metadata.Labels), "{}"); err != nil {
		return err
	}
	if p.annotations, err = marshalJSON(j.Metadata.Annotations, len(j.Metadata.Annotations), "{}"); err != nil {
		return err
	}
	config, err := json.Marshal(j.Trigger.Configuration)
	if err != nil {
		return err
	}
	p.trigger = triggerRow{Type: j.Trigger.Type, Configuration: jsonText(config)}

	p.tasks = make([]taskRow, len(j.Steps))
	for i, st := range j.Steps {
		command, err := marshalJSON(st.Command, len(st.Command), "[]")
		if err != nil {
			return err
		}
		env, err := marshalJSON(st.Env, len(st.Env), "{}")
		if err != nil {
			return err
		}
		p.tasks[i] = taskRow{
			Name:         st.Name,
			Position:     i,
			Engine:       st.Engine,
			Image:        st.Image,
			Command:      command,
			Env:          env,
			Workdir:      st.Workdir,
			Retries:      st.Retries,
			RetryDelayMS: st.RetryDelay.D().Milliseconds(),
			TimeoutMS:    st.Timeout.D().Milliseconds(),
			TriggerRule:  st.TriggerRule,
		}
	}
	p.edges = j.Edges()
	for _, e := range p.edges {
		if !slices.ContainsFunc(j.Steps, func(s schema.Step) bool { return s.Name == e.From }) ||
			!slices.ContainsFunc(j.Steps, func(s schema.Step) bool { return s.Name == e.To }) {
			return fmt.Errorf("edge %s -> %s names a step that does not exist", e.From, e.To)
		}
	}

	p.callbacks = make([]callbackRow, len(j.Callbacks))
	for i, cb := range j.Callbacks {
		on, err := marshalJSON(cb.On, len(cb.On), "[]")
		if err != nil {
			return err
		}
		headers, err := marshalJSON(cb.Headers, len(cb.Headers), "{}")
		if err != nil {
			return err
		}
		p.callbacks[i] = callbackRow{Position: i, Type: cb.Type, URL: cb.URL, On: on, Headers: headers}
	}
	return nil
}

// marshalJSON marshals a map or slice, writing empty when it has no elements.
func marshalJSON(v any, n int, empty string) (jsonText, error) {
	if n == 0 {
		return jsonText(empty), nil
	}
	return json.Marshal(v)
}

// applyTx writes the changes inside tx.
func (s *Store) applyTx(ctx context.Context, tx bun.Tx, ps []pending, now time.Time) ([]Job, error) {
	out := make([]Job, len(ps))

	// 1. Check (and lock) the rows the plan saw.
	var ids []int64
	for _, p := range ps {
		if p.Op != OpCreate {
			ids = append(ids, p.ID)
		}
	}
	current := make(map[int64]*jobRow, len(ids))
	for chunk := range slices.Chunk(ids, narrowChunk) {
		var rows []jobRow
		q := tx.NewSelect().Model(&rows).Where("j.id IN (?)", bun.In(chunk))
		if s.dialect == dialectPostgres {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return nil, fmt.Errorf("read jobs: %w", err)
		}
		for i := range rows {
			current[rows[i].ID] = &rows[i]
		}
	}
	deleting := make(map[string]bool)
	for _, p := range ps {
		if p.Op == OpCreate {
			continue
		}
		row := current[p.ID]
		switch {
		case row == nil:
			return nil, fmt.Errorf("%s job %s: %w: job %d no longer exists", p.Op, p.Alias, ErrConflict, p.ID)
		case row.Alias != p.Alias:
			return nil, fmt.Errorf("%s job %s: %w: job %d is %s", p.Op, p.Alias, ErrConflict, p.ID, row.Alias)
		case row.DeletedAt != nil:
			return nil, fmt.Errorf("%s job %s: %w: job %d was deleted", p.Op, p.Alias, ErrConflict, p.ID)
		case row.Version != p.Version:
			return nil, fmt.Errorf("%s job %s: %w: the plan saw version %d, the database has %d",
				p.Op, p.Alias, ErrConflict, p.Version, row.Version)
		}
		if p.Op == OpDelete {
			deleting[p.Alias] = true
		}
	}

	// 2. A create needs its alias free, unless this call deletes the live job.
	var creates []string
	for _, p := range ps {
		if p.Op == OpCreate {
			creates = append(creates, p.Alias)
		}
	}
	for chunk := range slices.Chunk(creates, narrowChunk) {
		var live []string
		err := tx.NewSelect().Model((*jobRow)(nil)).Column("alias").
			Where("j.alias IN (?)", bun.In(chunk)).Where("j.deleted_at IS NULL").
			Scan(ctx, &live)
		if err != nil {
			return nil, fmt.Errorf("read aliases: %w", err)
		}
		for _, alias := range live {
			if !deleting[alias] {
				return nil, fmt.Errorf("create job %s: %w: a live job has that alias", alias, ErrConflict)
			}
		}
	}

	// 3. Soft deletes.
	var deleteIDs []int64
	for i, p := range ps {
		if p.Op != OpDelete {
			continue
		}
		deleteIDs = append(deleteIDs, p.ID)
		row := *current[p.ID]
		row.DeletedAt, row.UpdatedAt = &now, now
		j, err := row.job()
		if err != nil {
			return nil, err
		}
		out[i] = j
	}
	for chunk := range slices.Chunk(deleteIDs, narrowChunk) {
		res, err := tx.NewUpdate().Model((*jobRow)(nil)).
			Set("deleted_at = ?", now).Set("updated_at = ?", now).
			Where("id IN (?)", bun.In(chunk)).Where("deleted_at IS NULL").
			Exec(ctx)
		if err := checkAffected(res, err, len(chunk)); err != nil {
			return nil, fmt.Errorf("delete jobs: %w", err)
		}
	}

	// 4. Updates: rewrite the job rows that changed; new versions replace children.
	var updated []jobRow
	var replaced []int64 // job ids whose child rows are replaced
	var versions []jobVersionRow
	var children []*pending // creates and new versions, job ids known
	jobIDs := make(map[*pending]int64)
	for i := range ps {
		p := &ps[i]
		if p.Op != OpUpdate {
			continue
		}
		row := current[p.ID]
		contentChanged := row.SpecHash != p.Hash
		if !contentChanged && rowProvenance(row) == p.Provenance {
			j, err := row.job() // nothing to write
			if err != nil {
				return nil, err
			}
			out[i] = j
			continue
		}
		version := row.Version
		if contentChanged {
			version++
			replaced = append(replaced, row.ID)
			versions = append(versions, p.versionRow(row.ID, version, now))
			jobIDs[p] = row.ID
			children = append(children, p)
		}
		nr := p.jobRow(row.ID, version, row.CreatedAt, now)
		updated = append(updated, nr)
		j, err := nr.job()
		if err != nil {
			return nil, err
		}
		out[i] = j
	}
	for chunk := range slices.Chunk(updated, wideChunk) {
		res, err := tx.NewUpdate().Model(&chunk).
			Column("version", "spec_hash", "spec", "labels", "annotations", "trigger_type",
				"provenance_source_id", "provenance_repo", "provenance_ref", "provenance_commit",
				"provenance_path", "updated_at").
			Bulk().Exec(ctx)
		if err := checkAffected(res, err, len(chunk)); err != nil {
			return nil, fmt.Errorf("update jobs: %w", err)
		}
	}
	for chunk := range slices.Chunk(replaced, narrowChunk) {
		// Edges have no foreign key to tasks (see the migration): delete them first.
		for _, model := range []any{(*taskEdgeRow)(nil), (*taskRow)(nil), (*callbackRow)(nil), (*triggerRow)(nil)} {
			if _, err := tx.NewDelete().Model(model).Where("job_id IN (?)", bun.In(chunk)).Exec(ctx); err != nil {
				return nil, fmt.Errorf("replace child rows: %w", err)
			}
		}
	}

	// 5. Creates.
	var inserted []jobRow
	var insertedAt []int // index in ps
	for i := range ps {
		if ps[i].Op == OpCreate {
			inserted = append(inserted, ps[i].jobRow(0, 1, now, now))
			insertedAt = append(insertedAt, i)
		}
	}
	for start := 0; start < len(inserted); start += wideChunk {
		chunk := inserted[start:min(start+wideChunk, len(inserted))]
		var keys []struct {
			ID    int64  `bun:"id"`
			Alias string `bun:"alias"`
		}
		if _, err := tx.NewInsert().Model(&chunk).Returning("id, alias").Exec(ctx, &keys); err != nil {
			return nil, fmt.Errorf("insert jobs: %w", err)
		}
		byAlias := make(map[string]int64, len(keys))
		for _, k := range keys {
			byAlias[k.Alias] = k.ID
		}
		for n := range chunk {
			i := insertedAt[start+n]
			p := &ps[i]
			id, ok := byAlias[p.Alias]
			if !ok {
				return nil, fmt.Errorf("insert jobs: no id returned for %s", p.Alias)
			}
			chunk[n].ID = id
			jobIDs[p] = id
			children = append(children, p)
			versions = append(versions, p.versionRow(id, 1, now))
			j, err := chunk[n].job()
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
	}

	// 6. Version rows, then the child rows of every new version.
	for chunk := range slices.Chunk(versions, wideChunk) {
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return nil, fmt.Errorf("insert job versions: %w", err)
		}
	}
	if err := insertChildren(ctx, tx, children, jobIDs); err != nil {
		return nil, err
	}
	return out, nil
}

// insertChildren writes the trigger, tasks, task edges and callbacks of each job.
func insertChildren(ctx context.Context, tx bun.Tx, ps []*pending, jobIDs map[*pending]int64) error {
	if len(ps) == 0 {
		return nil
	}
	triggers := make([]triggerRow, 0, len(ps))
	var tasks []taskRow
	var callbacks []callbackRow
	for _, p := range ps {
		id := jobIDs[p]
		t := p.trigger
		t.JobID = id
		triggers = append(triggers, t)
		for _, task := range p.tasks {
			task.JobID = id
			tasks = append(tasks, task)
		}
		for _, cb := range p.callbacks {
			cb.JobID = id
			callbacks = append(callbacks, cb)
		}
	}
	for chunk := range slices.Chunk(triggers, narrowChunk) {
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("insert triggers: %w", err)
		}
	}

	type stepKey struct {
		jobID int64
		name  string
	}
	taskIDs := make(map[stepKey]int64, len(tasks))
	for chunk := range slices.Chunk(tasks, narrowChunk) {
		var keys []taskKey
		if _, err := tx.NewInsert().Model(&chunk).Returning("id, job_id, name").Exec(ctx, &keys); err != nil {
			return fmt.Errorf("insert tasks: %w", err)
		}
		for _, k := range keys {
			taskIDs[stepKey{k.JobID, k.Name}] = k.ID
		}
	}
	var edges []taskEdgeRow
	for _, p := range ps {
		id := jobIDs[p]
		for _, e := range p.edges {
			from, to := taskIDs[stepKey{id, e.From}], taskIDs[stepKey{id, e.To}]
			if from == 0 || to == 0 {
				return fmt.Errorf("insert task edges: job %s: no task id for %s -> %s", p.Alias, e.From, e.To)
			}
			edges = append(edges, taskEdgeRow{JobID: id, FromTaskID: from, ToTaskID: to})
		}
	}
	for chunk := range slices.Chunk(edges, narrowChunk) {
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("insert task edges: %w", err)
		}
	}
	for chunk := range slices.Chunk(callbacks, narrowChunk) {
		if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("insert callbacks: %w", err)
		}
	}
	return nil
}

// jobRow is the row of a create or update.
func (p *pending) jobRow(id, version int64, created, now time.Time) jobRow {
	return jobRow{
		ID:                 id,
		Alias:              p.Alias,
		Version:            version,
		SpecHash:           p.Hash,
		Spec:               p.spec,
		Labels:             p.labels,
		Annotations:        p.annotations,
		TriggerType:        p.Job.Trigger.Type,
		ProvenanceSourceID: p.Provenance.SourceID,
		ProvenanceRepo:     p.Provenance.Repo,
		ProvenanceRef:      p.Provenance.Ref,
		ProvenanceCommit:   p.Provenance.Commit,
		ProvenancePath:     p.Provenance.Path,
		CreatedAt:          created,
		UpdatedAt:          now,
	}
}

func (p *pending) versionRow(jobID, version int64, now time.Time) jobVersionRow {
	return jobVersionRow{
		JobID:            jobID,
		Version:          version,
		SpecHash:         p.Hash,
		Spec:             p.spec,
		ProvenanceCommit: p.Provenance.Commit,
		CreatedAt:        now,
	}
}

func rowProvenance(r *jobRow) Provenance {
	return Provenance{
		SourceID: r.ProvenanceSourceID,
		Repo:     r.ProvenanceRepo,
		Ref:      r.ProvenanceRef,
		Commit:   r.ProvenanceCommit,
		Path:     r.ProvenancePath,
	}
}

// checkAffected fails unless the statement succeeded and touched want rows:
// the rows were checked under the transaction, so a shortfall is a bug or a
// concurrent writer that slipped past the check.
func checkAffected(res interface{ RowsAffected() (int64, error) }, err error, want int) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(want) {
		return fmt.Errorf("%w: %d rows changed, want %d", ErrConflict, n, want)
	}
	return nil
}

// PurgeDeleted hard-deletes the jobs soft-deleted before before, with their
// versions and child rows, and returns how many jobs it deleted. Errors:
// ErrUnavailable.
func (s *Store) PurgeDeleted(ctx context.Context, before time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, s.wrap("purge deleted jobs", err)
	}
	res, err := s.db.NewDelete().Model((*jobRow)(nil)).
		Where("deleted_at IS NOT NULL").
		Where("deleted_at < ?", before.UTC()).
		Exec(ctx)
	if err != nil {
		return 0, s.wrap("purge deleted jobs", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("purge deleted jobs", err)
	}
	return int(n), nil
}
