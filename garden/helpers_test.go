package garden

// helpers_test.go holds what the tests share: stores on temporary
// segments, a client that keeps cookies, polling against a deadline, and
// child processes (TestMain re-enters the test binary in a role named by an
// environment variable, since the race detector cannot see memory mapped
// from a file).

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

const childEnv = "GARDEN_TEST_CHILD"

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

// testKey is a fixed farm key for tests that need two stores to agree.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testConfig returns a config on a fresh segment path in a temporary
// directory, with a small segment.
func testConfig(t testing.TB) Config {
	return Config{
		App:            "test",
		SegmentPath:    filepath.Join(t.TempDir(), "seg"),
		SegmentSize:    8 << 20,
		SegmentOptions: &shm.Options{MaxValue: 64 << 10},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openStore opens a store with cfg and closes it at the end of the test.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// client sends requests to a handler and keeps the session cookie as a
// browser would.
type client struct {
	h      http.Handler
	name   string
	cookie string // value; "" when none
}

func newClient(st *Store, h http.HandlerFunc) *client {
	return &client{h: st.Middleware(h), name: st.cfg.CookieName}
}

// do sends a request and applies the response's Set-Cookie.
func (c *client) do(t testing.TB, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if c.cookie != "" {
		r.Header.Set("Cookie", c.name+"="+c.cookie)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.Name != c.name {
			continue
		}
		if ck.MaxAge < 0 {
			c.cookie = ""
		} else {
			c.cookie = ck.Value
		}
	}
	return w
}

// setCookies returns the Set-Cookie headers of a response.
func setCookies(w *httptest.ResponseRecorder) []string { return w.Result().Header.Values("Set-Cookie") }

// poll calls cond until it returns true, failing the test after d.
func poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// child is a running child process with its stdout read line by line.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	done   chan struct{}
	mu     sync.Mutex
	stderr strings.Builder
}

// startChild runs this test binary in role with the extra environment.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role, quickRaceExit()}, env...)...)
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{})}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stderr.Len() < 1<<16 {
			c.stderr.Write(p)
		}
		return len(p), nil
	})
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
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// expect reads lines until one starts with prefix, within d, and returns it.
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

// quickRaceExit returns the GORACE setting that spares a child built with
// -race the race detector's one-second sleep at exit.
func quickRaceExit() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}
