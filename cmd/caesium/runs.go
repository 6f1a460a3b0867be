package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/store"
)

// usageError is a mistake in the command line of a command whose exit
// status sets usage apart (2) from a failed outcome (1): run and trigger,
// which scripts call and branch on.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageArgs wraps a cobra argument check so that its error is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
		}
		return nil
	}
}

// usageFlags makes cmd's (and its subcommands') flag errors usage errors.
func usageFlags(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
}

// checkOutput checks an -o value.
func checkOutput(output string) error {
	switch output {
	case "text", "json", "yaml":
		return nil
	}
	return usagef("--output must be text, json or yaml, not %q", output)
}

// writeAs prints v as JSON or YAML, or calls text.
func writeAs(w io.Writer, output string, v any, text func() error) error {
	switch output {
	case "json":
		return writeJSONValue(w, v)
	case "yaml":
		return writeYAML(w, v)
	}
	return text()
}

const runExitStatus = `Exit status: 0 on success (with --wait: the run succeeded), 1 when the run
failed, was cancelled or skipped, or on any other error, 2 on usage errors.`

func newRunCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Start, list, inspect and cancel runs of jobs",
		Long:  "run starts jobs by hand and shows the run history: each run's status and its steps' outcomes.\n\n" + runExitStatus,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	usageFlags(cmd)
	sf := addServerFlags(cmd, getenv)
	cmd.AddCommand(newRunStartCmd(sf), newRunListCmd(sf), newRunGetCmd(sf), newRunCancelCmd(sf))
	return cmd
}

func newRunStartCmd(sf *serverFlags) *cobra.Command {
	var (
		wait   time.Duration
		actor  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "start ALIAS",
		Short: "Queue a run of a job at its current version; --wait follows it to the end",
		Long: `start queues a run of the job at the version it has now. The job's
concurrency decides whether it is queued, or recorded as skipped or failed
because maxRuns are already in flight. With --wait the command follows the
run until it finishes and prints it with its steps.

` + runExitStatus,
		Example: "  caesium run start nightly-etl\n  caesium run start nightly-etl --wait 30m --actor alice",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if wait < 0 {
				return usagef("--wait must not be negative, got %s", wait)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			run, err := c.StartRun(cmd.Context(), args[0], actor)
			if client.StatusOf(err) == http.StatusConflict && run.ID != 0 {
				// Not queued, but recorded: show it, and fail.
				if werr := writeAs(out, output, run, func() error { return writeRunLine(out, run) }); werr != nil {
					return werr
				}
				return exitError{code: 1}
			}
			if err != nil {
				return err
			}
			if wait == 0 {
				return writeAs(out, output, run, func() error { return writeRunLine(out, run) })
			}
			if output == "text" {
				if err := writeRunLine(out, run); err != nil {
					return err
				}
			}
			run, err = waitForRun(cmd.Context(), c, run, wait)
			if err != nil {
				return err
			}
			if err := writeAs(out, output, run, func() error { return writeRun(out, run, false) }); err != nil {
				return err
			}
			if run.Status != store.RunSucceeded {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "follow the run for up to this long and print it with its steps when it finishes (0: do not wait)")
	cmd.Flags().StringVar(&actor, "actor", "cli", "who starts the run, as recorded in the run history")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

// waitForRun polls the run until it has finished, for up to wait. The
// interval grows from 200ms to 2s: short runs answer fast, long ones cost
// the server little.
func waitForRun(ctx context.Context, c *client.Client, run store.Run, wait time.Duration) (store.Run, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	interval := 200 * time.Millisecond
	var lastErr error
	for !run.Status.Finished() {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-deadline.C:
			msg := fmt.Sprintf("run %d is still %s after waiting %s; it goes on: see caesium run get %d, or stop it with caesium run cancel %d",
				run.ID, run.Status, wait, run.ID, run.ID)
			if lastErr != nil {
				msg += fmt.Sprintf(" (last error: %v)", lastErr)
			}
			return run, errors.New(msg)
		case <-time.After(interval):
		}
		interval = min(2*interval, 2*time.Second)
		got, err := c.GetRun(ctx, run.ID)
		switch status := client.StatusOf(err); {
		case err == nil:
			run, lastErr = got, nil
		case ctx.Err() != nil:
			return run, ctx.Err()
		case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			return run, err // will not get better: the run is gone, the token is wrong
		default:
			lastErr = err // the agent restarts, the database is busy: try again
		}
	}
	return run, nil
}

var runStatuses = []store.RunStatus{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCancelled, store.RunSkipped}

func newRunListCmd(sf *serverFlags) *cobra.Command {
	var (
		f      store.RunFilter
		status string
		output string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List runs, newest first",
		Example: "  caesium run list\n  caesium run list --job nightly-etl --status failed --limit 10",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if status != "" {
				f.Status = store.RunStatus(status)
				if !f.Status.Valid() {
					return usagef("--status must be one of %s, not %q", joinStatuses(runStatuses), status)
				}
			}
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit must be between 1 and 1000, got %d", f.Limit)
			}
			if f.BeforeID < 0 {
				return usagef("--before must be a run id, got %d", f.BeforeID)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			runs, err := c.ListRuns(cmd.Context(), f)
			if err != nil {
				return err
			}
			if runs == nil {
				runs = []store.Run{}
			}
			out := cmd.OutOrStdout()
			return writeAs(out, output, runs, func() error { return writeRunTable(out, runs, time.Now()) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.JobAlias, "job", "", "only runs of this job")
	fl.StringVar(&status, "status", "", "only runs with this status: "+joinStatuses(runStatuses))
	fl.IntVar(&f.Limit, "limit", 50, "how many runs, newest first (at most 1000)")
	fl.Int64Var(&f.BeforeID, "before", 0, "only runs older than this run id, for the next page")
	fl.StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

func joinStatuses(ss []store.RunStatus) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

func newRunGetCmd(sf *serverFlags) *cobra.Command {
	var (
		logs   bool
		output string
	)
	cmd := &cobra.Command{
		Use:     "get ID",
		Short:   "Show one run and each of its steps: status, attempts, exit code, duration, error",
		Example: "  caesium run get 42\n  caesium run get 42 --logs",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := runTarget(sf, output, args[0])
			if err != nil {
				return err
			}
			run, err := c.GetRun(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return writeAs(out, output, run, func() error { return writeRun(out, run, logs) })
		},
	}
	cmd.Flags().BoolVar(&logs, "logs", false, "also print the tail of each step's output (text output; json and yaml always hold it)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

func newRunCancelCmd(sf *serverFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued run at once, or ask the agent running a run to stop it",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := runTarget(sf, output, args[0])
			if err != nil {
				return err
			}
			run, err := c.CancelRun(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return writeAs(out, output, run, func() error {
				if run.Status == store.RunCancelled {
					_, err := fmt.Fprintf(out, "run %d cancelled\n", run.ID)
					return err
				}
				_, err := fmt.Fprintf(out, "run %d is %s: the agent running it was asked to stop it (see caesium run get %d)\n", run.ID, run.Status, run.ID)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

// runTarget checks the output format and the run id argument, then builds
// the client: the preamble of the commands about one run.
func runTarget(sf *serverFlags, output, arg string) (*client.Client, int64, error) {
	if err := checkOutput(output); err != nil {
		return nil, 0, err
	}
	id, err := parseRunID(arg)
	if err != nil {
		return nil, 0, err
	}
	c, err := sf.client()
	return c, id, err
}

func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, usagef("run id %q is not a positive integer", s)
	}
	return id, nil
}

// writeRunLine prints one line about a run that was just started.
func writeRunLine(w io.Writer, r store.Run) error {
	line := fmt.Sprintf("run %d of %s (version %d) %s", r.ID, r.JobAlias, r.JobVersion, r.Status)
	if r.Error != "" {
		line += ": " + r.Error
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func writeRunTable(w io.Writer, runs []store.Run, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "No runs.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tJOB\tVERSION\tSTATUS\tTRIGGER\tACTOR\tSTARTED\tDURATION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.JobAlias, r.JobVersion, runStatus(r), r.Trigger, orDash(oneLine(r.Actor)),
			timeOrDash(r.StartedAt), span(r.StartedAt, r.FinishedAt, now))
	}
	return tw.Flush()
}

// runStatus is the status, marked when a cancel was asked for and the run
// has not stopped yet.
func runStatus(r store.Run) string {
	if r.CancelRequested && !r.Status.Finished() {
		return string(r.Status) + " (cancelling)"
	}
	return string(r.Status)
}

// writeRun prints a run's header and a table of its steps; with logs, the
// output tail of each step after it.
func writeRun(w io.Writer, r store.Run, logs bool) error {
	now := time.Now()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Run:\t%d\n", r.ID)
	fmt.Fprintf(tw, "Job:\t%s (version %d)\n", r.JobAlias, r.JobVersion)
	fmt.Fprintf(tw, "Status:\t%s\n", runStatus(r))
	if r.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", oneLine(r.Error))
	}
	fmt.Fprintf(tw, "Trigger:\t%s\n", r.Trigger)
	fmt.Fprintf(tw, "Actor:\t%s\n", orDash(oneLine(r.Actor)))
	fmt.Fprintf(tw, "Created:\t%s\n", r.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "Started:\t%s\n", timeOrDash(r.StartedAt))
	fmt.Fprintf(tw, "Finished:\t%s\n", timeOrDash(r.FinishedAt))
	fmt.Fprintf(tw, "Duration:\t%s\n", span(r.StartedAt, r.FinishedAt, now))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Tasks) > 0 {
		fmt.Fprintln(w, "Steps:")
		var buf bytes.Buffer
		tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tSTATUS\tATTEMPTS\tEXIT\tDURATION\tERROR")
		for _, t := range r.Tasks {
			exit := "-"
			if t.ExitCode != nil {
				exit = strconv.Itoa(*t.ExitCode)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", t.Name, t.Status, t.Attempts, exit, span(t.StartedAt, t.FinishedAt, now), oneLine(t.Error))
		}
		if err := flushTrimmed(w, tw, &buf); err != nil {
			return err
		}
	}
	if len(r.Callbacks) > 0 {
		fmt.Fprintln(w, "Callbacks:")
		var buf bytes.Buffer
		tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  URL\tEVENT\tSTATUS\tATTEMPTS\tERROR")
		for _, cb := range r.Callbacks {
			code := "-"
			if cb.StatusCode != 0 {
				code = strconv.Itoa(cb.StatusCode)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", cb.URL, cb.Event, code, cb.Attempts, oneLine(cb.Error))
		}
		if err := flushTrimmed(w, tw, &buf); err != nil {
			return err
		}
	}
	if !logs {
		return nil
	}
	for _, t := range r.Tasks {
		fmt.Fprintf(w, "\n--- %s (attempt %d): output tail ---\n", t.Name, t.Attempts)
		switch {
		case t.Output == "":
			fmt.Fprintln(w, "(no output)")
		case strings.HasSuffix(t.Output, "\n"):
			fmt.Fprint(w, t.Output)
		default:
			fmt.Fprintln(w, t.Output)
		}
	}
	return nil
}

// flushTrimmed flushes tw, which writes to buf, and copies buf to w without
// the blanks that an empty last cell leaves at the end of a line.
func flushTrimmed(w io.Writer, tw *tabwriter.Writer, buf *bytes.Buffer) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		if body, ok := strings.CutSuffix(l, "\n"); ok {
			lines[i] = strings.TrimRight(body, " ") + "\n"
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

func timeOrDash(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// span is how long something took, or has taken so far when it has
// started but not finished; "-" before it started.
func span(start, end *time.Time, now time.Time) string {
	if start == nil || start.IsZero() {
		return "-"
	}
	stop := now
	if end != nil && !end.IsZero() {
		stop = *end
	}
	d := stop.Sub(*start)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine keeps a free-text field on its table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
