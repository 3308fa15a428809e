package main

// main_test.go holds what every test of gardenctl uses: running commands
// in-process, segments in temporary directories, worker processes (this
// test binary re-run in a child role that keeps writing), and golden files.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/internal/childproc"
	"github.com/gardenstate/gardenstate/shm"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// Child roles: the environment variable names the role, the others carry
// its parameters.
const (
	segmentEnv = "GARDENCTL_TEST_SEGMENT"
	workerEnv  = "GARDENCTL_TEST_WORKER"
)

var childRoles = map[string]func() int{
	"worker": workerRole,
}

func TestMain(m *testing.M) {
	childproc.Main(childRoles)
	os.Exit(m.Run())
}

// sessionValue encodes a session as garden does: a msgpack map of string
// keys whose values are themselves msgpack-encoded.
func sessionValue(fields map[string]any) []byte {
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.SetSortMapKeys(true)
	m := map[string]any{}
	for k, v := range fields {
		if raw, ok := v.([]byte); ok {
			m[k] = raw
			continue
		}
		inner, err := msgpack.Marshal(v)
		if err != nil {
			panic(err)
		}
		m[k] = inner
	}
	if err := enc.Encode(m); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// workerKey is the key worker id writes in its slot i.
func workerKey(id string, i int) string { return fmt.Sprintf("sess-w%s-%03d", id, i) }

// workerRole attaches to the segment and keeps writing and reading
// sessions, like a web worker under load, until the test's end kills it
// or its stdin closes (the test binary died first). It prints "ready"
// after its first round of writes.
func workerRole() int {
	seg, err := shm.Open(os.Getenv(segmentEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer seg.Close()
	id := os.Getenv(workerEnv)
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	const keys = 20
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		i := n % keys
		v := sessionValue(map[string]any{"user": "user-" + id, "n": n, "cart": []any{"apple", i}})
		if err := seg.Set([]byte(workerKey(id, i)), v, 20*time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "set:", err)
			return 1
		}
		seg.Get(nil, []byte(workerKey(id, (i+7)%keys)))
		if n == keys-1 {
			fmt.Println("ready")
		}
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
	}
}

// startWorker runs a worker on the segment at path and waits until it has
// written its first round. The test's end kills it.
func startWorker(t *testing.T, path, id string) *childproc.Child {
	t.Helper()
	c := childproc.Start(t, "worker", segmentEnv+"="+path, workerEnv+"="+id)
	c.Expect(t, "ready", 10*time.Second)
	return c
}

// result is what one gardenctl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs gardenctl in-process with an empty environment.
type cli struct {
	env   map[string]string
	now   time.Time // zero: the real clock
	stdin string
	term  bool // pretend stderr is a terminal
}

func (c cli) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) string { return c.env[k] }
	a.stdin = strings.NewReader(c.stdin)
	a.terminal = func(w io.Writer) bool { return c.term && w == io.Writer(&errb) }
	if !c.now.IsZero() {
		a.now = func() time.Time { return c.now }
	}
	code := a.run(context.Background(), args)
	return result{out.String(), errb.String(), code}
}

// gardenctl runs a command with no environment and the real clock.
func gardenctl(t *testing.T, args ...string) result {
	t.Helper()
	return cli{}.run(t, args...)
}

// mustRun runs a command that has to succeed.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := gardenctl(t, args...)
	if r.code != 0 {
		t.Fatalf("gardenctl %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// decodeJSON decodes a command's JSON output into v.
func decodeJSON(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON (%v): %v", err, r)
	}
}

// testOptions is the layout of the segments the tests create.
func testOptions(app string) *shm.Options {
	return &shm.Options{Size: 4 << 20, MaxValue: 64 << 10, App: app, NodeID: 7, MaxProcs: 16, RingSize: 1024}
}

// newSegment creates a segment in a new temporary directory and returns
// its path; the handle used to create it is closed.
func newSegment(t *testing.T, app string, opts *shm.Options) string {
	t.Helper()
	if opts == nil {
		opts = testOptions(app)
	}
	path := filepath.Join(t.TempDir(), segmentPrefix+app)
	seg, err := shm.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// withOpen runs fn on a handle of the segment at path.
func withOpen(t *testing.T, path string, fn func(*shm.Segment)) {
	t.Helper()
	seg, err := shm.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	fn(seg)
}

var (
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	seedRE = regexp.MustCompile(`0x[0-9a-f]{16}`)
)

// mask replaces what differs between runs: the temporary directory, times
// and hash seeds.
func mask(s, dir string) string {
	if dir != "" {
		s = strings.ReplaceAll(s, dir, "<DIR>")
	}
	s = timeRE.ReplaceAllStringFunc(s, func(t string) string {
		if len(t) == len(time.RFC3339)-5 { // keep the width, so tables stay aligned
			return "YYYY-MM-DDThh:mm:ssZ"
		}
		return "<TIME>"
	})
	return seedRE.ReplaceAllString(s, "<SEED>")
}

// checkGolden compares got with testdata/name.golden (rewritten with
// -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// pids lists the pids of procs.
func pids(ps []procInfo) []string {
	var out []string
	for _, p := range ps {
		out = append(out, strconv.Itoa(p.PID))
	}
	return out
}
