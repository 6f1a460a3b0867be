package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caesium-io/caesium/store"
	"github.com/caesium-io/caesium/store/storetest"
)

func TestDeliveries(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, backend)
			at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			want := store.Delivery{
				Provider: "github", Event: "push", DeliveryID: "d-1", Repository: "https://github.com/acme/jobs",
				Ref: "refs/heads/main", After: "0123456789abcdef0123456789abcdef01234567", Result: "queued",
				MatchedSources: []string{"platform-jobs"}, Status: 202, DurationUS: 812, ReceivedAt: at,
			}
			id, err := s.RecordDelivery(ctx, want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.ListDeliveries(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			want.ID = id
			if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
				t.Fatalf("ListDeliveries = %+v, want [%+v]", got, want)
			}
			// No matched source is an empty list, not null.
			if _, err := s.RecordDelivery(ctx, store.Delivery{Provider: "gitlab", Result: "ignored", Status: 200, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
			got, _ = s.ListDeliveries(ctx, 1)
			if got[0].Provider != "gitlab" || got[0].MatchedSources == nil || len(got[0].MatchedSources) != 0 {
				t.Errorf("newest delivery = %+v, want gitlab first with an empty match list", got[0])
			}
		})
	}
}

func TestDeliveriesBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.Open(t, "sqlite")
	for i := range store.MaxDeliveries + 25 {
		if _, err := s.RecordDelivery(ctx, store.Delivery{Provider: "generic", DeliveryID: fmt.Sprint(i), Result: "queued", Status: 202, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListDeliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxDeliveries {
		t.Fatalf("kept %d deliveries, want %d", len(got), store.MaxDeliveries)
	}
	if first, last := got[0].DeliveryID, got[len(got)-1].DeliveryID; first != fmt.Sprint(store.MaxDeliveries+24) || last != "25" {
		t.Errorf("kept deliveries %s..%s, want the newest %d", last, first, store.MaxDeliveries)
	}
}

func TestSeenReplay(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			var mu sync.Mutex
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			s := storetest.OpenOptions(t, backend, store.Options{Now: clock})
			steps := []struct {
				name    string
				advance time.Duration
				keys    []string
				want    bool
			}{
				{"first delivery", 0, []string{"id:github:1", "sig:aa"}, false},
				{"same delivery id", time.Minute, []string{"id:github:1", "sig:bb"}, true},
				{"same signature and body", time.Minute, []string{"id:github:2", "sig:aa"}, true},
				{"new delivery", time.Minute, []string{"id:github:3", "sig:cc"}, false},
				{"after the window, the id is new again", 25 * time.Hour, []string{"id:github:1", "sig:dd"}, false},
			}
			for _, st := range steps {
				mu.Lock()
				now = now.Add(st.advance)
				mu.Unlock()
				got, err := s.SeenReplay(ctx, st.keys, 24*time.Hour)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if got != st.want {
					t.Errorf("%s: SeenReplay = %t, want %t", st.name, got, st.want)
				}
			}
		})
	}
}

// TestSeenReplayNamespaces: a call purges expired keys of its own
// namespaces only, so a caller with a short window (webhooks configured at
// one minute) does not purge the live keys of one with a longer window.
func TestSeenReplayNamespaces(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			var mu sync.Mutex
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			s := storetest.OpenOptions(t, backend, store.Options{Now: clock})
			seen := func(key string, window time.Duration) bool {
				t.Helper()
				got, err := s.SeenReplay(ctx, []string{key}, window)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			seen("trigger:abc", 10*time.Minute)
			seen("sig:old", time.Minute)
			advance(5 * time.Minute)
			seen("sig:new", time.Minute) // purges sig:old, not trigger:abc
			if !seen("trigger:abc", 10*time.Minute) {
				t.Error("a webhook call with a 1m window purged a trigger key 5m old (its window is 10m)")
			}
			if seen("sig:old", time.Minute) {
				t.Error("sig:old, 5m old, is still a replay under its 1m window")
			}
		})
	}
}

// TestForgetReplay: a forgotten key is new again; others stay seen.
func TestForgetReplay(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, backend)
			if seen, err := s.SeenReplay(ctx, []string{"trigger:a", "trigger:b"}, time.Hour); err != nil || seen {
				t.Fatalf("first SeenReplay = %t, %v", seen, err)
			}
			if err := s.ForgetReplay(ctx, []string{"trigger:a", "trigger:never"}); err != nil {
				t.Fatal(err)
			}
			if err := s.ForgetReplay(ctx, nil); err != nil {
				t.Fatalf("ForgetReplay of nothing: %v", err)
			}
			for key, want := range map[string]bool{"trigger:a": false, "trigger:b": true} {
				if seen, err := s.SeenReplay(ctx, []string{key}, time.Hour); err != nil || seen != want {
					t.Errorf("SeenReplay(%s) after forgetting trigger:a = %t, %v; want %t", key, seen, err, want)
				}
			}
		})
	}
}

func TestSeenReplayConcurrent(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, backend)
			const n = 8
			var wg sync.WaitGroup
			fresh := make(chan bool, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seen, err := s.SeenReplay(ctx, []string{"id:gitea:same"}, 24*time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					fresh <- !seen
				}()
			}
			wg.Wait()
			close(fresh)
			firsts := 0
			for f := range fresh {
				if f {
					firsts++
				}
			}
			if firsts != 1 {
				t.Errorf("%d of %d concurrent identical deliveries were taken as new, want exactly 1", firsts, n)
			}
		})
	}
}
