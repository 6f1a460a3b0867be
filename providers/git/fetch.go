package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

const (
	repoDirName = "repo.git"
	// Our refs in the bare repository: what we offer the server as "haves".
	refHead = plumbing.ReferenceName("refs/caesium/head")
	refPrev = plumbing.ReferenceName("refs/caesium/prev")
	// git's own "infinite" depth, as sent by fetch --unshallow.
	infiniteDepth = 0x7fffffff
)

// Head returns the commit the configured ref points at on the remote, using
// one ref listing and no fetch. For a full-SHA ref it returns the SHA without
// any I/O; for a local source it reads the repository's refs (HEAD of a
// checkout is its checked-out commit). An annotated tag is peeled to its
// commit.
//
// Errors wrap ErrNotFound (no such ref, an empty repository, no default
// branch, no repository at a local path), ErrAuth, ErrHostKey, ErrConfig (a
// secret could not be resolved or used), or context.DeadlineExceeded /
// context.Canceled; anything else is a network or protocol error. No error
// contains a credential.
func (r *Repo) Head(ctx context.Context) (string, error) {
	if !r.ref.sha.IsZero() {
		return r.ref.sha.String(), nil
	}
	var head plumbing.Hash
	err := r.run(ctx, "head", func(ctx context.Context) error {
		var err error
		if r.src.kind == localSource {
			head, err = r.headLocal()
			return err
		}
		sess, closeSess, err := r.session(ctx)
		if err != nil {
			return err
		}
		defer closeSess()
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if err != nil {
			return err
		}
		head, _, err = resolveAdvertised(ar, r.ref.name)
		return err
	})
	if err != nil {
		return "", err
	}
	return head.String(), nil
}

// resolveAdvertised finds ref in a ref advertisement: "" is HEAD, a
// refs/... name is taken as is, a short name is tried as a branch, then as a
// tag. It returns the commit (annotated tags peeled) and the object to ask
// the server for (the tag object itself for an annotated tag).
func resolveAdvertised(ar *packp.AdvRefs, ref string) (commit, want plumbing.Hash, err error) {
	if ref == "" {
		if ar.Head == nil {
			return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("%w: the remote has no default branch (HEAD)", ErrNotFound)
		}
		return *ar.Head, *ar.Head, nil
	}
	candidates := []string{ref}
	if !strings.HasPrefix(ref, "refs/") {
		candidates = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	for _, name := range candidates {
		h, ok := ar.References[name]
		if !ok {
			continue
		}
		if peeled, ok := ar.Peeled[name]; ok {
			return peeled, h, nil
		}
		return h, h, nil
	}
	return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("%w: ref %q is not on the remote", ErrNotFound, ref)
}

// Fetch makes commit (a full SHA, normally from Head) available locally for
// Manifests and Changed: a shallow (depth 1) fetch of that one commit, no
// tags unless the source tracks that tag. It is a no-op when the commit is
// already present. Commits fetched earlier stay readable for Changed; the
// occasional compaction (see the package documentation) keeps the last two.
//
// When commit is no longer at the tip of any remote ref (the ref moved
// between Head and Fetch), Fetch asks for it by SHA if the server allows
// that; otherwise it fails with ErrNotFound, and the caller resolves Head
// again. Only for a source pinned to that very SHA does it fall back to
// fetching the full history of all branches and tags (once; slow on big
// repositories). A damaged bare repository is recreated and fetched again.
//
// For a local source Fetch only checks that the commit exists (ErrNotFound
// otherwise). Errors are as for Head.
func (r *Repo) Fetch(ctx context.Context, commit string) error {
	want, err := parseCommit(commit)
	if err != nil {
		return err
	}
	return r.run(ctx, "fetch", func(ctx context.Context) error {
		if r.src.kind == localSource {
			repo, err := r.openLocal()
			if err != nil {
				return err
			}
			defer closeStorer(repo.Storer)
			if !present(repo.Storer, want) {
				return fmt.Errorf("%w: commit %s is not in the local repository", ErrNotFound, want)
			}
			return nil
		}
		return r.fetchRemote(ctx, want)
	})
}

func parseCommit(s string) (plumbing.Hash, error) {
	if len(s) != 40 || !plumbing.IsHash(s) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %q is not a full commit SHA", ErrConfig, s)
	}
	return plumbing.NewHash(s), nil
}

func (r *Repo) fetchRemote(ctx context.Context, want plumbing.Hash) error {
	if r.suspect {
		r.log.Warn("a read found missing or corrupt objects; recreating the bare repository")
		if err := r.resetStore(); err != nil {
			return err
		}
	}
	st, err := r.openStore()
	if err != nil {
		return err
	}
	if present(st, want) {
		// Our refs only ever point at verified commits. Any other commit
		// may be the remains of an interrupted fetch: check it whole.
		have := haves(st)
		if slices.Contains(have, want) || verifyFetched(ctx, st, want, have) == nil {
			return nil
		}
	}
	if err := r.compactIfNeeded(ctx); err != nil {
		// Compaction is housekeeping: a failure must not block the sync.
		r.log.Warn("compacting the bare repository failed", slog.String("error", r.scrubText(err.Error())))
	}
	if st, err = r.openStore(); err != nil {
		return err
	}
	have := haves(st)
	err = r.fetchInto(ctx, st, want, have)
	if err != nil {
		// go-git leaves the partial pack behind when the stream breaks.
		removeTmpPacks(filepath.Join(r.cfg.Dir, repoDirName))
	}
	if err == nil {
		if verr := verifyFetched(ctx, st, want, have); verr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The server sent less than the commit needs (it trusted our
			// haves more than it should) or the store lost objects: start
			// from an empty repository, without haves.
			r.log.Warn("fetched commit is incomplete; recreating the bare repository and fetching again",
				slog.String("commit", want.String()), slog.String("error", r.scrubText(verr.Error())))
			if err := r.resetStore(); err != nil {
				return err
			}
			if st, err = r.openStore(); err != nil {
				return err
			}
			if err = r.fetchInto(ctx, st, want, nil); err == nil {
				err = verifyFetched(ctx, st, want, nil)
			}
		}
	}
	if err != nil {
		return err
	}
	return advanceRefs(st, want)
}

// fetchInto runs one upload-pack exchange for want. With haves, the server
// may send a thin pack (deltas against objects we have, which go-git
// cannot index as a pack): it is unpacked into loose objects, as git does
// for small fetches. Without thin packs a shallow fetch of one changed file
// would bring the whole tree again.
func (r *Repo) fetchInto(ctx context.Context, st *filesystem.Storage, want plumbing.Hash, have []plumbing.Hash) error {
	sess, closeSess, err := r.session(ctx)
	if err != nil {
		return err
	}
	defer closeSess()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	wants, depth, err := r.chooseWants(ar, want)
	if err != nil {
		return err
	}
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = wants
	if ar.Capabilities.Supports(capability.Shallow) {
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return err
		}
		req.Depth = packp.DepthCommits(depth)
		if req.Shallows, err = st.Shallow(); err != nil {
			return err
		}
	}
	if ar.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Haves = have
	// go-git's session filters thin-pack out of what the server offers;
	// git servers have supported it forever, so ask anyway.
	// Only for the usual small increment: a full-history fetch is better
	// stored as one pack than as loose objects.
	thin := len(have) > 0 && depth == 1
	if thin {
		if err := req.Capabilities.Set(capability.ThinPack); err != nil {
			return err
		}
	}
	resp, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil // nothing to send; verifyFetched decides
	}
	if err != nil {
		return err
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	var target storer.Storer = st
	if thin {
		// Hiding the PackfileWriter makes go-git parse the pack against
		// the store, resolving external deltas, and write loose objects.
		target = looseWriter{st}
	}
	if err := packfile.UpdateObjectStorage(target, pack); err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
		return err
	}
	// Shallow boundaries are recorded after the objects they describe, so
	// a crash in between leaves no boundary pointing at nothing.
	if len(resp.Shallows) > 0 || len(resp.Unshallows) > 0 {
		cur, err := st.Shallow()
		if err != nil {
			return err
		}
		set := map[plumbing.Hash]bool{}
		for _, h := range cur {
			set[h] = true
		}
		for _, h := range resp.Shallows {
			set[h] = true
		}
		for _, h := range resp.Unshallows {
			delete(set, h)
		}
		return st.SetShallow(sortedHashes(set))
	}
	return nil
}

// looseWriter is a storer without PackfileWriter.
type looseWriter struct{ storer.Storer }

// chooseWants picks what to ask the server for, and how deep.
func (r *Repo) chooseWants(ar *packp.AdvRefs, want plumbing.Hash) ([]plumbing.Hash, int, error) {
	if ar.Head != nil && *ar.Head == want {
		return []plumbing.Hash{want}, 1, nil
	}
	for _, h := range ar.References {
		if h == want {
			return []plumbing.Hash{want}, 1, nil
		}
	}
	for name, peeled := range ar.Peeled {
		if tag, ok := ar.References[name]; ok && peeled == want {
			// Servers accept advertised objects only: the tag, not the
			// commit it points at.
			return []plumbing.Hash{tag}, 1, nil
		}
	}
	if ar.Capabilities.Supports(capability.AllowReachableSHA1InWant) {
		return []plumbing.Hash{want}, 1, nil
	}
	if r.ref.sha == want {
		set := map[plumbing.Hash]bool{}
		for name, h := range ar.References {
			if strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/") {
				set[h] = true
			}
		}
		if ar.Head != nil {
			set[*ar.Head] = true
		}
		if len(set) == 0 {
			return nil, 0, fmt.Errorf("%w: the remote advertises no branches", ErrNotFound)
		}
		r.log.Info("pinned commit is not a branch or tag tip and the server does not serve commits by SHA; fetching full history",
			slog.String("commit", want.String()))
		return sortedHashes(set), infiniteDepth, nil
	}
	return nil, 0, fmt.Errorf("%w: commit %s is no longer advertised by the remote (the ref moved; resolve Head again)", ErrNotFound, want)
}

// haves lists our refs' commits that are really here.
func haves(st *filesystem.Storage) []plumbing.Hash {
	var out []plumbing.Hash
	for _, name := range []plumbing.ReferenceName{refHead, refPrev} {
		ref, err := st.Reference(name)
		if err == nil && present(st, ref.Hash()) {
			out = append(out, ref.Hash())
		}
	}
	return out
}

// advanceRefs points refs/caesium/head at the new commit and prev at the
// old head, and trims the shallow list to those two: only they are offered
// as haves, so only their boundaries matter to the server.
func advanceRefs(st *filesystem.Storage, commit plumbing.Hash) error {
	keep := map[plumbing.Hash]bool{commit: true}
	if old, err := st.Reference(refHead); err == nil && old.Hash() != commit {
		if err := st.SetReference(plumbing.NewHashReference(refPrev, old.Hash())); err != nil {
			return err
		}
		keep[old.Hash()] = true
	} else if prev, err := st.Reference(refPrev); err == nil {
		keep[prev.Hash()] = true
	}
	if err := st.SetReference(plumbing.NewHashReference(refHead, commit)); err != nil {
		return err
	}
	cur, err := st.Shallow()
	if err != nil {
		return err
	}
	var trimmed []plumbing.Hash
	for _, h := range cur {
		if keep[h] {
			trimmed = append(trimmed, h)
		}
	}
	if len(trimmed) == len(cur) {
		return nil
	}
	return st.SetShallow(trimmed)
}

// present reports whether the commit and its root tree can be read: the
// cheap check before a fetch. verifyFetched is the thorough one after it.
func present(s storer.EncodedObjectStorer, h plumbing.Hash) bool {
	c, err := object.GetCommit(s, h)
	if err != nil {
		return false
	}
	_, err = c.Tree()
	return err == nil
}

// verifyFetched checks that the fetched commit is whole: every tree
// decodes, and every blob that none of the haves' trees holds exists. Blobs
// the haves hold were checked when those commits were fetched; a pack
// received without haves is self-contained and was indexed whole. So a
// fetch that left holes is caught at once rather than by a later read.
func verifyFetched(ctx context.Context, s storer.EncodedObjectStorer, want plumbing.Hash, have []plumbing.Hash) error {
	known := map[plumbing.Hash]bool{}
	for _, h := range have {
		if err := walkTree(ctx, s, h, func(e object.TreeEntry) error {
			known[e.Hash] = true
			return nil
		}); err != nil {
			return err
		}
	}
	return walkTree(ctx, s, want, func(e object.TreeEntry) error {
		if len(have) == 0 || known[e.Hash] {
			return nil
		}
		// Not HasEncodedObject: with ExclusiveAccess it reports packed
		// objects missing (go-git v5.19.3).
		if _, err := s.EncodedObjectSize(e.Hash); err != nil {
			return fmt.Errorf("blob %s: %w", e.Hash, err)
		}
		return nil
	})
}

// walkTree decodes every tree of commit and calls blob for each file entry
// (submodules skipped).
func walkTree(ctx context.Context, s storer.EncodedObjectStorer, commit plumbing.Hash, blob func(object.TreeEntry) error) error {
	c, err := object.GetCommit(s, commit)
	if err != nil {
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return fmt.Errorf("root tree of %s: %w", commit, err)
	}
	n := 0
	var walk func(t *object.Tree) error
	walk = func(t *object.Tree) error {
		for _, e := range t.Entries {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			switch e.Mode {
			case filemode.Dir:
				sub, err := object.GetTree(s, e.Hash)
				if err != nil {
					return fmt.Errorf("tree %s: %w", e.Hash, err)
				}
				if err := walk(sub); err != nil {
					return err
				}
			case filemode.Submodule:
			default:
				if err := blob(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(tree)
}

// openStore opens the bare repository, creating it when missing and
// recreating it when it cannot be opened.
func (r *Repo) openStore() (*filesystem.Storage, error) {
	if r.store != nil {
		return r.store, nil
	}
	dir := filepath.Join(r.cfg.Dir, repoDirName)
	st, err := r.openExisting(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("bare repository unusable; recreating it", slog.String("error", r.scrubText(err.Error())))
		}
		if err := r.createStore(dir); err != nil {
			return nil, err
		}
		if st, err = r.openExisting(dir); err != nil {
			return nil, fmt.Errorf("open new bare repository: %w", err)
		}
	}
	r.store = st
	return st, nil
}

func (r *Repo) newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(), filesystem.Options{
		KeepDescriptors: true, // closed by Close and resetStore
		// Only this Repo writes here, so go-git may cache the lists of
		// packs and loose objects instead of probing the disk for every
		// object (10,000 failed opens per tree check otherwise).
		ExclusiveAccess: true,
		// Larger blobs are streamed rather than held (and cached) whole.
		LargeObjectThreshold: r.cfg.MaxFileBytes,
	})
}

// openExisting opens dir and checks it: git config and HEAD readable, the
// shallow list readable, our refs pointing at readable commits. It returns
// an error wrapping os.ErrNotExist when dir does not exist at all.
func (r *Repo) openExisting(dir string) (*filesystem.Storage, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		return nil, fmt.Errorf("no HEAD: %v", err) // not ErrNotExist: dir is there, broken
	}
	st := r.newStorage(dir)
	if err := checkStore(st); err != nil {
		_ = st.Close()
		return nil, err
	}
	removeTmpPacks(dir) // leftovers of a fetch that died mid-pack
	return st, nil
}

func removeTmpPacks(dir string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "tmp_*"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

func checkStore(st *filesystem.Storage) error {
	if _, err := gogit.Open(st, nil); err != nil {
		return err
	}
	if _, err := st.Shallow(); err != nil {
		return err
	}
	for _, name := range []plumbing.ReferenceName{refHead, refPrev} {
		ref, err := st.Reference(name)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !present(st, ref.Hash()) {
			return fmt.Errorf("%s points at an unreadable commit", name)
		}
	}
	return nil
}

// createStore initialises a bare repository under a temporary name and
// renames it into place, so a crash never leaves a half-made one at dir.
func (r *Repo) createStore(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), repoDirName+".tmp-")
	if err != nil {
		return err
	}
	st := r.newStorage(tmp)
	_, err = gogit.Init(st, nil)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("create bare repository: %w", err)
	}
	return nil
}

// resetStore closes and deletes the bare repository; the next openStore
// makes a new one.
func (r *Repo) resetStore() error {
	if r.store != nil {
		_ = r.store.Close()
		r.store = nil
	}
	r.suspect = false
	r.listings = nil
	if err := os.RemoveAll(filepath.Join(r.cfg.Dir, repoDirName)); err != nil {
		return fmt.Errorf("remove bare repository: %w", err)
	}
	return nil
}

// openLocal opens a local source in place, read-only in practice.
func (r *Repo) openLocal() (*gogit.Repository, error) {
	repo, err := gogit.PlainOpenWithOptions(r.src.path, &gogit.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, gogit.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%w: no git repository at %s", ErrNotFound, r.src.path)
	}
	if err != nil {
		return nil, err
	}
	fsst, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return repo, nil
	}
	// Reopen the same .git with the large-object threshold, so that an
	// oversized blob is sized without being read.
	st := filesystem.NewStorageWithOptions(fsst.Filesystem(), cache.NewObjectLRUDefault(),
		filesystem.Options{LargeObjectThreshold: r.cfg.MaxFileBytes})
	_ = fsst.Close()
	if repo, err = gogit.Open(st, nil); err != nil {
		_ = st.Close()
		return nil, err
	}
	return repo, nil
}

func closeStorer(s storer.Storer) {
	if c, ok := s.(io.Closer); ok {
		_ = c.Close()
	}
}

// headLocal resolves the ref in a local repository.
func (r *Repo) headLocal() (plumbing.Hash, error) {
	repo, err := r.openLocal()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer closeStorer(repo.Storer)
	var h plumbing.Hash
	if r.ref.name == "" {
		ref, err := repo.Head()
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return plumbing.ZeroHash, fmt.Errorf("%w: HEAD points at no commit", ErrNotFound)
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		h = ref.Hash()
	} else {
		candidates := []string{r.ref.name}
		if !strings.HasPrefix(r.ref.name, "refs/") {
			candidates = []string{"refs/heads/" + r.ref.name, "refs/tags/" + r.ref.name}
		}
		for _, name := range candidates {
			ref, err := repo.Reference(plumbing.ReferenceName(name), true)
			if err == nil {
				h = ref.Hash()
				break
			}
			if !errors.Is(err, plumbing.ErrReferenceNotFound) {
				return plumbing.ZeroHash, err
			}
		}
		if h.IsZero() {
			return plumbing.ZeroHash, fmt.Errorf("%w: ref %q is not in the repository", ErrNotFound, r.ref.name)
		}
	}
	// Peel annotated tags (possibly nested).
	for range 10 {
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("object %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%w: ref %q points at a %s, not a commit", ErrNotFound, r.ref.name, obj.Type())
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("ref %q: tags nested too deep", r.ref.name)
}

func sortedHashes(set map[plumbing.Hash]bool) []plumbing.Hash {
	out := make([]plumbing.Hash, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// compactLoose is git's gc.auto: past this many loose objects (estimated
// from one fan-out directory, as git does), the store is repacked.
const compactLoose = 6700

// compactIfNeeded repacks the bare repository when incremental fetches have
// left many loose objects: the commits of refs/caesium/head and prev, with
// their trees and blobs, go into one new pack in a fresh directory that
// replaces the old one. Older commits are dropped (Changed from them then
// fails with ErrNotFound, and the caller reads the whole revision).
func (r *Repo) compactIfNeeded(ctx context.Context) error {
	dir := filepath.Join(r.cfg.Dir, repoDirName)
	entries, _ := os.ReadDir(filepath.Join(dir, "objects", "17"))
	if len(entries)*256 < compactLoose && !r.compactAlways {
		return nil
	}
	st := r.store
	var roots []plumbing.Hash
	set := map[plumbing.Hash]bool{}
	for _, h := range haves(st) {
		roots = append(roots, h)
		set[h] = true
		c, err := object.GetCommit(st, h)
		if err != nil {
			return err
		}
		set[c.TreeHash] = true
		if err := walkTree(ctx, st, h, func(e object.TreeEntry) error {
			set[e.Hash] = true
			return nil
		}); err != nil {
			return err
		}
		// walkTree reports files only; add the trees.
		if err := collectTrees(ctx, st, c.TreeHash, set); err != nil {
			return err
		}
	}
	r.log.Info("compacting the bare repository", slog.Int("loose_estimate", len(entries)*256), slog.Int("objects", len(set)))
	tmp, err := os.MkdirTemp(r.cfg.Dir, repoDirName+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	nst := r.newStorage(tmp)
	defer nst.Close()
	if _, err := gogit.Init(nst, nil); err != nil {
		return err
	}
	if len(set) > 0 {
		w, err := nst.PackfileWriter()
		if err != nil {
			return err
		}
		_, err = packfile.NewEncoder(w, st, false).Encode(sortedHashes(set), 10)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for _, name := range []plumbing.ReferenceName{refHead, refPrev} {
		if ref, err := st.Reference(name); err == nil && set[ref.Hash()] {
			if err := nst.SetReference(ref); err != nil {
				return err
			}
		}
	}
	// The kept commits have no parents here: both are shallow.
	if err := nst.SetShallow(roots); err != nil {
		return err
	}
	if err := checkStore(nst); err != nil {
		return fmt.Errorf("compacted repository: %w", err)
	}
	_ = nst.Close()
	_ = r.store.Close()
	r.store = nil
	r.listings = nil
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	// A crash here leaves no repo.git: the next open starts afresh.
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

func collectTrees(ctx context.Context, s storer.EncodedObjectStorer, h plumbing.Hash, set map[plumbing.Hash]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	set[h] = true
	t, err := object.GetTree(s, h)
	if err != nil {
		return err
	}
	for _, e := range t.Entries {
		if e.Mode == filemode.Dir {
			if err := collectTrees(ctx, s, e.Hash, set); err != nil {
				return err
			}
		}
	}
	return nil
}
