// Package git is the Git side of a manifest source: it asks a remote which
// commit a ref points at (one ref listing, no fetch), fetches that commit into
// a persistent bare repository under the agent's data directory, and reads
// manifests straight from the commit's tree. It never checks out a worktree:
// go-git's checkout of a large tree is 25–30× slower than git's, while its
// object-store paths are on par (BenchmarkSync measures them against git).
//
// go-git is imported only here.
//
// # Layout on disk
//
// For a remote source, Config.Dir holds one bare repository, Dir/repo.git,
// created atomically (initialised under a temporary name, then renamed). The
// package keeps two refs of its own, refs/caesium/head (the last commit
// fetched) and refs/caesium/prev (the one before it); they are the "haves"
// offered to the server. Every fetch is shallow (depth 1) and names exactly
// one object, so no other branch and no tag comes along unless the source
// tracks that tag.
//
// The first fetch stores the server's pack as is. Later fetches ask for a
// thin pack (deltas against objects we already have) and unpack it into
// loose objects, as git does for small fetches: without a thin pack, a
// server answering a shallow fetch sends the whole tree again even when one
// file changed (measured: 690 KB instead of a few KB for 10,000 manifests).
// Past about 6,700 loose objects (git's gc.auto), a fetch first repacks the
// commits of head and prev into one pack in a fresh directory. Older commits
// are dropped then, and only then: Changed from one of them fails with
// ErrNotFound and the caller falls back to reading the whole revision.
//
// A bare repository that fails to open, whose refs point at missing objects,
// or in which a read found a missing or corrupt object, is removed and
// recreated on the next Fetch; a fetched commit is checked (every tree, and
// every blob the server assumed we had) before the refs move, and stray
// temporary packs from an interrupted fetch are deleted when the repository
// is opened. One Dir belongs to one Repo in one process.
//
// A local path (a checkout or a bare repository, or a file:// URL) is read in
// place: no copy, no git binary. Only committed content counts; uncommitted
// and untracked files in a checkout are ignored. Config.Dir is unused then.
//
// # Manifests
//
// Manifests walks the commit's tree under Config.Path, keeps the files whose
// path relative to Path matches one of Config.Globs (doublestar syntax), and
// drops those excluded by .caesiumignore files (gitignore syntax) found at the
// Path root and in its subdirectories; files above Path do not apply. As in
// git, a file inside an excluded directory cannot be re-included.
//
// A symlink is resolved inside the commit's tree, never on the filesystem. A
// link whose target is absolute, climbs above the repository root, resolves
// outside Path, is missing, is a directory, or takes more than 40 hops gets a
// File.Err wrapping ErrSymlink; nothing outside the tree is ever read.
// Symlinked directories are not descended into.
//
// # Credentials
//
// Passwords, tokens and keys are given as secret:// references resolved on
// each operation through a Resolver, so a rotated secret takes effect without
// a restart. Errors and Redacted never contain a password or token: URLs are
// redacted, and resolved secret values are scrubbed from error text.
//
// SSH always verifies the server's host key against Auth.KnownHosts; there is
// no switch to skip it. The user's ~/.ssh/config and ~/.ssh/known_hosts are
// not consulted.
package git
