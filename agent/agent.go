// Package agent is Caesium's composition root: it builds the store, the API
// and (in later issues) the Git sources, webhooks and executor from the
// configuration, and supervises them until the context ends.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/store"
)

// Agent is one running caesium-agent.
type Agent struct {
	cfg   config.Config
	log   *slog.Logger
	store *store.Store
	api   *api.Server
	ln    net.Listener
}

// New opens the store (running its migrations) and binds the HTTP listener,
// so that configuration, database and address problems surface before Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Agent, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database.URL, store.Options{DataDir: cfg.DataDir, Logger: log.WithGroup("store")})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	a := &Agent{cfg: cfg, log: log, store: st, ln: ln}
	a.api = api.New(st, api.Config{Token: cfg.HTTP.Token, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Logger: log.WithGroup("api")})
	return a, nil
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
	if cerr := a.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	a.log.Info("stopped")
	return err
}
