// Package executor runs one run of a job: it walks the job's DAG of steps,
// decides with each step's trigger rule whether it runs or is skipped,
// resolves secret references in the environment per attempt, hands each
// attempt to an Engine, applies retries and timeouts, and returns the
// outcome of the run and of every step. SendCallbacks then notifies the
// job's callbacks of the outcome.
//
// The package knows no store and no container runtime: the caller claims
// runs and records task transitions (Options.OnTask), and each engine lives
// in its own subpackage (executor/docker) behind the Engine interface. It
// imports only schema and the standard library.
//
// docs/runs.md describes the behaviour for users: the "Execution" and
// "Callbacks" sections document this package.
package executor
