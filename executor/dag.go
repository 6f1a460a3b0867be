package executor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caesium-io/caesium/schema"
)

// Task statuses, spelt as the store, the API and the docs spell them.
const (
	TaskPending   = "pending"
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskSkipped   = "skipped"
	TaskCancelled = "cancelled"
)

// Run statuses that Execute returns. A run is also queued before it starts,
// and skipped when its concurrency strategy drops it; the store sets those.
const (
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// dag is the job's steps as a graph of positions (step indexes).
type dag struct {
	names []string
	rules []string
	up    [][]int // up[i]: the steps i depends on, in position order
}

// newDAG builds the graph from job.Edges() of a normalized job. The schema
// validates jobs before they are stored, so an error here means a job that
// bypassed validation; the run fails without starting anything.
func newDAG(job *schema.Job) (*dag, error) {
	d := &dag{
		names: make([]string, len(job.Steps)),
		rules: make([]string, len(job.Steps)),
		up:    make([][]int, len(job.Steps)),
	}
	index := make(map[string]int, len(job.Steps))
	for i, s := range job.Steps {
		if _, dup := index[s.Name]; dup {
			return nil, fmt.Errorf("step %q is declared twice", s.Name)
		}
		index[s.Name] = i
		d.names[i] = s.Name
		switch s.TriggerRule {
		case schema.RuleAllSuccess, schema.RuleAllDone, schema.RuleOneSuccess, schema.RuleAllFailed, schema.RuleAlways:
			d.rules[i] = s.TriggerRule
		default:
			return nil, fmt.Errorf("step %q: unknown triggerRule %q", s.Name, s.TriggerRule)
		}
	}
	for _, e := range job.Edges() {
		from, ok := index[e.From]
		if !ok {
			return nil, fmt.Errorf("edge %s -> %s: no step is named %q", e.From, e.To, e.From)
		}
		to, ok := index[e.To]
		if !ok {
			return nil, fmt.Errorf("edge %s -> %s: no step is named %q", e.From, e.To, e.To)
		}
		if from == to {
			return nil, fmt.Errorf("step %q cannot depend on itself", e.From)
		}
		d.up[to] = append(d.up[to], from)
	}
	for i := range d.up {
		slices.Sort(d.up[i])
	}
	if cyc := d.cycle(); cyc != nil {
		return nil, fmt.Errorf("steps form a cycle through %s", strings.Join(cyc, ", "))
	}
	return d, nil
}

// cycle returns the names of the steps left over by Kahn's algorithm, nil
// when every step can be ordered.
func (d *dag) cycle() []string {
	indegree := make([]int, len(d.names))
	down := make([][]int, len(d.names))
	for to, ups := range d.up {
		indegree[to] = len(ups)
		for _, from := range ups {
			down[from] = append(down[from], to)
		}
	}
	var queue []int
	for i, n := range indegree {
		if n == 0 {
			queue = append(queue, i)
		}
	}
	ordered := 0
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		ordered++
		for _, j := range down[i] {
			if indegree[j]--; indegree[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	if ordered == len(d.names) {
		return nil
	}
	var left []string
	for i, n := range indegree {
		if n > 0 {
			left = append(left, d.names[i])
		}
	}
	return left
}

// finished reports whether a task status is final.
func finished(status string) bool {
	switch status {
	case TaskSucceeded, TaskFailed, TaskSkipped, TaskCancelled:
		return true
	}
	return false
}

// ruleMet reports whether a step with the trigger rule runs, given the
// final statuses of its upstream steps. A root step (no upstream) always
// runs. A skipped or cancelled upstream step counts as neither succeeded
// nor failed, so it fails all_success and all_failed, and a step whose only
// upstream was skipped is skipped in turn under those rules.
func ruleMet(rule string, upstream []string) bool {
	if len(upstream) == 0 {
		return true
	}
	succeeded, failed := 0, 0
	for _, s := range upstream {
		switch s {
		case TaskSucceeded:
			succeeded++
		case TaskFailed:
			failed++
		}
	}
	switch rule {
	case schema.RuleAllSuccess:
		return succeeded == len(upstream)
	case schema.RuleAllDone, schema.RuleAlways:
		return true
	case schema.RuleOneSuccess:
		return succeeded > 0
	case schema.RuleAllFailed:
		return failed == len(upstream)
	}
	return false
}

// decide looks at the pending steps whose upstream steps have all finished
// and returns those whose rule is met (run) and those whose rule is not
// (skip), both in position order. Skipping applies transitively within one
// call: a step skipped here counts as finished for the steps after it.
// status is not modified.
func (d *dag) decide(status []string) (run, skip []int) {
	st := slices.Clone(status)
	for changed := true; changed; {
		changed = false
		for i := range st {
			if st[i] != TaskPending || !d.upstreamFinished(st, i) {
				continue
			}
			if ruleMet(d.rules[i], d.upstream(st, i)) {
				run = append(run, i)
				st[i] = TaskRunning // decided; not a candidate again
				continue
			}
			skip = append(skip, i)
			st[i] = TaskSkipped
			changed = true
		}
	}
	slices.Sort(run)
	slices.Sort(skip)
	return run, skip
}

func (d *dag) upstreamFinished(status []string, i int) bool {
	for _, u := range d.up[i] {
		if !finished(status[u]) {
			return false
		}
	}
	return true
}

func (d *dag) upstream(status []string, i int) []string {
	out := make([]string, len(d.up[i]))
	for k, u := range d.up[i] {
		out[k] = status[u]
	}
	return out
}

// skipReason says why step i's rule was not met, naming the upstream steps
// that did not qualify: "triggerRule all_success not met: upstream extract
// failed, load skipped".
func (d *dag) skipReason(status []string, i int) string {
	var parts []string
	for _, u := range d.up[i] {
		s := status[u]
		ok := false
		switch d.rules[i] {
		case schema.RuleAllSuccess, schema.RuleOneSuccess:
			ok = s == TaskSucceeded
		case schema.RuleAllFailed:
			ok = s == TaskFailed
		}
		if !ok {
			parts = append(parts, d.names[u]+" "+s)
		}
	}
	return fmt.Sprintf("triggerRule %s not met: upstream %s", d.rules[i], strings.Join(parts, ", "))
}
