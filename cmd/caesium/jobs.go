package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// serverFlags are the flags of every command that talks to an agent.
type serverFlags struct {
	server string
	token  string
}

func addServerFlags(cmd *cobra.Command, getenv func(string) string) *serverFlags {
	f := &serverFlags{}
	server := getenv("CAESIUM_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	cmd.PersistentFlags().StringVar(&f.server, "server", server, "agent API URL (env CAESIUM_SERVER)")
	cmd.PersistentFlags().StringVar(&f.token, "token", getenv("CAESIUM_TOKEN"), "API bearer token (env CAESIUM_TOKEN)")
	return f
}

func (f *serverFlags) client() (*client.Client, error) {
	return client.New(f.server, f.token)
}

// applyFlags are shared by job apply and job diff.
type applyFlags struct {
	files        []string
	sourceID     string
	force        bool
	prune        bool
	allowEmpty   bool
	maxDeletions int
	atomic       bool
	dryRun       bool
	output       string
}

func (a *applyFlags) bind(cmd *cobra.Command, apply bool) {
	fl := cmd.Flags()
	fl.StringSliceVarP(&a.files, "filename", "f", nil, "manifest file or directory, or - for standard input (repeatable)")
	fl.StringVar(&a.sourceID, "source-id", reconcile.ManualSource, "source the jobs belong to; prune is scoped to it")
	fl.BoolVar(&a.force, "force", false, "take over jobs owned by another source, and lift the maxDeletions guard")
	fl.BoolVar(&a.prune, "prune", false, "delete jobs of --source-id that the manifests no longer declare")
	fl.BoolVar(&a.allowEmpty, "allow-empty", false, "with --prune, allow pruning when the manifests declare no jobs")
	fl.IntVar(&a.maxDeletions, "max-deletions", 0, "with --prune, refuse to delete more jobs than this (default: 10 or 25% of the source, whichever is larger)")
	fl.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	if apply {
		fl.BoolVar(&a.atomic, "atomic", false, "apply all jobs in one transaction: any failure applies nothing")
		fl.BoolVar(&a.dryRun, "dry-run", false, "show what would change and write nothing")
	}
	_ = cmd.MarkFlagRequired("filename")
}

// request reads the manifests into an API request. Unreadable paths are
// errors here: nothing is sent.
func (a *applyFlags) request(cmd *cobra.Command) (api.ApplyRequest, error) {
	if a.output != "text" && a.output != "json" {
		return api.ApplyRequest{}, fmt.Errorf("--output must be text or json, not %q", a.output)
	}
	inputs, diags, err := collectInputs(cmd.Context(), a.files)
	if err != nil {
		return api.ApplyRequest{}, err
	}
	if len(diags) > 0 {
		return api.ApplyRequest{}, errors.New(diags[0].String())
	}
	req := api.ApplyRequest{SourceID: a.sourceID, Force: a.force, Prune: a.prune, AllowEmpty: a.allowEmpty,
		MaxDeletions: a.maxDeletions, Atomic: a.atomic, DryRun: a.dryRun}
	for _, in := range inputs {
		data, err := readInput(in, cmd.InOrStdin(), schema.DefaultLimits.MaxFileBytes)
		if err != nil {
			return api.ApplyRequest{}, fmt.Errorf("read %s: %w", in.name, err)
		}
		name := in.name
		if in.path != "" {
			name = filepath.ToSlash(filepath.Clean(in.path))
		}
		req.Documents = append(req.Documents, api.Document{Name: name, Content: string(data)})
	}
	return req, nil
}

func newJobApplyCmd(sf *serverFlags) *cobra.Command {
	var a applyFlags
	cmd := &cobra.Command{
		Use:   "apply -f PATH",
		Short: "Create, update and (with --prune) delete jobs to match manifests",
		Long: `apply sends manifests to the agent, which validates them, plans the difference
against its store and applies it. Unchanged jobs are not written. A job owned
by another source is a conflict unless --force. Each job is applied on its own
unless --atomic.

Exit status: 0 when everything applied, 1 on invalid manifests, conflicts,
failed writes or a refused prune.`,
		Example: "  caesium job apply -f examples/\n  caesium job apply -f jobs/ --prune --source-id team-data\n  cat job.yaml | caesium job apply -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.send(cmd, sf, (*client.Client).Apply, false)
		},
	}
	a.bind(cmd, true)
	return cmd
}

func newJobDiffCmd(sf *serverFlags) *cobra.Command {
	var a applyFlags
	cmd := &cobra.Command{
		Use:   "diff -f PATH",
		Short: "Show what applying manifests would change, field by field",
		Long: `diff plans manifests against the agent's store and prints every changed field,
without writing anything.

Exit status: 0 no changes, 2 changes pending, 1 error (invalid manifests,
conflicts, a refused prune).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.send(cmd, sf, (*client.Client).Diff, true)
		},
	}
	a.bind(cmd, false)
	return cmd
}

// send reads the manifests, sends them with call (apply or diff) and
// reports the answer.
func (a *applyFlags) send(cmd *cobra.Command, sf *serverFlags, call func(*client.Client, context.Context, api.ApplyRequest) (api.ApplyResponse, error), diff bool) error {
	req, err := a.request(cmd)
	if err != nil {
		return err
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	resp, err := call(c, cmd.Context(), req)
	return reportApply(cmd.OutOrStdout(), cmd.ErrOrStderr(), a.output, resp, err, diff)
}

// reportApply prints an apply or diff answer and chooses the exit status.
func reportApply(out, errOut io.Writer, format string, resp api.ApplyResponse, err error, diff bool) error {
	if diags := client.Diagnostics(err); diags != nil {
		var ds []schema.Diagnostic
		for _, raw := range diags {
			var d schema.Diagnostic
			if json.Unmarshal(raw, &d) == nil {
				ds = append(ds, d)
			}
		}
		if format == "json" {
			_ = writeJSON(out, ds)
		} else {
			for _, d := range ds {
				fmt.Fprintln(out, d.String())
			}
		}
		return fmt.Errorf("%w", err)
	}
	status := client.StatusOf(err)
	// A 503 in the middle of an apply carries the report of what was
	// written before the database went away: show it, then the error.
	partial := status == http.StatusServiceUnavailable && len(resp.Outcomes) > 0
	if err != nil && status != http.StatusConflict && !partial {
		return err
	}
	if format == "json" {
		if werr := writeJSONValue(out, resp); werr != nil {
			return werr
		}
	} else {
		for _, d := range resp.Diagnostics {
			fmt.Fprintln(errOut, d.String())
		}
		if diff {
			writeDiff(out, resp.Report)
		} else {
			writeApplied(out, resp)
		}
	}
	switch {
	case partial:
		return err
	case err != nil || resp.Report.Failed():
		return exitError{code: 1}
	case diff && hasChanges(resp.Report):
		return exitError{code: 2}
	}
	return nil
}

func hasChanges(r reconcile.Report) bool {
	s := r.Summary
	return s.Created+s.Updated+s.Deleted > 0
}

func writeApplied(w io.Writer, resp api.ApplyResponse) {
	verb := map[reconcile.Action]string{
		reconcile.ActionCreate: "created", reconcile.ActionUpdate: "updated", reconcile.ActionUnchanged: "unchanged",
		reconcile.ActionDelete: "deleted", reconcile.ActionConflict: "conflict",
	}
	if resp.DryRun {
		verb[reconcile.ActionCreate], verb[reconcile.ActionUpdate], verb[reconcile.ActionDelete] = "would create", "would update", "would delete"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, o := range resp.Outcomes {
		v := verb[o.Action]
		note := o.Reason
		switch {
		case o.Error != "":
			v, note = "failed", o.Error
		case o.Action == reconcile.ActionUpdate:
			note = fmt.Sprintf("%d field(s) changed", len(o.Diff))
		}
		if o.Transfer != nil {
			note = strings.TrimSpace(note + fmt.Sprintf("; ownership %s -> %s", o.Transfer.From, o.Transfer.To))
		}
		if note == "" {
			// No trailing cell, so no trailing blanks.
			fmt.Fprintf(tw, "%s\t%s\n", v, o.Alias)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v, o.Alias, note)
	}
	_ = tw.Flush()
	if resp.PruneRefused != "" {
		fmt.Fprintf(w, "prune refused: %s\n", resp.PruneRefused)
	}
	s := resp.Summary
	fmt.Fprintf(w, "%d created, %d updated, %d unchanged, %d deleted, %d conflicts, %d failed%s\n",
		s.Created, s.Updated, s.Unchanged, s.Deleted, s.Conflicts, s.Failed, map[bool]string{true: " (dry run)", false: ""}[resp.DryRun])
}

// writeDiff prints a plan field by field: + create, ~ update, - delete,
// ! conflict.
func writeDiff(w io.Writer, r reconcile.Report) {
	for _, o := range r.Outcomes {
		switch o.Action {
		case reconcile.ActionCreate:
			fmt.Fprintf(w, "+ %s (create)\n", o.Alias)
		case reconcile.ActionDelete:
			fmt.Fprintf(w, "- %s (delete: %s)\n", o.Alias, o.Reason)
		case reconcile.ActionConflict:
			fmt.Fprintf(w, "! %s (conflict: %s)\n", o.Alias, o.Reason)
		case reconcile.ActionUpdate:
			fmt.Fprintf(w, "~ %s (update)\n", o.Alias)
			if o.Transfer != nil {
				fmt.Fprintf(w, "    ownership: %s -> %s\n", o.Transfer.From, o.Transfer.To)
			}
			for _, d := range o.Diff {
				fmt.Fprintf(w, "    %s\n", d)
			}
		}
	}
	if r.PruneRefused != "" {
		fmt.Fprintf(w, "prune refused: %s\n", r.PruneRefused)
	}
	s := r.Summary
	if s.Created+s.Updated+s.Deleted == 0 {
		fmt.Fprintf(w, "No changes: %d job(s) up to date", s.Unchanged)
	} else {
		fmt.Fprintf(w, "Plan: %d to create, %d to update, %d to delete, %d unchanged", s.Created, s.Updated, s.Deleted, s.Unchanged)
	}
	if s.Conflicts > 0 {
		fmt.Fprintf(w, ", %d conflict(s)", s.Conflicts)
	}
	fmt.Fprintln(w, ".")
}

func newJobGetCmd(sf *serverFlags) *cobra.Command {
	var output, selector string
	cmd := &cobra.Command{
		Use:   "get [ALIAS]",
		Short: "Show jobs: one by alias, or all matching a label selector",
		Example: "  caesium job get\n  caesium job get nightly-etl -o json\n" +
			"  caesium job get -l team=data,tier!=batch -o yaml",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" && output != "yaml" {
				return fmt.Errorf("--output must be text, json or yaml, not %q", output)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var jobs []store.Job
			var single any
			if len(args) == 1 {
				if selector != "" {
					return errors.New("give an alias or a selector, not both")
				}
				j, err := c.GetJob(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				jobs, single = []store.Job{j}, j
			} else {
				if jobs, err = c.ListJobs(cmd.Context(), selector); err != nil {
					return err
				}
				if jobs == nil {
					jobs = []store.Job{}
				}
				single = jobs
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				return writeJSONValue(out, single)
			case "yaml":
				return writeYAML(out, single)
			}
			return writeJobTable(out, jobs)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. team=data,tier!=batch,env in (prod,staging)")
	return cmd
}

func writeJobTable(w io.Writer, jobs []store.Job) error {
	if len(jobs) == 0 {
		_, err := fmt.Fprintln(w, "No jobs.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tTRIGGER\tSTEPS\tSOURCE\tVERSION\tUPDATED")
	for _, j := range jobs {
		trigger, steps := "?", 0
		if spec, err := j.Decode(); err == nil {
			trigger = spec.Trigger.Type
			if spec.Trigger.Type == schema.TriggerCron {
				trigger += " " + spec.Trigger.Configuration.Expression
			}
			steps = len(spec.Steps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", j.Alias, trigger, steps, j.Provenance.SourceID, j.Version, j.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func newJobDeleteCmd(sf *serverFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete ALIAS",
		Short: "Delete a job (soft: its run history stays until gc)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			if err := c.DeleteJob(cmd.Context(), args[0], force); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete a job owned by a Git source (its next sync recreates it unless the manifest is gone)")
	return cmd
}

func newJobGCCmd(sf *serverFlags) *cobra.Command {
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "gc --older-than DURATION",
		Short: "Hard-delete jobs deleted longer ago than DURATION, with their history",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return errors.New("--older-than must be a positive duration, such as 720h")
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			n, err := c.GC(cmd.Context(), olderThan)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d job(s) deleted more than %s ago\n", n, olderThan)
			return err
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "purge jobs deleted longer ago than this")
	_ = cmd.MarkFlagRequired("older-than")
	return cmd
}

func writeJSONValue(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML prints v as YAML with the same field names as its JSON.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}
