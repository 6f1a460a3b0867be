package vault

import (
	"context"
	"log/slog"
	"time"
)

// NewForTest is New with the waits between retries and background logins
// growing from base instead of from hundreds of milliseconds and seconds.
func NewForTest(ctx context.Context, cfg Config, log *slog.Logger, base time.Duration) (*Vault, error) {
	t := defaultTuning()
	t.retryBase, t.retryMax = base, 8*base
	t.loginBase, t.loginMax = base, 8*base
	return newVault(ctx, cfg, log, t)
}
