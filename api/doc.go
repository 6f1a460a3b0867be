// Package api serves Caesium's REST API on gin: linting, diffing and
// applying job definitions, reading and deleting jobs, and starting,
// listing and cancelling their runs. It also holds what a client needs to
// sign an HTTP trigger request (SignTrigger). The agent mounts
// it on its one HTTP server, which later also carries webhooks and the
// console; api/client is the typed client the CLI uses.
package api
