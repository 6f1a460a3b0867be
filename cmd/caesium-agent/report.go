package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/reconcile"
)

// onceExit maps the results of --once to the exit status: 1 on any failure;
// with --detailed-exitcode, 2 when something changed (or would change) and
// 0 when nothing did.
func onceExit(results []*agent.SyncResult, detailed bool) error {
	changed := false
	for _, r := range results {
		if r.Failed() {
			return exitError{code: 1, err: fmt.Errorf("source %s: %s", r.SourceID, failure(r))}
		}
		changed = changed || r.Changes()
	}
	if detailed && changed {
		return exitError{code: 2, err: errChanges}
	}
	return nil
}

var errChanges = fmt.Errorf("changes pending")

func failure(r *agent.SyncResult) string {
	if r.Error != "" {
		return r.Error
	}
	if r.Report != nil && r.Report.PruneRefused != "" {
		return r.Report.PruneRefused
	}
	return "some jobs were not applied"
}

func writeResults(w io.Writer, format string, results []*agent.SyncResult) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	case "markdown":
		return writeMarkdown(w, results)
	}
	return writeText(w, results)
}

func verbs(dry bool) map[reconcile.Action]string {
	if dry {
		return map[reconcile.Action]string{reconcile.ActionCreate: "would create", reconcile.ActionUpdate: "would update", reconcile.ActionDelete: "would delete", reconcile.ActionConflict: "conflict"}
	}
	return map[reconcile.Action]string{reconcile.ActionCreate: "created", reconcile.ActionUpdate: "updated", reconcile.ActionDelete: "deleted", reconcile.ActionConflict: "conflict"}
}

func writeText(w io.Writer, results []*agent.SyncResult) error {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "source %s (%s) at %s\n", r.SourceID, r.Repo, shortSHA(r.Commit))
		for _, d := range r.Diagnostics {
			fmt.Fprintf(&b, "  %s\n", d.String())
		}
		if r.UpToDate {
			b.WriteString("  up to date: this commit is already applied\n")
			continue
		}
		if r.Report != nil {
			v := verbs(r.DryRun)
			for _, o := range r.Report.Outcomes {
				if o.Action == reconcile.ActionUnchanged {
					continue
				}
				line := fmt.Sprintf("  %-12s %s", v[o.Action], o.Alias)
				switch {
				case o.Error != "":
					line = fmt.Sprintf("  %-12s %s: %s", "failed", o.Alias, o.Error)
				case o.Reason != "" && o.Action != reconcile.ActionCreate:
					line += ": " + o.Reason
				}
				b.WriteString(line + "\n")
				for _, d := range o.Diff {
					fmt.Fprintf(&b, "      %s\n", d.String())
				}
			}
			if r.Report.PruneRefused != "" {
				fmt.Fprintf(&b, "  prune refused: %s\n", r.Report.PruneRefused)
			}
			fmt.Fprintf(&b, "  %s\n", summary(r))
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "  error (%s): %s\n", r.Reason, r.Error)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func summary(r *agent.SyncResult) string {
	s := r.Report.Summary
	prefix := ""
	if r.DryRun {
		prefix = "plan: "
	}
	return fmt.Sprintf("%s%d created, %d updated, %d deleted, %d unchanged, %d conflicts, %d failed (%d files, %d jobs)",
		prefix, s.Created, s.Updated, s.Deleted, s.Unchanged, s.Conflicts, s.Failed, r.Files, r.Jobs)
}

// writeMarkdown renders a pull-request comment: a summary line per source,
// a table of creates, updates and deletes, and each update's field diff in
// a collapsible section.
func writeMarkdown(w io.Writer, results []*agent.SyncResult) error {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "### Caesium: `%s` at `%s`\n\n", r.SourceID, shortSHA(r.Commit))
		switch {
		case r.Error != "":
			fmt.Fprintf(&b, ":x: **%s**: %s\n\n", r.Reason, mdEscape(r.Error))
		case r.UpToDate:
			b.WriteString("Up to date: this commit is already applied.\n\n")
		}
		if errs := countDiagnostics(r); errs > 0 {
			b.WriteString("<details><summary>Manifest problems</summary>\n\n```\n")
			for _, d := range r.Diagnostics {
				b.WriteString(d.String() + "\n")
			}
			b.WriteString("```\n</details>\n\n")
		}
		if r.Report == nil {
			continue
		}
		s := r.Report.Summary
		if r.DryRun {
			fmt.Fprintf(&b, "**%d to create, %d to update, %d to delete**, %d unchanged", s.Created, s.Updated, s.Deleted, s.Unchanged)
		} else {
			fmt.Fprintf(&b, "**%d created, %d updated, %d deleted**, %d unchanged", s.Created, s.Updated, s.Deleted, s.Unchanged)
		}
		if s.Conflicts > 0 {
			fmt.Fprintf(&b, ", :warning: %d conflicts", s.Conflicts)
		}
		b.WriteString(".\n\n")
		if r.Report.PruneRefused != "" {
			fmt.Fprintf(&b, ":warning: Prune refused: %s\n\n", mdEscape(r.Report.PruneRefused))
		}
		var rows, details strings.Builder
		for _, o := range r.Report.Outcomes {
			if o.Action == reconcile.ActionUnchanged {
				continue
			}
			note := o.Reason
			if o.Action == reconcile.ActionUpdate {
				note = fmt.Sprintf("%d field(s)", len(o.Diff))
			}
			if o.Error != "" {
				note = "failed: " + o.Error
			}
			fmt.Fprintf(&rows, "| %s | `%s` | %s |\n", o.Action, o.Alias, mdEscape(note))
			if len(o.Diff) > 0 {
				fmt.Fprintf(&details, "<details><summary><code>%s</code>: %d field(s)</summary>\n\n```diff\n", o.Alias, len(o.Diff))
				for _, d := range o.Diff {
					details.WriteString(d.String() + "\n")
				}
				details.WriteString("```\n</details>\n\n")
			}
		}
		if rows.Len() > 0 {
			b.WriteString("| action | job | detail |\n|---|---|---|\n")
			b.WriteString(rows.String())
			b.WriteString("\n")
			b.WriteString(details.String())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countDiagnostics(r *agent.SyncResult) int { return len(r.Diagnostics) }

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

func shortSHA(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	if c == "" {
		return "(unknown commit)"
	}
	return c
}
