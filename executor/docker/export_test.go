package docker

import (
	"context"

	"github.com/docker/docker/api/types/container"

	"github.com/caesium-io/caesium/executor"
)

// StartLeftover creates and starts t's container as Run does, and leaves it
// there, as a process that died mid-attempt would.
func (e *Engine) StartLeftover(ctx context.Context, t executor.Task) (string, error) {
	id, err := e.create(ctx, t)
	if err != nil {
		return "", err
	}
	return id, e.cli.ContainerStart(ctx, id, container.StartOptions{})
}
