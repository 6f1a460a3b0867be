package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Children are the rows derived from a job's current spec: what the scheduler
// and executor read without decoding the spec.
type Children struct {
	Trigger   Trigger
	Tasks     []Task     // by position
	Edges     []TaskEdge // by from, then to (task ids)
	Callbacks []Callback // by position
}

// Trigger is what starts a job's runs.
type Trigger struct {
	Type          string
	Configuration json.RawMessage
}

// Task is one step of a job: the container (or process) to run.
type Task struct {
	ID          int64
	Name        string
	Position    int
	Engine      string
	Image       string
	Command     []string
	Env         map[string]string // literals or secret:// references, never resolved secrets
	Workdir     string
	Retries     int
	RetryDelay  time.Duration
	Timeout     time.Duration
	TriggerRule string
}

// TaskEdge says that To runs after From.
type TaskEdge struct {
	FromTaskID, ToTaskID int64
}

// Callback is a notification sent when a run ends.
type Callback struct {
	Position int
	Type     string
	URL      string
	On       []string
	Headers  map[string]string
}

// JobChildren returns the trigger, tasks, edges and callbacks of a job's
// current spec (kept after a soft delete). Errors: ErrNotFound when the job
// does not exist, ErrUnavailable.
func (s *Store) JobChildren(ctx context.Context, jobID int64) (Children, error) {
	op := fmt.Sprintf("get children of job %d", jobID)
	if err := s.check(); err != nil {
		return Children{}, s.wrap(op, err)
	}
	var out Children
	var trig triggerRow
	err := s.rdb.NewSelect().Model(&trig).Where("tr.job_id = ?", jobID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Children{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Children{}, s.wrap(op, err)
	}
	out.Trigger = Trigger{Type: trig.Type, Configuration: json.RawMessage(trig.Configuration)}

	var tasks []taskRow
	if err := s.rdb.NewSelect().Model(&tasks).Where("t.job_id = ?", jobID).OrderExpr("t.position").Scan(ctx); err != nil {
		return Children{}, s.wrap(op, err)
	}
	for _, t := range tasks {
		task := Task{
			ID:          t.ID,
			Name:        t.Name,
			Position:    t.Position,
			Engine:      t.Engine,
			Image:       t.Image,
			Workdir:     t.Workdir,
			Retries:     t.Retries,
			RetryDelay:  time.Duration(t.RetryDelayMS) * time.Millisecond,
			Timeout:     time.Duration(t.TimeoutMS) * time.Millisecond,
			TriggerRule: t.TriggerRule,
		}
		if err := json.Unmarshal(t.Command, &task.Command); err != nil {
			return Children{}, fmt.Errorf("%s: task %s command: %w", op, t.Name, err)
		}
		if err := unmarshalMap(t.Env, &task.Env); err != nil {
			return Children{}, fmt.Errorf("%s: task %s env: %w", op, t.Name, err)
		}
		out.Tasks = append(out.Tasks, task)
	}

	var edges []taskEdgeRow
	if err := s.rdb.NewSelect().Model(&edges).Where("e.job_id = ?", jobID).
		OrderExpr("e.from_task_id, e.to_task_id").Scan(ctx); err != nil {
		return Children{}, s.wrap(op, err)
	}
	for _, e := range edges {
		out.Edges = append(out.Edges, TaskEdge{FromTaskID: e.FromTaskID, ToTaskID: e.ToTaskID})
	}

	var callbacks []callbackRow
	if err := s.rdb.NewSelect().Model(&callbacks).Where("c.job_id = ?", jobID).OrderExpr("c.position").Scan(ctx); err != nil {
		return Children{}, s.wrap(op, err)
	}
	for _, c := range callbacks {
		cb := Callback{Position: c.Position, Type: c.Type, URL: c.URL}
		if err := json.Unmarshal(c.On, &cb.On); err != nil {
			return Children{}, fmt.Errorf("%s: callback %d on: %w", op, c.Position, err)
		}
		if err := unmarshalMap(c.Headers, &cb.Headers); err != nil {
			return Children{}, fmt.Errorf("%s: callback %d headers: %w", op, c.Position, err)
		}
		out.Callbacks = append(out.Callbacks, cb)
	}
	return out, nil
}
