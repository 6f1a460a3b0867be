package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// Normalize fills in every default, so that the stored and compared spec is
// the complete one. Normalizing a normalized job changes nothing.
//
//   - $schema is dropped: it serves editors, not runs.
//   - trigger.type defaults to manual; a cron trigger's timezone to UTC; an
//     http trigger's signatureScheme to hmac-sha256.
//   - concurrency defaults to one run at a time, queueing the rest.
//   - callbacks default to type webhook, sent on success and failure.
//   - steps default to the docker engine, the all_success rule and the job's
//     taskTimeout.
//   - when no step declares next or dependsOn, each step depends on the one
//     before it in the file: file order, written out as edges.
func Normalize(j *Job) {
	j.Schema = ""
	if j.Trigger.Type == "" {
		j.Trigger.Type = TriggerManual
	}
	switch j.Trigger.Type {
	case TriggerCron:
		if j.Trigger.Configuration.Timezone == "" {
			j.Trigger.Configuration.Timezone = "UTC"
		}
	case TriggerHTTP:
		if j.Trigger.Configuration.SignatureScheme == "" {
			j.Trigger.Configuration.SignatureScheme = SignatureHMACSHA256
		}
	}
	if j.Metadata.Concurrency.MaxRuns == 0 {
		j.Metadata.Concurrency.MaxRuns = 1
	}
	if j.Metadata.Concurrency.Strategy == "" {
		j.Metadata.Concurrency.Strategy = ConcurrencyQueue
	}
	for i := range j.Callbacks {
		c := &j.Callbacks[i]
		if c.Type == "" {
			c.Type = CallbackWebhook
		}
		if c.On == nil {
			c.On = []string{OnSuccess, OnFailure}
		}
	}
	hasEdges := false
	for i := range j.Steps {
		s := &j.Steps[i]
		if s.Engine == "" {
			s.Engine = EngineDocker
		}
		if s.TriggerRule == "" {
			s.TriggerRule = RuleAllSuccess
		}
		if s.Timeout == 0 {
			s.Timeout = j.Metadata.TaskTimeout
		}
		if len(s.Next) > 0 || len(s.DependsOn) > 0 {
			hasEdges = true
		}
	}
	if !hasEdges {
		for i := 1; i < len(j.Steps); i++ {
			j.Steps[i].DependsOn = StringList{j.Steps[i-1].Name}
		}
	}
}

// Edge is a dependency between two steps: To runs after From.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Edges lists the job's dependencies from next and dependsOn, without
// duplicates, sorted by From then To. Call it on a normalized job so that
// file order is included.
func (j *Job) Edges() []Edge {
	seen := map[Edge]bool{}
	var out []Edge
	add := func(e Edge) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, s := range j.Steps {
		for _, n := range s.Next {
			add(Edge{From: s.Name, To: n})
		}
		for _, d := range s.DependsOn {
			add(Edge{From: d, To: s.Name})
		}
	}
	slices.SortFunc(out, func(a, b Edge) int {
		if a.From != b.From {
			if a.From < b.From {
				return -1
			}
			return 1
		}
		switch {
		case a.To < b.To:
			return -1
		case a.To > b.To:
			return 1
		}
		return 0
	})
	return out
}

// Hash returns the content hash of the job's spec: the hex SHA-256 of its
// canonical JSON. Two jobs with equal hashes run identically, so a job whose
// hash is unchanged needs no write.
func (j *Job) Hash() string {
	b, err := j.CanonicalJSON()
	if err != nil {
		panic(fmt.Sprintf("schema: marshal job: %v", err)) // cannot fail for these types
	}
	return SpecHash(b)
}

// SpecHash is the content hash of a spec already encoded with
// CanonicalJSON: SpecHash(j.CanonicalJSON()) == j.Hash(), without encoding
// the job a second time.
func SpecHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// CanonicalJSON is the job's spec as stored: struct fields in declaration
// order, map keys sorted, empty optional fields left out.
func (j *Job) CanonicalJSON() ([]byte, error) { return json.Marshal(j) }

// Clone returns a deep copy of the job.
func (j *Job) Clone() *Job {
	b, err := j.CanonicalJSON()
	if err != nil {
		panic(fmt.Sprintf("schema: marshal job: %v", err))
	}
	var out Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("schema: unmarshal job: %v", err))
	}
	out.Schema = j.Schema
	return &out
}
