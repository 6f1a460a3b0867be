// Package store keeps Caesium's actual state: the jobs applied from Git sources
// or by hand, every spec version a run may have pinned, the rows derived from
// the current spec (trigger, tasks, task edges, callbacks), the sources and the
// history of applies. It is where desired state meets actual state: the
// planner in package reconcile lists the jobs, compares content hashes and
// hands ApplyChanges the changes, which run in one transaction per call.
//
// Two backends sit behind one API: SQLite (the pure-Go modernc.org/sqlite
// driver, no cgo) for a single agent, and PostgreSQL (pgx through
// database/sql) for several. Schema changes are versioned migrations, embedded
// in the binary and run by Open. Bun is imported by this package and by no
// other; database errors are translated here into ErrNotFound, ErrConflict and
// ErrUnavailable.
//
// Writes are batched: a cold apply of thousands of jobs costs a few
// multi-row statements per table, not one statement per row, and a job whose
// hash did not change costs nothing.
package store
