package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/caesium-io/caesium/schema"
)

// Run history: a run pins the live job's (id, version) when it is created and
// keeps that spec whatever is applied later. Its life:
//
//	CreateRun:     queued (or, over the job's concurrency limit, skipped or failed at once)
//	ClaimRuns:     queued -> running, with one pending task row per step
//	SetTask:       the executor's task transitions, while the run is running
//	FinishRun:     running -> succeeded, failed, cancelled
//	RequestCancel: queued -> cancelled at once; running -> cancel_requested (the executor stops it)
//	InterruptRuns: running -> failed, when a new leader starts (the old one died mid-run)
//
// Runs cascade from their job: PurgeDeleted, which hard-deletes soft-deleted
// jobs, removes their runs and task rows with them.
//
// Locking (PostgreSQL; SQLite has one writer and needs none): CreateRun locks
// the job row, so concurrent triggers of one job count the runs in flight one
// after the other; ClaimRuns takes a transaction-level advisory lock, since it
// is the only write that adds running runs; statements that lock several run
// rows lock them in id order, and run rows are always locked before task rows,
// so the writers cannot deadlock one another.

// RunStatus is the state of a run.
type RunStatus string

// Run statuses. queued and running are in flight; the rest are final.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
	RunSkipped   RunStatus = "skipped"
)

// Valid reports whether st is one of the run statuses.
func (st RunStatus) Valid() bool {
	switch st {
	case RunQueued, RunRunning, RunSucceeded, RunFailed, RunCancelled, RunSkipped:
		return true
	}
	return false
}

// Finished reports whether st is a final status.
func (st RunStatus) Finished() bool { return st.Valid() && st != RunQueued && st != RunRunning }

// TaskStatus is the state of one step of a run.
type TaskStatus string

// Task statuses. pending and running are unfinished; the rest are final.
const (
	TaskPending   TaskStatus = "pending"
	TaskRunning   TaskStatus = "running"
	TaskSucceeded TaskStatus = "succeeded"
	TaskFailed    TaskStatus = "failed"
	TaskSkipped   TaskStatus = "skipped"
	TaskCancelled TaskStatus = "cancelled"
)

// Valid reports whether st is one of the task statuses.
func (st TaskStatus) Valid() bool {
	switch st {
	case TaskPending, TaskRunning, TaskSucceeded, TaskFailed, TaskSkipped, TaskCancelled:
		return true
	}
	return false
}

// Finished reports whether st is a final status.
func (st TaskStatus) Finished() bool { return st.Valid() && st != TaskPending && st != TaskRunning }

// Run is one run of a job, pinned to the job version it was created with.
type Run struct {
	ID              int64            `json:"id"`
	JobID           int64            `json:"jobId"`
	JobAlias        string           `json:"jobAlias"`
	JobVersion      int64            `json:"jobVersion"`
	SpecHash        string           `json:"specHash"`
	Trigger         string           `json:"trigger"`         // manual, http, cron
	Actor           string           `json:"actor,omitempty"` // "cli", "api", an http trigger's remote address, ...
	Status          RunStatus        `json:"status"`
	Error           string           `json:"error,omitempty"`
	CancelRequested bool             `json:"cancelRequested,omitempty"`
	Callbacks       []CallbackResult `json:"callbacks,omitempty"`
	CreatedAt       time.Time        `json:"createdAt"`
	StartedAt       *time.Time       `json:"startedAt,omitempty"`
	FinishedAt      *time.Time       `json:"finishedAt,omitempty"`
	Tasks           []TaskRun        `json:"tasks,omitempty"` // filled by GetRun only
}

// TaskRun is one step of a run.
type TaskRun struct {
	Name       string     `json:"name"`
	Position   int        `json:"position"` // the step's index in the pinned spec
	Status     TaskStatus `json:"status"`
	Attempts   int        `json:"attempts"`
	ExitCode   *int       `json:"exitCode,omitempty"`
	Error      string     `json:"error,omitempty"`
	Output     string     `json:"output,omitempty"` // the tail of the last attempt, redacted by the executor
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// CallbackResult is the delivery of one callback of a finished run.
type CallbackResult struct {
	URL        string    `json:"url"`
	Event      string    `json:"event"`
	StatusCode int       `json:"statusCode,omitempty"`
	Attempts   int       `json:"attempts"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// NewRun asks for a run of the live job with that alias.
type NewRun struct {
	JobAlias string
	Trigger  string // schema.TriggerManual, TriggerHTTP or TriggerCron
	Actor    string
}

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	JobAlias string    // "" = every job
	Status   RunStatus // "" = every status
	Limit    int       // <= 0: DefaultRunLimit; at most MaxRunLimit
	BeforeID int64     // > 0: only runs with a smaller id (the next page)
}

// ListRuns page sizes.
const (
	DefaultRunLimit = 50
	MaxRunLimit     = 1000
)

// claimLockKey is the first half of the PostgreSQL advisory lock that
// serializes ClaimRuns; the second is a hash of the schema, as for the
// migrations' lock.
const claimLockKey = 0x72756e73 // "runs"

// errTaskRunEnded is the error of a task that FinishRun found still running.
const errTaskRunEnded = "the run ended while the task was running"

type runRow struct {
	bun.BaseModel `bun:"table:runs,alias:ru"`

	ID              int64      `bun:"id,pk,autoincrement,type:bigint"`
	JobID           int64      `bun:"job_id,type:bigint"`
	JobAlias        string     `bun:"job_alias,type:text"`
	JobVersion      int64      `bun:"job_version,type:bigint"`
	SpecHash        string     `bun:"spec_hash,type:text"`
	Trigger         string     `bun:"trigger,type:text"`
	Actor           string     `bun:"actor,type:text"`
	Status          RunStatus  `bun:"status,type:text"`
	Error           string     `bun:"error,type:text"`
	CancelRequested bool       `bun:"cancel_requested,type:boolean"`
	Callbacks       jsonText   `bun:"callbacks,type:jsonb"`
	CreatedAt       time.Time  `bun:"created_at,type:timestamptz"`
	StartedAt       *time.Time `bun:"started_at,type:timestamptz"`
	FinishedAt      *time.Time `bun:"finished_at,type:timestamptz"`
}

type taskRunRow struct {
	bun.BaseModel `bun:"table:task_runs,alias:tru"`

	RunID      int64      `bun:"run_id,pk,type:bigint"`
	Name       string     `bun:"name,pk,type:text"`
	Position   int        `bun:"position,type:integer"`
	Status     TaskStatus `bun:"status,type:text"`
	Attempts   int        `bun:"attempts,type:integer"`
	ExitCode   *int       `bun:"exit_code,type:integer"`
	Error      string     `bun:"error,type:text"`
	Output     string     `bun:"output,type:text"`
	StartedAt  *time.Time `bun:"started_at,type:timestamptz"`
	FinishedAt *time.Time `bun:"finished_at,type:timestamptz"`
}

// inFlight are the statuses of the runs that count against maxRuns.
var inFlight = []RunStatus{RunQueued, RunRunning}

// CreateRun creates a run of the live job nr.JobAlias, pinned to the job's
// current version, and applies the job's concurrency settings
// (metadata.concurrency of the pinned spec) in the same transaction: runs in
// flight are the job's queued and running runs (those asked to cancel too,
// until they end), and with maxRuns or more of them in flight
//
//   - queue: the run is queued all the same (ClaimRuns starts it when one ends);
//   - skip: the run is created finished, skipped, with Error saying why;
//   - fail: the same, with status failed;
//   - replace: the queued runs are cancelled (superseded by the new one), the
//     oldest running runs are asked to cancel until at most maxRuns-1 remain
//     that are not already cancelling, and the run is queued.
//
// Below maxRuns, every strategy queues the run. On PostgreSQL the job row is
// locked for the transaction, so concurrent triggers cannot both slip under
// maxRuns; on SQLite the single writer serializes them.
//
// Errors: ErrNotFound when no live job has the alias; ErrNotLeader under a
// lease (WithLease) that no longer leads; ErrUnavailable; others (an unknown
// trigger) wrapped with context.
func (s *Store) CreateRun(ctx context.Context, nr NewRun) (Run, error) {
	op := "create run of job " + nr.JobAlias
	if err := s.check(); err != nil {
		return Run{}, s.wrap(op, err)
	}
	switch nr.Trigger {
	case schema.TriggerManual, schema.TriggerHTTP, schema.TriggerCron:
	default:
		return Run{}, fmt.Errorf("%s: unknown trigger %q, want manual, http or cron", op, nr.Trigger)
	}
	now := s.timestamp()
	var out Run
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		var job jobRow
		q := tx.NewSelect().Model(&job).Column("id", "alias", "version", "spec_hash", "spec").
			Where("j.alias = ?", nr.JobAlias).Where("j.deleted_at IS NULL")
		if s.dialect == dialectPostgres {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("read job: %w", err)
		}
		pinned, err := decodePinned(job.Spec)
		if err != nil {
			return fmt.Errorf("version %d: %w", job.Version, err)
		}

		// queue queues the run whatever is in flight, so only the other
		// strategies read the runs in flight: a burst of triggers of a queue
		// job makes them many, and reading them all made a burst quadratic.
		var active []runRow
		if pinned.strategy != schema.ConcurrencyQueue {
			aq := tx.NewSelect().Model(&active).Column("id", "status", "cancel_requested").
				Where("ru.job_id = ?", job.ID).Where("ru.status IN (?)", bun.In(inFlight)).OrderExpr("ru.id")
			if s.dialect == dialectPostgres && pinned.strategy == schema.ConcurrencyReplace {
				aq = aq.For("UPDATE") // the rows replace changes, in id order
			}
			if err := aq.Scan(ctx); err != nil {
				return fmt.Errorf("read runs in flight: %w", err)
			}
		}
		full := len(active) >= pinned.maxRuns

		row := runRow{
			JobID:      job.ID,
			JobAlias:   job.Alias,
			JobVersion: job.Version,
			SpecHash:   job.SpecHash,
			Trigger:    nr.Trigger,
			Actor:      cleanText(nr.Actor),
			Status:     RunQueued,
			Callbacks:  jsonText("[]"),
			CreatedAt:  now,
		}
		if full && (pinned.strategy == schema.ConcurrencySkip || pinned.strategy == schema.ConcurrencyFail) {
			row.Status = RunSkipped
			if pinned.strategy == schema.ConcurrencyFail {
				row.Status = RunFailed
			}
			row.Error = fmt.Sprintf("not started: %d runs of the job in flight, maxRuns %d (concurrency strategy %s)",
				len(active), pinned.maxRuns, pinned.strategy)
			row.FinishedAt = &now
		}
		if _, err := tx.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		if full && pinned.strategy == schema.ConcurrencyReplace {
			if err := replaceRuns(ctx, tx, row.ID, active, pinned.maxRuns, now); err != nil {
				return err
			}
		}
		out, err = row.run()
		return err
	})
	if err != nil {
		return Run{}, s.wrap(op, err)
	}
	return out, nil
}

// replaceRuns makes room for the new run newID: the queued runs in flight are
// cancelled, and the oldest running ones are asked to cancel until at most
// maxRuns-1 remain that are not cancelling already.
func replaceRuns(ctx context.Context, tx bun.Tx, newID int64, active []runRow, maxRuns int, now time.Time) error {
	var queued, running []int64
	for _, r := range active {
		switch {
		case r.Status == RunQueued:
			queued = append(queued, r.ID)
		case !r.CancelRequested:
			running = append(running, r.ID)
		}
	}
	if len(queued) > 0 {
		_, err := tx.NewUpdate().Model((*runRow)(nil)).
			Set("status = ?", RunCancelled).
			Set("error = ?", fmt.Sprintf("replaced by run %d (concurrency strategy replace)", newID)).
			Set("finished_at = ?", now).
			Where("id IN (?)", bun.In(queued)).Where("status = ?", RunQueued).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("cancel replaced runs: %w", err)
		}
	}
	if n := len(running) - (maxRuns - 1); n > 0 {
		_, err := tx.NewUpdate().Model((*runRow)(nil)).
			Set("cancel_requested = ?", true).
			Where("id IN (?)", bun.In(running[:n])).Where("status = ?", RunRunning).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("cancel replaced runs: %w", err)
		}
	}
	return nil
}

// claimCandidate is a queued run ClaimRuns may start.
type claimCandidate struct {
	ID         int64 `bun:"id"`
	JobID      int64 `bun:"job_id"`
	JobVersion int64 `bun:"job_version"`
}

type versionKey struct{ jobID, version int64 }

// The candidates of ClaimRuns, in id order: for each job with queued runs, its
// first limit queued runs, read from runs_job_id_active_idx so that a long
// queue behind one job's maxRuns is not read in full. SQLite has no LATERAL,
// and PostgreSQL cannot use a correlated IN as an index condition, hence two
// forms. In SQLite's, the repeated status IN term is what lets it use the
// partial index.
const (
	claimCandidatesSQLite = `SELECT r.id, r.job_id, r.job_version
		FROM (SELECT DISTINCT job_id FROM runs WHERE status = ?) AS j
		JOIN runs AS r ON r.id IN (
			SELECT q.id FROM runs AS q
			WHERE q.job_id = j.job_id AND q.status IN (?, ?) AND q.status = ?
			ORDER BY q.id LIMIT ?)
		ORDER BY r.id`
	claimCandidatesPostgres = `SELECT r.id, r.job_id, r.job_version
		FROM (SELECT DISTINCT job_id FROM runs WHERE status = ?) AS j,
		LATERAL (SELECT q.id, q.job_id, q.job_version FROM runs AS q
			WHERE q.job_id = j.job_id AND q.status = ?
			ORDER BY q.id LIMIT ?) AS r
		ORDER BY r.id`
)

// ClaimRuns moves up to limit queued runs to running, oldest first, and
// returns them (without Tasks) in id order. A run is started only while its
// job has fewer running runs than the maxRuns of the run's pinned spec,
// counting the runs claimed in the same call; a job at its limit keeps its
// runs queued without holding back other jobs' newer runs. Each claimed run
// gets started_at and one pending task row per step of its pinned spec
// (position = the step's index). A run cancelled concurrently is not claimed.
//
// Errors: ErrNotLeader under a lease that no longer leads (checked when
// something is queued: with nothing to claim there is nothing to fence);
// ErrUnavailable.
func (s *Store) ClaimRuns(ctx context.Context, limit int) ([]Run, error) {
	const op = "claim runs"
	if err := s.check(); err != nil {
		return nil, s.wrap(op, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	// The runner claims on every poll: when nothing is queued, a read on
	// the reader pool answers without a write transaction (on SQLite, the
	// one writer) or the claim lock.
	queued, err := s.rdb.NewSelect().Model((*runRow)(nil)).Where("ru.status = ?", RunQueued).Exists(ctx)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	if !queued {
		return nil, nil
	}
	now := s.timestamp()
	var out []Run
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		if s.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", claimLockKey); err != nil {
				return fmt.Errorf("lock claims: %w", err)
			}
		}
		// At most limit queued runs per job: no job can take more in one call.
		q, args := claimCandidatesSQLite, []any{RunQueued, RunQueued, RunRunning, RunQueued, limit}
		if s.dialect == dialectPostgres {
			q, args = claimCandidatesPostgres, []any{RunQueued, RunQueued, limit}
		}
		var cands []claimCandidate
		err := tx.NewRaw(q, args...).Scan(ctx, &cands)
		if err != nil {
			return fmt.Errorf("read queued runs: %w", err)
		}
		if len(cands) == 0 {
			return nil
		}

		var jobIDs []int64
		keys := make(map[versionKey]bool)
		for _, c := range cands {
			k := versionKey{c.JobID, c.JobVersion}
			if !keys[k] {
				keys[k] = true
				if !slices.Contains(jobIDs, c.JobID) {
					jobIDs = append(jobIDs, c.JobID)
				}
			}
		}
		running := make(map[int64]int, len(jobIDs))
		for chunk := range slices.Chunk(jobIDs, narrowChunk) {
			var counts []struct {
				JobID int64 `bun:"job_id"`
				N     int   `bun:"n"`
			}
			err := tx.NewSelect().Model((*runRow)(nil)).ColumnExpr("ru.job_id, count(*) AS n").
				Where("ru.status = ?", RunRunning).Where("ru.job_id IN (?)", bun.In(chunk)).
				GroupExpr("ru.job_id").Scan(ctx, &counts)
			if err != nil {
				return fmt.Errorf("count running runs: %w", err)
			}
			for _, c := range counts {
				running[c.JobID] = c.N
			}
		}
		specs, bad, err := pinnedSpecs(ctx, tx, keys)
		if err != nil {
			return err
		}
		// A run whose pinned spec this agent cannot read (written by a newer
		// agent, say) fails on its own, with the reason; it must not stop
		// every other job's runs from being claimed.
		for _, c := range cands {
			if reason, ok := bad[versionKey{c.JobID, c.JobVersion}]; ok {
				_, err := tx.NewUpdate().Model((*runRow)(nil)).
					Set("status = ?", RunFailed).Set("error = ?", cleanText("cannot read the pinned job version: "+reason)).
					Set("finished_at = ?", now).Where("id = ?", c.ID).Where("status = ?", RunQueued).Exec(ctx)
				if err != nil {
					return fmt.Errorf("fail unreadable run %d: %w", c.ID, err)
				}
			}
		}

		var chosen []int64
		for _, c := range cands {
			if len(chosen) == limit {
				break
			}
			spec, ok := specs[versionKey{c.JobID, c.JobVersion}]
			if !ok || running[c.JobID] >= spec.maxRuns {
				continue
			}
			running[c.JobID]++
			chosen = append(chosen, c.ID)
		}

		var claimed []runRow
		for chunk := range slices.Chunk(chosen, narrowChunk) {
			ids := chunk
			if s.dialect == dialectPostgres {
				// Lock in id order, as every writer of several runs does; a run
				// cancelled meanwhile drops out here.
				ids = nil
				err := tx.NewSelect().Model((*runRow)(nil)).Column("id").
					Where("ru.id IN (?)", bun.In(chunk)).Where("ru.status = ?", RunQueued).
					OrderExpr("ru.id").For("UPDATE").Scan(ctx, &ids)
				if err != nil {
					return fmt.Errorf("lock queued runs: %w", err)
				}
				if len(ids) == 0 {
					continue
				}
			}
			var rows []runRow
			_, err := tx.NewUpdate().Model((*runRow)(nil)).
				Set("status = ?", RunRunning).Set("started_at = ?", now).
				Where("id IN (?)", bun.In(ids)).Where("status = ?", RunQueued).
				Returning("*").Exec(ctx, &rows)
			if err != nil {
				return fmt.Errorf("start runs: %w", err)
			}
			claimed = append(claimed, rows...)
		}
		slices.SortFunc(claimed, func(a, b runRow) int { return cmp.Compare(a.ID, b.ID) })

		var tasks []taskRunRow
		for _, r := range claimed {
			for i, name := range specs[versionKey{r.JobID, r.JobVersion}].steps {
				tasks = append(tasks, taskRunRow{RunID: r.ID, Name: name, Position: i, Status: TaskPending})
			}
		}
		for chunk := range slices.Chunk(tasks, narrowChunk) {
			if _, err := tx.NewInsert().Model(&chunk).Exec(ctx); err != nil {
				return fmt.Errorf("insert task runs: %w", err)
			}
		}
		out = make([]Run, 0, len(claimed))
		for i := range claimed {
			r, err := claimed[i].run()
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// pinnedSpec is what the run store reads from a pinned spec.
type pinnedSpec struct {
	maxRuns  int
	strategy string
	steps    []string // names, by position
}

func decodePinned(spec []byte) (pinnedSpec, error) {
	var j schema.Job
	if err := json.Unmarshal(spec, &j); err != nil {
		return pinnedSpec{}, fmt.Errorf("decode spec: %w", err)
	}
	c := j.Metadata.Concurrency
	p := pinnedSpec{maxRuns: max(c.MaxRuns, 1), strategy: cmp.Or(c.Strategy, schema.ConcurrencyQueue)}
	switch p.strategy {
	case schema.ConcurrencyQueue, schema.ConcurrencyReplace, schema.ConcurrencySkip, schema.ConcurrencyFail:
	default:
		return pinnedSpec{}, fmt.Errorf("unknown concurrency strategy %q", p.strategy)
	}
	p.steps = make([]string, len(j.Steps))
	for i, st := range j.Steps {
		p.steps[i] = st.Name
	}
	return p, nil
}

// pinnedSpecs reads and decodes the job versions in keys. A version that
// does not decode is in bad, with the reason, instead of failing the call.
func pinnedSpecs(ctx context.Context, tx bun.Tx, keys map[versionKey]bool) (map[versionKey]pinnedSpec, map[versionKey]string, error) {
	pairs := make([][]int64, 0, len(keys))
	for k := range keys {
		pairs = append(pairs, []int64{k.jobID, k.version})
	}
	out := make(map[versionKey]pinnedSpec, len(keys))
	bad := map[versionKey]string{}
	for chunk := range slices.Chunk(pairs, narrowChunk) {
		var rows []jobVersionRow
		err := tx.NewSelect().Model(&rows).Column("job_id", "version", "spec").
			Where("(v.job_id, v.version) IN (?)", bun.In(chunk)).Scan(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("read pinned specs: %w", err)
		}
		for _, v := range rows {
			p, err := decodePinned(v.Spec)
			if err != nil {
				bad[versionKey{v.JobID, v.Version}] = fmt.Sprintf("job %d version %d: %v", v.JobID, v.Version, err)
				continue
			}
			out[versionKey{v.JobID, v.Version}] = p
		}
	}
	for k := range keys {
		_, ok := out[k]
		if _, isBad := bad[k]; !ok && !isBad { // the foreign key makes this a bug
			return nil, nil, fmt.Errorf("job %d version %d: no version row", k.jobID, k.version)
		}
	}
	return out, bad, nil
}

// SetTask writes the state of task t.Name of a running run: status,
// attempts, exit code, error, output and times (the position is the one
// ClaimRuns wrote). Output and error are stored as valid UTF-8 without NUL
// bytes (others are replaced with U+FFFD), which PostgreSQL's text requires.
//
// Errors: ErrNotFound when the run or its task does not exist; ErrConflict
// when the run is not running (finished, or interrupted by a new leader);
// ErrNotLeader under a lease that no longer leads; ErrUnavailable.
func (s *Store) SetTask(ctx context.Context, runID int64, t TaskRun) error {
	op := fmt.Sprintf("set task %s of run %d", t.Name, runID)
	if err := s.check(); err != nil {
		return s.wrap(op, err)
	}
	if t.Name == "" || !t.Status.Valid() {
		return fmt.Errorf("%s: want a task name and a task status, got %q", op, t.Status)
	}
	row := taskRunRow{
		RunID:      runID,
		Name:       t.Name,
		Status:     t.Status,
		Attempts:   t.Attempts,
		ExitCode:   t.ExitCode,
		Error:      cleanText(t.Error),
		Output:     cleanText(t.Output),
		StartedAt:  dbTimePtr(t.StartedAt),
		FinishedAt: dbTimePtr(t.FinishedAt),
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		// A share lock: tasks of one run are written in parallel, and the run
		// does not end (FinishRun, InterruptRuns) meanwhile.
		run, err := s.lockRun(ctx, tx, runID, "SHARE")
		if err != nil {
			return err
		}
		if run.Status != RunRunning {
			return fmt.Errorf("run %d is %s: %w", runID, run.Status, ErrConflict)
		}
		res, err := tx.NewUpdate().Model(&row).
			Column("status", "attempts", "exit_code", "error", "output", "started_at", "finished_at").
			WherePK().Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %d has no task %s: %w", runID, t.Name, ErrNotFound)
		}
		return nil
	})
	return s.wrap(op, err)
}

// FinishRun ends a running run with a final status (succeeded, failed,
// cancelled, skipped), its error and the callbacks delivered so far, and
// stamps finished_at. Tasks still pending become cancelled and tasks still
// running become failed: a finished run has no unfinished task.
//
// Errors: ErrNotFound for an unknown run; ErrConflict when the run is not
// running; ErrNotLeader under a lease that no longer leads; ErrUnavailable;
// others (a status that is not final) wrapped with context.
func (s *Store) FinishRun(ctx context.Context, runID int64, status RunStatus, errMsg string, cbs []CallbackResult) error {
	op := fmt.Sprintf("finish run %d", runID)
	if err := s.check(); err != nil {
		return s.wrap(op, err)
	}
	if !status.Finished() {
		return fmt.Errorf("%s: %q is not a final run status", op, status)
	}
	callbacks, err := marshalCallbacks(cbs)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	now := s.timestamp()
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		run, err := s.lockRun(ctx, tx, runID, "UPDATE")
		if err != nil {
			return err
		}
		if run.Status != RunRunning {
			return fmt.Errorf("run %d is %s: %w", runID, run.Status, ErrConflict)
		}
		_, err = tx.NewUpdate().Model((*runRow)(nil)).
			Set("status = ?", status).Set("error = ?", cleanText(errMsg)).
			Set("callbacks = ?", callbacks).Set("finished_at = ?", now).
			Where("id = ?", runID).Exec(ctx)
		if err != nil {
			return err
		}
		return endTasks(ctx, tx, []int64{runID}, errTaskRunEnded, now)
	})
	return s.wrap(op, err)
}

// RecordCallbacks replaces the callback deliveries of a finished run, for a
// runner that finishes the run first and delivers its callbacks after.
//
// Errors: ErrNotFound for an unknown run; ErrConflict when the run has not
// finished; ErrNotLeader under a lease that no longer leads; ErrUnavailable.
func (s *Store) RecordCallbacks(ctx context.Context, runID int64, cbs []CallbackResult) error {
	op := fmt.Sprintf("record callbacks of run %d", runID)
	if err := s.check(); err != nil {
		return s.wrap(op, err)
	}
	callbacks, err := marshalCallbacks(cbs)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		run, err := s.lockRun(ctx, tx, runID, "UPDATE")
		if err != nil {
			return err
		}
		if !run.Status.Finished() {
			return fmt.Errorf("run %d is %s: %w", runID, run.Status, ErrConflict)
		}
		_, err = tx.NewUpdate().Model((*runRow)(nil)).Set("callbacks = ?", callbacks).Where("id = ?", runID).Exec(ctx)
		return err
	})
	return s.wrap(op, err)
}

// RequestCancel cancels a run: a queued run is cancelled at once (finished,
// never started); a running run gets cancel_requested, which the executor
// polls with CancelRequested, and keeps running until FinishRun. Asking again
// while it runs is not an error. It returns the run as it now is, without
// Tasks.
//
// Errors: ErrNotFound for an unknown run; ErrConflict when the run has
// finished; ErrNotLeader under a lease that no longer leads; ErrUnavailable.
func (s *Store) RequestCancel(ctx context.Context, runID int64) (Run, error) {
	op := fmt.Sprintf("cancel run %d", runID)
	if err := s.check(); err != nil {
		return Run{}, s.wrap(op, err)
	}
	now := s.timestamp()
	var out Run
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		run, err := s.lockRun(ctx, tx, runID, "UPDATE")
		if err != nil {
			return err
		}
		q := tx.NewUpdate().Model((*runRow)(nil)).Where("id = ?", runID)
		switch {
		case run.Status == RunQueued:
			run.Status, run.Error, run.FinishedAt = RunCancelled, "cancelled before it started", &now
			q = q.Set("status = ?", run.Status).Set("error = ?", run.Error).Set("finished_at = ?", now)
		case run.Status == RunRunning && !run.CancelRequested:
			run.CancelRequested = true
			q = q.Set("cancel_requested = ?", true)
		case run.Status == RunRunning:
			q = nil // asked already
		default:
			return fmt.Errorf("run %d has already finished (%s): %w", runID, run.Status, ErrConflict)
		}
		if q != nil {
			if _, err := q.Exec(ctx); err != nil {
				return err
			}
		}
		out, err = run.run()
		return err
	})
	if err != nil {
		return Run{}, s.wrap(op, err)
	}
	return out, nil
}

// CancelRequested returns, in increasing order, those of ids whose runs have
// been asked to cancel. Unknown ids are left out. Errors: ErrUnavailable.
func (s *Store) CancelRequested(ctx context.Context, ids []int64) ([]int64, error) {
	const op = "read cancel requests"
	if err := s.check(); err != nil {
		return nil, s.wrap(op, err)
	}
	var out []int64
	for chunk := range slices.Chunk(ids, narrowChunk) {
		var got []int64
		err := s.rdb.NewSelect().Model((*runRow)(nil)).Column("id").
			Where("ru.id IN (?)", bun.In(chunk)).Where("ru.cancel_requested = ?", true).
			Scan(ctx, &got)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, got...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// InterruptRuns fails every running run with msg as its error, cancels
// their pending tasks and fails their running tasks (with msg), and returns
// how many runs it failed. A new leader calls it when it starts: the runs its
// predecessor was executing have no executor any more. Queued runs stay
// queued.
//
// Errors: ErrNotLeader under a lease that no longer leads; ErrUnavailable.
func (s *Store) InterruptRuns(ctx context.Context, msg string) (int, error) {
	const op = "interrupt runs"
	if err := s.check(); err != nil {
		return 0, s.wrap(op, err)
	}
	msg = cleanText(msg)
	now := s.timestamp()
	var n int
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		var ids []int64
		q := tx.NewSelect().Model((*runRow)(nil)).Column("id").Where("ru.status = ?", RunRunning).OrderExpr("ru.id")
		if s.dialect == dialectPostgres {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx, &ids); err != nil {
			return fmt.Errorf("read running runs: %w", err)
		}
		n = len(ids)
		for chunk := range slices.Chunk(ids, narrowChunk) {
			_, err := tx.NewUpdate().Model((*runRow)(nil)).
				Set("status = ?", RunFailed).Set("error = ?", msg).Set("finished_at = ?", now).
				Where("id IN (?)", bun.In(chunk)).Exec(ctx)
			if err != nil {
				return fmt.Errorf("fail runs: %w", err)
			}
			if err := endTasks(ctx, tx, chunk, msg, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return n, nil
}

// endTasks finishes the unfinished tasks of ended runs: pending ones never
// started (cancelled), running ones failed with msg.
func endTasks(ctx context.Context, tx bun.Tx, runIDs []int64, msg string, now time.Time) error {
	_, err := tx.NewUpdate().Model((*taskRunRow)(nil)).
		Set("status = ?", TaskCancelled).Set("finished_at = ?", now).
		Where("run_id IN (?)", bun.In(runIDs)).Where("status = ?", TaskPending).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("cancel pending tasks: %w", err)
	}
	_, err = tx.NewUpdate().Model((*taskRunRow)(nil)).
		Set("status = ?", TaskFailed).Set("error = ?", msg).Set("finished_at = ?", now).
		Where("run_id IN (?)", bun.In(runIDs)).Where("status = ?", TaskRunning).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("fail running tasks: %w", err)
	}
	return nil
}

// lockRun reads a run inside tx, on PostgreSQL locking its row FOR lock.
func (s *Store) lockRun(ctx context.Context, tx bun.Tx, id int64, lock string) (runRow, error) {
	var row runRow
	q := tx.NewSelect().Model(&row).Where("ru.id = ?", id)
	if s.dialect == dialectPostgres {
		q = q.For(lock)
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return runRow{}, ErrNotFound
	}
	if err != nil {
		return runRow{}, fmt.Errorf("read run: %w", err)
	}
	return row, nil
}

// GetRun returns a run with its tasks by position. Errors: ErrNotFound,
// ErrUnavailable.
func (s *Store) GetRun(ctx context.Context, id int64) (Run, error) {
	op := fmt.Sprintf("get run %d", id)
	if err := s.check(); err != nil {
		return Run{}, s.wrap(op, err)
	}
	var row runRow
	err := s.rdb.NewSelect().Model(&row).Where("ru.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Run{}, s.wrap(op, err)
	}
	var tasks []taskRunRow
	if err := s.rdb.NewSelect().Model(&tasks).Where("tru.run_id = ?", id).OrderExpr("tru.position, tru.name").Scan(ctx); err != nil {
		return Run{}, s.wrap(op, err)
	}
	out, err := row.run()
	if err != nil {
		return Run{}, s.wrap(op, err)
	}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, TaskRun{
			Name:       t.Name,
			Position:   t.Position,
			Status:     t.Status,
			Attempts:   t.Attempts,
			ExitCode:   t.ExitCode,
			Error:      t.Error,
			Output:     t.Output,
			StartedAt:  utcPtr(t.StartedAt),
			FinishedAt: utcPtr(t.FinishedAt),
		})
	}
	return out, nil
}

// ListRuns returns runs newest (highest id) first, without Tasks.
// Errors: ErrUnavailable; others (an unknown status) wrapped with context.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	const op = "list runs"
	if err := s.check(); err != nil {
		return nil, s.wrap(op, err)
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, fmt.Errorf("%s: unknown run status %q", op, f.Status)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultRunLimit
	}
	limit = min(limit, MaxRunLimit)
	var rows []runRow
	q := s.rdb.NewSelect().Model(&rows).OrderExpr("ru.id DESC").Limit(int64(limit))
	if f.JobAlias != "" {
		q = q.Where("ru.job_alias = ?", f.JobAlias)
	}
	if f.Status != "" {
		q = q.Where("ru.status = ?", f.Status)
	}
	if f.BeforeID > 0 {
		q = q.Where("ru.id < ?", f.BeforeID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, s.wrap(op, err)
	}
	out := make([]Run, len(rows))
	for i := range rows {
		r, err := rows[i].run()
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out[i] = r
	}
	return out, nil
}

// JobByHTTPPath returns the live job whose trigger is http with that
// configuration.path. Errors: ErrNotFound; ErrConflict when several live jobs
// claim the path (jobs applied from different sources: lint checks one set
// of files only); ErrUnavailable.
func (s *Store) JobByHTTPPath(ctx context.Context, path string) (Job, error) {
	op := "find job by http path " + path
	if err := s.check(); err != nil {
		return Job{}, s.wrap(op, err)
	}
	// The same expression as the migration's triggers_http_path_idx.
	pathExpr := "tr.configuration ->> 'path'"
	if s.dialect == dialectSQLite {
		pathExpr = "json_extract(tr.configuration, '$.path')"
	}
	var rows []jobRow
	err := s.rdb.NewSelect().Model(&rows).
		Join("JOIN triggers AS tr ON tr.job_id = j.id").
		Where("j.deleted_at IS NULL").Where("tr.type = ?", schema.TriggerHTTP).
		Where(pathExpr+" = ?", path).
		OrderExpr("j.id").Limit(2).Scan(ctx)
	if err != nil {
		return Job{}, s.wrap(op, err)
	}
	switch len(rows) {
	case 0:
		return Job{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	case 1:
		j, err := rows[0].job()
		if err != nil {
			return Job{}, s.wrap(op, err)
		}
		return j, nil
	}
	return Job{}, fmt.Errorf("%s: %w: jobs %s and %s both have it", op, ErrConflict, rows[0].Alias, rows[1].Alias)
}

// run converts a row to the API type.
func (r *runRow) run() (Run, error) {
	out := Run{
		ID:              r.ID,
		JobID:           r.JobID,
		JobAlias:        r.JobAlias,
		JobVersion:      r.JobVersion,
		SpecHash:        r.SpecHash,
		Trigger:         r.Trigger,
		Actor:           r.Actor,
		Status:          r.Status,
		Error:           r.Error,
		CancelRequested: r.CancelRequested,
		CreatedAt:       r.CreatedAt.UTC(),
		StartedAt:       utcPtr(r.StartedAt),
		FinishedAt:      utcPtr(r.FinishedAt),
	}
	if len(r.Callbacks) > 0 {
		if err := json.Unmarshal(r.Callbacks, &out.Callbacks); err != nil {
			return Run{}, fmt.Errorf("run %d callbacks: %w", r.ID, err)
		}
		if len(out.Callbacks) == 0 {
			out.Callbacks = nil
		}
	}
	return out, nil
}

func marshalCallbacks(cbs []CallbackResult) (jsonText, error) {
	clean := make([]CallbackResult, len(cbs))
	for i, cb := range cbs {
		cb.URL, cb.Event, cb.Error = cleanText(cb.URL), cleanText(cb.Event), cleanText(cb.Error)
		cb.At = dbTime(cb.At)
		clean[i] = cb
	}
	return marshalJSON(clean, len(clean), "[]")
}

// cleanText makes s storable in both databases: valid UTF-8 without NUL
// bytes (PostgreSQL's text and jsonb refuse both), others replaced by U+FFFD.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// InstallationID returns the random id this database was given when its
// run tables were created. Agents sharing the database share it; they label
// what they create outside the database with it (containers), so cleaning up
// after a dead agent never touches another installation's work on a shared
// Docker host. Errors: ErrUnavailable.
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	const op = "read installation id"
	if err := s.check(); err != nil {
		return "", s.wrap(op, err)
	}
	var id string
	if err := s.rdb.NewRaw("SELECT id FROM installation LIMIT 1").Scan(ctx, &id); err != nil {
		return "", s.wrap(op, err)
	}
	return id, nil
}
