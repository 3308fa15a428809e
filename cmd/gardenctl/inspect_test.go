package main

// inspect_test.go checks that gardenctl inspects without disturbing: ls
// --expired lists entries past their deadline that are still stored, get
// leaves counters and access marks alone, and verify counts the problems
// shm did not list.

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

// expiredFixture creates a segment holding live entries, entries with a
// short TTL and a tombstone that expires as soon as they do, and waits until
// all of those have expired. Writes drop expired entries of their stripe,
// so the short-lived entries are written last, and the whole setup is
// retried with a longer TTL if writing took so long that one of them may
// have expired (and been dropped) before the last write.
func expiredFixture(t *testing.T) (path string, short []string, tomb string) {
	t.Helper()
	short = []string{"short-1", "short-2", "\x00short-3"}
	tomb = "gone"
	for ttl := 200 * time.Millisecond; ; ttl *= 2 {
		if ttl > 10*time.Second {
			t.Fatal("could not write the fixture before its entries expired")
		}
		opts := testOptions("shop")
		opts.TombstoneTTL = ttl
		path = newSegment(t, "shop", opts)
		ok := true
		withOpen(t, path, func(seg *shm.Segment) {
			for _, k := range []string{"forever", tomb} {
				if err := seg.Set([]byte(k), []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := seg.Set([]byte("long"), []byte("v"), 20*time.Minute); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if !seg.Delete([]byte(tomb)) {
				t.Fatalf("Delete(%q) found nothing", tomb)
			}
			for _, k := range short {
				if err := seg.Set([]byte(k), []byte("short-lived"), ttl); err != nil {
					t.Fatal(err)
				}
			}
			if time.Since(start) >= ttl {
				ok = false
				return
			}
			testwait.For(t, 10*time.Second, "the short-lived entries expire", func() bool {
				for _, k := range append([]string{tomb}, short...) {
					if _, found := seg.Peek(nil, []byte(k)); found {
						return false
					}
				}
				return true
			})
		})
		if ok {
			return path, short, tomb
		}
	}
}

func keysOf(rows []entryRow) []string {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.Key
	}
	return keys
}

func TestLsExpired(t *testing.T) {
	path, short, tomb := expiredFixture(t)
	seg := []string{"--segment", path}
	args := func(a ...string) []string { return append(a, seg...) }
	want := make([]string, len(short))
	for i, k := range short {
		want[i] = displayKey([]byte(k))
	}
	slices.Sort(want) // ls sorts by key bytes; these display forms sort alike

	var rows []entryRow
	decodeJSON(t, mustRun(t, args("ls", "--expired", "--json")...), &rows)
	if got := keysOf(rows); !slices.Equal(got, want) {
		t.Fatalf("ls --expired --json listed %q, want exactly %q", got, want)
	}
	for _, r := range rows {
		if r.Deleted || r.Size != len("short-lived") || r.Expires == nil || r.ExpiresIn == nil || *r.ExpiresIn > 0 || r.Accessed == nil {
			t.Errorf("expired entry %+v", r)
		}
	}

	decodeJSON(t, mustRun(t, args("ls", "--expired", "--tombstones", "--json")...), &rows)
	wantTomb := append(slices.Clone(want), tomb)
	slices.Sort(wantTomb)
	if got := keysOf(rows); !slices.Equal(got, wantTomb) {
		t.Errorf("ls --expired --tombstones listed %q, want %q", got, wantTomb)
	}
	for _, r := range rows {
		if r.Deleted != (r.Key == tomb) {
			t.Errorf("ls --expired --tombstones: %+v", r)
		}
	}

	decodeJSON(t, mustRun(t, args("ls", "--expired", "--prefix", "short-", "--json")...), &rows)
	if got := keysOf(rows); !slices.Equal(got, []string{"short-1", "short-2"}) {
		t.Errorf("ls --expired --prefix short- listed %q", got)
	}

	// Without --expired, only the live entries.
	decodeJSON(t, mustRun(t, args("ls", "--json")...), &rows)
	if got := keysOf(rows); !slices.Equal(got, []string{"forever", "long"}) {
		t.Errorf("ls --json listed %q, want the live entries only", got)
	}

	r := mustRun(t, args("ls", "--expired")...)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1+len(short) ||
		!strings.HasPrefix(lines[0], "KEY") || !strings.Contains(lines[1], " expired ") || !strings.Contains(lines[1], " ago") {
		t.Errorf("ls --expired table: %v", r)
	}
	r = mustRun(t, args("ls", "--expired", "--limit", "1")...)
	if !strings.Contains(r.stderr, "1 of 3 expired entries shown") {
		t.Errorf("ls --expired --limit 1: %v", r)
	}

	// Listing dropped nothing.
	decodeJSON(t, mustRun(t, args("ls", "--expired", "--json")...), &rows)
	if got := keysOf(rows); !slices.Equal(got, want) {
		t.Errorf("second ls --expired listed %q, want %q", got, want)
	}
}

func TestLsExpiredNone(t *testing.T) {
	path, _ := fixture(t)
	if r := mustRun(t, "ls", "--segment", path, "--expired"); r.stdout != "no expired entries\n" {
		t.Errorf("ls --expired with nothing expired: %v", r)
	}
	if r := mustRun(t, "ls", "--segment", path, "--expired", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("ls --expired --json with nothing expired: %v", r)
	}
}

// TestGetOnlyLooks: get counts no read and does not refresh the entry's
// access mark, which eviction goes by.
func TestGetOnlyLooks(t *testing.T) {
	path, _ := fixture(t)
	key := []byte("sess-alice")
	counters := func() countersJSON {
		var s statReport
		decodeJSON(t, mustRun(t, "stat", "--segment", path, "--json"), &s)
		return s.Counters
	}
	var written time.Time
	withOpen(t, path, func(seg *shm.Segment) {
		e, ok := seg.Peek(nil, key)
		if !ok || e.Accessed.IsZero() {
			t.Fatalf("Peek = %+v, %v", e, ok)
		}
		written = e.Accessed
	})
	// The access mark moves at most once a second: wait until a read
	// would move it.
	testwait.For(t, 5*time.Second, "a second passes", func() bool { return time.Since(written) > 1100*time.Millisecond })

	before := counters()
	mustRun(t, "get", "--segment", path, string(key))
	var g getReport
	decodeJSON(t, mustRun(t, "get", "--segment", path, string(key), "--json"), &g)
	mustRun(t, "get", "--segment", path, string(key), "--raw")
	if r := gardenctl(t, "get", "--segment", path, "no-such-key"); r.code != exitFail {
		t.Errorf("get of a missing key: %v", r)
	}
	if after := counters(); after != before {
		t.Errorf("get changed the counters:\nbefore %+v\nafter  %+v", before, after)
	}
	if g.Accessed == nil {
		t.Fatalf("get --json has no access time: %+v", g)
	}
	if at, err := time.Parse(time.RFC3339Nano, *g.Accessed); err != nil || !at.Equal(written) {
		t.Errorf("get --json accessed %q (%v), want %v", *g.Accessed, err, written)
	}
	withOpen(t, path, func(seg *shm.Segment) {
		if e, _ := seg.Peek(nil, key); !e.Accessed.Equal(written) {
			t.Errorf("get moved the access mark from %v to %v", written, e.Accessed)
		}
		// A worker's read does move it, so the check above can fail.
		seg.GetEntry(nil, key)
		if e, _ := seg.Peek(nil, key); !e.Accessed.After(written) {
			t.Errorf("a read left the access mark at %v", e.Accessed)
		}
	})
}

// TestVerifyCountsUnlisted damages more records of one stripe than shm
// lists: the report counts them all and keeps shm's "more" line.
func TestVerifyCountsUnlisted(t *testing.T) {
	path := newSegment(t, "shop", &shm.Options{Size: 1 << 20, MaxValue: 4096, Stripes: 1, App: "shop", NodeID: 7, MaxProcs: 8, RingSize: 64})
	const damaged = 30
	marker := func(i int) []byte { return []byte(fmt.Sprintf("value-that-will-be-damaged-%02d-0123456789", i)) }
	withOpen(t, path, func(s *shm.Segment) {
		for i := range damaged {
			if err := s.Set([]byte(fmt.Sprintf("victim-%02d", i)), marker(i), 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range damaged {
		m := marker(i)
		at := bytes.Index(data, m)
		if at < 0 || bytes.Index(data[at+1:], m) >= 0 {
			t.Fatalf("marker %d is not in the file exactly once", i)
		}
		data[at] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	r := gardenctl(t, "verify", "--segment", path)
	if r.code != exitFail || !strings.Contains(r.stdout, fmt.Sprintf(": %d problems\n", damaged)) || !strings.Contains(r.stdout, "10 more problems not listed") {
		t.Errorf("verify of %d damaged records: %v", damaged, r)
	}
	var v verifyReport
	r = gardenctl(t, "verify", "--segment", path, "--json")
	decodeJSON(t, r, &v)
	if r.code != exitFail || v.OK || v.ProblemCount != damaged || len(v.Problems) != 21 {
		t.Errorf("verify --json of %d damaged records: problem_count %d, %d listed: %v", damaged, v.ProblemCount, len(v.Problems), r)
	}
}
