package store

import (
	"encoding/json"
	"time"
)

// Condition types of a source, after the Kubernetes convention: Ready says
// the last revision is applied; Reconciling that a sync is under way;
// Stalled that syncing fails and needs attention (Reason says why).
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Condition is one observation about a source.
type Condition struct {
	Type               string    `json:"type"`
	Status             bool      `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// SyncRecord is one reconcile of a source, kept in its status history.
type SyncRecord struct {
	Commit     string    `json:"commit,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMS int64     `json:"durationMs"`
	// Result is applied, unchanged (nothing to do), failed or invalid.
	Result    string `json:"result"`
	Created   int    `json:"created"`
	Updated   int    `json:"updated"`
	Deleted   int    `json:"deleted"`
	Unchanged int    `json:"unchanged"`
	Conflicts int    `json:"conflicts"`
	Failed    int    `json:"failed"`
	Error     string `json:"error,omitempty"`
}

// MaxSyncHistory is how many reconciles a source's status keeps.
const MaxSyncHistory = 20

// SourceStatus is the document kept in Source.Status.
type SourceStatus struct {
	Conditions    []Condition  `json:"conditions"`
	LastError     string       `json:"lastError,omitempty"`
	LastAttemptAt *time.Time   `json:"lastAttemptAt,omitempty"`
	LastAppliedAt *time.Time   `json:"lastAppliedAt,omitempty"`
	History       []SyncRecord `json:"history"` // newest first
}

// DecodeStatus reads the source's status; an empty status is the zero value.
func (s Source) DecodeStatus() (SourceStatus, error) {
	var st SourceStatus
	if len(s.Status) == 0 {
		return st, nil
	}
	err := json.Unmarshal(s.Status, &st)
	return st, err
}

// SetCondition records a condition, keeping its transition time when its
// status did not change.
func (st *SourceStatus) SetCondition(c Condition) {
	for i, old := range st.Conditions {
		if old.Type == c.Type {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// Condition returns the condition of that type, if recorded.
func (st *SourceStatus) Condition(typ string) (Condition, bool) {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// AddRecord puts a reconcile at the head of the history, keeping at most
// MaxSyncHistory.
func (st *SourceStatus) AddRecord(r SyncRecord) {
	st.History = append([]SyncRecord{r}, st.History...)
	if len(st.History) > MaxSyncHistory {
		st.History = st.History[:MaxSyncHistory]
	}
}
