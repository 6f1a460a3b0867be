package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/agent"
	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/executor/docker/dockertest"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

const (
	triggerBenchSecretEnv = "CAESIUM_BENCH_TRIGGER_SECRET"
	triggerBenchSecret    = "trigger-bench-5f0c9a7e"
	triggerBenchPath      = "/hooks/deploy"
	triggerBenchRequests  = 4_000 // accept: requests per iteration
	triggerBenchClients   = 32    // accept: keep-alive clients at once
	triggerBenchRuns      = 40    // start: runs per iteration, one after another
)

// BenchmarkTrigger measures signed HTTP triggers end to end through a
// running agent's HTTP server (loopback) and store. See docs/benchmarks.md
// ("Runs").
//
//   - accept: 32 keep-alive clients POST 4,000 signed triggers (a small
//     JSON body, unique per request) for a job with concurrency queue and
//     a high maxRuns; each is answered 202 with a queued run. The agent is
//     a follower (the benchmark holds the leader's lease on the same
//     database), so no run executes: this is the trigger path alone, up
//     to the committed run row. Reports req/s over the burst, over its
//     first and its last 500 answers (the queue of runs grows by one per
//     request), and the request latency.
//   - start: the agent leads and runs steps on the real Docker Engine. 40
//     times, one after another: POST a signed trigger for a one-step job
//     whose step prints the time inside its container (busybox adjtimex),
//     take the 202, and wait for the run to finish. From the 202 to: the
//     step's process running in its container (start), and the run
//     recorded as finished (done), p50 and p95; and the p50 of each leg in
//     between (claim: 202 to the run's startedAt; dispatch: to the task's
//     startedAt; container: to the process; exit: to the task's
//     finishedAt, the container removed; record: to the run's finishedAt).
func BenchmarkTrigger(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend+"/accept", func(b *testing.B) { benchTriggerAccept(b, backend) })
		b.Run(backend+"/start", func(b *testing.B) { benchTriggerStart(b, backend) })
	}
}

// triggerJob is a job started by signed requests at triggerBenchPath whose
// one step prints the wall clock from inside its container.
func triggerJob(image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Job
metadata:
  alias: deploy
  concurrency: {maxRuns: 100000, strategy: queue}
trigger:
  type: http
  configuration: {path: %s, secret: "secret://env/%s"}
steps:
  - name: clock
    image: %s
    command: ["adjtimex"]
`, triggerBenchPath, triggerBenchSecretEnv, image)
}

// startBenchAgent runs an agent on dbURL whose steps run on the local
// Docker Engine (never pulling), and applies manifests through its API.
func startBenchAgent(b *testing.B, dbURL, manifests string) *hookAgent {
	b.Helper()
	b.Setenv(triggerBenchSecretEnv, triggerBenchSecret)
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Database.URL = dbURL
	cfg.Executor.Docker.PullPolicy = "never"
	cfg.Executor.Docker.StopTimeout = time.Second
	a := startHookAgentLog(b, cfg, slog.New(slog.DiscardHandler), nil)
	resp, err := http.Post(a.url+"/v1/jobdefs/apply", "application/yaml", bytes.NewReader([]byte(manifests)))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("apply: %d %s", resp.StatusCode, body)
	}
	return a
}

// postTrigger sends one signed trigger with body and returns the answer.
func postTrigger(hc *http.Client, base string, body []byte) (int, agent.TriggerAnswer, error) {
	req, err := http.NewRequest(http.MethodPost, base+agent.TriggerPathPrefix+triggerBenchPath, bytes.NewReader(body))
	if err != nil {
		return 0, agent.TriggerAnswer{}, err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderTriggerTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(api.HeaderTriggerSignature, api.SignTrigger(triggerBenchSecret, now, body))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, agent.TriggerAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, agent.TriggerAnswer{}, err
	}
	var a agent.TriggerAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("answer %q: %w", raw, err)
	}
	return resp.StatusCode, a, nil
}

func benchTriggerAccept(b *testing.B, backend string) {
	dbURL := storetest.URL(b, backend)
	// Hold the leader's lease, so that the agent serves triggers as a
	// follower and executes nothing.
	st, err := store.Open(context.Background(), dbURL, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	lease, err := st.Campaign(b.Context(), store.LeaderOptions{Name: "reconciler", Identity: "benchmark"})
	if err != nil {
		b.Fatalf("Campaign: %v", err)
	}
	b.Cleanup(lease.Resign)
	a := startBenchAgent(b, dbURL, triggerJob("busybox:never-run"))

	tr := &http.Transport{MaxIdleConnsPerHost: triggerBenchClients, MaxConnsPerHost: triggerBenchClients, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	var done, lat []time.Duration // per request: completion since the burst's start, latency
	var elapsed time.Duration
	var bad atomic.Int64
	for i := 0; i < b.N; i++ {
		var (
			next atomic.Int64
			mu   sync.Mutex
			wg   sync.WaitGroup
		)
		start := time.Now()
		for c := range triggerBenchClients {
			wg.Go(func() {
				for {
					n := next.Add(1)
					if n > triggerBenchRequests {
						return
					}
					body := fmt.Appendf(nil, `{"iteration":%d,"client":%d,"request":%d}`, i, c, n)
					t0 := time.Now()
					code, ans, err := postTrigger(hc, a.url, body)
					t1 := time.Now()
					if err != nil || code != http.StatusAccepted || ans.Result != "queued" {
						if bad.Add(1) <= 5 {
							b.Errorf("trigger %d: %d %+v %v", n, code, ans, err)
						}
						continue
					}
					mu.Lock()
					done = append(done, t1.Sub(start))
					lat = append(lat, t1.Sub(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	b.StopTimer()
	if bad.Load() > 0 {
		b.Fatalf("%d of %d triggers were not queued", bad.Load(), triggerBenchRequests*b.N)
	}
	b.ReportMetric(float64(triggerBenchRequests*b.N)/elapsed.Seconds(), "req/s")
	if b.N == 1 { // windows of one burst
		const w = 500
		slices.Sort(done)
		b.ReportMetric(w/done[w-1].Seconds(), "first500-req/s")
		b.ReportMetric(w/(done[len(done)-1]-done[len(done)-1-w]).Seconds(), "last500-req/s")
	}
	slices.Sort(lat)
	b.ReportMetric(durMS(nearestRank(lat, 50)), "p50-ms")
	b.ReportMetric(durMS(nearestRank(lat, 95)), "p95-ms")
	// Every 202 is a queued run in the store.
	queued, before := 0, int64(0)
	for {
		runs, err := st.ListRuns(context.Background(), store.RunFilter{Status: store.RunQueued, Limit: store.MaxRunLimit, BeforeID: before})
		if err != nil {
			b.Fatalf("ListRuns: %v", err)
		}
		if len(runs) == 0 {
			break
		}
		queued += len(runs)
		before = runs[len(runs)-1].ID
	}
	if queued != triggerBenchRequests*b.N {
		b.Fatalf("%d queued runs in the store, want %d", queued, triggerBenchRequests*b.N)
	}
}

// adjtimexTime reads the wall clock busybox adjtimex printed.
var adjtimexTime = regexp.MustCompile(`time\.tv_sec:\s*(\d+)\s+time\.tv_usec:\s*(\d+)`)

func benchTriggerStart(b *testing.B, backend string) {
	img := dockertest.Image(b)
	a := startBenchAgent(b, storetest.URL(b, backend), triggerJob(img))
	ctx := context.Background()
	hc := &http.Client{}

	var accept, start, finish, claim, dispatch, container, exit, record []time.Duration
	for i := 0; i < b.N; i++ {
		for n := range triggerBenchRuns {
			body := fmt.Appendf(nil, `{"iteration":%d,"run":%d}`, i, n)
			t0 := time.Now()
			code, ans, err := postTrigger(hc, a.url, body)
			t202 := time.Now()
			if err != nil || code != http.StatusAccepted {
				b.Fatalf("trigger %d: %d %+v %v", n, code, ans, err)
			}
			var run store.Run
			for {
				if run, err = a.client.GetRun(ctx, ans.RunID); err != nil {
					b.Fatalf("GetRun: %v", err)
				}
				if run.Status.Finished() {
					break
				}
				if time.Since(t202) > time.Minute { // a hang guard
					b.Fatalf("run %d not finished after a minute: %+v", run.ID, run)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if run.Status != store.RunSucceeded || len(run.Tasks) != 1 || run.StartedAt == nil || run.FinishedAt == nil {
				b.Fatalf("run %d: %s %q, tasks %+v", run.ID, run.Status, run.Error, run.Tasks)
			}
			task := run.Tasks[0]
			m := adjtimexTime.FindStringSubmatch(task.Output)
			if m == nil || task.StartedAt == nil || task.FinishedAt == nil {
				b.Fatalf("run %d step: %+v; want its times and the clock in its output", run.ID, task)
			}
			sec, _ := strconv.ParseInt(m[1], 10, 64)
			usec, _ := strconv.ParseInt(m[2], 10, 64)
			proc := time.Unix(sec, usec*1000)
			accept = append(accept, t202.Sub(t0))
			start = append(start, proc.Sub(t202))
			finish = append(finish, run.FinishedAt.Sub(t202))
			claim = append(claim, run.StartedAt.Sub(t202))
			dispatch = append(dispatch, task.StartedAt.Sub(*run.StartedAt))
			container = append(container, proc.Sub(*task.StartedAt))
			exit = append(exit, task.FinishedAt.Sub(proc))
			record = append(record, run.FinishedAt.Sub(*task.FinishedAt))
		}
	}
	b.StopTimer()
	for _, d := range [][]time.Duration{accept, start, finish, claim, dispatch, container, exit, record} {
		slices.Sort(d)
	}
	b.ReportMetric(durMS(nearestRank(start, 50)), "p50-start-ms")
	b.ReportMetric(durMS(nearestRank(start, 95)), "p95-start-ms")
	b.ReportMetric(durMS(nearestRank(finish, 50)), "p50-done-ms")
	b.ReportMetric(durMS(nearestRank(finish, 95)), "p95-done-ms")
	b.ReportMetric(durMS(nearestRank(accept, 50)), "p50-accept-ms")
	b.ReportMetric(durMS(nearestRank(claim, 50)), "p50-claim-ms")
	b.ReportMetric(durMS(nearestRank(dispatch, 50)), "p50-dispatch-ms")
	b.ReportMetric(durMS(nearestRank(container, 50)), "p50-container-ms")
	b.ReportMetric(durMS(nearestRank(exit, 50)), "p50-exit-ms")
	b.ReportMetric(durMS(nearestRank(record, 50)), "p50-record-ms")
	b.ReportMetric(float64(len(start))/float64(b.N), "runs/op")
}

func durMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// nearestRank is the p-th percentile of sorted durations (nearest rank).
func nearestRank(sorted []time.Duration, p int) time.Duration {
	return sorted[max(0, (len(sorted)*p+99)/100-1)]
}
