package main

// main_test.go builds webgarden, runs it with 4 workers on a port the
// kernel chooses on 127.0.0.1, and drives it as a browser would: 1000
// increments over new connections with one cookie jar, a worker killed in
// the middle, and a stop that leaves no process behind.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
)

// build compiles webgarden into dir.
func build(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "webgarden")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	state := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
	return state != "Z" && state != "X"
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestWebGarden(t *testing.T) {
	dir := t.TempDir()
	bin := build(t, dir)
	segment := filepath.Join(dir, "segment")
	cmd := exec.Command(bin, "-workers", "4", "-addr", "127.0.0.1:0", "-segment", segment)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // its workers follow by their death signal
		<-exited
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := regexp.MustCompile(`serving (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatalf("webgarden did not start; stderr:\n%s", stderr.String())
	}
	if u, _ := url.Parse(base); u.Hostname() != "127.0.0.1" {
		t.Fatalf("serving on %s", base)
	}

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	call := func(method, path string, form url.Values) (map[string]any, int) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
				t.Errorf("Set-Cookie %q", c)
			}
		}
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		worker, _ := strconv.Atoi(resp.Header.Get("X-Garden-Worker"))
		if w, _ := v["worker"].(float64); int(w) != worker || worker == 0 {
			t.Fatalf("X-Garden-Worker %q, body says %v", resp.Header.Get("X-Garden-Worker"), v["worker"])
		}
		return v, worker
	}

	const total = 1000
	before := map[int]bool{} // workers that served before the kill
	after := map[int]bool{}
	victim := 0
	for i := 1; i <= total; i++ {
		v, worker := call("POST", "/api/incr?k=count", nil)
		if got, _ := v["value"].(float64); int(got) != i {
			t.Fatalf("increment %d returned %v (worker %d)", i, v["value"], worker)
		}
		if victim == 0 {
			before[worker] = true
		} else {
			if worker == victim {
				t.Fatalf("killed worker %d served increment %d", victim, i)
			}
			after[worker] = true
		}
		if i == total/2 {
			if len(before) != 4 {
				t.Fatalf("%d workers served the first %d requests, want 4", len(before), i)
			}
			victim = worker
			syscall.Kill(victim, syscall.SIGKILL)
			testwait.For(t, 10*time.Second, "the killed worker to die", func() bool { return !alive(victim) })
		}
	}
	// The parent replaced the killed worker, and the new one served.
	restarted := 0
	for w := range after {
		if !before[w] {
			restarted = w
		}
	}
	for tries := 0; restarted == 0; tries++ {
		if tries == 1000 {
			t.Fatalf("no new worker served after the kill; workers after: %v", after)
		}
		_, w := call("GET", "/api/session", nil)
		if !before[w] {
			restarted = w
		}
	}

	v, _ := call("POST", "/api/session", url.Values{"note": {"hello"}})
	values, _ := v["values"].(map[string]any)
	if values["count"] != float64(total) || values["note"] != "hello" {
		t.Errorf("session values %v", values)
	}
	// The HTML page shows the worker and counts visits.
	for i := 1; i <= 2; i++ {
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		worker := resp.Header.Get("X-Garden-Worker")
		if !strings.Contains(string(b), fmt.Sprintf("visited %d time", i)) || !strings.Contains(string(b), "worker <b>"+worker+"</b>") {
			t.Errorf("page %d (worker %s):\n%s", i, worker, b)
		}
	}

	// SIGTERM stops everything: the parent exits cleanly and no worker is left.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("webgarden did not stop; stderr:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	all := map[int]bool{restarted: true}
	for w := range before {
		all[w] = true
	}
	for w := range after {
		all[w] = true
	}
	for w := range all {
		testwait.For(t, 10*time.Second, fmt.Sprintf("worker %d to exit", w), func() bool { return !alive(w) })
	}
	if _, err := os.Stat(segment); err != nil {
		t.Errorf("segment: %v", err)
	}
}
