package executor

import (
	"slices"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/schema"
)

func TestRuleMet(t *testing.T) {
	t.Parallel()
	const (
		ok   = TaskSucceeded
		fail = TaskFailed
		skip = TaskSkipped
	)
	tests := []struct {
		name     string
		rule     string
		upstream []string
		want     bool
	}{
		{"root runs under all_success", schema.RuleAllSuccess, nil, true},
		{"root runs under all_failed", schema.RuleAllFailed, nil, true},
		{"root runs under one_success", schema.RuleOneSuccess, nil, true},

		{"all_success all succeeded", schema.RuleAllSuccess, []string{ok, ok}, true},
		{"all_success one failed", schema.RuleAllSuccess, []string{ok, fail}, false},
		{"all_success one skipped", schema.RuleAllSuccess, []string{ok, skip}, false},

		{"all_done all succeeded", schema.RuleAllDone, []string{ok, ok}, true},
		{"all_done all failed", schema.RuleAllDone, []string{fail, fail}, true},
		{"all_done skipped", schema.RuleAllDone, []string{skip}, true},

		{"one_success one of two", schema.RuleOneSuccess, []string{fail, ok}, true},
		{"one_success none", schema.RuleOneSuccess, []string{fail, fail}, false},
		{"one_success skipped and failed", schema.RuleOneSuccess, []string{skip, fail}, false},

		{"all_failed all failed", schema.RuleAllFailed, []string{fail, fail}, true},
		{"all_failed one succeeded", schema.RuleAllFailed, []string{fail, ok}, false},
		{"all_failed skipped is not failed", schema.RuleAllFailed, []string{fail, skip}, false},

		{"always after success", schema.RuleAlways, []string{ok}, true},
		{"always after failure", schema.RuleAlways, []string{fail, fail}, true},
		{"always after skip", schema.RuleAlways, []string{skip}, true},

		{"unknown rule never runs", "sometimes", []string{ok}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ruleMet(tt.rule, tt.upstream); got != tt.want {
				t.Errorf("ruleMet(%s, %v) = %v, want %v", tt.rule, tt.upstream, got, tt.want)
			}
		})
	}
}

// job builds a normalized job; steps are "name:rule:upstream,upstream".
func job(steps ...string) *schema.Job {
	j := &schema.Job{APIVersion: "v1", Kind: "Job", Metadata: schema.Metadata{Alias: "demo"}}
	for _, s := range steps {
		parts := strings.SplitN(s+"::", ":", 3)
		st := schema.Step{Name: parts[0], Image: "busybox", TriggerRule: parts[1]}
		if up := strings.Trim(parts[2], ":"); up != "" {
			st.DependsOn = strings.Split(up, ",")
		}
		j.Steps = append(j.Steps, st)
	}
	schema.Normalize(j)
	return j
}

func TestDecide(t *testing.T) {
	t.Parallel()
	const (
		P = TaskPending
		R = TaskRunning
		S = TaskSucceeded
		F = TaskFailed
		K = TaskSkipped
	)
	diamond := job("a", "b::a", "c::a", "d::b,c")
	tests := []struct {
		name     string
		job      *schema.Job
		status   []string
		wantRun  []int
		wantSkip []int
	}{
		{"linear start: only the root", job("a", "b", "c"), []string{P, P, P}, []int{0}, nil},
		{"linear: next after success", job("a", "b", "c"), []string{S, P, P}, []int{1}, nil},
		{"linear: nothing while running", job("a", "b", "c"), []string{R, P, P}, nil, nil},
		{"linear: failure skips the rest", job("a", "b", "c"), []string{F, P, P}, nil, []int{1, 2}},
		{"independent roots all start", job("a", "b::", "c:all_success:a"), []string{P, P, P}, []int{0, 1}, nil},
		{"diamond fan-out", diamond, []string{S, P, P, P}, []int{1, 2}, nil},
		{"diamond join waits for both", diamond, []string{S, S, R, P}, nil, nil},
		{"diamond join runs", diamond, []string{S, S, S, P}, []int{3}, nil},
		{"diamond join skipped on one failure", diamond, []string{S, F, S, P}, nil, []int{3}},
		{"all_done after a skip chain", job("a", "b::a", "c:all_done:b"), []string{F, P, P}, []int{2}, []int{1}},
		{"all_failed after a skip is skipped", job("a", "b::a", "c:all_failed:b"), []string{F, P, P}, nil, []int{1, 2}},
		{"one_success with one mirror", job("m1", "m2::", "imp:one_success:m1,m2"), []string{F, S, P}, []int{2}, nil},
		{"always after a failure", job("a", "b:always:a"), []string{F, P}, []int{1}, nil},
		{"finished steps are not decided again", job("a", "b::a"), []string{S, S}, nil, nil},
		{"lower position skipped late still sorted", job("x", "a::x", "b:all_done:a", "c::"), []string{F, P, P, S}, []int{2}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := newDAG(tt.job)
			if err != nil {
				t.Fatal(err)
			}
			before := slices.Clone(tt.status)
			run, skip := d.decide(tt.status)
			if !slices.Equal(run, tt.wantRun) || !slices.Equal(skip, tt.wantSkip) {
				t.Errorf("decide(%v) = run %v skip %v, want run %v skip %v", tt.status, run, skip, tt.wantRun, tt.wantSkip)
			}
			if !slices.Equal(before, tt.status) {
				t.Errorf("decide modified its input: %v -> %v", before, tt.status)
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	t.Parallel()
	d, err := newDAG(job("a", "b::", "c:all_success:a,b", "d:all_failed:a,b"))
	if err != nil {
		t.Fatal(err)
	}
	st := []string{TaskFailed, TaskSucceeded, TaskPending, TaskPending}
	if got, want := d.skipReason(st, 2), "triggerRule all_success not met: upstream a failed"; got != want {
		t.Errorf("skipReason = %q, want %q", got, want)
	}
	if got, want := d.skipReason(st, 3), "triggerRule all_failed not met: upstream b succeeded"; got != want {
		t.Errorf("skipReason = %q, want %q", got, want)
	}
}

func TestNewDAGRejectsInvalidJobs(t *testing.T) {
	t.Parallel()
	withNext := func(j *schema.Job, from, to string) *schema.Job {
		for i := range j.Steps {
			if j.Steps[i].Name == from {
				j.Steps[i].Next = append(j.Steps[i].Next, to)
			}
		}
		return j
	}
	tests := []struct {
		name    string
		job     *schema.Job
		wantErr string
	}{
		{"cycle", withNext(job("a", "b::a", "c::b"), "c", "a"), "cycle through a, b, c"},
		{"unknown step", job("a", "b::nope"), `no step is named "nope"`},
		{"self edge", job("a", "b::b"), `step "b" cannot depend on itself`},
		{"duplicate name", job("a", "a::"), `step "a" is declared twice`},
		{"unknown rule", job("a", "b:sometimes:a"), `unknown triggerRule "sometimes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newDAG(tt.job)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("newDAG error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"under the limit", 8, []string{"abc", "de"}, "abcde"},
		{"exactly the limit", 5, []string{"abcde"}, "abcde"},
		{"one big write", 4, []string{"0123456789"}, "6789"},
		{"many small writes", 4, []string{"01", "23", "45", "67", "89"}, "6789"},
		{"compaction keeps the tail", 3, []string{"ab", "cd", "e", "fgh", "i"}, "ghi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tl := newTail(tt.max)
			for _, w := range tt.writes {
				if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
				if len(tl.buf) > 2*tt.max {
					t.Fatalf("buffer grew to %d bytes for a limit of %d", len(tl.buf), tt.max)
				}
			}
			if got := tl.String(); got != tt.want {
				t.Errorf("tail = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReservedEnvMatchesSchema: the variables Execute sets are the ones
// lint warns about.
func TestReservedEnvMatchesSchema(t *testing.T) {
	t.Parallel()
	got := []string{EnvRunID, EnvJob, EnvStep, EnvAttempt}
	if !slices.Equal(got, schema.ReservedEnv) {
		t.Errorf("executor sets %v, schema.ReservedEnv is %v", got, schema.ReservedEnv)
	}
}
