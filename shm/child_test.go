package shm

// child_test.go lets tests run parts of themselves as separate processes:
// TestMain re-enters the test binary in a child role named by an environment
// variable. Memory mapped from a file is invisible to the race detector, so
// multi-process behaviour is tested with real processes.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const childEnv = "GARDEN_SHM_CHILD"

var childRoles = map[string]func() int{}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		fn, ok := childRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		os.Exit(fn())
	}
	os.Exit(m.Run())
}

// child is a running child process with its stdout read line by line.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	done   chan struct{}
	stderr strings.Builder
	mu     sync.Mutex
}

// startChild runs this test binary in role with the extra environment.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role}, env...)...)
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{c: c}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Wait closes the pipe, so it must come after the last read.
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

type lockedWriter struct{ c *child }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.stderr.Len() < 1<<16 {
		w.c.stderr.Write(p)
	}
	return len(p), nil
}

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// kill kills the child and discards whatever it printed and nobody read.
func (c *child) kill() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
	go func() {
		for range c.lines {
		}
	}()
	<-c.done
}

// expect reads lines until one starts with prefix, within d.
func (c *child) expect(t testing.TB, prefix string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				<-c.done
				t.Fatalf("child exited (%v) before printing %q; stderr:\n%s", c.cmd.ProcessState, prefix, c.stderrText())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timer.C:
			t.Fatalf("child did not print %q within %v; stderr:\n%s", prefix, d, c.stderrText())
		}
	}
}

// wait waits for the child to exit within d and returns its exit code.
func (c *child) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("child did not exit within %v; stderr:\n%s", d, c.stderrText())
	}
	return -1
}

// say writes one line to the child's stdin.
func (c *child) say(line string) { io.WriteString(c.stdin, line+"\n") }

func childFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}
