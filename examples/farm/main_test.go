package main

// The farm end to end: three hosts on 127.0.0.1-3, each a gardend and a
// webgarden with its own segment; a client whose requests alternate between
// hosts (no sticky sessions) increments a counter that must end exact, an
// agent is SIGKILLed and restarted, and SIGTERM stops everything.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
)

type farmProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (f *farmProc) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

// waitLine polls the output for a line matching re, after skipping the
// first from lines.
func (f *farmProc) waitLine(t *testing.T, re *regexp.Regexp, from int, d time.Duration) ([]string, int) {
	t.Helper()
	var m []string
	next := from
	found := testwait.Until(d, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := from; i < len(f.lines); i++ {
			if m = re.FindStringSubmatch(f.lines[i]); m != nil {
				next = i + 1
				return true
			}
		}
		select {
		case <-f.done:
			return true // m is nil: the farm exited without the line
		default:
		}
		return false
	})
	if found && m == nil {
		t.Fatalf("farm exited; output:\n%s", f.output())
	}
	if !found {
		t.Fatalf("timed out after %v waiting for a line matching %v; output:\n%s", d, re, f.output())
	}
	return m, next
}

func startFarm(t *testing.T) *farmProc {
	bin := filepath.Join(t.TempDir(), "farm")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	// A freshness wait long enough that a read across hosts is never
	// stale for want of time on a busy machine: a stale read then means
	// the newer copy could not be had.
	cmd := exec.Command(bin, "-gossip-port", "0", "-web-port", "0", "-demo=false", "-dir", t.TempDir(), "-freshness-timeout", "5s")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &farmProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(f.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-f.done
	})
	return f
}

var (
	hostRE    = regexp.MustCompile(`farm: (host\d)  web (\S+)  agent admin (\S+)`)
	upRE      = regexp.MustCompile(`farm: 3 hosts up`)
	agentPid  = regexp.MustCompile(`farm: host2/gardend started, pid (\d+)`)
	restarted = regexp.MustCompile(`farm: host2/gardend died .*restarting it`)
)

// user is a browser behind a load balancer: one cookie, any host.
type user struct {
	cookie string
	client *http.Client
}

func (u *user) do(t *testing.T, method, target string, form url.Values) map[string]any {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if u.cookie != "" {
		req.Header.Set("Cookie", u.cookie)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if c := resp.Header.Get("Set-Cookie"); c != "" {
		u.cookie, _, _ = strings.Cut(c, ";")
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: status %d, %v", method, target, resp.StatusCode, err)
	}
	return out
}

func TestFarmAlternatingHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a three-host farm; skipped with -short")
	}
	f := startFarm(t)
	m, _ := f.waitLine(t, agentPid, 0, 2*time.Minute)
	pid2, _ := strconv.Atoi(m[1])
	_, next := f.waitLine(t, upRE, 0, 2*time.Minute)
	web := map[string]string{}
	admin := map[string]string{}
	for _, l := range strings.Split(f.output(), "\n") {
		if m := hostRE.FindStringSubmatch(l); m != nil {
			web[m[1]], admin[m[1]] = m[2], strings.TrimSuffix(m[3], "/v1/peers")
		}
	}
	hosts := []string{"host1", "host2", "host3"}
	u := &user{client: &http.Client{Timeout: 10 * time.Second}}
	n := 0
	incr := func(host string) {
		t.Helper()
		n++
		got := u.do(t, "POST", web[host]+"/api/incr?k=count", nil)
		if v, _ := got["value"].(float64); int(v) != n {
			t.Fatalf("request %d on %s: counter %v, want %d (a stale read across hosts)", n, host, got["value"], n)
		}
	}
	for i := range 300 {
		incr(hosts[i%3])
	}

	// SIGKILL host2's agent. A load balancer's health check takes host2
	// out; meanwhile a second user's session is written on host2 alone.
	syscall.Kill(pid2, syscall.SIGKILL)
	f.waitLine(t, restarted, next, time.Minute)
	other := &user{client: u.client}
	other.do(t, "POST", web["host2"]+"/api/session", url.Values{"note": {"written while host2's agent was down"}})
	for i := range 100 {
		incr([]string{"host1", "host3"}[i%2])
	}
	// The restarted agent rejoins; host2 serves again.
	testwait.For(t, time.Minute, "the restarted agent to rejoin", func() bool {
		resp, err := http.Get(admin["host2"] + "/v1/peers")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var p struct{ Members []struct{ State string } }
		json.NewDecoder(resp.Body).Decode(&p)
		alive := 0
		for _, m := range p.Members {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == 2
	})
	for i := range 300 {
		incr(hosts[i%3])
	}
	// What was written on host2 while its agent was down reached the
	// other hosts after it came back.
	for _, h := range []string{"host1", "host3"} {
		got := other.do(t, "GET", web[h]+"/api/session", nil)
		vals, _ := got["values"].(map[string]any)
		if vals["note"] != "written while host2's agent was down" {
			t.Fatalf("%s: session written during the outage = %v", h, got)
		}
	}

	// SIGTERM stops the whole farm, leaving no process behind.
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(time.Minute):
		t.Fatal("farm did not stop on SIGTERM")
	}
	pids := regexp.MustCompile(`started, pid (\d+)`).FindAllStringSubmatch(f.output(), -1)
	for _, p := range pids {
		pid, _ := strconv.Atoi(p[1])
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d still running after the farm stopped", pid)
		}
	}
}
