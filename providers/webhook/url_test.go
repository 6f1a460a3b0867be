package webhook_test

import (
	"testing"

	"github.com/caesium-io/caesium/providers/webhook"
)

func TestNormalizeRepoURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		// The equivalence class from the issue.
		{"https, mixed case, .git", "https://GitHub.com/Acme/Jobs.git", "github.com/acme/jobs"},
		{"http", "http://github.com/acme/jobs", "github.com/acme/jobs"},
		{"ssh with port", "ssh://git@github.com:22/acme/jobs.git", "github.com/acme/jobs"},
		{"scp-like", "git@github.com:acme/jobs.git", "github.com/acme/jobs"},
		{"user, token, trailing slash", "https://user:tok@github.com/acme/jobs/", "github.com/acme/jobs"},

		{"git protocol", "git://github.com/Acme/Jobs.git", "github.com/acme/jobs"},
		{"ssh over 443", "ssh://git@ssh.github.com:443/acme/jobs.git", "github.com/acme/jobs"},
		{"web url with query and fragment", "https://github.com/acme/jobs?tab=readme#top", "github.com/acme/jobs"},
		{"repeated slashes", "https://github.com//acme///jobs.git//", "github.com/acme/jobs"},
		{"host trailing dot", "https://github.com./acme/jobs", "github.com/acme/jobs"},
		{"host trailing dots", "https://git.acme.example../acme/jobs", "git.acme.example/acme/jobs"},
		{"blank last segment", "A: /", ""},
		{"blank segment before .git", "https://h.example/a/b/ .git", "h.example/a/b"},
		{"scp path with ://", "git.acme.example:acme://jobs", "git.acme.example/acme:/jobs"},
		{"surrounding space", "  git@github.com:acme/jobs.git\n", "github.com/acme/jobs"},
		{"scp with absolute path", "git@github.com:/acme/jobs.git", "github.com/acme/jobs"},
		{"scp with password", "user:tok@github.com:acme/jobs.git", "github.com/acme/jobs"},
		{"git+ssh", "git+ssh://git@github.com/acme/jobs", "github.com/acme/jobs"},
		{"bare host/path", "github.com/Acme/Jobs", "github.com/acme/jobs"},
		{"github .GIT suffix", "git@GitHub.com:Acme/Jobs.GIT", "github.com/acme/jobs"},
		{"github .git only, mixed case", "githuB.Com:.giT", ""},
		{"other host keeps .GIT", "https://git.acme.example/acme/jobs.GIT", "git.acme.example/acme/jobs.GIT"},
		{"doubled .git", "https://github.com/acme/jobs.git.git", "github.com/acme/jobs"},

		// Path case is kept off github.com.
		{"gitlab keeps path case", "https://GitLab.com/Acme/Jobs.git", "gitlab.com/Acme/Jobs"},
		{"self-hosted ssh with port", "ssh://git@git.acme.example:2222/acme/jobs.git", "git.acme.example/acme/jobs"},
		{"nested groups", "git@gitlab.acme.example:platform/ops/jobs.git", "gitlab.acme.example/platform/ops/jobs"},
		{"bitbucket server http", "https://bitbucket.acme.example/scm/ops/jobs.git", "bitbucket.acme.example/scm/ops/jobs"},
		{"bitbucket server ssh", "ssh://git@bitbucket.acme.example:7999/ops/jobs.git", "bitbucket.acme.example/ops/jobs"},
		{"ipv6 with port", "https://[2001:DB8::1]:8443/acme/jobs.git", "[2001:db8::1]/acme/jobs"},
		{"ipv6 scp", "git@[2001:db8::1]:acme/jobs.git", "[2001:db8::1]/acme/jobs"},
		{"loopback test server", "http://127.0.0.1:41234/acme/jobs.git", "127.0.0.1/acme/jobs"},
		{"scp without user", "github.com:acme/jobs", "github.com/acme/jobs"},

		// Nothing to match.
		{"empty", "", ""},
		{"host only", "https://github.com/", ""},
		{"only .git", "https://github.com/.git", ""},
		{"local path", "/srv/git/jobs.git", ""},
		{"file url", "file:///srv/git/jobs.git", ""},
		{"control character", "https://github.com/acme/jobs\n.git", ""},
		{"bad host", "https://git hub.com/acme/jobs", ""},
		{"unbalanced bracket", "https://[::1/acme/jobs", ""},
		{"no path", "github.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := webhook.NormalizeRepoURL(tt.in)
			if got != tt.want {
				t.Errorf("NormalizeRepoURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := webhook.NormalizeRepoURL(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestMatchesRepoEmpty(t *testing.T) {
	t.Parallel()
	p := webhook.Push{RepoURLs: []string{"", "/local/path"}, Ref: "refs/heads/main", After: afterMain}
	for _, u := range []string{"", "/local/path", "https://github.com/"} {
		if p.MatchesRepo(u) {
			t.Errorf("MatchesRepo(%q): keys that normalise to \"\" must never match", u)
		}
	}
}
