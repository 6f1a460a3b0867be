package schema

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones must not depend on the host's zoneinfo

	"github.com/robfig/cron/v3"
	"golang.org/x/net/http/httpguts"
)

var (
	aliasRe    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	stepNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	// Kubernetes qualified name (the part after an optional DNS prefix).
	qualifiedNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	dnsSubdomainRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	httpPathRe      = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
)

const (
	minEvery      = time.Second
	maxNameLength = 63
	maxRetries    = 100
)

// CronParser parses trigger expressions: five fields, or a descriptor such
// as @hourly or @every 90m.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// validator runs the semantic checks of one job. It reads field positions
// recorded by the decoder, so it must see the job before Normalize fills in
// defaults (presence of a field is told by its position, not its value).
type validator struct {
	doc    *Document
	limits Limits
	// suggestions left for edge targets: each compares the target with
	// every step name, so a file full of bad targets must not cost that
	// without bound.
	edgeSuggestions int
}

const maxEdgeSuggestions = 20

// has reports whether the field is set in the file; an explicit null reads
// as absent.
func (v *validator) has(path string) bool {
	_, ok := v.doc.pos[path]
	return ok && !v.doc.null[path]
}

// failed reports whether the decoder already reported the field or one of
// its ancestors: a field whose value could not be read is left zero, and
// checking that zero value would only report the same mistake again.
func (v *validator) failed(path string) bool {
	for {
		if v.doc.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

func (v *validator) add(sev Severity, path, format string, args ...any) {
	if v.failed(path) {
		return // the decoder already reported this field
	}
	if v.full() {
		v.doc.dropped = true
		return
	}
	p := v.doc.Pos(path)
	v.doc.Diagnostics = append(v.doc.Diagnostics, Diagnostic{
		File: v.doc.File, Line: p.Line, Column: p.Column, Path: path, Severity: sev, Message: fmt.Sprintf(format, args...),
	})
}

func (v *validator) full() bool { return len(v.doc.Diagnostics) >= maxDiagnostics }

func (v *validator) errorf(path, format string, args ...any) {
	v.add(SeverityError, path, format, args...)
}

func (v *validator) warnf(path, format string, args ...any) {
	v.add(SeverityWarning, path, format, args...)
}

func (v *validator) validate(j *Job) {
	switch {
	case !v.has("apiVersion") || j.APIVersion == "":
		v.errorf("apiVersion", "apiVersion is required; set it to %s", APIVersion)
	case j.APIVersion != APIVersion:
		v.errorf("apiVersion", "apiVersion %q is not supported; use %s", j.APIVersion, APIVersion)
	}
	switch {
	case !v.has("kind") || j.Kind == "":
		v.errorf("kind", "kind is required; set it to %s", KindJob)
	case j.Kind != KindJob:
		v.errorf("kind", "kind %q is not supported; use %s", j.Kind, KindJob)
	}
	v.metadata(&j.Metadata)
	v.trigger(&j.Trigger)
	for i := range j.Callbacks {
		if p := fmt.Sprintf("callbacks[%d]", i); !v.failed(p) {
			v.callback(p, &j.Callbacks[i])
		}
	}
	v.steps(j)
}

func (v *validator) metadata(m *Metadata) {
	switch {
	case v.failed("metadata"):
		return // not a mapping, or a misspelt key; already reported
	case !v.has("metadata"):
		v.errorf("metadata", "metadata is required, with at least an alias")
		return
	case m.Alias == "":
		v.errorf("metadata.alias", "alias is required")
	case len(m.Alias) > maxNameLength:
		v.errorf("metadata.alias", "alias %q is %d characters; the limit is %d", m.Alias, len(m.Alias), maxNameLength)
	case !aliasRe.MatchString(m.Alias):
		v.errorf("metadata.alias", "alias %q may hold only lowercase letters, digits and '-', and must start and end with a letter or digit", m.Alias)
	}
	for _, k := range sortedKeys(m.Labels) {
		p := JoinPath("metadata.labels", k)
		if err := checkQualifiedKey(k); err != nil {
			v.errorf(p, "label key %q: %v", k, err)
		}
		if val := m.Labels[k]; val != "" && (len(val) > maxNameLength || !qualifiedNameRe.MatchString(val)) {
			v.errorf(p, "label value %q must be at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit", val)
		}
	}
	if val, ok := m.Labels[PruneLabel]; ok && val != PruneDisabled {
		v.errorf(JoinPath("metadata.labels", PruneLabel), "label %s accepts only %q", PruneLabel, PruneDisabled)
	}
	for _, k := range sortedKeys(m.Annotations) {
		if err := checkQualifiedKey(k); err != nil {
			v.errorf(JoinPath("metadata.annotations", k), "annotation key %q: %v", k, err)
		}
	}
	if m.MaxParallelTasks < 0 {
		v.errorf("metadata.maxParallelTasks", "maxParallelTasks must be 0 (no limit) or more, got %d", m.MaxParallelTasks)
	}
	v.positive("metadata.taskTimeout", m.TaskTimeout)
	v.positive("metadata.runTimeout", m.RunTimeout)
	if m.RunTimeout > 0 && m.TaskTimeout > m.RunTimeout {
		v.warnf("metadata.taskTimeout", "taskTimeout %s is longer than runTimeout %s; the run timeout will cut steps short", m.TaskTimeout, m.RunTimeout)
	}
	c := m.Concurrency
	if v.has("metadata.concurrency.maxRuns") && c.MaxRuns < 1 {
		v.errorf("metadata.concurrency.maxRuns", "maxRuns must be at least 1, got %d", c.MaxRuns)
	}
	if c.Strategy != "" {
		v.enum("metadata.concurrency.strategy", "strategy", c.Strategy, ConcurrencyQueue, ConcurrencyReplace, ConcurrencySkip, ConcurrencyFail)
	}
}

func checkQualifiedKey(k string) error {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	} else if prefix == "" || len(prefix) > 253 || !dnsSubdomainRe.MatchString(prefix) {
		return fmt.Errorf("prefix %q must be a lowercase DNS subdomain such as example.com", prefix)
	}
	if name == "" || len(name) > maxNameLength || !qualifiedNameRe.MatchString(name) {
		return fmt.Errorf("name %q must be 1 to 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit", name)
	}
	return nil
}

func (v *validator) positive(path string, d Duration) {
	if v.has(path) && d <= 0 {
		v.errorf(path, "duration must be positive, got %s", time.Duration(d))
	}
}

func (v *validator) enum(path, field, value string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	msg := fmt.Sprintf("%s %q is not one of %s", field, value, strings.Join(allowed, ", "))
	if s := suggest(value, allowed); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	v.errorf(path, "%s", msg)
	return false
}

var (
	cronFields   = []string{"expression", "timezone", "catchup"}
	httpFields   = []string{"path", "secret", "signatureScheme"}
	configFields = map[string][]string{TriggerCron: cronFields, TriggerHTTP: httpFields, TriggerManual: nil}
)

func (v *validator) trigger(t *Trigger) {
	if v.failed("trigger.type") {
		return // the type is unknown, so is what its configuration may hold
	}
	typ := t.Type
	if typ == "" {
		typ = TriggerManual
	}
	if !v.enum("trigger.type", "trigger type", typ, TriggerCron, TriggerHTTP, TriggerManual) {
		return
	}
	// Only the fields of the declared type are allowed.
	allowed := configFields[typ]
	for _, f := range append(slices.Clone(cronFields), httpFields...) {
		p := "trigger.configuration." + f
		if v.has(p) && !slices.Contains(allowed, f) {
			if len(allowed) == 0 {
				v.errorf(p, "%s %s trigger takes no configuration; %s belongs to the %s trigger", capitalize(article(typ)), typ, f, otherType(f))
			} else {
				v.errorf(p, "%s is not a setting of %s %s trigger (it belongs to the %s trigger); allowed: %s", f, article(typ), typ, otherType(f), strings.Join(allowed, ", "))
			}
		}
	}
	c := t.Configuration
	switch typ {
	case TriggerCron:
		switch {
		case c.Expression == "":
			v.errorf("trigger.configuration.expression", "a cron trigger needs an expression, such as \"0 2 * * *\" or @hourly")
		case strings.HasPrefix(c.Expression, "TZ=") || strings.HasPrefix(c.Expression, "CRON_TZ="):
			v.errorf("trigger.configuration.expression", "set the time zone with trigger.configuration.timezone, not inside the expression")
		default:
			if _, err := CronParser.Parse(c.Expression); err != nil {
				v.errorf("trigger.configuration.expression", "cron expression %q does not parse: %v", c.Expression, err)
			} else if every, ok := strings.CutPrefix(c.Expression, "@every "); ok {
				// The cron library raises anything under a second to one
				// second, so a typo such as @every 0s would run every second.
				if d, err := time.ParseDuration(strings.TrimSpace(every)); err == nil && d < minEvery {
					v.errorf("trigger.configuration.expression", "@every %s is shorter than the minimum interval of %s", d, minEvery)
				}
			}
		}
		if v.has("trigger.configuration.timezone") {
			if c.Timezone == "" || c.Timezone == "Local" {
				v.errorf("trigger.configuration.timezone", "timezone must be an IANA name such as Europe/Berlin or UTC")
			} else if _, err := time.LoadLocation(c.Timezone); err != nil {
				v.errorf("trigger.configuration.timezone", "unknown time zone %q; use an IANA name such as Europe/Berlin or UTC", c.Timezone)
			}
		}
	case TriggerHTTP:
		switch {
		case c.Path == "":
			v.errorf("trigger.configuration.path", "an http trigger needs a path such as /hooks/nightly-etl")
		case !httpPathRe.MatchString(c.Path) || strings.Contains(c.Path, "//") || strings.Contains(c.Path, "/../") || strings.HasSuffix(c.Path, "/.."):
			v.errorf("trigger.configuration.path", "path %q must start with / and hold only URL path characters, without // or ..", c.Path)
		}
		switch {
		case c.Secret == "":
			v.errorf("trigger.configuration.secret", "an http trigger needs a secret, as a secret:// reference such as secret://env/NIGHTLY_ETL_TOKEN")
		case !IsSecretRef(c.Secret):
			v.errorf("trigger.configuration.secret", "secret must be a secret:// reference, not the secret itself; manifests live in Git")
		default:
			if _, err := ParseSecretRef(c.Secret); err != nil {
				v.errorf("trigger.configuration.secret", "%v", err)
			}
		}
		if c.SignatureScheme != "" {
			v.enum("trigger.configuration.signatureScheme", "signatureScheme", c.SignatureScheme, SignatureHMACSHA256, SignatureBearer)
		}
	}
}

// article is the indefinite article for a trigger type: "an http", "a cron".
func article(typ string) string {
	if typ == TriggerHTTP {
		return "an"
	}
	return "a"
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func otherType(field string) string {
	if slices.Contains(cronFields, field) {
		return TriggerCron
	}
	return TriggerHTTP
}

func (v *validator) callback(path string, c *Callback) {
	if c.Type != "" {
		v.enum(path+".type", "callback type", c.Type, CallbackWebhook)
	}
	if c.URL == "" {
		v.errorf(path+".url", "a callback needs a url")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(path+".url", "url %q must be an absolute http or https URL", c.URL)
	} else if u.User != nil {
		v.errorf(path+".url", "url must not carry credentials; put them in a header as a secret:// reference")
	}
	seen := map[string]bool{}
	for i, on := range c.On {
		p := fmt.Sprintf("%s.on[%d]", path, i)
		if v.enum(p, "callback event", on, OnSuccess, OnFailure) && seen[on] {
			v.errorf(p, "event %q is listed twice", on)
		}
		seen[on] = true
	}
	if v.has(path+".on") && len(c.On) == 0 {
		v.errorf(path+".on", "on is empty, so the callback would never be sent; remove it to send on both success and failure")
	}
	for _, k := range sortedKeys(c.Headers) {
		p := JoinPath(path+".headers", k)
		if !httpguts.ValidHeaderFieldName(k) {
			v.errorf(p, "%q is not a valid header name", k)
		}
		v.secretValue(p, c.Headers[k])
	}
}

// secretValue checks a value that may be a secret reference.
func (v *validator) secretValue(path, val string) {
	switch {
	case IsSecretRef(val):
		if _, err := ParseSecretRef(val); err != nil {
			v.errorf(path, "%v", err)
		}
	case strings.Contains(val, SecretScheme):
		// A reference is only resolved when it is the whole value; anything
		// else would be sent as literal text.
		v.warnf(path, "value contains %q but does not start with it, so it is not resolved and is used as written; a secret reference must be the whole value", SecretScheme)
	}
}

func (v *validator) steps(j *Job) {
	if len(j.Steps) == 0 {
		if !v.has("steps") {
			v.errorf("steps", "steps is required; a job needs at least one step")
		} else {
			v.errorf("steps", "steps is empty; a job needs at least one step")
		}
		return
	}
	if len(j.Steps) > v.limits.MaxSteps {
		v.errorf("steps", "job has %d steps; the limit is %d", len(j.Steps), v.limits.MaxSteps)
		return
	}
	index := make(map[string]int, len(j.Steps))
	names := make([]string, 0, len(j.Steps))
	for i, s := range j.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		if v.failed(p) {
			continue // not a mapping; already reported
		}
		v.step(p, &j.Steps[i], &j.Metadata)
		if s.Name == "" {
			continue
		}
		if first, dup := index[s.Name]; dup {
			v.errorf(p+".name", "step name %q is already used by steps[%d]", s.Name, first)
			continue
		}
		index[s.Name] = i
		names = append(names, s.Name)
	}
	v.edges(j, index, names)
}

func (v *validator) step(p string, s *Step, m *Metadata) {
	switch {
	case s.Name == "":
		v.errorf(p+".name", "a step needs a name")
	case len(s.Name) > maxNameLength:
		v.errorf(p+".name", "step name %q is %d characters; the limit is %d", s.Name, len(s.Name), maxNameLength)
	case !stepNameRe.MatchString(s.Name):
		v.errorf(p+".name", "step name %q may hold only letters, digits, '-', '_' and '.', and must start and end with a letter or digit", s.Name)
	}
	engine := s.Engine
	if engine == "" {
		engine = EngineDocker
	}
	emptyCommand := v.has(p+".command") && len(s.Command) == 0
	switch {
	case v.failed(p + ".engine"):
		// The engine could not be read; its requirements are unknown.
	case !v.enum(p+".engine", "engine", engine, EngineDocker, EnginePodman, EngineKubernetes, EngineLocal):
	case engine == EngineLocal:
		if s.Image != "" {
			v.warnf(p+".image", "the local engine runs commands on the agent's host and ignores image")
		}
		if emptyCommand {
			v.errorf(p+".command", "command is empty; a step on the local engine needs a command")
		} else if len(s.Command) == 0 {
			v.errorf(p+".command", "a step on the local engine needs a command")
		}
		emptyCommand = false // reported
	default:
		if s.Image == "" {
			v.errorf(p+".image", "a step on the %s engine needs an image", engine)
		} else if strings.ContainsAny(s.Image, " \t\n") {
			v.errorf(p+".image", "image %q must not contain spaces", s.Image)
		}
		if s.Workdir != "" && !strings.HasPrefix(s.Workdir, "/") {
			v.errorf(p+".workdir", "workdir %q must be an absolute path inside the container", s.Workdir)
		}
	}
	if emptyCommand {
		v.errorf(p+".command", "command is empty; remove it to run the image's default command")
	}
	for _, k := range sortedKeys(s.Env) {
		kp := JoinPath(p+".env", k)
		if !envName.MatchString(k) {
			v.errorf(kp, "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
		if slices.Contains(ReservedEnv, k) {
			v.warnf(kp, "%s is set by the agent in every step (%s); this value is overridden", k, strings.Join(ReservedEnv, ", "))
		}
		v.secretValue(kp, s.Env[k])
	}
	if s.Retries < 0 {
		v.errorf(p+".retries", "retries must be 0 or more, got %d", s.Retries)
	} else if s.Retries > maxRetries {
		v.errorf(p+".retries", "retries must be at most %d, got %d", maxRetries, s.Retries)
	}
	v.positive(p+".retryDelay", s.RetryDelay)
	if s.RetryDelay > 0 && s.Retries == 0 {
		v.warnf(p+".retryDelay", "retryDelay has no effect without retries")
	}
	v.positive(p+".timeout", s.Timeout)
	if m.RunTimeout > 0 && s.Timeout > m.RunTimeout {
		v.warnf(p+".timeout", "timeout %s is longer than metadata.runTimeout %s", s.Timeout, m.RunTimeout)
	}
	if s.TriggerRule != "" {
		v.enum(p+".triggerRule", "triggerRule", s.TriggerRule, RuleAllSuccess, RuleAllDone, RuleOneSuccess, RuleAllFailed, RuleAlways)
	}
}

// edges checks next and dependsOn: targets exist, no self edges, no edge
// declared twice, no cycles; and warns about steps left unconnected once the
// job declares any edge.
func (v *validator) edges(j *Job, index map[string]int, names []string) {
	type origin struct{ path string }
	declared := map[[2]string]origin{}
	adj := make(map[string][]string, len(index))
	connected := map[string]bool{}
	hasEdges := false
	addEdge := func(path, from, to string) {
		e := [2]string{from, to}
		if first, dup := declared[e]; dup {
			v.errorf(path, "edge %s -> %s is declared twice (also at %s)", from, to, first.path)
			return
		}
		declared[e] = origin{path}
		adj[from] = append(adj[from], to)
		connected[from], connected[to] = true, true
	}
	check := func(path, self, target string) bool {
		switch {
		case target == "":
			v.errorf(path, "step name is empty")
		case target == self:
			v.errorf(path, "step %q cannot depend on itself", self)
		default:
			if _, ok := index[target]; ok {
				return true
			}
			msg := fmt.Sprintf("no step is named %q", target)
			if v.edgeSuggestions < maxEdgeSuggestions && !v.full() {
				v.edgeSuggestions++
				if s := suggest(target, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
			}
			v.errorf(path, "%s", msg)
		}
		return false
	}
	for i, s := range j.Steps {
		if len(s.Next) > 0 || len(s.DependsOn) > 0 {
			hasEdges = true
			// It is not isolated, even if an edge is wrong: that edge has
			// its own error.
			connected[s.Name] = true
		}
		if s.Name == "" || index[s.Name] != i {
			continue
		}
		for k, t := range s.Next {
			p := fmt.Sprintf("steps[%d].next[%d]", i, k)
			if check(p, s.Name, t) {
				addEdge(p, s.Name, t)
			}
		}
		for k, t := range s.DependsOn {
			p := fmt.Sprintf("steps[%d].dependsOn[%d]", i, k)
			if check(p, s.Name, t) {
				addEdge(p, t, s.Name)
			}
		}
	}
	if !hasEdges {
		return
	}
	if cycle := findCycle(names, adj); cycle != nil {
		v.errorf(fmt.Sprintf("steps[%d]", index[cycle[0]]), "steps form a cycle: %s", strings.Join(cycle, " -> "))
	}
	for _, n := range names {
		p := fmt.Sprintf("steps[%d]", index[n])
		if v.failed(p+".next") || v.failed(p+".dependsOn") {
			continue // its edges could not be read; that is reported
		}
		if !connected[n] {
			v.warnf(p, "step %q has no next or dependsOn while other steps do, so it runs as an independent root", n)
		}
	}
}

// findCycle returns one cycle as a path that ends where it starts
// (a -> b -> c -> a), or nil. Steps are visited in file order so the
// reported cycle is deterministic.
func findCycle(names []string, adj map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(names))
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range adj[n] {
			switch color[m] {
			case grey:
				start := slices.Index(stack, m)
				found = append(slices.Clone(stack[start:]), m)
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range names {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
