package docker

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/caesium-io/caesium/executor"
	"github.com/caesium-io/caesium/executor/docker/dockertest"
)

// BenchmarkRunTruePhases goes through Run's calls one by one for an attempt
// of `true` and reports the mean time of each, per network mode, to show
// where the time of BenchmarkRunTrue goes.
func BenchmarkRunTruePhases(b *testing.B) {
	img := dockertest.Image(b)
	for _, network := range []string{"", "none", "host"} {
		name := "network=" + network
		if network == "" {
			name = "network=default"
		}
		b.Run(name, func(b *testing.B) {
			e, err := New(Config{Network: network, Labels: map[string]string{"io.caesium.test": "phases"}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			defer e.Cleanup(context.Background())
			ctx := context.Background()
			task := executor.Task{RunID: 1, Job: "bench", Step: "phases", Attempt: 1, Image: img, Command: []string{"true"}}
			phases := []string{"inspect", "create", "attach+wait", "start", "exit", "remove"}
			sum := make([]time.Duration, len(phases))
			n := 0
			for b.Loop() {
				n++
				i, t0 := 0, time.Now()
				mark := func() { sum[i] += time.Since(t0); i, t0 = i+1, time.Now() }
				if _, err := e.cli.ImageInspect(ctx, img); err != nil {
					b.Fatal(err)
				}
				mark()
				id, err := e.create(ctx, task)
				if err != nil {
					b.Fatal(err)
				}
				mark()
				att, err := e.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
				if err != nil {
					b.Fatal(err)
				}
				copied := make(chan struct{})
				go func() { stdcopy.StdCopy(io.Discard, io.Discard, att.Reader); close(copied) }()
				waitC, errC := e.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
				mark()
				if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
					b.Fatal(err)
				}
				mark()
				select {
				case <-waitC:
				case err := <-errC:
					b.Fatal(err)
				}
				<-copied
				att.Close()
				mark()
				if err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					b.Fatal(err)
				}
				mark()
			}
			for i, p := range phases {
				b.ReportMetric(float64(sum[i].Microseconds())/1000/float64(n), p+"-ms")
			}
		})
	}
}
