package main

// interrupt_test.go checks that Ctrl-C (a cancelled context) stops the
// long commands between two segment operations, with a message saying
// what was and was not done.

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runInterrupted runs a command whose context is already cancelled.
func runInterrupted(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(string) string { return "" }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := a.run(ctx, args)
	return result{out.String(), errb.String(), code}
}

func TestInterrupted(t *testing.T) {
	path, _ := fixture(t)
	file := filepath.Join(t.TempDir(), "d")
	mustRun(t, "dump", "--segment", path, file)
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"ls", "--segment", path}, "interrupted"},
		{[]string{"segments", "--dir", filepath.Dir(path)}, "interrupted"},
		{[]string{"dump", "--segment", path, filepath.Join(t.TempDir(), "never")}, "interrupted: no dump written"},
		{[]string{"load", "--segment", newSegment(t, "shop", nil), file}, "interrupted: nothing was loaded"},
		{[]string{"flush", "--segment", path, "--yes"}, "interrupted"},
	}
	for _, c := range cases {
		r := runInterrupted(t, c.args...)
		if r.code != exitFail || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v interrupted: want exit 1 and %q: %v", c.args, c.msg, r)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(cases[2].args[3]), "*")); len(tmps) != 0 {
		t.Errorf("an interrupted dump left %v", tmps)
	}
	// Nothing was flushed.
	mustRun(t, "get", "--segment", path, "sess-alice")
}

func TestWatchStopsOnInterrupt(t *testing.T) {
	path := newSegment(t, "x", nil)
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.getenv = func(string) string { return "" }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- a.run(ctx, []string{"watch", "--segment", path, "--interval", "10ms"}) }()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("watch interrupted: exit %d: %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop when interrupted")
	}
}
