// parent_linux.go is the parent side of Run: one socket and one supervising
// goroutine per worker slot, the signals, and rolling replacement.

package prefork

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stableAfter is how long a worker must run for its slot's restart delay to
// go back to RestartDelay.
const stableAfter = time.Minute

// holdLimit is the longest restart delay during which a slot keeps its
// socket; connections queued on it wait that long for the next worker.
const holdLimit = time.Second

type parent struct {
	cfg   *Config
	log   *slog.Logger
	exe   string
	addr  net.Addr
	spawn chan spawnReq // to the goroutine that starts every worker
}

// slot is one worker position: its socket and its current worker.
type slot struct {
	n    int
	ln   int               // listening socket; -1 while closed (a crash-looping slot)
	roll chan chan<- error // replace the worker; the reply says how it went
}

// worker is one running worker process.
type worker struct {
	proc   *os.Process
	pid    int
	state  *os.ProcessState // set when exited is closed
	ready  chan struct{}    // closed when it reported ready
	exited chan struct{}    // closed when it exited and was reaped
}

func runParent(ctx context.Context, c *Config) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("prefork: finding this program: %w", err)
	}
	p := &parent{cfg: c, log: c.Logger, exe: exe, spawn: make(chan spawnReq)}
	slots := make([]*slot, c.Workers)
	addr := c.Addr
	for i := range slots {
		f, a, err := listen(addr)
		if err != nil {
			for _, s := range slots[:i] {
				unix.Close(s.ln)
			}
			return err
		}
		if i == 0 {
			p.addr, addr = a, a.String() // the port the kernel chose, for port 0
		}
		slots[i] = &slot{n: i, ln: f, roll: make(chan chan<- error)}
	}
	defer func() {
		for _, s := range slots {
			if s.ln >= 0 {
				unix.Close(s.ln)
			}
		}
	}()
	warnMigrate(p.log)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	spawnDone := make(chan struct{})
	go p.spawner(ctx, spawnDone)

	var wg sync.WaitGroup
	first := make(chan error, len(slots))
	for _, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.supervise(ctx, s, first)
		}()
	}
	// Wait for every first start; a signal meanwhile stops everything.
	var runErr error
	stopping := false
	for pending := len(slots); pending > 0; {
		select {
		case err := <-first:
			pending--
			if err != nil && runErr == nil && !stopping {
				runErr = err
				cancel()
			}
		case sig := <-sigs:
			if sig != syscall.SIGHUP && !stopping {
				p.log.Info("prefork: stopping workers", "signal", sig.String())
				stopping = true
				cancel()
			}
		}
	}
	if runErr == nil && !stopping && ctx.Err() == nil {
		p.log.Info("prefork: all workers ready", "addr", p.addr.String(), "workers", len(slots), "pid", os.Getpid())
		if c.OnReady != nil {
			c.OnReady(p.addr)
		}
	}

	var rolling atomic.Bool
loop:
	for runErr == nil && !stopping {
		select {
		case <-ctx.Done():
			break loop
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				p.log.Info("prefork: stopping workers", "signal", sig.String())
				break loop
			}
			if !rolling.CompareAndSwap(false, true) {
				p.log.Warn("prefork: SIGHUP during a replacement; ignored")
				continue
			}
			go func() {
				defer rolling.Store(false)
				p.rollAll(ctx, slots)
			}()
		}
	}
	cancel()
	wg.Wait()
	<-spawnDone
	return runErr
}

// rollAll replaces the workers one slot at a time.
func (p *parent) rollAll(ctx context.Context, slots []*slot) {
	p.log.Info("prefork: replacing workers")
	for _, s := range slots {
		reply := make(chan error, 1)
		select {
		case s.roll <- reply:
		case <-ctx.Done():
			return
		}
		select {
		case err := <-reply:
			if err != nil {
				p.log.Error("prefork: replacing worker failed; keeping the old ones", "slot", s.n, "err", err)
				return
			}
		case <-ctx.Done():
			return
		}
	}
	p.log.Info("prefork: replaced all workers")
}

// supervise keeps a worker running in slot s until ctx ends. Its first
// start's result goes to first.
func (p *parent) supervise(ctx context.Context, s *slot, first chan<- error) {
	cur, err := p.start(ctx, s)
	first <- err
	if err != nil {
		return
	}
	delay := p.cfg.RestartDelay
	started := time.Now()
	var restart <-chan time.Time
	for {
		var exited <-chan struct{}
		if cur != nil {
			exited = cur.exited
		}
		select {
		case <-ctx.Done():
			p.stop(cur)
			return
		case <-exited:
			if ctx.Err() != nil {
				return // it got the same signal the parent did
			}
			if time.Since(started) > stableAfter {
				delay = p.cfg.RestartDelay
			}
			p.log.Warn("prefork: worker exited; restarting", "slot", s.n, "pid", cur.pid,
				"status", cur.state.String(), "in", delay)
			cur = nil
			if delay > holdLimit && s.ln >= 0 {
				// A crash loop: let the other slots take this one's share.
				unix.Close(s.ln)
				s.ln = -1
			}
			restart = time.After(delay)
			delay = min(2*delay, p.cfg.MaxRestartDelay)
		case <-restart:
			restart = nil
			if cur, err = p.start(ctx, s); err != nil {
				p.log.Error("prefork: restarting worker", "slot", s.n, "err", err)
				restart = time.After(delay)
				delay = min(2*delay, p.cfg.MaxRestartDelay)
				continue
			}
			started = time.Now()
		case reply := <-s.roll:
			next, err := p.start(ctx, s)
			if err != nil {
				reply <- err
				continue
			}
			p.stop(cur) // the new worker is ready: the old one finishes its requests
			cur, restart, started = next, nil, time.Now()
			reply <- nil
		}
	}
}

// start starts a worker in slot s and waits until it reports ready.
func (p *parent) start(ctx context.Context, s *slot) (*worker, error) {
	if s.ln < 0 {
		fd, _, err := listen(p.addr.String())
		if err != nil {
			return nil, err
		}
		s.ln = fd
	}
	w, err := p.spawnWorker(ctx, s)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(p.cfg.ReadyTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
		p.log.Debug("prefork: worker ready", "slot", s.n, "pid", w.pid)
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("%w: slot %d: exited before ready: %v", ErrWorkerFailed, s.n, w.state)
	case <-timer.C:
		p.stop(w)
		return nil, fmt.Errorf("%w: slot %d: not ready within %v", ErrWorkerFailed, s.n, p.cfg.ReadyTimeout)
	case <-ctx.Done():
		p.stop(w)
		return nil, ctx.Err()
	}
}

// stop asks w to finish (SIGTERM), and kills it if it takes longer than
// its shutdown timeout plus a margin. It returns once w exited.
func (p *parent) stop(w *worker) {
	if w == nil {
		return
	}
	w.proc.Signal(syscall.SIGTERM)
	timer := time.NewTimer(p.cfg.ShutdownTimeout + 5*time.Second)
	defer timer.Stop()
	select {
	case <-w.exited:
	case <-timer.C:
		p.log.Warn("prefork: worker did not stop in time; killing it", "pid", w.pid)
		w.proc.Kill()
		<-w.exited
	}
}

type spawnReq struct {
	argv  []string
	attr  *syscall.ProcAttr
	reply chan spawnResult
}

type spawnResult struct {
	pid int
	err error
}

// spawner starts every worker from one locked OS thread. A worker's
// Pdeathsig fires when the thread that started it exits, not the process,
// and Go may end idle threads; this one lives as long as the parent runs.
func (p *parent) spawner(ctx context.Context, done chan<- struct{}) {
	runtime.LockOSThread()
	defer close(done)
	defer runtime.UnlockOSThread()
	for {
		select {
		case r := <-p.spawn:
			pid, err := syscall.ForkExec(p.exe, r.argv, r.attr)
			r.reply <- spawnResult{pid, err}
		case <-ctx.Done():
			return
		}
	}
}

// spawnWorker starts this program as the worker of slot s, with the slot's
// socket as fd 3 and the write end of a pipe, on which it says "ready", as
// fd 4.
func (p *parent) spawnWorker(ctx context.Context, s *slot) (*worker, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("prefork: ready pipe: %w", err)
	}
	defer wr.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("prefork: %w", err)
	}
	defer null.Close()
	attr := &syscall.ProcAttr{
		Env:   append(os.Environ(), envWorker+"="+strconv.Itoa(s.n), envParent+"="+strconv.Itoa(os.Getpid())),
		Files: []uintptr{null.Fd(), 1, 2, uintptr(s.ln), wr.Fd()},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
	}
	req := spawnReq{argv: os.Args, attr: attr, reply: make(chan spawnResult, 1)}
	select {
	case p.spawn <- req:
	case <-ctx.Done():
		rd.Close()
		return nil, ctx.Err()
	}
	res := <-req.reply
	if res.err != nil {
		rd.Close()
		return nil, fmt.Errorf("%w: slot %d: %v", ErrWorkerFailed, s.n, res.err)
	}
	proc, err := os.FindProcess(res.pid)
	if err != nil { // cannot happen on Linux: FindProcess always succeeds
		rd.Close()
		return nil, fmt.Errorf("%w: slot %d: %v", ErrWorkerFailed, s.n, err)
	}
	w := &worker{proc: proc, pid: res.pid, ready: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer rd.Close()
		if line, _ := bufio.NewReader(rd).ReadString('\n'); line == "ready\n" {
			close(w.ready)
		}
	}()
	go func() {
		w.state, _ = proc.Wait()
		close(w.exited)
	}()
	p.log.Debug("prefork: worker started", "slot", s.n, "pid", w.pid)
	return w, nil
}

// warnMigrate says, once, whether connections queued on a closing socket are
// lost: only for a slot given up in a crash loop, since slots keep their
// sockets across restarts.
func warnMigrate(log *slog.Logger) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	if err == nil && len(b) > 0 && b[0] == '0' {
		log.Debug("prefork: net.ipv4.tcp_migrate_req is 0: connections queued on a crash-looping slot are reset when it gives up its socket")
	}
}
