package main

// golden_test.go prints every table from a segment of fixed content and
// compares it with testdata/*.golden: the output formats are part of the
// interface operators read. Times, seeds and the temporary directory are
// masked.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// fixtureVersion is the version time of the fixture's entries:
// 2025-11-21T12:00:00Z in milliseconds, shifted as shm's clock is.
const fixtureVersion = uint64(1763726400000) << 16

// fixture creates a one-stripe segment of fixed content and returns its
// path and the moment its deadlines are relative to.
func fixture(t *testing.T) (string, time.Time) {
	t.Helper()
	path := newSegment(t, "shop", &shm.Options{
		Size: 1 << 20, MaxValue: 4096, Stripes: 1, App: "shop", NodeID: 7, MaxProcs: 8, RingSize: 64,
	})
	now := time.Now().Truncate(time.Second)
	login := time.Date(2025, 11, 21, 11, 58, 0, 0, time.UTC)
	entries := []shm.Entry{
		{Key: []byte("sess-alice"), Value: sessionValue(map[string]any{
			"user": "alice", "visits": 12, "cart": []any{"apple", 3}, "login": login,
			"token": []byte{0x00, 0xff, 0x10, 0x20},
		}), Version: shm.Version{Time: fixtureVersion + 1, Node: 7}, Expires: now.Add(20 * time.Minute)},
		{Key: []byte("sess-bob"), Value: sessionValue(map[string]any{"user": "bob"}),
			Version: shm.Version{Time: fixtureVersion + 2, Node: 3}, Expires: now.Add(5 * time.Minute)},
		{Key: []byte("\x00bin\xff"), Value: []byte("raw bytes, not msgpack"),
			Version: shm.Version{Time: fixtureVersion + 3, Node: 7}},
		{Key: []byte("sess-carol"), Deleted: true,
			Version: shm.Version{Time: fixtureVersion + 4, Node: 3}, Expires: now.Add(10 * time.Minute)},
	}
	withOpen(t, path, func(seg *shm.Segment) {
		for _, e := range entries {
			if ok, err := seg.Apply(e); !ok || err != nil {
				t.Fatalf("Apply(%q) = %v, %v", e.Key, ok, err)
			}
		}
	})
	return path, now
}

func TestGoldenTables(t *testing.T) {
	path, now := fixture(t)
	dir := filepath.Dir(path)
	c := cli{now: now}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"segments", []string{"segments", "--dir", dir}, 0},
		{"stat", []string{"stat", "--segment", path}, 0},
		{"ls", []string{"ls", "--segment", path}, 0},
		{"ls-tombstones", []string{"ls", "--segment", path, "--tombstones"}, 0},
		{"get", []string{"get", "--segment", path, "sess-alice"}, 0},
		{"get-not-msgpack", []string{"get", "--segment", path, `"\x00bin\xff"`}, 0},
		{"verify", []string{"verify", "--segment", path}, 0},
		{"segments-problems", []string{"segments", "--dir", dir}, 0}, // after the files below are added
	}
	for _, tc := range cases {
		if tc.name == "segments-problems" {
			for name, content := range map[string]string{"empty": "", "text": strings.Repeat("this is a text file, not a segment\n", 200)} {
				if err := os.WriteFile(filepath.Join(dir, segmentPrefix+name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			checkGolden(t, tc.name, mask(r.stdout, dir))
		})
	}
}
