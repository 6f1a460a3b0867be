package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// Duration is a time.Duration written as a Go duration string ("90s", "1h30m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	if d == 0 {
		return ""
	}
	return time.Duration(d).String()
}

// MarshalJSON writes the duration as its string form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the string form written by MarshalJSON.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string: %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// JSONSchema describes a duration to editors.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type: "string",
		// time.ParseDuration's grammar, less what the validator rejects
		// anyway: a sign other than + and a bare 0 (durations are positive).
		Pattern:     `^\+?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`,
		Description: "Go duration such as 30s, 10m or 1h30m",
	}
}

func parseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit such as 30s, 10m or 1h30m", s)
	}
	return Duration(v), nil
}

// StringList is a list of strings that manifests may also write as a single
// string (next: load is next: [load]).
type StringList []string

// JSONSchema accepts a string or a list of strings.
func (StringList) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "string", MinLength: ptr(uint64(1))},
			{Type: "array", Items: &jsonschema.Schema{Type: "string", MinLength: ptr(uint64(1))}},
		},
		Description: "A step name or a list of step names",
	}
}

// Command is the argv of a step. Manifests write it as a YAML list of strings
// or, as older manifests do, as one string holding a JSON array.
type Command []string

// JSONSchema accepts a list of strings or a string holding a JSON array.
func (Command) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "array", Items: &jsonschema.Schema{Type: "string"}},
			{Type: "string", Pattern: `^\s*\[`},
		},
		Description: `Command and arguments: a list of strings, or a string holding a JSON array such as ["sh","-c","echo hi"]`,
	}
}

func parseJSONCommand(s string) (Command, error) {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "[") {
		return nil, fmt.Errorf("must be a list of strings (or a string holding a JSON array); to run a shell line write [\"sh\", \"-c\", %q]", s)
	}
	var c []string
	if err := json.Unmarshal([]byte(t), &c); err != nil {
		return nil, fmt.Errorf("string is not a JSON array of strings: %v", err)
	}
	return Command(c), nil
}

func ptr[T any](v T) *T { return &v }
