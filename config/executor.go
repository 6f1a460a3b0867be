package config

import (
	"errors"
	"fmt"
	"time"
)

// Executor configures how this agent runs jobs while it leads.
type Executor struct {
	// MaxConcurrentRuns bounds the runs this agent executes at once; queued
	// runs beyond it wait. Default 4.
	MaxConcurrentRuns int `mapstructure:"maxConcurrentRuns"`
	// PollInterval is how often the leader looks for queued runs and
	// cancel requests made through other agents; runs created through this
	// agent start at once. Default 1s.
	PollInterval time.Duration `mapstructure:"pollInterval"`
	Docker       Docker        `mapstructure:"docker"`
	// Callbacks configures the webhooks sent when a run ends.
	Callbacks Callbacks `mapstructure:"callbacks"`
}

// Docker configures the docker engine.
type Docker struct {
	// Host is the Engine API address (unix:///var/run/docker.sock,
	// tcp://host:2376); empty uses DOCKER_HOST and the default socket.
	Host string `mapstructure:"host"`
	// PullPolicy is if-not-present (default), always or never.
	PullPolicy string `mapstructure:"pullPolicy"`
	// Network is the network containers join; empty is Docker's default bridge.
	Network string `mapstructure:"network"`
	// StopTimeout is how long a stopped container gets to exit before it
	// is killed (timeouts and cancels). Default 10s.
	StopTimeout time.Duration `mapstructure:"stopTimeout"`
}

// Callbacks configures run callbacks.
type Callbacks struct {
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxAttempts is how often a delivery is tried. Default 3.
	MaxAttempts int `mapstructure:"maxAttempts"`
}

// Triggers configures the HTTP trigger endpoint (POST /v1/triggers/{path}).
type Triggers struct {
	// MaxBodyBytes bounds a request body (413 beyond). Default 1 MiB.
	MaxBodyBytes int64 `mapstructure:"maxBodyBytes"`
	// ClockSkew is how far an hmac-sha256 request's X-Caesium-Timestamp may
	// be from the agent's clock; older requests are refused as replays.
	// Default 5m.
	ClockSkew time.Duration `mapstructure:"clockSkew"`
	// MaxInFlight bounds the trigger requests read at once (503 beyond).
	// Default 64.
	MaxInFlight int `mapstructure:"maxInFlight"`
}

var pullPolicies = map[string]bool{"if-not-present": true, "always": true, "never": true}

func (e Executor) validate() error {
	var errs []error
	if e.MaxConcurrentRuns < 1 {
		errs = append(errs, fmt.Errorf("executor.maxConcurrentRuns must be at least 1, got %d", e.MaxConcurrentRuns))
	}
	if e.PollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("executor.pollInterval must be at least 100ms, got %s", e.PollInterval))
	}
	if !pullPolicies[e.Docker.PullPolicy] {
		errs = append(errs, fmt.Errorf("executor.docker.pullPolicy must be if-not-present, always or never, got %q", e.Docker.PullPolicy))
	}
	if e.Docker.StopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("executor.docker.stopTimeout must be positive, got %s", e.Docker.StopTimeout))
	}
	if e.Callbacks.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("executor.callbacks.timeout must be positive, got %s", e.Callbacks.Timeout))
	}
	if e.Callbacks.MaxAttempts < 1 || e.Callbacks.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("executor.callbacks.maxAttempts must be between 1 and 10, got %d", e.Callbacks.MaxAttempts))
	}
	return errors.Join(errs...)
}

func (t Triggers) validate() error {
	var errs []error
	if t.MaxBodyBytes < 1 || t.MaxBodyBytes > 32<<20 {
		errs = append(errs, fmt.Errorf("triggers.maxBodyBytes must be between 1 and %d, got %d", 32<<20, t.MaxBodyBytes))
	}
	if t.ClockSkew < time.Second {
		errs = append(errs, fmt.Errorf("triggers.clockSkew must be at least 1s, got %s", t.ClockSkew))
	}
	if t.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("triggers.maxInFlight must be at least 1, got %d", t.MaxInFlight))
	}
	return errors.Join(errs...)
}
