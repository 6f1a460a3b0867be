package git

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	gogit "github.com/go-git/go-git/v5"
)

// LocateLocal finds the repository that holds a local directory: it returns
// the repository's root (the directory holding .git, or the bare
// repository) and dir's slash-separated path below it. It lets a CI job
// point the agent at a subdirectory of its checkout, such as ./jobs.
func LocateLocal(dir string) (root, sub string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("%w: local path: %v", ErrConfig, err)
	}
	repo, err := gogit.PlainOpenWithOptions(abs, &gogit.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, gogit.ErrRepositoryNotExists) {
		return "", "", fmt.Errorf("%w: %s is not inside a git repository", ErrNotFound, abs)
	}
	if err != nil {
		return "", "", fmt.Errorf("open %s: %w", abs, err)
	}
	root = abs
	if wt, err := repo.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", "", fmt.Errorf("%w: %s is not below the repository root %s", ErrConfig, abs, root)
	}
	if rel == "." {
		rel = ""
	}
	return root, filepath.ToSlash(rel), nil
}
