package store

import (
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// The Bun models mirror the tables of the migrations; they never leave this
// package. The type tags are PostgreSQL's and serve the casts Bun writes in
// bulk updates (VALUES lists); SQLite ignores them. JSON columns are
// jsonText, marshalled here, so that what is stored is exactly what
// encoding/json wrote (sorted map keys).

type jobRow struct {
	bun.BaseModel `bun:"table:jobs,alias:j"`

	ID                 int64      `bun:"id,pk,autoincrement,type:bigint"`
	Alias              string     `bun:"alias,type:text"`
	Version            int64      `bun:"version,type:bigint"`
	SpecHash           string     `bun:"spec_hash,type:text"`
	Spec               jsonText   `bun:"spec,type:json"`
	Labels             jsonText   `bun:"labels,type:jsonb"`
	Annotations        jsonText   `bun:"annotations,type:jsonb"`
	TriggerType        string     `bun:"trigger_type,type:text"`
	ProvenanceSourceID string     `bun:"provenance_source_id,type:text"`
	ProvenanceRepo     string     `bun:"provenance_repo,type:text"`
	ProvenanceRef      string     `bun:"provenance_ref,type:text"`
	ProvenanceCommit   string     `bun:"provenance_commit,type:text"`
	ProvenancePath     string     `bun:"provenance_path,type:text"`
	CreatedAt          time.Time  `bun:"created_at,type:timestamptz"`
	UpdatedAt          time.Time  `bun:"updated_at,type:timestamptz"`
	DeletedAt          *time.Time `bun:"deleted_at,type:timestamptz"`
}

type jobVersionRow struct {
	bun.BaseModel `bun:"table:job_versions,alias:v"`

	JobID            int64     `bun:"job_id,pk,type:bigint"`
	Version          int64     `bun:"version,pk,type:bigint"`
	SpecHash         string    `bun:"spec_hash,type:text"`
	Spec             jsonText  `bun:"spec,type:json"`
	ProvenanceCommit string    `bun:"provenance_commit,type:text"`
	CreatedAt        time.Time `bun:"created_at,type:timestamptz"`
}

type triggerRow struct {
	bun.BaseModel `bun:"table:triggers,alias:tr"`

	JobID         int64    `bun:"job_id,pk,type:bigint"`
	Type          string   `bun:"type,type:text"`
	Configuration jsonText `bun:"configuration,type:jsonb"`
}

type taskRow struct {
	bun.BaseModel `bun:"table:tasks,alias:t"`

	ID           int64    `bun:"id,pk,autoincrement,type:bigint"`
	JobID        int64    `bun:"job_id,type:bigint"`
	Name         string   `bun:"name,type:text"`
	Position     int      `bun:"position,type:integer"`
	Engine       string   `bun:"engine,type:text"`
	Image        string   `bun:"image,type:text"`
	Command      jsonText `bun:"command,type:jsonb"`
	Env          jsonText `bun:"env,type:jsonb"`
	Workdir      string   `bun:"workdir,type:text"`
	Retries      int      `bun:"retries,type:integer"`
	RetryDelayMS int64    `bun:"retry_delay_ms,type:bigint"`
	TimeoutMS    int64    `bun:"timeout_ms,type:bigint"`
	TriggerRule  string   `bun:"trigger_rule,type:text"`
}

// taskKey is what an INSERT INTO tasks … RETURNING gives back: enough to map
// the new ids to (job, step name) whatever order the rows come back in.
type taskKey struct {
	ID    int64  `bun:"id"`
	JobID int64  `bun:"job_id"`
	Name  string `bun:"name"`
}

type taskEdgeRow struct {
	bun.BaseModel `bun:"table:task_edges,alias:e"`

	JobID      int64 `bun:"job_id,type:bigint"`
	FromTaskID int64 `bun:"from_task_id,pk,type:bigint"`
	ToTaskID   int64 `bun:"to_task_id,pk,type:bigint"`
}

type callbackRow struct {
	bun.BaseModel `bun:"table:callbacks,alias:c"`

	ID       int64    `bun:"id,pk,autoincrement,type:bigint"`
	JobID    int64    `bun:"job_id,type:bigint"`
	Position int      `bun:"position,type:integer"`
	Type     string   `bun:"type,type:text"`
	URL      string   `bun:"url,type:text"`
	On       jsonText `bun:"on,type:jsonb"`
	Headers  jsonText `bun:"headers,type:jsonb"`
}

type sourceRow struct {
	bun.BaseModel `bun:"table:sources,alias:s"`

	ID                  string    `bun:"id,pk,type:text"`
	Repo                string    `bun:"repo,type:text"`
	Ref                 string    `bun:"ref,type:text"`
	Path                string    `bun:"path,type:text"`
	LastAttemptedCommit string    `bun:"last_attempted_commit,type:text"`
	LastAppliedCommit   string    `bun:"last_applied_commit,type:text"`
	Status              jsonText  `bun:"status,type:jsonb"`
	UpdatedAt           time.Time `bun:"updated_at,type:timestamptz"`
}

type applyRow struct {
	bun.BaseModel `bun:"table:apply_history,alias:a"`

	ID           int64     `bun:"id,pk,autoincrement,type:bigint"`
	SourceID     string    `bun:"source_id,type:text"`
	Revision     string    `bun:"revision,type:text"`
	Actor        string    `bun:"actor,type:text"`
	DryRun       bool      `bun:"dry_run,type:boolean"`
	Force        bool      `bun:"force,type:boolean"`
	Atomic       bool      `bun:"atomic,type:boolean"`
	Created      int       `bun:"created,type:integer"`
	Updated      int       `bun:"updated,type:integer"`
	Deleted      int       `bun:"deleted,type:integer"`
	Unchanged    int       `bun:"unchanged,type:integer"`
	Conflicts    int       `bun:"conflicts,type:integer"`
	Failed       int       `bun:"failed,type:integer"`
	PruneRefused string    `bun:"prune_refused,type:text"`
	Transfers    jsonText  `bun:"transfers,type:jsonb"`
	Error        string    `bun:"error,type:text"`
	StartedAt    time.Time `bun:"started_at,type:timestamptz"`
	FinishedAt   time.Time `bun:"finished_at,type:timestamptz"`
}

// jsonText is a JSON document column (JSON or JSONB on PostgreSQL, TEXT on
// SQLite), already marshalled. It goes to the database as a string literal:
// Bun would otherwise marshal a json.RawMessage in a JSON column again, which
// costs a third of a cold apply's CPU.
type jsonText []byte

var _ driver.Valuer = jsonText(nil)

// Value implements driver.Valuer; nil is NULL.
func (j jsonText) Value() (driver.Value, error) {
	if j == nil {
		return nil, nil
	}
	return string(j), nil
}

// Scan implements sql.Scanner.
func (j *jsonText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case string:
		*j = jsonText(v)
	case []byte:
		*j = append(jsonText(nil), v...)
	default:
		return fmt.Errorf("scan %T into a JSON column", src)
	}
	return nil
}
