package main

// dump_test.go checks dump and load beyond the live round trip: refusing
// damaged files before storing anything, another application's dump,
// newer data winning, expired entries, stdin and stdout, and the progress
// bar on a terminal.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

func TestLoadRefusesDamagedDump(t *testing.T) {
	src, _ := fixture(t)
	file := filepath.Join(t.TempDir(), "d")
	mustRun(t, "dump", "--segment", src, file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	target := newSegment(t, "shop", nil)
	cases := map[string][]byte{
		"cut short":   data[:len(data)-3],
		"flipped":     append(append(bytes.Clone(data[:60]), data[60]^1), data[61:]...),
		"not a dump":  []byte("hello, world"),
		"empty":       nil,
		"a segment":   mustRead(t, src),
		"extra bytes": append(bytes.Clone(data), 'x'),
	}
	msgs := map[string]string{
		"cut short": "cut short", "flipped": "checksum", "not a dump": "not a gardenctl dump file",
		"empty": "empty", "a segment": "not a gardenctl dump file", "extra bytes": "after the end frame",
	}
	for name, b := range cases {
		bad := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r := gardenctl(t, "load", "--segment", target, bad)
		if r.code != exitFail || !strings.Contains(r.stderr, "nothing was loaded") || !strings.Contains(r.stderr, msgs[name]) {
			t.Errorf("load of a %s dump: %v", name, r)
		}
	}
	withOpen(t, target, func(s *shm.Segment) {
		if st := s.Stats(); st.Entries != 0 {
			t.Errorf("a refused load stored %d entries", st.Entries)
		}
	})
	r := gardenctl(t, "load", "--segment", target, filepath.Join(t.TempDir(), "nofile"))
	if r.code != exitFail || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("load of a missing file: %v", r)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadKeepsNewerAndChecksApp(t *testing.T) {
	src, _ := fixture(t)
	file := filepath.Join(t.TempDir(), "d")
	r := mustRun(t, "dump", "--segment", src, file)
	if !strings.Contains(r.stdout, "dumped 4 entries (1 tombstone") {
		t.Errorf("dump: %v", r)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("dump file mode: %v %v", fi, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	other := newSegment(t, "blog", nil)
	r = gardenctl(t, "load", "--segment", other, file)
	if r.code != exitUsage || !strings.Contains(r.stderr, `application "shop"`) || !strings.Contains(r.stderr, "--force") {
		t.Errorf("load of another application's dump: %v", r)
	}
	mustRun(t, "load", "--segment", other, file, "--force")

	// A session rewritten after the dump keeps its newer value.
	target := newSegment(t, "shop", nil)
	withOpen(t, target, func(s *shm.Segment) {
		if _, err := s.Apply(shm.Entry{Key: []byte("sess-bob"), Value: []byte("newer"),
			Version: shm.Version{Time: fixtureVersion + 100, Node: 9}, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	})
	r = mustRun(t, "load", "--segment", target, file)
	if !strings.Contains(r.stdout, "4 entries, 3 applied, 1 skipped") {
		t.Errorf("load: %v", r)
	}
	withOpen(t, target, func(s *shm.Segment) {
		if v, _ := s.Get(nil, []byte("sess-bob")); string(v) != "newer" {
			t.Errorf("load overwrote a newer value with %q", v)
		}
		if e, ok := s.GetEntry(nil, []byte("sess-carol")); !ok || !e.Deleted {
			t.Errorf("the tombstone was not loaded: %+v %v", e, ok)
		}
	})

	// Loaded later than its deadlines, every entry is expired except the
	// one that never expires.
	late := filepath.Join(t.TempDir(), "late")
	mustRun(t, "dump", "--segment", src, late)
	fresh := newSegment(t, "shop", nil)
	r = cli{now: time.Now().Add(time.Hour)}.run(t, "load", "--segment", fresh, late)
	if r.code != 0 || !strings.Contains(r.stdout, "1 applied, 0 skipped (same or newer version present), 3 expired") {
		t.Errorf("late load: %v", r)
	}
}

func TestDumpToStdoutLoadFromStdin(t *testing.T) {
	src, _ := fixture(t)
	r := mustRun(t, "dump", "--segment", src, "-")
	if !strings.HasPrefix(r.stdout, "GRDNDUMP") || !strings.Contains(r.stderr, "dumped 4 entries") {
		t.Fatalf("dump -: stderr %q", r.stderr)
	}
	target := newSegment(t, "shop", nil)
	l := cli{stdin: r.stdout}.run(t, "load", "--segment", target, "-")
	if l.code != 0 || !strings.Contains(l.stdout, "4 entries, 4 applied") {
		t.Errorf("load -: %v", l)
	}
}

func TestProgressOnTerminal(t *testing.T) {
	src, _ := fixture(t)
	file := filepath.Join(t.TempDir(), "d")
	r := cli{term: true}.run(t, "dump", "--segment", src, file)
	if r.code != 0 || !strings.Contains(r.stderr, "\rdump [") || !strings.Contains(r.stderr, "100% 4 entries") {
		t.Errorf("dump on a terminal: %q", r.stderr)
	}
	r = cli{term: true}.run(t, "load", "--segment", newSegment(t, "shop", nil), file)
	if r.code != 0 || !strings.Contains(r.stderr, "\rload [") || !strings.Contains(r.stderr, "100%") {
		t.Errorf("load on a terminal: %q", r.stderr)
	}
	r = gardenctl(t, "dump", "--segment", src, file)
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("progress drawn when stderr is not a terminal: %q", r.stderr)
	}
}
