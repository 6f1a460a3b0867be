// Package env resolves secret://env/NAME references from the agent's
// environment. It suits secrets injected by a service manager or a container
// runtime; it never reads anything but the one variable named.
package env

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	"github.com/caesium-io/caesium/schema"
)

// Env resolves secret://env/NAME references. It is safe for concurrent use
// if its lookup function is (os.LookupEnv is).
type Env struct {
	lookup func(string) (string, bool)
}

// New returns an Env that reads variables through lookup: os.LookupEnv in
// production, a map in tests. A nil lookup means os.LookupEnv.
func New(lookup func(string) (string, bool)) *Env {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Env{lookup: lookup}
}

// Resolve returns the value of the variable ref names. A variable that is
// not set, or set but empty, is an error matching fs.ErrNotExist (the secret
// router reports it as not found): an empty secret is never returned. Errors
// name the reference, never a value.
func (e *Env) Resolve(ctx context.Context, ref schema.SecretRef) (string, error) {
	if ref.Backend != schema.SecretEnv || ref.Name == "" {
		return "", fmt.Errorf("%s: not an env secret reference", refString(ref))
	}
	v, ok := e.lookup(ref.Name)
	if !ok {
		return "", &notFoundError{msg: fmt.Sprintf("%s: environment variable %s is not set", refString(ref), ref.Name)}
	}
	if v == "" {
		return "", &notFoundError{msg: fmt.Sprintf("%s: environment variable %s is empty", refString(ref), ref.Name)}
	}
	return v, nil
}

// notFoundError matches fs.ErrNotExist, the "no such secret" contract shared
// by the secret backends, which do not import one another.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// refString names ref in errors, also for a SecretRef built by hand rather
// than parsed (whose String is empty).
func refString(ref schema.SecretRef) string {
	if s := ref.String(); s != "" {
		return s
	}
	return schema.SecretScheme + schema.SecretEnv + "/" + ref.Name
}
