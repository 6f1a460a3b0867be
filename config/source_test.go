package config_test

import (
	"strings"
	"testing"
	"time"
)

func TestSourcesFromFile(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `
sources:
  - repo: https://github.com/acme/platform-jobs.git
    ref: main
    path: /jobs/
    auth: {username: x-access-token, password: "secret://env/GIT_TOKEN"}
    prune: {enabled: false, maxDeletions: 3}
  - id: infra
    repo: git@github.com:acme/infra.git
    interval: 5m
    onInvalid: skip
    ssh: {privateKey: "secret://file/git/id_ed25519", knownHosts: "secret://file/git/known_hosts"}
`)
	cfg, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 2 {
		t.Fatalf("%d sources, want 2", len(cfg.Sources))
	}
	a, b := cfg.Sources[0], cfg.Sources[1]
	if a.ID != "platform-jobs" || a.Path != "jobs" || a.Interval != time.Minute || a.OnInvalid != "fail" || a.Prune.On() || a.Prune.MaxDeletions != 3 {
		t.Errorf("first source = %+v", a)
	}
	if strings.Join(a.Globs, ",") != "**/*.yaml,**/*.yml" {
		t.Errorf("default globs = %v", a.Globs)
	}
	if b.ID != "infra" || b.Interval != 5*time.Minute || b.OnInvalid != "skip" || !b.Prune.On() || b.SSH.KnownHosts == "" {
		t.Errorf("second source = %+v", b)
	}
}

func TestAdHocSource(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, []string{"--repo", "./jobs-repo", "--ref", "release", "--path", "jobs", "--glob", "*.yaml", "--glob", "team/**/*.yml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 1 {
		t.Fatalf("%d sources, want 1", len(cfg.Sources))
	}
	s := cfg.Sources[0]
	if s.ID != "jobs-repo" || s.Ref != "release" || s.Path != "jobs" || strings.Join(s.Globs, ",") != "*.yaml,team/**/*.yml" || !s.Prune.On() {
		t.Errorf("ad-hoc source = %+v", s)
	}
	if _, err := load(t, []string{"--ref", "main"}, nil); err == nil || !strings.Contains(err.Error(), "--ref needs --repo") {
		t.Errorf("--ref without --repo: err = %v", err)
	}
}

func TestSourceValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"no repo", "sources: [{id: a}]", "sources[0] (a).repo: is required"},
		{"ext transport", "sources: [{repo: 'ext::sh -c touch% /tmp/x'}]", "is refused"},
		{"option-like url", "sources: [{id: a, repo: '--upload-pack=touch /tmp/x'}]", "is refused"},
		{"reserved id", "sources: [{id: manual, repo: ./x}]", "manual is reserved"},
		{"bad id", "sources: [{id: Team_A!, repo: ./x}]", `"Team_A!" must be`},
		{"duplicate id", "sources: [{id: a, repo: ./x}, {id: a, repo: ./y}]", `"a" is already used by sources[0]`},
		{"literal password", "sources: [{repo: https://h/x.git, auth: {username: u, password: hunter2}}]", "must be a secret:// reference"},
		{"ssh without known hosts", "sources: [{repo: git@h:x.git, ssh: {privateKey: 'secret://file/k'}}]", "ssh.knownHosts: is required"},
		{"bad onInvalid", "sources: [{repo: ./x, onInvalid: ignore}]", "must be fail or skip"},
		{"short interval", "sources: [{repo: ./x, interval: 10ms}]", "must be at least 1s"},
		{"bad glob", "sources: [{repo: ./x, globs: ['[']}]", "is not a valid pattern"},
		{"verify without keys", "sources: [{repo: ./x, verify: {mode: head}}]", "needs at least one armored OpenPGP public key"},
		{"unknown source key", "sources: [{repo: ./x, branch: main}]", `unknown key "sources[0].branch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, []string{"--config", writeConfig(t, tt.yaml)}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestWebhooksConfig(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, []string{"--config", writeConfig(t, `
webhooks:
  github: {secret: "secret://env/GITHUB_WEBHOOK_SECRET"}
  gitlab: {token: "secret://env/GITLAB_WEBHOOK_TOKEN"}
  bitbucketServer: {secret: "secret://file/bbs"}
`)}, []string{"CAESIUM_WEBHOOKS_GENERIC_SECRET=secret://env/GENERIC"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Webhooks.Providers()
	for name, want := range map[string]string{
		"github": "secret://env/GITHUB_WEBHOOK_SECRET", "gitlab": "secret://env/GITLAB_WEBHOOK_TOKEN",
		"bitbucket-server": "secret://file/bbs", "generic": "secret://env/GENERIC",
	} {
		if p := got[name]; p == nil || p.Value() != want {
			t.Errorf("provider %s = %+v, want %s", name, p, want)
		}
	}
	if _, ok := got["gitea"]; ok || len(got) != 4 {
		t.Errorf("providers = %v, want exactly the four configured", got)
	}

	for _, tt := range []struct{ name, yaml, wantErr string }{
		{"blank secret", "webhooks: {github: {secret: '  '}}", "webhooks.github.secret is empty"},
		{"empty token", "webhooks: {gitlab: {token: ''}}", "webhooks.gitlab.token is empty"},
		{"gitlab with secret", "webhooks: {gitlab: {secret: 'secret://env/X'}}", `gitlab takes "token"`},
		{"unknown provider", "webhooks: {gogs: {secret: x}}", `unknown key "webhooks.gogs"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, []string{"--config", writeConfig(t, tt.yaml)}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
