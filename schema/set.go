package schema

import "fmt"

// CheckSet runs the checks that span documents: an alias, or an http
// trigger path, used by more than one job of one lint or apply is an error
// on every use after the first.
func CheckSet(docs []*Document) []Diagnostic {
	var diags []Diagnostic
	type use struct {
		doc *Document
	}
	aliases := map[string]use{}
	paths := map[string]use{}
	for _, d := range docs {
		if d.Job == nil {
			continue
		}
		if a := d.Job.Metadata.Alias; a != "" {
			if first, dup := aliases[a]; dup {
				p := d.Pos("metadata.alias")
				fp := first.doc.Pos("metadata.alias")
				diags = append(diags, Diagnostic{File: d.File, Line: p.Line, Column: p.Column, Path: "metadata.alias", Severity: SeverityError,
					Message: fmt.Sprintf("alias %q is already defined at %s:%d", a, first.doc.File, fp.Line)})
			} else {
				aliases[a] = use{d}
			}
		}
		if d.Job.Trigger.Type == TriggerHTTP {
			if hp := d.Job.Trigger.Configuration.Path; hp != "" {
				if first, dup := paths[hp]; dup {
					p := d.Pos("trigger.configuration.path")
					fp := first.doc.Pos("trigger.configuration.path")
					diags = append(diags, Diagnostic{File: d.File, Line: p.Line, Column: p.Column, Path: "trigger.configuration.path", Severity: SeverityError,
						Message: fmt.Sprintf("http trigger path %q is already used by job %q at %s:%d", hp, first.doc.Job.Metadata.Alias, first.doc.File, fp.Line)})
				} else {
					paths[hp] = use{d}
				}
			}
		}
	}
	return diags
}
