package secrets

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// Redacted replaces a secret in Redact's output.
	Redacted = "[REDACTED]"
	// redactRetention is how long a resolved value is remembered for Redact.
	redactRetention = time.Hour
	// Bounds on what is remembered; past them the least recently resolved
	// values are forgotten first.
	maxRedactValues = 1024
	maxRedactBytes  = 4 << 20
	// minRedactLen is the shortest value scrubbed; minRedactLine the
	// shortest single line of a multi-line value (a PEM key, a JSON
	// credential) scrubbed on its own.
	minRedactLen  = 4
	minRedactLine = 16
)

// redactor remembers resolved values and scrubs them from text.
type redactor struct {
	retain time.Duration

	mu       sync.Mutex
	seen     map[string]time.Time // value -> last resolved
	size     int                  // bytes of the values in seen
	next     time.Time            // earliest expiry in seen
	replacer *strings.Replacer    // built from seen; nil: rebuild
}

func (d *redactor) remember(v string, now time.Time) {
	if len(v) < minRedactLen || len(v) > maxRedactBytes {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	if _, ok := d.seen[v]; ok {
		d.seen[v] = now // refreshing changes no pattern: keep the replacer
		return
	}
	if len(d.seen) == 0 || now.Add(d.retain).Before(d.next) {
		d.next = now.Add(d.retain)
	}
	d.seen[v] = now
	d.size += len(v)
	d.replacer = nil
	for len(d.seen) > maxRedactValues || d.size > maxRedactBytes {
		d.forgetOldest()
	}
}

func (d *redactor) forgetOldest() {
	var oldest string
	var at time.Time
	first := true
	for v, t := range d.seen {
		if first || t.Before(at) {
			oldest, at, first = v, t, false
		}
	}
	delete(d.seen, oldest)
	d.size -= len(oldest)
}

// expire forgets values not resolved within retain. Called with mu held.
func (d *redactor) expire(now time.Time) {
	if len(d.seen) == 0 || now.Before(d.next) {
		return
	}
	d.next = time.Time{}
	for v, t := range d.seen {
		exp := t.Add(d.retain)
		if !now.Before(exp) {
			delete(d.seen, v)
			d.size -= len(v)
			d.replacer = nil
			continue
		}
		if d.next.IsZero() || exp.Before(d.next) {
			d.next = exp
		}
	}
}

func (d *redactor) replace(s string, now time.Time) string {
	d.mu.Lock()
	d.expire(now)
	if len(d.seen) == 0 {
		d.mu.Unlock()
		return s
	}
	if d.replacer == nil {
		d.replacer = d.build()
	}
	rep := d.replacer
	d.mu.Unlock()
	return rep.Replace(s)
}

// build makes a replacer for every remembered value and the forms it takes
// when quoted or URL-escaped in an error message, and for each long line of a
// multi-line value. Called with mu held.
func (d *redactor) build() *strings.Replacer {
	set := map[string]bool{}
	add := func(p string, min int) {
		if len(p) >= min {
			set[p] = true
		}
	}
	for v := range d.seen {
		add(v, minRedactLen)
		if q := strconv.Quote(v); len(q) > 2 {
			add(q[1:len(q)-1], minRedactLen)
		}
		add(url.QueryEscape(v), minRedactLen)
		add(url.PathEscape(v), minRedactLen)
		if strings.ContainsAny(v, "\r\n") {
			for line := range strings.Lines(v) {
				add(strings.TrimSpace(line), minRedactLine)
			}
		}
	}
	// strings.Replacer tries patterns in argument order at each position:
	// longest first, so a secret containing another is scrubbed whole.
	patterns := make([]string, 0, len(set))
	for p := range set {
		patterns = append(patterns, p)
	}
	slices.SortFunc(patterns, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	args := make([]string, 0, 2*len(patterns))
	for _, p := range patterns {
		args = append(args, p, Redacted)
	}
	return strings.NewReplacer(args...)
}
