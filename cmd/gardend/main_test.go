package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/replication"
	"github.com/gardenstate/gardenstate/shm"
)

// TestMain runs gardend itself when re-executed as a child.
func TestMain(m *testing.M) {
	if os.Getenv("GARDEND_CHILD") != "" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append(os.Args[:1], os.Args[i+1:]...)
				break
			}
		}
		main()
		return
	}
	os.Exit(m.Run())
}

func writeKey(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "farm.key")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func goodKey(t *testing.T) string {
	var out bytes.Buffer
	if code := run([]string{"keygen"}, os.Getenv, &out, io.Discard, nil); code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	if _, err := replication.ParseKey(out.String()); err != nil {
		t.Fatalf("keygen printed %q: %v", out.String(), err)
	}
	return writeKey(t, out.String())
}

func noEnv(string) string { return "" }

func TestRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, "seg")
	key := goodKey(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	corrupt := filepath.Join(dir, "corrupt")
	os.WriteFile(corrupt, bytes.Repeat([]byte("x"), 8192), 0o600)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no app", []string{"--key-file", key}, 2, "no --app"},
		{"no key", []string{"--app", "a", "--segment", seg}, 2, "no --key-file"},
		{"missing key", []string{"--app", "a", "--segment", seg, "--key-file", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"short key", []string{"--app", "a", "--segment", seg, "--key-file", writeKey(t, "c2hvcnQ=\n")}, 1, "5 bytes, need 32"},
		{"not base64", []string{"--app", "a", "--segment", seg, "--key-file", writeKey(t, "%%%%\n")}, 1, "not base64"},
		{"corrupt segment", []string{"--app", "a", "--segment", corrupt, "--key-file", key}, 1, "segment corrupt"},
		{"admin port in use", []string{"--app", "a", "--segment", seg, "--key-file", key, "--bind", "127.0.0.1:0", "--admin", busy.Addr().String()}, 1, "address already in use"},
		{"gossip port in use", []string{"--app", "a", "--segment", seg, "--key-file", key, "--bind", busy.Addr().String(), "--admin", ""}, 1, "address already in use"},
	}
	for _, c := range cases {
		var errOut bytes.Buffer
		code := run(c.args, noEnv, io.Discard, &errOut, nil)
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", c.name, code, errOut.String(), c.code, c.want)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{"GARDEN_APP": "shop,cart", "GARDEN_KEY_FILE": "/k", "GARDEN_JOIN": "10.0.0.2:7946",
		"GARDEN_CLUSTER": "prod", "GARDEN_LOG_FORMAT": "json"}
	o, err := parseFlags([]string{"--cluster", "flagwins"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.apps, ",") != "shop,cart" || o.keyFile != "/k" || o.join[0] != "10.0.0.2:7946" ||
		o.cluster != "flagwins" || o.logFormat != "json" {
		t.Fatalf("options %+v", o)
	}
	env["GARDEN_LOG_FORMAT"] = "xml"
	if _, err := parseFlags(nil, func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("bad log format from env: %v", err)
	}
}

// daemon is a gardend child process.
type daemon struct {
	cmd     *exec.Cmd
	gossip  string
	admin   string
	stderr  *bytes.Buffer // complete once scanned is closed
	done    chan struct{}
	scanned chan struct{}
}

var runningRE = regexp.MustCompile(`msg="gardend running" gossip=(\S+) data=\S+ admin=(\S+)`)

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "GARDEND_CHILD=1")
	pr, pw := io.Pipe()
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{}), scanned: make(chan struct{})}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		defer close(d.scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.stderr.WriteString(sc.Text() + "\n")
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.done
	})
	select {
	case a := <-ready:
		d.gossip, d.admin = a[0], a[1]
	case <-d.done:
		t.Fatalf("gardend exited at start: %v", cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("gardend did not start")
	}
	return d
}

func (d *daemon) wait(t *testing.T) int {
	select {
	case <-d.done:
		<-d.scanned
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatal("gardend did not exit")
		return -1
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 20*time.Second, what, cond)
}

func TestTwoAgentsKillRestartSnapshot(t *testing.T) {
	dir := t.TempDir()
	key := goodKey(t)
	segA, segB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	common := []string{"--app", "shop", "--key-file", key, "--cluster", "test", "--log-level", "debug"}
	a := startDaemon(t, append(common, "--segment", segA, "--bind", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--node-name", "a")...)
	bArgs := append(common, "--segment", segB, "--bind", "127.0.0.2:0", "--admin", "127.0.0.2:0", "--node-name", "b",
		"--join", a.gossip, "--snapshot", filepath.Join(dir, "snap"))
	b := startDaemon(t, bArgs...)

	sa, err := shm.Open(segA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := shm.Open(segB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for i := range 100 {
		sa.Set(fmt.Appendf(nil, "s%d", i), []byte("v1"), time.Hour)
	}
	waitFor(t, "replication to b", func() bool { return sb.Has([]byte("s99")) })

	// SIGKILL b, write while it is down, restart it: nothing is lost.
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.wait(t)
	for i := range 100 {
		sa.Set(fmt.Appendf(nil, "s%d", i), []byte("v2"), time.Hour)
		sa.Set(fmt.Appendf(nil, "down%d", i), []byte("x"), time.Hour)
	}
	b = startDaemon(t, bArgs...)
	waitFor(t, "catch-up after restart", func() bool {
		for i := range 100 {
			v, ok := sb.Get(nil, fmt.Appendf(nil, "s%d", i))
			if !ok || string(v) != "v2" || !sb.Has(fmt.Appendf(nil, "down%d", i)) {
				return false
			}
		}
		return true
	})
	// And the other way round.
	sb.Set([]byte("from-b"), []byte("y"), time.Hour)
	waitFor(t, "replication to a", func() bool { return sa.Has([]byte("from-b")) })

	// SIGTERM: graceful exit with a final snapshot, which a fresh segment
	// restores at start.
	b.cmd.Process.Signal(syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Fatalf("gardend exit %d after SIGTERM:\n%s", code, b.stderr)
	}
	if !strings.Contains(b.stderr.String(), "snapshot written") {
		t.Fatalf("no snapshot on shutdown:\n%s", b.stderr)
	}
	segC := filepath.Join(dir, "c")
	c := startDaemon(t, append(common, "--segment", segC, "--bind", "127.0.0.3:0", "--admin", "", "--node-name", "c",
		"--snapshot", filepath.Join(dir, "snap"))...)
	sc, err := shm.Open(segC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if v, ok := sc.Get(nil, []byte("s42")); !ok || string(v) != "v2" || !sc.Has([]byte("from-b")) {
		t.Fatalf("snapshot not restored: s42=%q %v", v, ok)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.wait(t)
}
