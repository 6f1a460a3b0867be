// Package agent is Caesium's composition root: it builds the store, the API
// and (in later issues) the Git sources, webhooks and executor from the
// configuration, and supervises them until the context ends.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/executor/docker"
	"github.com/caesium-io/caesium/providers/env"
	"github.com/caesium-io/caesium/providers/file"
	"github.com/caesium-io/caesium/providers/secrets"
	"github.com/caesium-io/caesium/providers/vault"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// LabelInstallation is put on every container the agent creates; its
// value is the store's installation id.
const LabelInstallation = "io.caesium.installation"

// Option adjusts an agent.
type Option func(*options)

type options struct {
	progress io.Writer
}

// WithProgress writes human progress lines of each sync (fetching, manifests
// read, N of M jobs applied) to w: the agent passes its terminal.
func WithProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

// Agent is one running caesium-agent.
type Agent struct {
	cfg          config.Config
	log          *slog.Logger
	store        *store.Store
	api          *api.Server
	ln           net.Listener
	sources      []*Source
	byID         map[string]*Source
	resolver     *secrets.Router
	closeSecrets func()
	runner       *runner
	closeEngine  func() error

	mu     sync.Mutex
	leader bool // this agent holds the reconciler lease
}

// New opens the store (running its migrations), builds the sources and
// binds the HTTP listener, so that configuration, database and address
// problems surface before Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Agent, error) {
	a, err := open(ctx, cfg, log, opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	a.ln = ln
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.serve(ctx, reg); err != nil {
		a.close()
		_ = ln.Close()
		return nil, err
	}
	return a, nil
}

// serve builds what the daemon adds to open: the runner, the API and the
// routes that share its server (webhooks, HTTP triggers).
func (a *Agent) serve(ctx context.Context, reg *prometheus.Registry) error {
	cfg := a.cfg
	install, err := a.store.InstallationID(ctx)
	if err != nil {
		return err
	}
	dk, err := docker.New(docker.Config{
		Host: cfg.Executor.Docker.Host, PullPolicy: cfg.Executor.Docker.PullPolicy, Network: cfg.Executor.Docker.Network,
		StopTimeout: cfg.Executor.Docker.StopTimeout, Logger: a.log,
		// Cleanup after a dead agent touches only this installation's
		// containers on a Docker host that others share.
		Labels: map[string]string{LabelInstallation: install},
	})
	if err != nil {
		return fmt.Errorf("executor.docker: %w", err)
	}
	a.closeEngine = dk.Close
	engines := map[string]executor.Engine{schema.EngineDocker: dk}
	a.runner, err = newRunner(cfg.Executor, a.store, engines, a.resolver, reg, a.log.WithGroup("runner"))
	if err != nil {
		return err
	}
	a.runner.cleanup = dk.Cleanup
	a.api = api.New(a.store, api.Config{
		Token: cfg.HTTP.Token, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Logger: a.log.WithGroup("api"), Sources: a,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), RunQueued: a.runner.Queued,
	})
	hooks, err := newWebhooks(cfg.Webhooks, a.resolver, a.store, a, reg, a.log.WithGroup("webhooks"))
	if err == nil {
		err = hooks.check(ctx)
	}
	if err != nil {
		return err
	}
	a.api.Mount(http.MethodPost, "/v1/webhooks/:provider", hooks)
	trig, err := newTriggers(cfg.Triggers, a, reg, a.runner.Queued, a.log.WithGroup("triggers"))
	if err != nil {
		return err
	}
	a.api.Mount(http.MethodPost, TriggerPathPrefix+"/*path", trig)
	return nil
}

// open builds what both the daemon and --once need: the store, the secret
// resolvers and the sources.
func open(ctx context.Context, cfg config.Config, log *slog.Logger, opts []Option) (*Agent, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	resolver, closeSecrets, err := newResolver(ctx, cfg.Secrets, log.WithGroup("vault"))
	if err != nil {
		return nil, err
	}
	// Everything the agent logs from here on passes through the resolver's
	// redaction of the secret values it has handed out.
	log = slog.New(newRedactHandler(log.Handler(), resolver))
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		closeSecrets()
		return nil, fmt.Errorf("open store: %w", err)
	}
	a := &Agent{cfg: cfg, log: log, store: st, resolver: resolver, closeSecrets: closeSecrets, byID: map[string]*Source{}}
	for _, sc := range cfg.Sources {
		src, err := NewSource(sc, cfg.DataDir, st, resolver, log.With("source_id", sc.ID))
		if err != nil {
			a.close()
			return nil, err
		}
		src.progress = o.progress
		a.sources = append(a.sources, src)
		a.byID[sc.ID] = src
	}
	return a, nil
}

// newResolver builds the secret backends: the environment always, files
// below fileDir and Vault when configured. Vault is not contacted here: a
// Vault outage fails only what needs Vault, later.
func newResolver(ctx context.Context, c config.Secrets, log *slog.Logger) (*secrets.Router, func(), error) {
	backends := map[string]secrets.Backend{schema.SecretEnv: env.New(os.LookupEnv)}
	if c.FileDir != "" {
		f, err := file.New(c.FileDir)
		if err != nil {
			return nil, nil, fmt.Errorf("secrets.fileDir: %w", err)
		}
		backends[schema.SecretFile] = f
	}
	closeFn := func() {}
	if v := c.Vault; v != nil {
		vcfg := vault.Config{
			Address: v.Address, Namespace: v.Namespace, CACert: v.CACert, Timeout: v.Timeout, MaxRetries: v.MaxRetries,
			Auth: vault.AuthConfig{
				Method: v.Auth.Method, MountPath: v.Auth.MountPath, TokenFile: v.Auth.TokenFile,
				RoleID: v.Auth.RoleID, RoleIDFile: v.Auth.RoleIDFile, SecretIDFile: v.Auth.SecretIDFile, SecretIDEnv: v.Auth.SecretIDEnv,
				WrappedSecretID: v.Auth.WrappedSecretID, Role: v.Auth.Role, ServiceAccountTokenPath: v.Auth.ServiceAccountTokenPath,
			},
		}
		if v.Auth.TokenEnv != "" {
			tok, ok := os.LookupEnv(v.Auth.TokenEnv)
			if !ok || tok == "" {
				return nil, nil, fmt.Errorf("secrets.vault.auth.tokenEnv: %s is not set", v.Auth.TokenEnv)
			}
			vcfg.Auth.Token = tok
		}
		vb, err := vault.New(ctx, vcfg, log)
		if err != nil {
			return nil, nil, fmt.Errorf("secrets.vault: %w", err)
		}
		backends[schema.SecretVault] = vb
		closeFn = vb.Close
	}
	return secrets.New(backends, secrets.Options{CacheTTL: c.CacheTTL}), closeFn, nil
}

func (a *Agent) close() {
	if a.closeEngine != nil {
		_ = a.closeEngine()
	}
	for _, s := range a.sources {
		_ = s.Close()
	}
	if a.closeSecrets != nil {
		a.closeSecrets()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
}

// Once syncs every source once and returns the results in source order;
// with dryRun it plans and writes nothing. It is caesium-agent --once.
func Once(ctx context.Context, cfg config.Config, log *slog.Logger, dryRun bool, opts ...Option) ([]*SyncResult, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("no sources: give --repo or a config file with sources")
	}
	a, err := open(ctx, cfg, log, opts)
	if err != nil {
		return nil, err
	}
	defer a.close()
	results := make([]*SyncResult, 0, len(a.sources))
	for _, s := range a.sources {
		if err := s.load(ctx); err != nil {
			return nil, fmt.Errorf("source %s: %w", s.ID(), err)
		}
		results = append(results, s.Sync(ctx, dryRun))
	}
	return results, nil
}

// Sync queues a sync of one source (api.Sources).
func (a *Agent) Sync(id string) error {
	s, ok := a.byID[id]
	if !ok {
		return fmt.Errorf("%w: %q", api.ErrUnknownSource, id)
	}
	a.mu.Lock()
	leader := a.leader
	a.mu.Unlock()
	if !leader {
		return api.ErrNotLeader
	}
	s.Nudge()
	return nil
}

// IsLeader reports whether this agent holds the reconciler lease
// (api.Sources).
func (a *Agent) IsLeader() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leader
}

// fits reports whether srcs can be nudged without more than size sources
// waiting for a sync. A source that is already waiting does not count
// twice: pushes to it coalesce into its one pending sync.
func (a *Agent) fits(srcs []*Source, size int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	waiting := 0
	for _, s := range a.sources {
		waiting += len(s.nudge)
	}
	for _, s := range srcs {
		if len(s.nudge) == 0 {
			waiting++
		}
	}
	return waiting <= size
}

// SourceIDs lists the configured sources (api.Sources).
func (a *Agent) SourceIDs() []string {
	ids := make([]string, len(a.sources))
	for i, s := range a.sources {
		ids[i] = s.ID()
	}
	return ids
}

// reconcile runs the sources while this agent holds the reconciler lease:
// with several agents on one PostgreSQL only the leader writes; the others
// serve the API and take over when the leader goes.
func (a *Agent) reconcile(ctx context.Context) error {
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s:%d", host, os.Getpid())
	for ctx.Err() == nil {
		// The lease ends with ctx only while campaigning: once leading it
		// lasts until Resign, so that on a graceful stop the runner still
		// records the runs it interrupts (and sends their callbacks) under it.
		lctxBase, endLease := context.WithCancel(context.WithoutCancel(ctx))
		stopCampaign := context.AfterFunc(ctx, endLease)
		lease, err := a.store.Campaign(lctxBase, store.LeaderOptions{Name: "reconciler", Identity: identity})
		stopCampaign()
		if err != nil {
			endLease()
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
			continue
		}
		a.log.Info("leading: reconciling sources and running jobs", "identity", identity, "token", lease.Token(), "sources", len(a.sources))
		a.setLeader(true)
		// Every apply under this context commits only while the lease is
		// the newest: a leader that lost its lock without noticing yet
		// cannot overwrite its successor's work.
		lctx, cancel := context.WithCancel(store.WithLease(ctx, lease))
		g, gctx := errgroup.WithContext(lctx)
		for _, s := range a.sources {
			g.Go(func() error { return s.Run(gctx) })
		}
		g.Go(func() error { return a.runner.Run(gctx) })
		select {
		case <-ctx.Done():
		case <-lease.Done():
			a.log.Warn("lost leadership: stopped reconciling")
		}
		cancel()
		_ = g.Wait()
		a.setLeader(false)
		lease.Resign()
		endLease()
	}
	return nil
}

func (a *Agent) setLeader(v bool) {
	a.mu.Lock()
	a.leader = v
	a.mu.Unlock()
}

// Addr is the address the HTTP server listens on.
func (a *Agent) Addr() net.Addr { return a.ln.Addr() }

// Run serves until ctx ends, then shuts down gracefully and closes the
// store. It returns nil on a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.api.Handler(),
		ReadHeaderTimeout: a.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       a.cfg.HTTP.ReadTimeout,
		WriteTimeout:      a.cfg.HTTP.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.reconcile(gctx) })
	g.Go(func() error {
		a.log.Info("serving", "addr", a.ln.Addr().String(), "database", a.store.Dialect())
		if err := srv.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			a.log.Warn("http shutdown", "err", err)
		}
		return nil
	})
	err := g.Wait()
	for _, s := range a.sources {
		_ = s.Close()
	}
	if a.closeEngine != nil {
		_ = a.closeEngine()
	}
	if a.closeSecrets != nil {
		a.closeSecrets()
	}
	if cerr := a.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	a.log.Info("stopped")
	return err
}
