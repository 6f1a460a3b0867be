// Package api serves Caesium's REST API on gin: linting, diffing and
// applying job definitions, and reading and deleting jobs. The agent mounts
// it on its one HTTP server, which later also carries webhooks and the
// console; api/client is the typed client the CLI uses.
package api
