package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caesium-io/caesium/schema"
	"github.com/spf13/cobra"
)

// stdinName names standard input in diagnostics.
const stdinName = "<stdin>"

func newLintCmd(getenv func(string) string) *cobra.Command {
	var (
		format       string
		checkSecrets bool
		secretsDir   string
	)
	cmd := &cobra.Command{
		Use:   "lint [PATH...|-]",
		Short: "Check job manifests for errors",
		Long: `lint parses job manifests and reports every problem it finds, as
file:line:col: path: message lines followed by a summary, or as a JSON array
with --format json.

Each PATH is a file, a directory or - for standard input. Directories are
searched recursively for *.yaml and *.yml files, in lexical order; hidden files
and directories (.git) are skipped and symbolic links to directories are not
followed. The documents of all files are checked together, so an alias used
twice across files is an error.

The exit status is 0 when there are no errors (warnings allowed) and 1
otherwise.`,
		Example: "  caesium job lint jobs/\n  caesium job lint nightly.yaml --format json\n  cat job.yaml | caesium job lint -",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("--format must be text or json, not %q", format)
			}
			if len(args) == 0 {
				return errors.New("job lint needs a path: a file, a directory, or - for standard input")
			}
			res, err := lint(cmd.Context(), args, cmd.InOrStdin(), schema.DefaultLimits)
			if err != nil {
				return err
			}
			if checkSecrets {
				r, closeSecrets, err := newSecretResolver(cmd.Context(), getenv, secretsDir)
				if err != nil {
					return err
				}
				defer closeSecrets()
				res.diags = append(res.diags, checkSecretRefs(cmd.Context(), r, res.docs)...)
				schema.SortDiagnostics(res.diags)
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				err = writeJSON(out, res.diags)
			} else {
				err = writeText(out, res)
			}
			if err != nil {
				return err
			}
			if schema.HasErrors(res.diags) {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().BoolVar(&checkSecrets, "check-secrets", false, "resolve every secret:// reference and report the ones that cannot be resolved (values are never printed)")
	cmd.Flags().StringVar(&secretsDir, "secrets-dir", getenv("CAESIUM_SECRETS_FILE_DIR"), "directory secret://file/PATH reads below (env CAESIUM_SECRETS_FILE_DIR)")
	return cmd
}

// lintResult is what a lint found.
type lintResult struct {
	files int
	jobs  int
	diags []schema.Diagnostic // sorted
	docs  []*schema.Document
}

// input is one manifest to read: a file, or standard input when path is "".
type input struct {
	name string // as diagnostics show it
	path string
}

// lint reads and checks the manifests at paths. A path it cannot read is an
// error diagnostic, not a failure: it goes on with the rest. It fails only
// when ctx is done.
func lint(ctx context.Context, paths []string, stdin io.Reader, limits schema.Limits) (lintResult, error) {
	inputs, diags, err := collectInputs(ctx, paths)
	if err != nil {
		return lintResult{}, err
	}
	var docs []*schema.Document
	for _, in := range inputs {
		if err := ctx.Err(); err != nil {
			return lintResult{}, err
		}
		data, err := readInput(in, stdin, limits.MaxFileBytes)
		var tooLarge *sizeError
		switch {
		case errors.As(err, &tooLarge):
			diags = append(diags, schema.Diagnostic{File: in.name, Line: 1, Column: 1, Severity: schema.SeverityError, Message: err.Error()})
			continue
		case err != nil:
			diags = append(diags, pathError(in.name, "cannot read", err))
			continue
		}
		fileDocs, fileDiags := schema.Parse(in.name, data, limits)
		diags = append(diags, fileDiags...)
		for _, d := range fileDocs {
			diags = append(diags, d.Diagnostics...)
		}
		docs = append(docs, fileDocs...)
	}
	diags = append(diags, schema.CheckSet(docs)...)
	schema.SortDiagnostics(diags)
	return lintResult{files: len(inputs), jobs: len(docs), diags: diags, docs: docs}, nil
}

// readInput reads an input whole, or fails with a *sizeError when it is
// larger than limit. It never reads more than limit+1 bytes.
func readInput(in input, stdin io.Reader, limit int64) ([]byte, error) {
	r, size := stdin, int64(-1)
	if in.path != "" {
		f, err := os.Open(in.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
			size = info.Size()
			if size > limit {
				return nil, &sizeError{size: size, limit: limit}
			}
		}
		r = f
	}
	data, err := schema.ReadLimited(r, limit)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		// Parse would say so too, but from the limit+1 bytes read it cannot
		// tell how large the input is.
		return nil, &sizeError{size: -1, limit: limit}
	}
	return data, nil
}

// sizeError is an input over the size limit.
type sizeError struct {
	size  int64 // -1 when unknown (standard input, a pipe)
	limit int64
}

func (e *sizeError) Error() string {
	if e.size < 0 {
		return fmt.Sprintf("input is larger than %s, the limit", mebibytes(e.limit))
	}
	return fmt.Sprintf("file is %s; the limit is %s", mebibytes(e.size), mebibytes(e.limit))
}

func mebibytes(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

// collectInputs expands paths into the files to read, in order and without
// duplicates. Problems with a path become diagnostics.
func collectInputs(ctx context.Context, paths []string) ([]input, []schema.Diagnostic, error) {
	var (
		inputs []input
		diags  []schema.Diagnostic
		seen   = map[string]bool{}
	)
	add := func(in input) {
		key := in.name
		if in.path != "" {
			key = filepath.Clean(in.path)
		}
		if !seen[key] {
			seen[key] = true
			inputs = append(inputs, in)
		}
	}
	for _, p := range paths {
		if p == "-" {
			add(input{name: stdinName})
			continue
		}
		info, err := os.Stat(p) // a path named on the command line is followed, even if a link
		if err != nil {
			diags = append(diags, pathError(p, "cannot read", err))
			continue
		}
		if !info.IsDir() {
			add(input{name: p, path: p}) // named explicitly: read whatever its extension
			continue
		}
		found, unreadable := 0, false
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if err != nil {
				unreadable = true
				diags = append(diags, pathError(path, "cannot read", err))
				return nil // WalkDir skips what it could not read
			}
			if path != p && hidden(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !isManifest(d.Name()) {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				// WalkDir never follows links. Read a link to a file; skip a link to
				// a directory, which could loop.
				target, err := os.Stat(path)
				if err != nil {
					diags = append(diags, pathError(path, "cannot read", err))
					return nil
				}
				if !target.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			found++
			add(input{name: path, path: path})
			return nil
		})
		if err != nil {
			return nil, nil, err // only ctx ends a walk early
		}
		if found == 0 && !unreadable {
			diags = append(diags, schema.Diagnostic{File: p, Line: 1, Column: 1, Severity: schema.SeverityError,
				Message: "directory holds no *.yaml or *.yml files"})
		}
	}
	return inputs, diags, nil
}

func hidden(name string) bool {
	return strings.HasPrefix(name, ".") && name != "." && name != ".."
}

func isManifest(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// pathError is an error diagnostic for a file or directory that could not be
// read. The path is the diagnostic's file, so the message leaves it out.
func pathError(path, what string, err error) schema.Diagnostic {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return schema.Diagnostic{File: path, Line: 1, Column: 1, Severity: schema.SeverityError, Message: fmt.Sprintf("%s: %v", what, err)}
}

func writeText(w io.Writer, res lintResult) error {
	var b strings.Builder
	errs, warns := 0, 0
	for _, d := range res.diags {
		b.WriteString(d.String())
		b.WriteByte('\n')
		if d.Severity == schema.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	fmt.Fprintf(&b, "%s, %s: ", plural(res.files, "file"), plural(res.jobs, "job"))
	switch {
	case errs > 0 && warns > 0:
		fmt.Fprintf(&b, "%s, %s\n", plural(errs, "error"), plural(warns, "warning"))
	case errs > 0:
		fmt.Fprintf(&b, "%s\n", plural(errs, "error"))
	case warns > 0:
		fmt.Fprintf(&b, "ok, %s\n", plural(warns, "warning"))
	default:
		b.WriteString("ok\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeJSON(w io.Writer, diags []schema.Diagnostic) error {
	if diags == nil {
		diags = []schema.Diagnostic{} // [] when clean, never null
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(diags)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
