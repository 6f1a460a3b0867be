// Command caesium-agent is Caesium's daemon: it keeps the store in step with
// job definitions and serves the API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/config"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful shutdown; from then on the default
	// handling is back, so a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "caesium-agent: %v\n", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var (
		once, dryRun, detailed bool
		output                 string
	)
	cmd := &cobra.Command{
		Use:           "caesium-agent",
		Short:         "Caesium's agent: syncs job definitions into the store and serves the API",
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), env)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, stderr)
			if output != "text" && output != "json" && output != "markdown" {
				return fmt.Errorf("--output must be text, json or markdown, not %q", output)
			}
			if (dryRun || detailed) && !once {
				return errors.New("--dry-run and --detailed-exitcode go with --once")
			}
			if once {
				results, err := agent.Once(ctx, cfg, log, dryRun, progressOption(stderr)...)
				if err != nil {
					return err
				}
				if err := writeResults(stdout, output, results); err != nil {
					return err
				}
				return onceExit(results, detailed)
			}
			a, err := agent.New(ctx, cfg, log, progressOption(stderr)...)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "caesium-agent %s serving on http://%s\n", version, a.Addr())
			return a.Run(ctx)
		},
	}
	config.BindFlags(cmd.Flags())
	fl := cmd.Flags()
	fl.BoolVar(&once, "once", false, "reconcile every source once, print the result and exit: 0 all applied, 1 any failure")
	fl.BoolVar(&dryRun, "dry-run", false, "with --once: plan and print, write nothing")
	fl.BoolVar(&detailed, "detailed-exitcode", false, "with --once: exit 0 no changes, 2 changes (pending with --dry-run), 1 error")
	fl.StringVarP(&output, "output", "o", "text", "with --once: text, json, or markdown (a pull-request comment)")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd.ExecuteContext(ctx)
}

// newLogger logs text to a terminal and JSON otherwise.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// progressOption shows sync progress when stderr is a terminal; logs and
// CI output stay free of it.
func progressOption(w io.Writer) []agent.Option {
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return []agent.Option{agent.WithProgress(w)}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
