// Package providers groups the adapters to outside systems, one subpackage
// each: git (repositories holding manifests), the forge webhooks, and the
// secret backends. Each subpackage owns its SDK: go-git is imported only by
// providers/git, the Vault SDK only by providers/vault. Providers may import
// schema and their own SDK, never store, reconcile, api, agent, config or
// executor.
package providers
