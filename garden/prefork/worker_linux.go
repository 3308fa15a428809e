// worker_linux.go is the worker side of Run: serve the inherited socket,
// report ready, and stop gracefully on SIGTERM without dropping a request
// that was already accepted.

package prefork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func runWorker(ctx context.Context, c *Config, setup func() (*http.Server, error)) error {
	// The death signal is armed in the child before it runs; if the parent
	// died before that, this process was already orphaned.
	if want, _ := strconv.Atoi(os.Getenv(envParent)); want == 0 || os.Getppid() != want {
		return ErrNotWorker
	}
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	lf := os.NewFile(fdListener, "listener")
	ready := os.NewFile(fdReady, "ready")
	if lf == nil || ready == nil {
		return ErrNotWorker
	}
	defer ready.Close()
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("%w: inherited listener: %v", ErrNotWorker, err)
	}
	defer ln.Close()

	srv, err := setup()
	if err != nil {
		return err
	}
	conns := track(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := ready.Write([]byte("ready\n")); err != nil {
		c.Logger.Warn("prefork: reporting ready", "err", err)
	}
	ready.Close()

	select {
	case err := <-served:
		return err // Serve failed on its own
	case <-ctx.Done():
	}
	deadline := time.Now().Add(c.ShutdownTimeout)
	// Stop accepting (the socket stays open for the slot's other workers)
	// and let the connections accepted so far bring in their request and
	// get their answer before Shutdown: Shutdown closes a connection whose
	// request it reads after it began, unanswered.
	srv.SetKeepAlivesEnabled(false)
	ln.Close()
	<-served
	grace := time.Now().Add(newConnGrace)
	if deadline.Before(grace) {
		grace = deadline
	}
	conns.waitQuiet(grace)

	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close() // ShutdownTimeout passed: cut what is left
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}

// newConnGrace is how long a stopping worker waits for an accepted
// connection to send its first request (http.Server.Shutdown's own limit).
const newConnGrace = 5 * time.Second

// connTracker knows which of a server's connections are new (accepted, no
// request yet) or active (in a request).
type connTracker struct {
	mu   sync.Mutex
	busy map[net.Conn]http.ConnState
}

// track makes t follow srv's connections, keeping srv's own ConnState hook.
func track(srv *http.Server) *connTracker {
	t := &connTracker{busy: map[net.Conn]http.ConnState{}}
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		t.mu.Lock()
		if st == http.StateNew || st == http.StateActive {
			t.busy[c] = st
		} else {
			delete(t.busy, c)
		}
		t.mu.Unlock()
		if hook != nil {
			hook(c, st)
		}
	}
	return t
}

// waitQuiet waits until no connection is new or active, or until deadline.
func (t *connTracker) waitQuiet(deadline time.Time) {
	for time.Now().Before(deadline) {
		t.mu.Lock()
		n := len(t.busy)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
