package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/caesium-io/caesium/store"
)

func newSourceCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Show Git sources and sync them",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	sf := addServerFlags(cmd, getenv)
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List sources with their last attempted and applied commits and conditions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			srcs, err := c.ListSources(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				if srcs == nil {
					srcs = []store.Source{}
				}
				return writeJSONValue(cmd.OutOrStdout(), srcs)
			}
			return writeSourceTable(cmd.OutOrStdout(), srcs)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	var getOutput string
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one source: conditions, last error and the last 20 reconciles",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			src, err := c.GetSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch getOutput {
			case "json":
				return writeJSONValue(cmd.OutOrStdout(), src)
			case "yaml":
				return writeYAML(cmd.OutOrStdout(), src)
			}
			return writeSource(cmd.OutOrStdout(), src)
		},
	}
	get.Flags().StringVarP(&getOutput, "output", "o", "text", "output format: text, json or yaml")
	var wait time.Duration
	syncCmd := &cobra.Command{
		Use:   "sync ID",
		Short: "Sync a source now instead of waiting for its next poll",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			before, _ := c.GetSource(cmd.Context(), args[0])
			if err := c.SyncSource(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sync of %s queued\n", args[0])
			if wait <= 0 {
				return nil
			}
			src, err := waitForSync(cmd.Context(), func(ctx context.Context) (store.Source, error) { return c.GetSource(ctx, args[0]) }, before, wait)
			if err != nil {
				return err
			}
			if err := writeSource(cmd.OutOrStdout(), src); err != nil {
				return err
			}
			// Stalled, not the last history record: a sync that found the
			// applied commit again records no new reconcile.
			st, _ := src.DecodeStatus()
			if c, ok := st.Condition(store.ConditionStalled); ok && c.Status {
				return exitError{code: 1}
			}
			return nil
		},
	}
	syncCmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "wait up to this long for the sync to finish and show its result (0: do not wait)")
	cmd.AddCommand(list, get, syncCmd)
	return cmd
}

// waitForSync polls the source until its status records a sync that is
// newer than before's.
func waitForSync(ctx context.Context, get func(context.Context) (store.Source, error), before store.Source, wait time.Duration) (store.Source, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	prev, _ := before.DecodeStatus()
	var last *time.Time
	if prev.LastAttemptAt != nil {
		last = prev.LastAttemptAt
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		src, err := get(ctx)
		if err == nil {
			st, _ := src.DecodeStatus()
			if st.LastAttemptAt != nil && (last == nil || st.LastAttemptAt.After(*last)) {
				if c, ok := st.Condition(store.ConditionReconciling); !ok || !c.Status {
					return src, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return store.Source{}, fmt.Errorf("the sync did not finish within %s; see caesium source get %s", wait, before.ID)
		case <-tick.C:
		}
	}
}

func condition(st store.SourceStatus) string {
	if c, ok := st.Condition(store.ConditionStalled); ok && c.Status {
		return "Stalled (" + c.Reason + ")"
	}
	if c, ok := st.Condition(store.ConditionReconciling); ok && c.Status {
		return "Reconciling"
	}
	if c, ok := st.Condition(store.ConditionReady); ok && c.Status {
		return "Ready"
	}
	return "Pending"
}

func writeSourceTable(w io.Writer, srcs []store.Source) error {
	if len(srcs) == 0 {
		_, err := fmt.Fprintln(w, "No sources.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tAPPLIED\tATTEMPTED\tREPO")
	for _, s := range srcs {
		st, _ := s.DecodeStatus()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, condition(st), shortCommit(s.LastAppliedCommit), shortCommit(s.LastAttemptedCommit), s.Repo)
	}
	return tw.Flush()
}

func writeSource(w io.Writer, s store.Source) error {
	st, err := s.DecodeStatus()
	if err != nil {
		return fmt.Errorf("read status of %s: %w", s.ID, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", s.ID)
	fmt.Fprintf(tw, "Repo:\t%s\n", s.Repo)
	fmt.Fprintf(tw, "Ref:\t%s\n", orDash(s.Ref))
	fmt.Fprintf(tw, "Path:\t%s\n", orDash(s.Path))
	fmt.Fprintf(tw, "Status:\t%s\n", condition(st))
	fmt.Fprintf(tw, "Applied commit:\t%s\n", orDash(s.LastAppliedCommit))
	fmt.Fprintf(tw, "Attempted commit:\t%s\n", orDash(s.LastAttemptedCommit))
	if st.LastError != "" {
		fmt.Fprintf(tw, "Last error:\t%s\n", st.LastError)
	}
	_ = tw.Flush()
	if len(st.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range st.Conditions {
			fmt.Fprintf(tw, "  %s\t%t\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
		}
		_ = tw.Flush()
	}
	if len(st.History) > 0 {
		fmt.Fprintln(w, "History (newest first):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STARTED\tCOMMIT\tRESULT\tMS\tCREATED\tUPDATED\tDELETED\tUNCHANGED\tERROR")
		for _, r := range st.History {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.StartedAt.UTC().Format(time.RFC3339), shortCommit(r.Commit), r.Result, r.DurationMS, r.Created, r.Updated, r.Deleted, r.Unchanged, r.Error)
		}
		_ = tw.Flush()
	}
	return nil
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return orDash(c)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
