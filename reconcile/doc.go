// Package reconcile decides and executes the difference between desired
// job definitions (manifests) and the actual jobs in the store.
//
// Planning is pure: Plan takes the desired jobs, the actual jobs and options
// and returns a Changeset without doing any I/O. Apply executes a Changeset
// against the store. Keeping the two apart is what lets a dry run, a pull
// request comment and a real apply show exactly the same plan.
package reconcile
