package git

// CompactOnEveryFetch makes each Fetch that brings a new commit repack the
// bare repository first, as it does past compactLoose loose objects.
func CompactOnEveryFetch(r *Repo) { r.compactAlways = true }
