package store_test

import (
	"fmt"
	"sync"
	"time"

	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// genJob builds a realistic normalized job: a cron trigger, a callback with a
// secret header, and four steps (extract fanning out to two transforms that
// join in load) with commands, env and retries. variant changes the images,
// and so the hash, without changing the shape.
func genJob(alias string, variant int) *schema.Job {
	image := func(name string) string {
		return fmt.Sprintf("ghcr.io/acme/%s:1.%d.0", name, variant)
	}
	j := &schema.Job{
		APIVersion: schema.APIVersion,
		Kind:       schema.KindJob,
		Metadata: schema.Metadata{
			Alias: alias,
			Labels: map[string]string{
				"team": "data-platform",
				"tier": "batch",
			},
			Annotations: map[string]string{
				"caesium.io/owner":   "data-platform@example.com",
				"caesium.io/runbook": "https://wiki.example.com/runbooks/" + alias,
			},
			TaskTimeout: schema.Duration(30 * time.Minute),
			RunTimeout:  schema.Duration(2 * time.Hour),
		},
		Trigger: schema.Trigger{
			Type:          schema.TriggerCron,
			Configuration: schema.TriggerConfiguration{Expression: "*/15 * * * *", Timezone: "Europe/Berlin"},
		},
		Callbacks: []schema.Callback{{
			URL:     "https://hooks.example.com/caesium/" + alias,
			Headers: map[string]string{"Authorization": "secret://env/HOOK_TOKEN"},
		}},
		Steps: []schema.Step{
			{
				Name:    "extract",
				Image:   image("extract"),
				Command: schema.Command{"extract", "--since", "24h", "--out", "/data/raw"},
				Env: map[string]string{
					"DB_URL":    "secret://vault/kv/data/warehouse#url",
					"LOG_LEVEL": "info",
				},
				Workdir: "/data",
				Next:    schema.StringList{"transform-orders", "transform-users"},
				Retries: 2, RetryDelay: schema.Duration(30 * time.Second),
			},
			{
				Name:    "transform-orders",
				Image:   image("transform"),
				Command: schema.Command{"transform", "--table", "orders"},
				Env:     map[string]string{"PARALLELISM": "4"},
			},
			{
				Name:    "transform-users",
				Image:   image("transform"),
				Command: schema.Command{"transform", "--table", "users"},
				Env:     map[string]string{"PARALLELISM": "2"},
			},
			{
				Name:        "load",
				Image:       image("load"),
				Command:     schema.Command{"load", "--target", "warehouse"},
				Env:         map[string]string{"WAREHOUSE_TOKEN": "secret://env/WAREHOUSE_TOKEN"},
				DependsOn:   schema.StringList{"transform-orders", "transform-users"},
				Timeout:     schema.Duration(time.Hour),
				TriggerRule: schema.RuleAllSuccess,
			},
		},
	}
	schema.Normalize(j)
	return j
}

// smallJob is a different shape: a manual trigger, two steps in file order,
// no callbacks.
func smallJob(alias string) *schema.Job {
	j := &schema.Job{
		APIVersion: schema.APIVersion,
		Kind:       schema.KindJob,
		Metadata:   schema.Metadata{Alias: alias},
		Steps: []schema.Step{
			{Name: "build", Image: "golang:1.26", Command: schema.Command{"go", "build", "./..."}},
			{Name: "test", Image: "golang:1.26", Command: schema.Command{"go", "test", "./..."}},
		},
	}
	schema.Normalize(j)
	return j
}

func provenance(source, commit string) store.Provenance {
	return store.Provenance{
		SourceID: source,
		Repo:     "https://git.example.com/acme/jobs.git",
		Ref:      "refs/heads/main",
		Commit:   commit,
		Path:     "jobs/",
	}
}

func create(j *schema.Job, prov store.Provenance) store.Change {
	return store.Change{Op: store.OpCreate, Alias: j.Metadata.Alias, Job: j, Hash: j.Hash(), Provenance: prov}
}

func update(cur store.Job, j *schema.Job, prov store.Provenance) store.Change {
	return store.Change{
		Op: store.OpUpdate, Alias: cur.Alias, Job: j, Hash: j.Hash(), Provenance: prov,
		ID: cur.ID, Version: cur.Version,
	}
}

func remove(cur store.Job) store.Change {
	return store.Change{Op: store.OpDelete, Alias: cur.Alias, ID: cur.ID, Version: cur.Version}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 27, 9, 30, 0, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
