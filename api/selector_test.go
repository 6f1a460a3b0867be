package api_test

import (
	"strings"
	"testing"

	"github.com/caesium-io/caesium/api"
)

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	data := map[string]string{"team": "data", "tier": "batch", "app.kubernetes.io/name": "etl", "empty": ""}
	web := map[string]string{"team": "web", "tier": "critical"}
	none := map[string]string(nil)
	tests := []struct {
		name     string
		selector string
		labels   map[string]string
		want     bool
	}{
		{name: "empty selector matches everything", selector: "", labels: data, want: true},
		{name: "empty selector matches no labels", selector: "", labels: none, want: true},
		{name: "blank selector", selector: "  ", labels: none, want: true},

		{name: "= matches", selector: "team=data", labels: data, want: true},
		{name: "= differs", selector: "team=web", labels: data, want: false},
		{name: "= missing key", selector: "team=data", labels: none, want: false},
		{name: "== same as =", selector: "team==data", labels: data, want: true},
		{name: "== differs", selector: "team==web", labels: data, want: false},
		{name: "= spaces around", selector: " team = data ", labels: data, want: true},
		{name: "= prefixed key", selector: "app.kubernetes.io/name=etl", labels: data, want: true},
		{name: "= empty value", selector: "empty=", labels: data, want: true},
		{name: "= empty value, key missing", selector: "empty=", labels: web, want: false},

		{name: "!= differs", selector: "team!=web", labels: data, want: true},
		{name: "!= equal", selector: "team!=data", labels: data, want: false},
		{name: "!= missing key matches", selector: "team!=data", labels: none, want: true},

		{name: "exists", selector: "tier", labels: data, want: true},
		{name: "exists missing", selector: "owner", labels: data, want: false},
		{name: "exists with empty value", selector: "empty", labels: data, want: true},
		{name: "!exists", selector: "!owner", labels: data, want: true},
		{name: "!exists present", selector: "!tier", labels: data, want: false},
		{name: "!exists with space", selector: "! tier", labels: web, want: false},

		{name: "in matches", selector: "tier in (batch,critical)", labels: data, want: true},
		{name: "in matches other", selector: "tier in (batch, critical)", labels: web, want: true},
		{name: "in no match", selector: "tier in (standard)", labels: data, want: false},
		{name: "in missing key", selector: "tier in (batch)", labels: none, want: false},
		{name: "in no space before paren", selector: "tier in(batch)", labels: data, want: true},
		{name: "notin no space before paren", selector: "tier notin(batch)", labels: data, want: false},
		{name: "key starting with in", selector: "index=5", labels: map[string]string{"index": "5"}, want: true},
		{name: "notin no match", selector: "tier notin (critical,standard)", labels: data, want: true},
		{name: "notin match", selector: "tier notin (batch)", labels: data, want: false},
		{name: "notin missing key matches", selector: "tier notin (batch)", labels: none, want: true},

		{name: "and: all hold", selector: "team=data,tier!=critical,app.kubernetes.io/name", labels: data, want: true},
		{name: "and: one fails", selector: "team=data,tier=critical", labels: data, want: false},
		{name: "and: in with commas inside", selector: "tier in (batch,critical),team=web", labels: web, want: true},
		{name: "and: in with commas inside fails", selector: "tier in (batch,critical),team=web", labels: data, want: false},
		{name: "and: notin then exists", selector: "team notin (web),!owner", labels: data, want: true},
		{name: "trailing comma ignored", selector: "team=data,", labels: data, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sel, err := api.ParseSelector(tt.selector)
			if err != nil {
				t.Fatalf("ParseSelector(%q): %v", tt.selector, err)
			}
			if got := sel.Matches(tt.labels); got != tt.want {
				t.Errorf("ParseSelector(%q).Matches(%v) = %v, want %v", tt.selector, tt.labels, got, tt.want)
			}
		})
	}
}

func TestSelectorErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		selector string
		wantErr  string
	}{
		{name: "no key before =", selector: "=data", wantErr: `bad label key ""`},
		{name: "no key before !=", selector: "!=data", wantErr: "bad label key"},
		{name: "!exists without key", selector: "!", wantErr: `bad label key ""`},
		{name: "!exists with value", selector: "!team=data", wantErr: "bad label key"},
		{name: "two operators", selector: "team=data=web", wantErr: `bad value "data=web"`},
		{name: "value with space", selector: "team=da ta", wantErr: `bad value "da ta"`},
		{name: "value with paren", selector: "team=(data)", wantErr: "bad value"},
		{name: "in without parens", selector: "tier in batch", wantErr: "in needs a parenthesised list"},
		{name: "in unclosed", selector: "tier in (batch,critical", wantErr: "in needs a parenthesised list"},
		{name: "in empty", selector: "tier in ()", wantErr: "in needs at least one value"},
		{name: "notin empty", selector: "tier notin ( , )", wantErr: "notin needs at least one value"},
		{name: "in value with space", selector: "tier in (bat ch)", wantErr: `bad value "bat ch"`},
		{name: "in value with operator", selector: "tier in (a=b)", wantErr: `bad value "a=b"`},
		{name: "in without key", selector: "in (a)", wantErr: "bad label key"},
		{name: "key with space", selector: "my team", wantErr: `bad label key "my team"`},
		{name: "stray paren", selector: "(team)", wantErr: "bad label key"},
		{name: "second term bad", selector: "team=data,=x", wantErr: `bad label key ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sel, err := api.ParseSelector(tt.selector)
			if err == nil {
				t.Fatalf("ParseSelector(%q) = %v, want an error with %q", tt.selector, sel, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSelector(%q) error %q does not contain %q", tt.selector, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.selector) {
				t.Errorf("error %q does not quote the selector %q", err, tt.selector)
			}
		})
	}
}
