package schema_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caesium-io/caesium/schema"
)

const (
	examplesDir = "../examples"
	minExamples = 6
)

// TestExamples keeps the shipped examples valid: each lints without errors
// (alone and together with the others), and each document validates against
// the committed JSON Schema, as it would in an editor.
func TestExamples(t *testing.T) {
	t.Parallel()
	files := exampleFiles(t)
	if len(files) < minExamples {
		t.Fatalf("found %d example manifests under %s, want at least %d", len(files), examplesDir, minExamples)
	}
	raw, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatal(err)
	}
	sch := compileJobSchema(t, raw)

	var all []*schema.Document
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs, diags := schema.Parse(file, data, schema.Limits{})
		reportDiags(t, file, -1, diags)
		for _, d := range docs {
			reportDiags(t, file, d.Index, d.Diagnostics)
		}
		all = append(all, docs...)

		values, err := yamlDocuments(data)
		if err != nil {
			t.Errorf("%s: YAML: %v", file, err)
			continue
		}
		for i, v := range values {
			if v == nil {
				continue // empty document, skipped by Parse too
			}
			j, err := manifestJSON(v)
			if err != nil {
				t.Errorf("%s document %d: %v", file, i, err)
				continue
			}
			if err := sch.Validate(j); err != nil {
				t.Errorf("%s document %d does not validate against %s:\n%v", file, i, committedSchema, err)
			}
		}
	}
	// Across files: aliases and http paths are unique.
	for _, d := range schema.CheckSet(all) {
		t.Errorf("%s", d)
	}
}

func reportDiags(t *testing.T, file string, index int, diags []schema.Diagnostic) {
	t.Helper()
	where := file
	if index >= 0 {
		where = file + " document " + strconv.Itoa(index)
	}
	for _, d := range diags {
		if d.Severity == schema.SeverityError {
			t.Errorf("%s: %s", where, d)
		} else {
			t.Logf("%s: %s", where, d)
		}
	}
}

// exampleFiles lists the manifests under examples, as caesium job lint
// finds them: *.yaml and *.yml, hidden files and directories skipped.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(examplesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != examplesDir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list examples: %v", err)
	}
	return files
}
