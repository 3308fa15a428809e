// Package childproc runs a test binary's own code in child processes, for
// tests of behaviour across processes (memory mapped from a file is
// invisible to the race detector, so goroutines alone prove nothing). A
// test package registers roles and calls Main from TestMain; a test starts
// a child in a role and talks to it over its standard input and output.
package childproc

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

// roleEnv names the role a child runs.
const roleEnv = "GARDENSTATE_TEST_ROLE"

// Main runs the role named in the environment, if any, and exits with its
// status; in the parent it returns at once.
func Main(roles map[string]func() int) {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	fn, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(2)
	}
	os.Exit(fn())
}

// Fail prints a message for the parent (on standard error) and returns the
// exit status 1, for a role to return.
func Fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// Child is a running child process. Lines carries its standard output, line
// by line, and is closed when the output ends.
type Child struct {
	Cmd   *exec.Cmd
	Lines <-chan string

	stdin  io.WriteCloser
	done   chan struct{}
	mu     sync.Mutex
	stderr strings.Builder
}

// Start runs this test binary in role, with env added to its environment,
// and kills it at the end of the test.
func Start(t testing.TB, role string, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A child built with -race would otherwise sleep a second at exit.
	race := "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=" + role, race}, env...)...)
	lines := make(chan string, 1<<16)
	c := &Child{Cmd: cmd, Lines: lines, done: make(chan struct{})}
	cmd.Stderr = (*stderrWriter)(c)
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
			lines <- sc.Text()
		}
		close(lines)
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.Kill)
	return c
}

type stderrWriter Child

func (w *stderrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stderr.Len() < 1<<16 {
		w.stderr.Write(p)
	}
	return len(p), nil
}

// Stderr returns what the child wrote to standard error (the first 64 KiB).
func (c *Child) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// Kill kills the child, discards what it printed and nobody read, and
// waits until it is gone.
func (c *Child) Kill() {
	if c.Cmd.Process != nil {
		c.Cmd.Process.Kill()
	}
	go func() {
		for range c.Lines {
		}
	}()
	<-c.done
}

// Expect reads lines until one starts with prefix, within d, and returns it.
func (c *Child) Expect(t testing.TB, prefix string, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.Lines:
			if !ok {
				<-c.done
				t.Fatalf("child exited (%v) before printing %q; stderr:\n%s", c.Cmd.ProcessState, prefix, c.Stderr())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timer.C:
			t.Fatalf("child did not print %q within %v; stderr:\n%s", prefix, d, c.Stderr())
		}
	}
}

// Wait waits up to d for the child to exit, after its output has been read
// to the end by someone, and returns its exit status.
func (c *Child) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.Cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("child did not exit within %v; stderr:\n%s", d, c.Stderr())
	}
	return -1
}

// Say writes one line to the child's standard input.
func (c *Child) Say(line string) { io.WriteString(c.stdin, line+"\n") }

// CloseInput closes the child's standard input.
func (c *Child) CloseInput() error { return c.stdin.Close() }
