package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Webhooks configures the forge webhook endpoints
// (POST /v1/webhooks/{provider}). A provider without configuration is not
// served (404).
type Webhooks struct {
	GitHub          *WebhookProvider `mapstructure:"github"`
	GitLab          *WebhookProvider `mapstructure:"gitlab"`
	Bitbucket       *WebhookProvider `mapstructure:"bitbucket"`
	BitbucketServer *WebhookProvider `mapstructure:"bitbucketServer"`
	Gitea           *WebhookProvider `mapstructure:"gitea"`
	Generic         *WebhookProvider `mapstructure:"generic"`
	// MaxBodyBytes bounds a delivery's body (413 beyond); default 1 MiB.
	MaxBodyBytes int64 `mapstructure:"maxBodyBytes"`
	// QueueSize bounds the sources waiting for a webhook-triggered sync
	// (503 beyond); default 256.
	QueueSize int `mapstructure:"queueSize"`
	// ReplayWindow is how long a delivery id or signature is remembered;
	// default 24h.
	ReplayWindow time.Duration `mapstructure:"replayWindow"`
	// MaxInFlight bounds the webhook requests read at once (503 beyond), so
	// that unauthenticated bodies cannot take unbounded memory; default 64.
	MaxInFlight int `mapstructure:"maxInFlight"`
}

// MaxWebhookBodyBytes is the largest body limit the verifier accepts.
const MaxWebhookBodyBytes = 32 << 20

// WebhookProvider holds one forge's shared secret (GitLab: its token),
// normally a secret:// reference resolved at verification.
type WebhookProvider struct {
	Secret string `mapstructure:"secret"`
	Token  string `mapstructure:"token"`
}

// Providers returns the configured providers by their URL names.
func (w Webhooks) Providers() map[string]*WebhookProvider {
	all := map[string]*WebhookProvider{
		"github": w.GitHub, "gitlab": w.GitLab, "bitbucket": w.Bitbucket,
		"bitbucket-server": w.BitbucketServer, "gitea": w.Gitea, "generic": w.Generic,
	}
	for k, v := range all {
		if v == nil {
			delete(all, k)
		}
	}
	return all
}

// Value is the provider's secret: the token for GitLab, the secret for the
// others.
func (p *WebhookProvider) Value() string {
	if p.Token != "" {
		return p.Token
	}
	return p.Secret
}

func (w Webhooks) validate() error {
	var errs []error
	keys := map[string]string{"github": "github", "gitlab": "gitlab", "bitbucket": "bitbucket", "bitbucket-server": "bitbucketServer", "gitea": "gitea", "generic": "generic"}
	for name, p := range w.Providers() {
		key := "webhooks." + keys[name]
		want, other := "secret", p.Token
		if name == "gitlab" {
			want, other = "token", p.Secret
		}
		if other != "" {
			errs = append(errs, fmt.Errorf("%s: %s takes %q, not the other field", key, name, want))
			continue
		}
		if strings.TrimSpace(p.Value()) == "" {
			errs = append(errs, fmt.Errorf("%s.%s is empty: a provider without a secret would accept anyone's pushes; set it (a secret:// reference) or remove the provider", key, want))
		}
	}
	if w.MaxBodyBytes <= 0 || w.MaxBodyBytes > MaxWebhookBodyBytes {
		errs = append(errs, fmt.Errorf("webhooks.maxBodyBytes must be between 1 and %d", MaxWebhookBodyBytes))
	}
	if w.MaxInFlight < 0 {
		errs = append(errs, errors.New("webhooks.maxInFlight must not be negative"))
	}
	if w.QueueSize <= 0 {
		errs = append(errs, errors.New("webhooks.queueSize must be positive"))
	}
	if w.ReplayWindow <= 0 {
		errs = append(errs, errors.New("webhooks.replayWindow must be positive"))
	}
	return errors.Join(errs...)
}
