// proc.go starts and stops the processes the harness runs (its own children
// and external servers): stdout read line by line, the tail of stderr kept
// for error messages, death tied to the harness, and a stop that always
// reaps.

package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a started process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line; closed at EOF
	stderr *tailBuffer
	done   chan struct{} // closed once the process was reaped
	undo   func()
}

// startProc starts cmd. The process gets SIGKILL if the harness dies
// (Pdeathsig), and is stopped by the cleanup registry if the harness is
// interrupted.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 1024), stderr: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody listens: drop rather than block the child
			}
		}
		close(p.lines)
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	p.undo = cleanups.add(func() { p.terminate(syscall.SIGKILL, 0) })
	return p, nil
}

// expect waits up to d for a stdout line starting with prefix and returns
// the rest of it.
func (p *proc) expect(prefix string, d time.Duration) (string, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited (%v) before saying %q; stderr: %s", p.name, p.cmd.ProcessState, prefix, p.stderr.String())
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-deadline.C:
			return "", fmt.Errorf("%s did not say %q within %v; stderr: %s", p.name, prefix, d, p.stderr.String())
		}
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end by itself.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop asks the process to end with SIGTERM, kills it if it has not
// within grace, and reaps it.
func (p *proc) stop(grace time.Duration) {
	p.terminate(syscall.SIGTERM, grace)
	p.undo()
}

func (p *proc) terminate(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(sig)
	if grace > 0 && p.wait(grace) {
		return
	}
	p.cmd.Process.Kill()
	p.wait(10 * time.Second) // SIGKILL cannot be refused; the bound is for a wedged kernel
}

// tailBuffer keeps the last max bytes written to it. Safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(empty)"
	}
	return s
}
