package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/caesium-io/caesium/store"
)

func newWebhookCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Inspect forge webhook deliveries",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	sf := addServerFlags(cmd, getenv)
	var (
		limit  int
		output string
	)
	deliveries := &cobra.Command{
		Use:   "deliveries",
		Short: "List the newest webhook deliveries: provider, event, repository, ref, result, matched sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			ds, err := c.ListDeliveries(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if output == "json" {
				if ds == nil {
					ds = []store.Delivery{}
				}
				return writeJSONValue(cmd.OutOrStdout(), ds)
			}
			out := cmd.OutOrStdout()
			if len(ds) == 0 {
				_, err := fmt.Fprintln(out, "No deliveries.")
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECEIVED\tPROVIDER\tEVENT\tREF\tAFTER\tRESULT\tSTATUS\tSOURCES\tREASON")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%v\t%s\n", d.ReceivedAt.UTC().Format(time.RFC3339), d.Provider, orDash(d.Event),
					orDash(d.Ref), shortCommit(d.After), d.Result, d.Status, d.MatchedSources, d.Reason)
			}
			return tw.Flush()
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 50, "how many deliveries, newest first")
	deliveries.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(deliveries)
	return cmd
}
