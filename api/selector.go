package api

import (
	"fmt"
	"slices"
	"strings"
)

// Selector matches label sets, in kubectl's syntax: key=value, key==value,
// key!=value, key, !key, key in (a,b), key notin (a,b); comma separated,
// all must hold.
type Selector []requirement

type requirement struct {
	key    string
	op     string // =, !=, exists, !exists, in, notin
	values []string
}

// ParseSelector parses a label selector. An empty string matches everything.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		r, err := parseTerm(term)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits on commas outside parentheses.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseTerm(t string) (requirement, error) {
	if k, ok := strings.CutPrefix(t, "!"); ok && !strings.HasPrefix(k, "=") {
		k = strings.TrimSpace(k)
		if err := checkKey(k); err != nil {
			return requirement{}, err
		}
		return requirement{key: k, op: "!exists"}, nil
	}
	// Set operators first: their values may not hold "=", so a term with
	// one is an equality, and checking sets first gives the better message.
	if k, op, rest, ok := cutSetOp(t); ok {
		if err := checkKey(k); err != nil {
			return requirement{}, err
		}
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return requirement{}, fmt.Errorf("%s needs a parenthesised list: %s %s (a,b)", op, k, op)
		}
		var vals []string
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			if v = strings.TrimSpace(v); v != "" {
				if err := checkValue(v); err != nil {
					return requirement{}, err
				}
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			return requirement{}, fmt.Errorf("%s needs at least one value", op)
		}
		return requirement{key: k, op: op, values: vals}, nil
	}
	for _, op := range []string{"!=", "==", "="} {
		if k, v, ok := strings.Cut(t, op); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if err := checkKey(k); err != nil {
				return requirement{}, err
			}
			if err := checkValue(v); err != nil {
				return requirement{}, err
			}
			if op == "==" {
				op = "="
			}
			return requirement{key: k, op: op, values: []string{v}}, nil
		}
	}
	if err := checkKey(t); err != nil {
		return requirement{}, err
	}
	return requirement{key: t, op: "exists"}, nil
}

// cutSetOp splits "key in (a,b)" or "key notin(a,b)" into the key, the
// operator and the parenthesised rest.
func cutSetOp(t string) (key, op, rest string, ok bool) {
	i := strings.IndexAny(t, " \t(")
	if i <= 0 {
		return "", "", "", false
	}
	key, after := t[:i], strings.TrimSpace(t[i:])
	for _, op := range []string{"notin", "in"} {
		r, found := strings.CutPrefix(after, op)
		if found && (r == "" || r[0] == ' ' || r[0] == '\t' || r[0] == '(') {
			return key, op, strings.TrimSpace(r), true
		}
	}
	return "", "", "", false
}

func checkValue(v string) error {
	if strings.ContainsAny(v, "=!(), \t") {
		return fmt.Errorf("bad value %q", v)
	}
	return nil
}

func checkKey(k string) error {
	if k == "" || strings.ContainsAny(k, " \t=!(),") {
		return fmt.Errorf("bad label key %q", k)
	}
	return nil
}

// Matches reports whether the labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.key]
		switch r.op {
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "=":
			if !ok || v != r.values[0] {
				return false
			}
		case "!=":
			if ok && v == r.values[0] {
				return false
			}
		case "in":
			if !ok || !slices.Contains(r.values, v) {
				return false
			}
		case "notin":
			if ok && slices.Contains(r.values, v) {
				return false
			}
		}
	}
	return true
}
