package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caesium-io/caesium/providers/webhook"
	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

const (
	webhookBenchJobs   = 1_000
	webhookBenchPushes = 200
)

// BenchmarkWebhook measures the webhook path of a running agent (HTTP on
// loopback, SQLite store). See docs/benchmarks.md.
//
//   - applied: a repository of 1,000 realistic manifests on the loopback
//     git http-backend; each of 200 pushes commits one changed manifest and
//     POSTs the signed GitHub push; the latency is from the POST until the
//     job's new version is in the store (p50, p95, max).
//   - signed/*: 32 keep-alive clients POST signed GitHub pushes (10 KB, the
//     real payload) for a repository no source tracks: verified, matched
//     nothing, 200. "unique" varies delivery id and body, so that every
//     request is new to the replay check; "duplicate" repeats one delivery.
//   - burst-1MiB: 2,000 signed pushes with bodies just under the 1 MiB
//     limit from 32 clients; peak HeapInuse sampled every 2 ms, and its rise
//     over the heap before the burst (the clients' 32 bodies included).
func BenchmarkWebhook(b *testing.B) {
	b.Run("applied", benchWebhookApplied)
	b.Run("signed/unique", func(b *testing.B) { benchWebhookSigned(b, 20_000, 10<<10, false) })
	b.Run("signed/duplicate", func(b *testing.B) { benchWebhookSigned(b, 20_000, 10<<10, true) })
	b.Run("burst-1MiB", func(b *testing.B) { benchWebhookSigned(b, 2_000, 1<<20-4<<10, false) })
}

func benchWebhookApplied(b *testing.B) {
	requireTool(b, "git")
	w := newWorkRepo(b)
	for i := range webhookBenchJobs {
		w.write(benchPath(i), benchManifest(i, "0"))
	}
	c1 := w.commit("1,000 jobs")
	gitRun(b, w.Dir, nil, "repack", "-a", "-d", "-q")
	git := startGitServer(b, filepath.Dir(w.Dir), gitUser, gitPassword)
	repo := &hookRepo{workRepo: w, url: git.url(filepath.Base(w.Dir))}

	dbURL := storetest.URL(b, "sqlite")
	cfg := hookConfig(b, dbURL, repo)
	a := startHookAgentLog(b, cfg, slog.New(slog.DiscardHandler), nil)
	a.waitApplied(b, "jobs", c1)
	st, err := store.Open(context.Background(), dbURL, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	secret := hookSecret(webhook.GitHub)

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for n := range webhookBenchPushes {
			b.StopTimer()
			k := (len(lat)*7919 + n) % webhookBenchJobs
			alias := fmt.Sprintf("job-%05d", k)
			w.write(benchPath(k), benchManifest(k, strconv.Itoa(len(lat)+1)))
			commit := w.commit("change " + alias)
			body := render(b, webhook.GitHub, "push.json", repo.url, "refs/heads/main", commit)
			d := delivery{provider: webhook.GitHub, event: "push", id: newID("bench"), body: body, key: secret}
			b.StartTimer()

			start := time.Now()
			if got := d.send(b, a.url); got.status != http.StatusAccepted {
				b.Fatalf("push %d: %s", n, got)
			}
			for {
				j, err := st.GetJob(context.Background(), alias)
				if err != nil {
					b.Fatal(err)
				}
				if j.Provenance.Commit == commit {
					break
				}
				if time.Since(start) > time.Minute { // a hang guard
					b.Fatalf("push %d: %s not applied after a minute", n, alias)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*95+99)/100-1]), "p95-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(len(lat))/float64(b.N), "pushes/op")
}

// benchWebhookSigned sends total signed pushes of about size bytes from 32
// keep-alive clients and reports requests per second and the heap.
func benchWebhookSigned(b *testing.B, total, size int, duplicate bool) {
	const clients = 32
	repo, _ := newHookRepo(b)
	cfg := hookConfig(b, storetest.URL(b, "sqlite"), repo)
	a := startHookAgentLog(b, cfg, slog.New(slog.DiscardHandler), nil)
	unrelated := "https://github.com/acme/unrelated-" + strconv.Itoa(size)
	secret := hookSecret(webhook.GitHub)

	// Each client has a body of its own, padded to size with a longer
	// commit message: real payloads grow with the commits pushed. For unique
	// deliveries the client stamps a counter into the body's after SHA.
	base := string(render(b, webhook.GitHub, "push.json", unrelated, "refs/heads/main", "{{AFTER}}"))
	if pad := size - len(base); pad > 0 {
		base = strings.Replace(base, `"message": "`, `"message": "`+strings.Repeat("x", pad), 1)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	var (
		sent     atomic.Int64
		statuses sync.Map // status -> *atomic.Int64
		peak     atomic.Uint64
	)
	count := func(status int) {
		v, _ := statuses.LoadOrStore(status, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	worker := func(c int) {
		body := []byte(strings.Replace(base, "{{AFTER}}", fmt.Sprintf("%040x", c), -1))
		after := bytes.Index(body, []byte(fmt.Sprintf("%040x", c)))
		sig := "sha256=" + hexMAC(secret, body)
		id := fmt.Sprintf("dup-%d", c)
		for {
			n := sent.Add(1)
			if n > int64(total) {
				return
			}
			if !duplicate {
				copy(body[after:], fmt.Sprintf("%040x", n<<8|int64(c)))
				sig = "sha256=" + hexMAC(secret, body)
				id = "bench-" + strconv.FormatInt(n, 10)
			}
			req, _ := http.NewRequest(http.MethodPost, a.url+"/v1/webhooks/github", bytes.NewReader(body))
			req.Header = http.Header{
				"Content-Type":        {"application/json"},
				"X-Github-Event":      {"push"},
				"X-Github-Delivery":   {id},
				"X-Hub-Signature-256": {sig},
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			count(resp.StatusCode)
		}
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		sent.Store(0)
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() { worker(c) })
		}
		wg.Wait()
		elapsed += time.Since(start)
		close(stop)
		<-sampled
	}
	b.StopTimer()
	b.ReportMetric(float64(total*b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), before.HeapInuse))/(1<<20), "heap-rise-MiB")
	want := http.StatusOK
	var got []string
	statuses.Range(func(k, v any) bool {
		got = append(got, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), k))
		if k.(int) != want {
			b.Errorf("%d requests answered %d, want all %d", v.(*atomic.Int64).Load(), k, want)
		}
		return true
	})
	b.Logf("answers: %v; %d requests in %s", got, total*b.N, elapsed.Round(time.Millisecond))
}
