package reconcile

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/caesium-io/caesium/schema"
)

// gen makes random valid jobs, as a manifest author would write them (no
// defaults filled in), and random edits of them. Jobs go through
// schema.Parse (see fixture.normalize), so that what is planned is the real
// normalized spec.
type gen struct {
	r *rand.Rand
}

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, 0x5eed))} }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

var (
	genStepNames = []string{"extract", "transform", "load", "verify", "notify", "build", "test", "publish", "cleanup", "report"}
	genImages    = []string{"busybox:1.36", "registry.example.com/etl:1.14.2", "registry.example.com/etl:1.15.0", "postgres:16-alpine", "python:3.12-slim"}
	genCommands  = [][]string{{"true"}, {"python", "-m", "etl.run"}, {"sh", "-c", "echo \"hi\" && exit 0"}, {"psql", "--set=ON_ERROR_STOP=1", "-c", "CALL load()"}}
	genEnvKeys   = []string{"AWS_REGION", "LOG_LEVEL", "SOURCE_DSN", "API_TOKEN", "WORKERS"}
	genEnvValues = []string{"eu-central-1", "debug", "8", "secret://env/API_TOKEN", "secret://vault/kv/oltp#dsn", "secret://vault/kv/oltp#dsn?version=3", "secret://file/db/password", "a value with spaces & <symbols>"}
	genLabelKeys = []string{"team", "tier", "app.kubernetes.io/name", "example.com/cost-center"}
	genLabelVals = []string{"data", "sre", "critical", "low", "orders-db", "4711"}
	genCrons     = []string{"0 2 * * *", "*/15 * * * *", "@hourly", "30 1 * * 1-5", "@daily"}
	genZones     = []string{"", "UTC", "Europe/Berlin", "America/New_York"}
	genDurations = []schema.Duration{schema.Duration(30 * time.Second), schema.Duration(2 * time.Minute), schema.Duration(10 * time.Minute), schema.Duration(45 * time.Minute), schema.Duration(time.Hour)}
	genHeaders   = []string{"X-Token", "X-Source", "Authorization"}
	genRules     = []string{"", schema.RuleAllSuccess, schema.RuleAllDone, schema.RuleOneSuccess, schema.RuleAllFailed, schema.RuleAlways}
)

// job returns a random valid job as written, before normalization.
func (g *gen) job(alias string) *schema.Job {
	j := &schema.Job{APIVersion: schema.APIVersion, Kind: schema.KindJob}
	m := &j.Metadata
	m.Alias = alias
	for range g.r.IntN(4) {
		g.setLabel(j)
	}
	if g.chance(0.4) {
		m.Annotations = map[string]string{"owner": pick(g, "data@example.com", "sre@example.com")}
		if g.chance(0.5) {
			m.Annotations["example.com/runbook"] = "https://runbooks.example.com/" + alias
		}
	}
	m.MaxParallelTasks = g.r.IntN(3)
	if g.chance(0.5) {
		m.TaskTimeout = pick(g, genDurations...)
	}
	if g.chance(0.3) {
		m.RunTimeout = schema.Duration(3 * time.Hour)
	}
	m.Concurrency.MaxRuns = g.r.IntN(3)
	m.Concurrency.Strategy = pick(g, "", schema.ConcurrencyQueue, schema.ConcurrencySkip, schema.ConcurrencyReplace, schema.ConcurrencyFail)
	g.setTrigger(j, pick(g, "", schema.TriggerManual, schema.TriggerCron, schema.TriggerCron, schema.TriggerHTTP))
	for range g.r.IntN(3) {
		j.Callbacks = append(j.Callbacks, g.callback())
	}
	names := slices.Clone(genStepNames)
	g.r.Shuffle(len(names), func(a, b int) { names[a], names[b] = names[b], names[a] })
	for _, name := range names[:1+g.r.IntN(5)] {
		j.Steps = append(j.Steps, g.step(name))
	}
	if len(j.Steps) > 1 && g.chance(0.6) {
		for a := range j.Steps {
			for b := a + 1; b < len(j.Steps); b++ {
				if g.chance(0.4) {
					g.addEdge(j, a, b)
				}
			}
		}
	}
	return j
}

func (g *gen) setLabel(j *schema.Job) {
	if j.Metadata.Labels == nil {
		j.Metadata.Labels = map[string]string{}
	}
	j.Metadata.Labels[pick(g, genLabelKeys...)] = pick(g, genLabelVals...)
}

func (g *gen) setTrigger(j *schema.Job, typ string) {
	j.Trigger = schema.Trigger{Type: typ}
	c := &j.Trigger.Configuration
	switch typ {
	case schema.TriggerCron:
		c.Expression = pick(g, genCrons...)
		c.Timezone = pick(g, genZones...)
		c.Catchup = g.chance(0.3)
	case schema.TriggerHTTP:
		c.Path = "/hooks/" + j.Metadata.Alias + pick(g, "", "/v2")
		c.Secret = pick(g, "secret://env/HOOK_TOKEN", "secret://vault/kv/hooks#token")
		c.SignatureScheme = pick(g, "", schema.SignatureHMACSHA256, schema.SignatureBearer)
	}
}

func (g *gen) callback() schema.Callback {
	c := schema.Callback{
		Type: pick(g, "", schema.CallbackWebhook),
		URL:  pick(g, "https://hooks.example.com/a", "https://hooks.example.com/b?x=1&y=2", "http://relay.internal:8080/notify"),
		On:   pick(g, nil, []string{schema.OnSuccess}, []string{schema.OnFailure}, []string{schema.OnFailure, schema.OnSuccess}),
	}
	for range g.r.IntN(3) {
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[pick(g, genHeaders...)] = pick(g, "caesium", "secret://env/HOOK_TOKEN", "secret://vault/kv/hooks#auth")
	}
	return c
}

func (g *gen) step(name string) schema.Step {
	s := schema.Step{Name: name, Engine: pick(g, "", schema.EngineDocker, schema.EnginePodman, schema.EngineKubernetes, schema.EngineLocal)}
	if s.Engine == schema.EngineLocal {
		s.Command = slices.Clone(pick(g, genCommands...))
	} else {
		s.Image = pick(g, genImages...)
		if g.chance(0.6) {
			s.Command = slices.Clone(pick(g, genCommands...))
		}
		if g.chance(0.3) {
			s.Workdir = pick(g, "/app", "/srv/work")
		}
	}
	for range g.r.IntN(4) {
		g.setEnv(&s)
	}
	if g.chance(0.5) {
		s.Retries = 1 + g.r.IntN(4)
		if g.chance(0.5) {
			s.RetryDelay = pick(g, genDurations...)
		}
	}
	if g.chance(0.4) {
		s.Timeout = pick(g, genDurations...)
	}
	s.TriggerRule = pick(g, genRules...)
	return s
}

func (g *gen) setEnv(s *schema.Step) {
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	s.Env[pick(g, genEnvKeys...)] = pick(g, genEnvValues...)
}

// edges of the job as declared, from -> to by step name.
func declaredEdges(j *schema.Job) map[[2]string]bool {
	out := map[[2]string]bool{}
	for _, s := range j.Steps {
		for _, n := range s.Next {
			out[[2]string{s.Name, n}] = true
		}
		for _, d := range s.DependsOn {
			out[[2]string{d, s.Name}] = true
		}
	}
	return out
}

// reaches reports whether step from reaches step to along declared edges.
func reaches(edges map[[2]string]bool, from, to string) bool {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			return true
		}
		for e := range edges {
			if e[0] == n && !seen[e[1]] {
				seen[e[1]] = true
				queue = append(queue, e[1])
			}
		}
	}
	return false
}

// addEdge declares steps[a] -> steps[b], as next or as dependsOn, unless it
// exists or would close a cycle. It reports whether it added the edge.
func (g *gen) addEdge(j *schema.Job, a, b int) bool {
	from, to := j.Steps[a].Name, j.Steps[b].Name
	edges := declaredEdges(j)
	if a == b || edges[[2]string{from, to}] || reaches(edges, to, from) {
		return false
	}
	if g.chance(0.5) {
		j.Steps[a].Next = append(j.Steps[a].Next, to)
	} else {
		j.Steps[b].DependsOn = append(j.Steps[b].DependsOn, from)
	}
	return true
}

// dropRefs removes every edge that names step name.
func dropRefs(j *schema.Job, name string) {
	for i := range j.Steps {
		s := &j.Steps[i]
		s.Next = slices.DeleteFunc(s.Next, func(n string) bool { return n == name })
		s.DependsOn = slices.DeleteFunc(s.DependsOn, func(n string) bool { return n == name })
		if len(s.Next) == 0 {
			s.Next = nil
		}
		if len(s.DependsOn) == 0 {
			s.DependsOn = nil
		}
	}
}

// cloneRaw deep-copies a job as written.
func cloneRaw(j *schema.Job) *schema.Job {
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	var out schema.Job
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

// mutate returns a copy of j with one random edit, and what the edit was.
// Some edits change nothing once normalized (writing out a default); the
// properties hold either way.
func (g *gen) mutate(j *schema.Job) (*schema.Job, string) {
	j = cloneRaw(j)
	s := &j.Steps[g.r.IntN(len(j.Steps))]
	m := &j.Metadata
	switch k := g.r.IntN(30); k {
	case 0:
		g.setEnv(s)
		return j, "env set"
	case 1:
		for key := range s.Env {
			delete(s.Env, key)
			return j, "env removed"
		}
		g.setEnv(s)
		return j, "env set"
	case 2:
		a, b := g.r.IntN(len(j.Steps)), g.r.IntN(len(j.Steps))
		if a > b {
			a, b = b, a
		}
		if g.addEdge(j, a, b) {
			return j, "edge added"
		}
		dropRefs(j, s.Name)
		return j, "edges of a step removed"
	case 3:
		s.Retries = g.r.IntN(5)
		if s.Retries == 0 {
			s.RetryDelay = 0
		}
		return j, "retries"
	case 4:
		s.RetryDelay = pick(g, genDurations...)
		s.Retries = max(s.Retries, 1)
		return j, "retryDelay"
	case 5:
		s.Timeout = pick(g, append(genDurations, 0)...)
		return j, "timeout"
	case 6:
		s.TriggerRule = pick(g, genRules...)
		return j, "triggerRule"
	case 7:
		if s.Engine != schema.EngineLocal {
			s.Engine = pick(g, "", schema.EngineDocker, schema.EnginePodman, schema.EngineKubernetes)
		}
		return j, "engine"
	case 8:
		if s.Engine != schema.EngineLocal {
			s.Image = pick(g, genImages...)
		}
		return j, "image"
	case 9:
		s.Command = slices.Clone(pick(g, genCommands...))
		return j, "command"
	case 10:
		if s.Engine != schema.EngineLocal {
			s.Workdir = pick(g, "", "/app", "/srv/work")
		}
		return j, "workdir"
	case 11:
		g.setTrigger(j, pick(g, "", schema.TriggerManual, schema.TriggerCron, schema.TriggerHTTP))
		return j, "trigger"
	case 12:
		if j.Trigger.Type == schema.TriggerCron {
			j.Trigger.Configuration.Expression = pick(g, genCrons...)
		}
		return j, "cron expression"
	case 13:
		if j.Trigger.Type == schema.TriggerCron {
			j.Trigger.Configuration.Timezone = pick(g, genZones...)
			j.Trigger.Configuration.Catchup = !j.Trigger.Configuration.Catchup
		}
		return j, "cron timezone and catchup"
	case 14:
		if j.Trigger.Type == schema.TriggerHTTP {
			j.Trigger.Configuration.SignatureScheme = pick(g, "", schema.SignatureHMACSHA256, schema.SignatureBearer)
			j.Trigger.Configuration.Secret = pick(g, "secret://env/HOOK_TOKEN", "secret://vault/kv/hooks#token", "secret://env/OTHER")
		}
		return j, "http configuration"
	case 15:
		g.setLabel(j)
		return j, "label set"
	case 16:
		for key := range m.Labels {
			delete(m.Labels, key)
			break
		}
		return j, "label removed"
	case 17:
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations["owner"] = pick(g, "x@example.com", "y@example.com")
		return j, "annotation"
	case 18:
		m.Concurrency.MaxRuns = g.r.IntN(4)
		m.Concurrency.Strategy = pick(g, "", schema.ConcurrencyQueue, schema.ConcurrencySkip)
		return j, "concurrency"
	case 19:
		m.MaxParallelTasks = g.r.IntN(4)
		m.TaskTimeout = pick(g, append(genDurations, 0)...)
		return j, "maxParallelTasks and taskTimeout"
	case 20:
		j.Callbacks = append(j.Callbacks, g.callback())
		return j, "callback added"
	case 21:
		if len(j.Callbacks) > 0 {
			j.Callbacks = j.Callbacks[1:]
		}
		return j, "callback removed"
	case 22:
		if len(j.Callbacks) > 0 {
			c := &j.Callbacks[g.r.IntN(len(j.Callbacks))]
			c.URL = pick(g, "https://hooks.example.com/a", "https://hooks.example.com/c")
			c.On = pick(g, nil, []string{schema.OnSuccess}, []string{schema.OnFailure, schema.OnSuccess})
			if c.Headers == nil {
				c.Headers = map[string]string{}
			}
			c.Headers[pick(g, genHeaders...)] = pick(g, "v1", "secret://env/T")
		}
		return j, "callback edited"
	case 23:
		for _, name := range genStepNames {
			if !slices.ContainsFunc(j.Steps, func(s schema.Step) bool { return s.Name == name }) {
				j.Steps = append(j.Steps, g.step(name))
				if len(declaredEdges(j)) > 0 {
					g.addEdge(j, g.r.IntN(len(j.Steps)-1), len(j.Steps)-1)
				}
				return j, "step added"
			}
		}
		return j, "no step added"
	case 24:
		if len(j.Steps) > 1 {
			i := g.r.IntN(len(j.Steps))
			name := j.Steps[i].Name
			j.Steps = slices.Delete(j.Steps, i, i+1)
			dropRefs(j, name)
			return j, "step removed"
		}
		return j, "no step removed"
	case 25:
		if len(j.Steps) > 1 {
			a, b := g.r.IntN(len(j.Steps)), g.r.IntN(len(j.Steps))
			j.Steps[a], j.Steps[b] = j.Steps[b], j.Steps[a]
		}
		return j, "steps reordered"
	case 26:
		for _, name := range genStepNames {
			if !slices.ContainsFunc(j.Steps, func(s schema.Step) bool { return s.Name == name }) {
				old := s.Name
				s.Name = name
				for i := range j.Steps {
					for k, n := range j.Steps[i].Next {
						if n == old {
							j.Steps[i].Next[k] = name
						}
					}
					for k, n := range j.Steps[i].DependsOn {
						if n == old {
							j.Steps[i].DependsOn[k] = name
						}
					}
				}
				return j, "step renamed"
			}
		}
		return j, "no step renamed"
	case 27:
		// A default written out: changes the manifest, not the spec.
		if s.Engine == "" {
			s.Engine = schema.EngineDocker
		}
		if s.TriggerRule == "" {
			s.TriggerRule = schema.RuleAllSuccess
		}
		return j, "defaults spelled out"
	case 28:
		s.Env = nil
		return j, "env cleared"
	default:
		m.RunTimeout = pick(g, 0, schema.Duration(3*time.Hour), schema.Duration(4*time.Hour))
		return j, fmt.Sprintf("runTimeout (%d)", k)
	}
}
