package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

const (
	ignoreFile = ".caesiumignore"
	// maxSymlinkHops is Linux's limit (ELOOP after 40 links).
	maxSymlinkHops = 40
	// maxLinkTarget bounds a symlink's target text; PATH_MAX.
	maxLinkTarget = 4096
)

// Manifests lists the files of commit under Config.Path that match
// Config.Globs and are not excluded by .caesiumignore files, sorted by path,
// read from the commit's tree (no worktree). The commit must have been
// fetched (ErrNotFound otherwise, as when Path is not in the commit).
//
// Per-file problems are File.Err, wrapping ErrTooLarge (over MaxFileBytes,
// the blob is not read whole) or ErrSymlink (see the package documentation).
// Whole-revision errors: more than MaxFiles manifests (ErrTooManyFiles,
// naming the count and the limit); a .caesiumignore that is a symlink or
// over MaxFileBytes (what it excludes is unknown, so nothing is listed);
// missing or corrupt objects (the next Fetch then recreates the bare
// repository).
func (r *Repo) Manifests(ctx context.Context, commit string) ([]File, error) {
	h, err := parseCommit(commit)
	if err != nil {
		return nil, err
	}
	var files []File
	err = r.run(ctx, "manifests", func(ctx context.Context) error {
		return r.withObjects(func(s storer.EncodedObjectStorer) error {
			entries, err := r.list(ctx, s, h)
			if err != nil {
				return err
			}
			files, err = r.read(ctx, s, entries)
			return err
		})
	})
	return files, err
}

// Changed lists the manifest paths (as in Manifests: under Path, matching
// Globs, not ignored) added, modified or deleted between two fetched
// commits, sorted. It compares the two revisions' manifest listings (path →
// blob, after ignore rules and symlink resolution), reading no file content:
// so an edited .caesiumignore or a symlink whose target changed shows up
// too, as does a file that became (or stopped being) a File.Err. Errors as
// for Manifests; ErrNotFound when either commit is not present.
func (r *Repo) Changed(ctx context.Context, from, to string) ([]string, error) {
	fh, err := parseCommit(from)
	if err != nil {
		return nil, err
	}
	th, err := parseCommit(to)
	if err != nil {
		return nil, err
	}
	var changed []string
	err = r.run(ctx, "changed", func(ctx context.Context) error {
		return r.withObjects(func(s storer.EncodedObjectStorer) error {
			a, err := r.list(ctx, s, fh)
			if err != nil {
				return err
			}
			b, err := r.list(ctx, s, th)
			if err != nil {
				return err
			}
			changed = diffEntries(a, b)
			return nil
		})
	})
	return changed, err
}

// Files reads the named manifests of commit: the paths Changed returned, for
// an incremental sync. The same rules as for Manifests decide what is a
// manifest (Path, Globs, .caesiumignore) and the same per-file errors apply;
// a path that is not a manifest at commit (deleted, ignored, never was) is
// left out. The result is sorted by path. Errors as for Manifests.
func (r *Repo) Files(ctx context.Context, commit string, paths []string) ([]File, error) {
	h, err := parseCommit(commit)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(paths))
	for _, p := range paths {
		want[p] = true
	}
	var files []File
	err = r.run(ctx, "files", func(ctx context.Context) error {
		return r.withObjects(func(s storer.EncodedObjectStorer) error {
			entries, err := r.list(ctx, s, h)
			if err != nil {
				return err
			}
			var sel []entry
			for _, e := range entries {
				if want[e.path] {
					sel = append(sel, e)
				}
			}
			files, err = r.read(ctx, s, sel)
			return err
		})
	})
	return files, err
}

// withObjects runs f on the object store to read from: the bare repository,
// or a local source in place.
func (r *Repo) withObjects(f func(storer.EncodedObjectStorer) error) error {
	if r.src.kind == localSource {
		repo, err := r.openLocal()
		if err != nil {
			return err
		}
		defer closeStorer(repo.Storer)
		return f(repo.Storer)
	}
	st, err := r.openStore()
	if err != nil {
		return err
	}
	err = f(st)
	var de *damageError
	if errors.As(err, &de) {
		r.suspect = true
	}
	return err
}

// damageError marks a missing or unreadable object inside a commit that is
// present: the local copy is damaged.
type damageError struct{ err error }

func (e *damageError) Error() string {
	return e.err.Error() + " (local copy damaged; the next fetch recreates it)"
}
func (e *damageError) Unwrap() error { return e.err }

// entry is one manifest in a listing.
type entry struct {
	path string        // relative to the repository root
	blob plumbing.Hash // content (the target's, for a symlink); zero if err
	err  error         // per-file problem
}

func diffEntries(a, b []entry) []string {
	type state struct {
		blob plumbing.Hash
		err  string
	}
	key := func(e entry) state {
		if e.err != nil {
			return state{err: e.err.Error()}
		}
		return state{blob: e.blob}
	}
	old := make(map[string]state, len(a))
	for _, e := range a {
		old[e.path] = key(e)
	}
	var out []string
	for _, e := range b {
		k, ok := old[e.path]
		if !ok || k != key(e) {
			out = append(out, e.path)
		}
		delete(old, e.path)
	}
	for p := range old {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// lister walks one commit's tree.
type lister struct {
	ctx   context.Context
	s     storer.EncodedObjectStorer
	root  *object.Tree
	base  string // Config.Path, "" for the root
	globs []string
	max   int64
	n     int
	out   []entry
	// trees caches decoded trees by hash, and their entries by name, for
	// symlink resolution.
	trees map[plumbing.Hash]*object.Tree
	names map[plumbing.Hash]map[string]object.TreeEntry
}

// listCacheSize is how many revisions' listings are kept: an incremental
// sync lists the old and the new revision for Changed, then the new one
// again for Files, and the next sync starts from that one.
const listCacheSize = 3

// listing is a cached listing; commits are immutable and the rules fixed
// per Repo, so a listing never goes stale.
type listing struct {
	commit  plumbing.Hash
	entries []entry
}

// list returns commit's manifests without reading them. The result is
// shared: callers must not modify it.
func (r *Repo) list(ctx context.Context, s storer.EncodedObjectStorer, commit plumbing.Hash) ([]entry, error) {
	for _, l := range r.listings {
		// Still present: compaction drops old commits.
		if l.commit == commit && present(s, commit) {
			return l.entries, nil
		}
	}
	entries, err := r.listUncached(ctx, s, commit)
	if err != nil {
		return nil, err
	}
	if len(r.listings) == listCacheSize {
		r.listings = r.listings[1:]
	}
	r.listings = append(r.listings, listing{commit: commit, entries: entries})
	return entries, nil
}

func (r *Repo) listUncached(ctx context.Context, s storer.EncodedObjectStorer, commit plumbing.Hash) ([]entry, error) {
	c, err := object.GetCommit(s, commit)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: commit %s is not present (fetch it first)", ErrNotFound, commit)
	}
	if err != nil {
		return nil, &damageError{fmt.Errorf("commit %s: %w", commit, err)}
	}
	root, err := c.Tree()
	if err != nil {
		return nil, &damageError{fmt.Errorf("root tree of %s: %w", commit, err)}
	}
	l := &lister{
		ctx: ctx, s: s, root: root, base: r.cfg.Path, globs: r.cfg.Globs, max: r.cfg.MaxFileBytes,
		trees: map[plumbing.Hash]*object.Tree{}, names: map[plumbing.Hash]map[string]object.TreeEntry{},
	}
	src := root
	if l.base != "" {
		e, ok, err := l.lookup(strings.Split(l.base, "/"))
		if err != nil {
			return nil, err
		}
		if !ok || e.Mode != filemode.Dir {
			return nil, fmt.Errorf("%w: path %q is not a directory in commit %s", ErrNotFound, l.base, commit)
		}
		if src, err = l.tree(e.Hash); err != nil {
			return nil, err
		}
	}
	if err := l.walk(src, nil, nil); err != nil {
		return nil, err
	}
	if len(l.out) > r.cfg.MaxFiles {
		return nil, fmt.Errorf("%w: commit %s has %d manifests under %q, the limit is %d",
			ErrTooManyFiles, commit, len(l.out), "/"+l.base, r.cfg.MaxFiles)
	}
	sort.Slice(l.out, func(i, j int) bool { return l.out[i].path < l.out[j].path })
	return l.out, nil
}

func (l *lister) tree(h plumbing.Hash) (*object.Tree, error) {
	if t, ok := l.trees[h]; ok {
		return t, nil
	}
	t, err := object.GetTree(l.s, h)
	if err != nil {
		return nil, &damageError{fmt.Errorf("tree %s: %w", h, err)}
	}
	l.trees[h] = t
	return t, nil
}

// walk lists tree, at rel (components relative to Path), with the ignore
// patterns ps of the directories above.
func (l *lister) walk(t *object.Tree, rel []string, ps []gitignore.Pattern) error {
	for _, e := range t.Entries {
		if e.Name != ignoreFile {
			continue
		}
		if !e.Mode.IsFile() || e.Mode == filemode.Symlink {
			return fmt.Errorf("%s: a symlink or non-file is not supported", l.repoPath(rel, ignoreFile))
		}
		data, err := l.readBlob(e.Hash)
		if err != nil {
			return fmt.Errorf("%s: %w", l.repoPath(rel, ignoreFile), err)
		}
		// A fresh slice: siblings must not see each other's patterns.
		ps = append(slices.Clip(ps), parseIgnore(data, rel)...)
	}
	m := gitignore.NewMatcher(ps)
	for _, e := range t.Entries {
		if l.n++; l.n%1024 == 0 {
			if err := l.ctx.Err(); err != nil {
				return err
			}
		}
		p := append(slices.Clip(rel), e.Name)
		switch e.Mode {
		case filemode.Dir:
			if len(ps) > 0 && m.Match(p, true) {
				continue
			}
			sub, err := object.GetTree(l.s, e.Hash) // not cached: walked once
			if err != nil {
				return &damageError{fmt.Errorf("tree %s: %w", e.Hash, err)}
			}
			if err := l.walk(sub, p, ps); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
			relPath := strings.Join(p, "/")
			if !l.matches(relPath) || (len(ps) > 0 && m.Match(p, false)) {
				continue
			}
			full := l.repoPath(rel, e.Name)
			if e.Mode != filemode.Symlink {
				l.out = append(l.out, entry{path: full, blob: e.Hash})
				continue
			}
			h, err := l.resolve(full, e.Hash)
			var de *damageError
			if errors.As(err, &de) {
				return err
			}
			l.out = append(l.out, entry{path: full, blob: h, err: err})
		}
		// Submodules are not part of this repository's content.
	}
	return nil
}

func (l *lister) matches(rel string) bool {
	for _, g := range l.globs {
		if doublestar.MatchUnvalidated(g, rel) {
			return true
		}
	}
	return false
}

func (l *lister) repoPath(rel []string, name string) string {
	parts := make([]string, 0, len(rel)+2)
	if l.base != "" {
		parts = append(parts, l.base)
	}
	parts = append(parts, rel...)
	return strings.Join(append(parts, name), "/")
}

// parseIgnore reads gitignore syntax; domain is the directory of the file
// relative to Path.
func parseIgnore(data []byte, domain []string) []gitignore.Pattern {
	var ps []gitignore.Pattern
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `\#`) {
			line = line[1:]
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}

// lookup finds the entry at the slash-free components comps from the
// repository root, without following symlinks.
func (l *lister) lookup(comps []string) (object.TreeEntry, bool, error) {
	t := l.root
	for i, c := range comps {
		names, ok := l.names[t.Hash]
		if !ok {
			names = make(map[string]object.TreeEntry, len(t.Entries))
			for _, e := range t.Entries {
				names[e.Name] = e
			}
			l.names[t.Hash] = names
		}
		e, ok := names[c]
		if !ok {
			return object.TreeEntry{}, false, nil
		}
		if i == len(comps)-1 {
			return e, true, nil
		}
		if e.Mode != filemode.Dir {
			return e, false, nil
		}
		var err error
		if t, err = l.tree(e.Hash); err != nil {
			return object.TreeEntry{}, false, err
		}
	}
	return object.TreeEntry{Mode: filemode.Dir, Hash: t.Hash}, true, nil
}

// resolve follows the symlink at linkPath (repository-relative) inside the
// commit's tree and returns the blob it ends at. Errors wrap ErrSymlink,
// except damageError for unreadable objects.
func (l *lister) resolve(linkPath string, blob plumbing.Hash) (plumbing.Hash, error) {
	fail := func(format string, a ...any) (plumbing.Hash, error) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s: %s", ErrSymlink, linkPath, fmt.Sprintf(format, a...))
	}
	target, err := l.readLink(blob)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	first := target
	comps := strings.Split(linkPath, "/")
	cur := slices.Clone(comps[:len(comps)-1]) // the link's directory
	parts := strings.Split(target, "/")
	if strings.HasPrefix(target, "/") {
		return fail("absolute target %q leaves the repository", first)
	}
	hops := 1
	var last object.TreeEntry
	reached := false
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return fail("target %q leaves the repository", first)
			}
			cur = cur[:len(cur)-1]
			reached = false
			continue
		}
		cur = append(cur, p)
		e, ok, err := l.lookup(cur)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if !ok {
			return fail("target %q does not exist", first)
		}
		switch {
		case e.Mode == filemode.Symlink:
			if hops++; hops > maxSymlinkHops {
				return fail("too many levels of symbolic links (a loop?)")
			}
			next, err := l.readLink(e.Hash)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if strings.HasPrefix(next, "/") {
				return fail("target %q leads to absolute %q, outside the repository", first, next)
			}
			cur = cur[:len(cur)-1]
			parts = append(strings.Split(next, "/"), parts...)
			reached = false
		case e.Mode == filemode.Dir:
			reached = false
		case e.Mode.IsFile():
			if len(parts) > 0 {
				return fail("target %q: %s is not a directory", first, strings.Join(cur, "/"))
			}
			last, reached = e, true
		default:
			return fail("target %q is a submodule", first)
		}
	}
	if !reached {
		return fail("target %q is a directory", first)
	}
	resolved := strings.Join(cur, "/")
	if l.base != "" && !strings.HasPrefix(resolved, l.base+"/") {
		return fail("target %q resolves to %s, outside the source path %q", first, resolved, l.base)
	}
	return last.Hash, nil
}

func (l *lister) readLink(h plumbing.Hash) (string, error) {
	obj, err := l.s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return "", &damageError{fmt.Errorf("blob %s: %w", h, err)}
	}
	if obj.Size() > maxLinkTarget {
		return "", fmt.Errorf("%w: symlink target longer than %d bytes", ErrSymlink, maxLinkTarget)
	}
	data, err := readObject(obj)
	if err != nil {
		return "", &damageError{fmt.Errorf("blob %s: %w", h, err)}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in symlink target", ErrSymlink)
	}
	return string(data), nil
}

// readBlob reads a blob of at most l.max bytes; a larger one wraps
// ErrTooLarge without being read.
func (l *lister) readBlob(h plumbing.Hash) ([]byte, error) {
	return readBlob(l.s, h, l.max)
}

func readBlob(s storer.EncodedObjectStorer, h plumbing.Hash, max int64) ([]byte, error) {
	obj, err := s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, &damageError{fmt.Errorf("blob %s: %w", h, err)}
	}
	if size := obj.Size(); size > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, max)
	}
	data, err := readObject(obj)
	if err != nil {
		return nil, &damageError{fmt.Errorf("blob %s: %w", h, err)}
	}
	return data, nil
}

func readObject(obj plumbing.EncodedObject) ([]byte, error) {
	rd, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data := make([]byte, obj.Size())
	if _, err := io.ReadFull(rd, data); err != nil {
		return nil, err
	}
	return data, nil
}

// read loads the listed files.
func (r *Repo) read(ctx context.Context, s storer.EncodedObjectStorer, entries []entry) ([]File, error) {
	files := make([]File, len(entries))
	for i, e := range entries {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		f := File{Path: e.path, Err: e.err}
		if e.err == nil {
			f.Blob = e.blob.String()
			data, err := readBlob(s, e.blob, r.cfg.MaxFileBytes)
			switch {
			case errors.Is(err, ErrTooLarge):
				f.Err = fmt.Errorf("%s: %w", e.path, err)
			case err != nil:
				return nil, err
			default:
				f.Data = data
			}
		}
		files[i] = f
	}
	return files, nil
}
