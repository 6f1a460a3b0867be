// Package docker runs steps as containers through the Docker Engine API. It is
// the only importer of the Docker SDK.
//
// One attempt is one container: the image is made present according to the
// pull policy, the container is created with labels naming the run, job, step
// and attempt, attached to and started, its output is streamed while the
// engine waits for the exit, and it is always removed afterwards, also when
// the attempt is stopped. Containers are never created with AutoRemove: the engine removes
// them itself once the output is read and the exit code known, and Cleanup
// removes what a process that died left behind.
//
// A step's command replaces the image's CMD and is passed to its ENTRYPOINT,
// if it has one, as `docker run IMAGE COMMAND...` does.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/caesium-io/caesium/executor"
)

// Pull policies.
const (
	PullIfNotPresent = "if-not-present" // pull only when the image is not present (default)
	PullAlways       = "always"         // pull before every attempt
	PullNever        = "never"          // never pull; a missing image fails the attempt
)

// Labels the engine puts on every container it creates.
const (
	LabelManaged = "io.caesium.managed" // "true"
	LabelRunID   = "io.caesium.run-id"
	LabelJob     = "io.caesium.job"
	LabelStep    = "io.caesium.step"
	LabelAttempt = "io.caesium.attempt"
)

const (
	defaultStopTimeout = 10 * time.Second
	// cleanupTimeout bounds each call that cleans up after an attempt (create
	// under WithoutCancel, stop, remove), so a hung daemon cannot hold Run.
	cleanupTimeout = 30 * time.Second
	// logDrain is how long the output stream may run on after the container
	// stopped; the daemon ends it at the exit, so this only matters when
	// something is wrong.
	logDrain = 5 * time.Second
)

// ErrImageNotFound marks an attempt that failed because its image is not
// present and could not be pulled (or, with PullNever, may not be).
var ErrImageNotFound = errors.New("image not found")

// Config configures an Engine. The zero value is usable.
type Config struct {
	// Host is the daemon address, e.g. unix:///var/run/docker.sock. Empty:
	// DOCKER_HOST and the other DOCKER_* variables, as the docker CLI reads them.
	Host string
	// PullPolicy is PullIfNotPresent (the default), PullAlways or PullNever.
	PullPolicy string
	// Network is the network containers join. Empty: the daemon's default bridge.
	Network string
	// StopTimeout is how long a stopped attempt's container gets between its
	// stop signal and SIGKILL. The Engine API counts whole seconds, so it is
	// rounded up. Zero: 10s.
	StopTimeout time.Duration
	// Labels are put on every container in addition to the io.caesium.* ones,
	// and Cleanup removes only containers that carry all of them: set one per
	// installation when several share a daemon.
	Labels map[string]string
	// Logger receives the engine's own events; nil discards them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PullPolicy == "" {
		c.PullPolicy = PullIfNotPresent
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = defaultStopTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch c.PullPolicy {
	case PullIfNotPresent, PullAlways, PullNever:
	default:
		return fmt.Errorf("pull policy %q: want %s, %s or %s", c.PullPolicy, PullIfNotPresent, PullAlways, PullNever)
	}
	if c.StopTimeout < 0 {
		return fmt.Errorf("stop timeout %s is negative", c.StopTimeout)
	}
	for k := range c.Labels {
		if k == "" || isOwnLabel(k) {
			return fmt.Errorf("label %q is empty or reserved", k)
		}
	}
	return nil
}

func isOwnLabel(k string) bool {
	switch k {
	case LabelManaged, LabelRunID, LabelJob, LabelStep, LabelAttempt:
		return true
	}
	return false
}

// Engine runs attempts as Docker containers. It is safe for concurrent use.
type Engine struct {
	cli         *client.Client
	cfg         Config
	stopSeconds int
	log         *slog.Logger
}

var _ executor.Engine = (*Engine)(nil)

// New returns an Engine for cfg. It does not contact the daemon; Ping does.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client: %w", err)
	}
	cfg.Labels = maps.Clone(cfg.Labels)
	return &Engine{
		cli:         cli,
		cfg:         cfg,
		stopSeconds: int((cfg.StopTimeout + time.Second - 1) / time.Second),
		log:         cfg.Logger.WithGroup("docker"),
	}, nil
}

// Close releases the client's idle connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Ping checks that the daemon answers. Its errors wrap
// executor.ErrEngineUnavailable.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return unavailable{fmt.Errorf("docker: ping: %w", err)}
	}
	return nil
}

// Run runs one attempt in a new container and returns its exit code; see
// executor.Engine for the contract. The container is removed before Run
// returns (a failed removal is logged and left to Cleanup).
func (e *Engine) Run(ctx context.Context, t executor.Task, out io.Writer) (int, error) {
	if out == nil {
		out = io.Discard
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	if t.Image == "" {
		return -1, errors.New("docker: the step has no image")
	}
	for k := range t.Env {
		// The daemon would echo a malformed entry, value included, in its error.
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return -1, fmt.Errorf("docker: environment variable name %q is not valid", k)
		}
	}
	if err := e.ensureImage(ctx, t.Image); err != nil {
		return -1, e.fail(ctx, err)
	}

	// Created without ctx's cancellation, so that a cancel arriving while the
	// daemon creates the container cannot leave it behind unknown to us.
	bg := context.WithoutCancel(ctx)
	createCtx, cancel := context.WithTimeout(bg, cleanupTimeout)
	id, err := e.create(createCtx, t)
	cancel()
	if err != nil {
		return -1, e.fail(ctx, fmt.Errorf("docker: create container from %q: %w", t.Image, err))
	}
	log := e.log.With(slog.String("container", shortID(id)), slog.Int64("run_id", t.RunID),
		slog.String("job", t.Job), slog.String("step", t.Step), slog.Int("attempt", t.Attempt))
	defer e.remove(bg, id, log)
	return e.run(ctx, id, out, log)
}

// run starts the created container id, copies its output to out and waits for
// its exit or for ctx to end.
func (e *Engine) run(ctx context.Context, id string, out io.Writer, log *slog.Logger) (int, error) {
	bg := context.WithoutCancel(ctx)

	// The output comes from an attach made before the start, as `docker
	// run` does: it holds everything the process writes, partial last line
	// included (a followed log stream of Engine 20.10 drops that line), and
	// needs no readable log driver. It ends when the container's streams
	// close, so after a stop it runs on to the process's last words.
	att, err := e.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return -1, e.fail(ctx, fmt.Errorf("docker: attach to container: %w", err))
	}
	defer att.Close()
	outDone := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, att.Reader)
		outDone <- err
	}()
	// Nothing may be written to out once Run returned.
	drained := false
	defer func() {
		if !drained {
			att.Close()
			<-outDone
		}
	}()

	// Waiting on next-exit is registered before the start (ContainerWait
	// returns once the daemon acknowledged it), so no exit can be missed.
	waitCtx, cancelWait := context.WithCancel(bg)
	waitC, waitErrC := e.cli.ContainerWait(waitCtx, id, container.WaitConditionNextExit)
	waited := false
	defer func() {
		cancelWait()
		if !waited {
			// The SDK's goroutine sends on one of the two channels, the
			// result channel unbuffered: receive it so the goroutine ends.
			select {
			case <-waitC:
			case <-waitErrC:
			}
		}
	}()

	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return -1, e.fail(ctx, fmt.Errorf("docker: start container: %w", err))
	}
	log.Debug("container started")

	code, runErr := -1, error(nil)
	select {
	case res := <-waitC:
		waited = true
		code = int(res.StatusCode)
		if res.Error != nil && res.Error.Message != "" {
			runErr = fmt.Errorf("docker: wait for container: %s", res.Error.Message)
		}
	case err := <-waitErrC:
		waited = true
		runErr = e.fail(ctx, fmt.Errorf("docker: wait for container: %w", err))
	case <-ctx.Done():
		e.stop(bg, id, log)
		runErr = ctx.Err()
	}

	select {
	case err := <-outDone:
		drained = true
		if err != nil && runErr == nil {
			log.Warn("output incomplete", slog.Any("error", err))
		}
	case <-time.After(logDrain):
		log.Warn("output stream did not end after the container stopped; cut")
	}
	return code, runErr
}

// create creates the attempt's container and returns its id.
func (e *Engine) create(ctx context.Context, t executor.Task) (string, error) {
	labels := maps.Clone(e.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManaged] = "true"
	labels[LabelRunID] = strconv.FormatInt(t.RunID, 10)
	labels[LabelJob] = t.Job
	labels[LabelStep] = t.Step
	labels[LabelAttempt] = strconv.Itoa(t.Attempt)

	env := make([]string, 0, len(t.Env))
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		env = append(env, k+"="+t.Env[k])
	}
	var cmd []string
	if len(t.Command) > 0 {
		cmd = t.Command // nil otherwise: the image's CMD
	}
	stop := e.stopSeconds
	cfg := &container.Config{
		Image:       t.Image,
		Cmd:         cmd,
		Env:         env,
		WorkingDir:  t.Workdir,
		Labels:      labels,
		StopTimeout: &stop,
	}
	host := &container.HostConfig{}
	if e.cfg.Network != "" {
		host.NetworkMode = container.NetworkMode(e.cfg.Network)
	}
	resp, err := e.cli.ContainerCreate(ctx, cfg, host, &network.NetworkingConfig{}, nil, containerName(t))
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// stop stops a container whose attempt ended early: its stop signal, then
// SIGKILL after StopTimeout (the daemon does both); a kill if that failed.
func (e *Engine) stop(bg context.Context, id string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(bg, e.cfg.StopTimeout+cleanupTimeout)
	defer cancel()
	timeout := e.stopSeconds
	err := e.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
	if err == nil || cerrdefs.IsNotFound(err) {
		return
	}
	log.Warn("stop failed; killing", slog.Any("error", err))
	if err := e.cli.ContainerKill(ctx, id, "KILL"); err != nil && !cerrdefs.IsNotFound(err) {
		log.Warn("kill failed", slog.Any("error", err))
	}
}

func (e *Engine) remove(bg context.Context, id string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(bg, cleanupTimeout)
	defer cancel()
	err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		log.Warn("remove failed; Cleanup will remove it", slog.Any("error", err))
	}
}

// ensureImage makes ref present according to the pull policy.
func (e *Engine) ensureImage(ctx context.Context, ref string) error {
	if e.cfg.PullPolicy != PullAlways {
		_, err := e.cli.ImageInspect(ctx, ref)
		if err == nil {
			return nil
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker: inspect image %q: %w", ref, err)
		}
		if e.cfg.PullPolicy == PullNever {
			return fmt.Errorf("docker: image %q is not present and the pull policy is %s: %w", ref, PullNever, ErrImageNotFound)
		}
		return e.pull(ctx, ref, true)
	}
	return e.pull(ctx, ref, false)
}

// pull pulls ref; missing says the image is not present, so that a failed
// pull is ErrImageNotFound.
func (e *Engine) pull(ctx context.Context, ref string, missing bool) error {
	start := time.Now()
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err == nil {
		err = readProgress(rc)
		rc.Close()
	}
	if err != nil {
		if missing && !isUnavailable(err) && ctx.Err() == nil {
			return fmt.Errorf("docker: pull image %q: %w: %w", ref, ErrImageNotFound, err)
		}
		return fmt.Errorf("docker: pull image %q: %w", ref, err)
	}
	e.log.Info("image pulled", slog.String("image", ref), slog.Duration("took", time.Since(start)))
	return nil
}

// readProgress reads a pull's or an import's JSON progress stream to its
// end and returns the error it reports, if any.
func readProgress(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// Cleanup removes every container labelled io.caesium.managed=true (and
// carrying Config.Labels), running or not, and returns how many it removed.
// Call it when no attempt of this installation can be running, e.g. when an
// agent becomes the leader: it is for containers left by a process that died.
func (e *Engine) Cleanup(ctx context.Context) (int, error) {
	args := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	for k, v := range e.cfg.Labels {
		args.Add("label", k+"="+v)
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return 0, e.fail(ctx, fmt.Errorf("docker: list containers: %w", err))
	}
	n := 0
	var errs []error
	for _, c := range list {
		err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			n++
			e.log.Info("removed leftover container", slog.String("container", shortID(c.ID)),
				slog.String("run_id", c.Labels[LabelRunID]), slog.String("step", c.Labels[LabelStep]))
		case cerrdefs.IsNotFound(err):
			// Removed meanwhile by its own Run.
		default:
			errs = append(errs, fmt.Errorf("docker: remove container %s: %w", shortID(c.ID), err))
		}
	}
	if len(errs) > 0 {
		return n, e.fail(ctx, errors.Join(errs...))
	}
	return n, nil
}

// fail returns ctx's error when ctx ended (what the executor expects from a
// stopped attempt), and otherwise err, marked as ErrEngineUnavailable when
// the daemon could not be reached.
func (e *Engine) fail(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if isUnavailable(err) {
		return unavailable{err}
	}
	return err
}

func isUnavailable(err error) bool {
	return client.IsErrConnectionFailed(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED)
}

// unavailable marks an error as executor.ErrEngineUnavailable without
// changing its text.
type unavailable struct{ err error }

func (u unavailable) Error() string   { return u.err.Error() }
func (u unavailable) Unwrap() []error { return []error{u.err, executor.ErrEngineUnavailable} }

// containerName names a container for people reading `docker ps`; the
// random suffix keeps names unique across installations and restarts.
func containerName(t executor.Task) string {
	return fmt.Sprintf("caesium-%s-%s-r%d-a%d-%06x", nameSafe(t.Job, 40), nameSafe(t.Step, 40),
		t.RunID, t.Attempt, rand.Uint32()&0xffffff)
}

// nameSafe keeps s within Docker's name alphabet [a-zA-Z0-9_.-] and at most
// n bytes long.
func nameSafe(s string, n int) string {
	b := []byte(s)
	if len(b) > n {
		b = b[:n]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
