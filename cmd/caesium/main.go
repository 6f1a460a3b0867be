// Command caesium is the Caesium command line: it checks job manifests and
// prints the JSON Schema editors use to check them as they are written,
// applies them to an agent, and starts, follows and cancels runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitError ends the program with code. The command has already said why on
// its output (lint printed its diagnostics), so nothing more is printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps the error run returned to the process exit code, printing it
// as "caesium: <msg>" unless the command already reported it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "caesium: %v\n", err)
		return 2
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "caesium: interrupted")
		return 130
	}
	fmt.Fprintf(stderr, "caesium: %v\n", err)
	return 1
}

// run executes the command line args. getenv reads the environment (os.Getenv
// in main); commands that talk to an agent will take their defaults from it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := newRootCmd(getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func newRootCmd(getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "caesium",
		Short: "Caesium: a Git-native job scheduler",
		Long: "caesium checks job manifests, applies them to a Caesium agent, shows its jobs and runs them.\n\n" +
			"Exit status: 0 on success, 1 on errors (including lint errors), 130 when interrupted;\n" +
			"job diff, run and trigger say in their help what else they return.",
		// Errors are printed once, by main, as "caesium: <msg>"; usage is
		// for --help, not for every mistake.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(newSchemaCmd(), newVersionCmd(), newJobCmd(getenv), newSourceCmd(getenv), newWebhookCmd(getenv),
		newRunCmd(getenv), newTriggerCmd(getenv))
	return root
}

func newJobCmd(getenv func(string) string) *cobra.Command {
	job := &cobra.Command{
		Use:   "job",
		Short: "Work with job manifests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	sf := addServerFlags(job, getenv)
	job.AddCommand(newLintCmd(getenv), newJobApplyCmd(sf), newJobDiffCmd(sf), newJobGetCmd(sf), newJobDeleteCmd(sf), newJobGCCmd(sf))
	return job
}
