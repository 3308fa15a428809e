package main

// bench_test.go runs the whole harness in quick mode at a tiny scale, with
// redis-server, memcached and wrk hidden, so that the harness cannot rot:
// every suite must run, report, plot and clean up after itself. Child
// processes are this test binary, dispatched by TestMain.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSmoke(t *testing.T) {
	out := t.TempDir()
	jsonPath := filepath.Join(out, "results.json")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	code := run(ctx, []string{"-quick", "-scale", "0.05", "-out", out, "-json", jsonPath, "-without", "redis-server,memcached,wrk"}, &stdout, &stderr)
	t.Logf("harness took %v", time.Since(start))
	if testing.Verbose() {
		t.Logf("stdout:\n%s", stdout.String())
	}
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Suites) != len(allSuites()) {
		t.Fatalf("%d suites in the JSON, want %d", len(rep.Suites), len(allSuites()))
	}
	for _, s := range rep.Suites {
		t.Logf("suite %s took %.1fs", s.Name, s.Seconds)
		if s.Error != "" {
			t.Errorf("suite %s: %s", s.Name, s.Error)
		}
		if len(s.Measurements) == 0 {
			t.Errorf("suite %s measured nothing", s.Name)
		}
		for _, m := range s.Measurements {
			if m.Value < 0 || m.Value != m.Value {
				t.Errorf("suite %s: %+v", s.Name, m)
			}
		}
		if s.Name == "kv" || s.Name == "http" {
			if len(s.Skipped) == 0 {
				t.Errorf("suite %s skipped nothing although the tools are hidden", s.Name)
			}
			for _, sk := range s.Skipped {
				if strings.Contains(sk.Subject, "redis") || strings.Contains(sk.Subject, "memcached") || sk.Case == caseWrk {
					if !strings.Contains(sk.Reason, "not installed") {
						t.Errorf("suite %s: skipped %s/%s because %q", s.Name, sk.Case, sk.Subject, sk.Reason)
					}
				}
			}
		}
		if len(s.Plots) == 0 {
			t.Errorf("suite %s has no plots", s.Name)
		}
		for _, p := range s.Plots {
			svg, err := os.ReadFile(filepath.Join(out, p))
			if err != nil || !bytes.Contains(svg, []byte("<svg")) {
				t.Errorf("plot %s: %v", p, err)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(suiteNames(), "THP shmem_enabled", "GOMAXPROCS", caseRTT, "not installed", "Ratios") {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md does not mention %q", want)
		}
	}
	if !strings.Contains(stdout.String(), "gardenstate") || !strings.Contains(stderr.String(), "[1/5 kv]") {
		t.Errorf("no table or no progress\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}

	// Everything made was undone: no segment file, nothing pending.
	if left, _ := filepath.Glob(filepath.Join(shmDir(), "*"+segmentPrefix()+"*")); len(left) > 0 {
		t.Errorf("segment files left: %v", left)
	}
	cleanups.mu.Lock()
	pending := len(cleanups.fns)
	cleanups.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d cleanups still pending", pending)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-suite", "kv,http", "-suite", "kv", "-suite", "crash"}, &bytes.Buffer{})
	if err != nil || strings.Join(o.suites, ",") != "kv,http,crash" {
		t.Fatalf("suites %v, err %v", o.suites, err)
	}
	for _, bad := range [][]string{{"-suite", "nope"}, {"-without", "nginx"}, {"-scale", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
