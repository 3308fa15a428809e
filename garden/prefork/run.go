// run.go holds Run, which is the parent or a worker depending on the
// environment, and the environment variables that tell them apart.

package prefork

import (
	"context"
	"net/http"
	"os"
	"strconv"
)

const (
	// envWorker holds a worker's slot number (0..Workers-1).
	envWorker = "GARDEN_PREFORK_WORKER"
	// envParent holds the parent's pid, so a worker can tell it was
	// orphaned before its death signal was armed.
	envParent = "GARDEN_PREFORK_PARENT"
	// Inherited file descriptors of a worker.
	fdListener = 3
	fdReady    = 4
)

// IsWorker reports whether this process is a worker started by Run.
func IsWorker() bool { return WorkerID() >= 0 }

// WorkerID returns this worker's slot number (0..Workers-1), or -1 in the
// parent (or any process not started by Run).
func WorkerID() int {
	v, ok := os.LookupEnv(envWorker)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// Run runs the parent or, in a worker, the worker. In the parent it starts
// cfg.Workers copies of this program (same path, arguments and environment
// plus the worker variables), supervises them, and returns once they all
// stopped after SIGINT, SIGTERM or the end of ctx; it returns an error if
// the configuration is bad, the address cannot be bound, or a worker fails
// its first start. In a worker it calls setup to build the server, serves
// it on the inherited socket, and returns nil after a graceful shutdown on
// SIGTERM, SIGINT or the end of ctx (or the server's error).
//
// setup is only called in workers; the server's Addr is ignored.
func Run(ctx context.Context, cfg Config, setup func() (*http.Server, error)) error {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return err
	}
	if !supported {
		return ErrUnsupportedPlatform
	}
	if id := WorkerID(); id >= 0 {
		return runWorker(ctx, &c, setup)
	}
	return runParent(ctx, &c)
}
