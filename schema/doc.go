// Package schema defines the v1 job definition: the manifest types, a strict
// decoder that reports every problem with its file, line, column and field
// path, the defaults the parser fills in, semantic validation, and the JSON
// Schema generated from the same types.
//
// What the parser returns is the complete, normalised spec: every default is
// filled in, so the store and the planner compare exactly what will run.
package schema
