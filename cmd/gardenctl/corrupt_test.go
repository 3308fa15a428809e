package main

// corrupt_test.go points every segment command at files that are not
// usable segments (missing, truncated, random bytes, wrong magic, another
// format version, a directory) and at a segment with a damaged record:
// each gets a clear message and a non-zero exit status, never a panic.

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gardenstate/gardenstate/shm"
)

// badSegments creates one file per way a segment can be unusable, all in
// one directory, and returns the directory and the files by name.
func badSegments(t *testing.T) (string, map[string]string) {
	t.Helper()
	good := newSegment(t, "good", nil)
	dir := filepath.Dir(good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	write := func(name string, b []byte) {
		p := filepath.Join(dir, segmentPrefix+name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	write("truncated", data[:len(data)/2])
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	write("random", random)
	magic := bytes.Clone(data)
	copy(magic, "NOTASEG\x00")
	write("magic", magic)
	version := bytes.Clone(data)
	version[8] = 99 // the format version follows the 8-byte magic
	write("version", version)
	write("empty", nil)
	if err := os.Mkdir(filepath.Join(dir, segmentPrefix+"adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	files["adir"] = filepath.Join(dir, segmentPrefix+"adir")
	files["missing"] = filepath.Join(dir, segmentPrefix+"missing")
	return dir, files
}

func TestUnusableSegments(t *testing.T) {
	dir, files := badSegments(t)
	want := map[string]string{
		"truncated": "truncated",
		"random":    "not a usable segment",
		"magic":     "magic",
		"version":   "different gardenstate version",
		"empty":     "too short",
		"adir":      "is a directory",
		"missing":   "no segment at " + files["missing"],
	}
	commands := [][]string{{"stat"}, {"ls"}, {"get", "k"}, {"watch", "--count", "1"}, {"dump", filepath.Join(t.TempDir(), "d")},
		{"load", "nofile"}, {"rm", "k", "--yes"}, {"flush", "--yes"}}
	for name, path := range files {
		for _, cmd := range commands {
			r := gardenctl(t, append(cmd, "--segment", path)...)
			if r.code != exitFail || !strings.Contains(r.stderr, want[name]) || strings.Contains(r.stderr, "goroutine") {
				t.Errorf("%s on the %s segment: want exit 1 and %q: %v", cmd[0], name, want[name], r)
			}
		}
		// verify: a corrupt file is a problem found (1); one it cannot
		// read is "could not check" (2).
		code := exitFail
		if name == "missing" || name == "adir" || name == "version" {
			code = exitUsage
		}
		r := gardenctl(t, "verify", "--segment", path)
		if r.code != code || !strings.Contains(r.stdout+r.stderr, want[name]) {
			t.Errorf("verify on the %s segment: want exit %d and %q: %v", name, code, want[name], r)
		}
	}
	if _, err := os.Stat(files["missing"]); !os.IsNotExist(err) {
		t.Errorf("a command created the missing segment (%v)", err)
	}

	// segments lists every file, the bad ones with shm's reason.
	r := mustRun(t, "segments", "--dir", dir)
	want["random"], want["version"] = "bad magic", "segment has format version 99"
	for name := range files {
		if name == "missing" {
			continue
		}
		line := lineWith(r.stdout, segmentPrefix+name+" ")
		if !strings.Contains(line, want[name]) {
			t.Errorf("segments line for %s: %q lacks %q", name, line, want[name])
		}
	}
	if line := lineWith(r.stdout, segmentPrefix+"good "); !strings.Contains(line, " good ") || !strings.HasPrefix(r.stdout, "SEGMENT") || !strings.Contains(r.stdout, "PROBLEM") {
		t.Errorf("segments:\n%s", r.stdout)
	}
	var rows []segmentRow
	decodeJSON(t, mustRun(t, "segments", "--dir", dir, "--json"), &rows)
	if len(rows) != len(files) { // every file but the missing one, and the good segment
		t.Errorf("segments --json listed %d files, want %d", len(rows), len(files))
	}
	for _, row := range rows {
		good := strings.HasSuffix(row.Path, "-good")
		if good != (row.Error == "") || good != (row.SegmentSummary != nil) {
			t.Errorf("segments row %+v", row)
		}
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestVerifyFindsDamage flips one byte of a stored value in the file: the
// header is intact, so the segment opens, and verify names the record.
func TestVerifyFindsDamage(t *testing.T) {
	path := newSegment(t, "shop", nil)
	marker := []byte("value-that-will-be-damaged-0123456789")
	withOpen(t, path, func(s *shm.Segment) {
		for i := range 50 {
			s.Set([]byte("k"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte("v"), 0)
		}
		if err := s.Set([]byte("victim"), marker, 0); err != nil {
			t.Fatal(err)
		}
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, marker)
	if i < 0 || bytes.Index(data[i+1:], marker) >= 0 {
		t.Fatal("the marker value is not in the file exactly once")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[i] ^ 0xff}, int64(i)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r := gardenctl(t, "verify", "--segment", path)
	if r.code != exitFail || !strings.Contains(r.stdout, "1 problem") || !strings.Contains(r.stdout, "fails its checksum") {
		t.Errorf("verify of a damaged record: %v", r)
	}
	var v verifyReport
	r = gardenctl(t, "verify", "--segment", path, "--json")
	decodeJSON(t, r, &v)
	if r.code != exitFail || v.OK || len(v.Problems) != 1 {
		t.Errorf("verify --json of a damaged record: %v", r)
	}
}
