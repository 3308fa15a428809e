package main

// live_test.go runs every segment command against a segment that two
// worker processes keep writing to, and checks the JSON each prints.

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gardenstate/gardenstate/internal/childproc"
	"github.com/gardenstate/gardenstate/shm"
)

func TestLiveSegment(t *testing.T) {
	path := newSegment(t, "shop", nil)
	w1 := startWorker(t, path, "1")
	w2 := startWorker(t, path, "2")
	seg := []string{"--segment", path}
	args := func(a ...string) []string { return append(a, seg...) }

	t.Run("stat", func(t *testing.T) {
		var r statReport
		decodeJSON(t, mustRun(t, args("stat", "--json")...), &r)
		if r.Path != path || r.Header.App != "shop" || r.Header.NodeID != 7 || r.Header.FormatVersion != shm.FormatVersion {
			t.Errorf("header: %+v", r.Header)
		}
		got := pids(r.Procs)
		for _, w := range []*childproc.Child{w1, w2} {
			if pid := w.Cmd.Process.Pid; !slices.Contains(got, strconv.Itoa(pid)) {
				t.Errorf("worker %d not among the attached processes %v", pid, got)
			}
		}
		if len(r.Procs) != 2 {
			t.Errorf("%d processes attached, want the 2 workers (gardenctl not listed): %+v", len(r.Procs), r.Procs)
		}
		for _, p := range r.Procs {
			if p.Slot < 1 || p.Attached == nil || p.Command == "" {
				t.Errorf("process %+v lacks a slot, attach time or command", p)
			}
		}
		if r.Counters.Sets < 40 || r.Counters.Gets == 0 || r.Fill.Entries < 40 || r.Fill.BytesLive == 0 {
			t.Errorf("counters %+v, fill %+v: the workers' writes are missing", r.Counters, r.Fill)
		}
		b := r.Balance
		if b.Stripes != r.Header.Stripes || b.Entries.Min > b.Entries.Max ||
			b.Entries.Avg < float64(b.Entries.Min) || b.Entries.Avg > float64(b.Entries.Max) || b.Bytes.Max == 0 {
			t.Errorf("stripe balance %+v", b)
		}
		if r.Ring.LastSeq < r.Counters.Sets/2 {
			t.Errorf("change ring at %d after %d sets", r.Ring.LastSeq, r.Counters.Sets)
		}
	})

	t.Run("segments", func(t *testing.T) {
		var rows []segmentRow
		decodeJSON(t, mustRun(t, "segments", "--dir", filepath.Dir(path), "--json"), &rows)
		if len(rows) != 1 || rows[0].Path != path || rows[0].SegmentSummary == nil {
			t.Fatalf("segments: %+v", rows)
		}
		if s := rows[0]; s.App != "shop" || len(s.Procs) != 2 || s.Entries < 40 || s.FileSize != 4<<20 || s.Fill <= 0 {
			t.Errorf("segments row %+v", *s.SegmentSummary)
		}
		// --app resolves against --dir.
		mustRun(t, "stat", "--dir", filepath.Dir(path), "--app", "shop")
	})

	t.Run("ls", func(t *testing.T) {
		var rows []entryRow
		decodeJSON(t, mustRun(t, args("ls", "--json", "--prefix", "sess-w1-")...), &rows)
		if len(rows) != 20 {
			t.Fatalf("ls --prefix sess-w1- listed %d entries, the worker writes 20", len(rows))
		}
		for i, e := range rows {
			if e.Key != workerKey("1", i) || e.Size == 0 || e.Node != 7 || e.Expires == nil ||
				e.ExpiresIn == nil || *e.ExpiresIn < 19*60 || *e.ExpiresIn > 20*60+5 || e.Deleted {
				t.Errorf("entry %d: %+v", i, e)
			}
		}
		decodeJSON(t, mustRun(t, args("ls", "--json", "--limit", "5")...), &rows)
		if len(rows) != 5 || rows[0].Key != workerKey("1", 0) {
			t.Errorf("ls --limit 5: %+v", rows)
		}
		r := mustRun(t, args("ls", "--limit", "3")...)
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 4 || !strings.Contains(r.stderr, "3 of 40 entries shown") {
			t.Errorf("ls --limit 3 table: %v", r)
		}
	})

	t.Run("get", func(t *testing.T) {
		var g getReport
		decodeJSON(t, mustRun(t, args("get", "--json", workerKey("2", 4))...), &g)
		v, ok := g.Value.(map[string]any)
		if !ok || v["user"] != "user-2" || g.ValueError != "" {
			t.Fatalf("get --json: %+v", g)
		}
		if cart, ok := v["cart"].([]any); !ok || len(cart) != 2 || cart[0] != "apple" || cart[1] != 4.0 {
			t.Errorf("nested msgpack cart decoded to %#v", v["cart"])
		}
		if n, ok := v["n"].(float64); !ok || n < 0 {
			t.Errorf("n decoded to %#v", v["n"])
		}
		r := mustRun(t, args("get", "--raw", workerKey("2", 4))...)
		if got, err := decodeSession([]byte(r.stdout)); err != nil || got.(map[string]any)["user"] != "user-2" {
			t.Errorf("get --raw wrote %q (%v)", r.stdout, err)
		}
		r = gardenctl(t, args("get", "no-such-session")...)
		if r.code != exitFail || !strings.Contains(r.stderr, "no entry no-such-session in "+path) {
			t.Errorf("get of a missing key: %v", r)
		}
	})

	t.Run("verify", func(t *testing.T) {
		var v verifyReport
		r := gardenctl(t, args("verify", "--json")...)
		decodeJSON(t, r, &v)
		if r.code != 0 || !v.OK || len(v.Problems) != 0 || v.Stripes == 0 {
			t.Errorf("verify under load: %v", r)
		}
	})

	t.Run("watch", func(t *testing.T) {
		r := mustRun(t, args("watch", "--json", "--count", "3", "--interval", "30ms")...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("watch --count 3 printed %d lines: %v", len(lines), r)
		}
		var sets, gets float64
		for _, l := range lines {
			var s watchSample
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if s.Seconds <= 0 || s.Entries < 40 || s.LagRecords != nil || s.Time == "" {
				t.Errorf("watch sample %+v", s)
			}
			sets, gets = sets+s.Sets, gets+s.Gets
		}
		// Two workers write and read about 1000 times a second each; a
		// busy machine may starve them for one interval, not for all.
		if sets <= 0 || gets <= 0 {
			t.Errorf("watch saw no sets (%v/s) or gets (%v/s) from two busy workers: %v", sets, gets, r)
		}
		r = mustRun(t, args("watch", "--count", "2", "--interval", "20ms")...)
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") {
			t.Errorf("watch table: %v", r)
		}
	})

	t.Run("dump and load", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "shop.gsdump")
		var d dumpReport
		decodeJSON(t, mustRun(t, args("dump", file, "--json")...), &d)
		if d.Entries < 40 || d.File != file {
			t.Fatalf("dump: %+v", d)
		}
		target := newSegment(t, "shop", &shm.Options{Size: 4 << 20, MaxValue: 64 << 10, App: "shop", NodeID: 9})
		var l loadReport
		decodeJSON(t, mustRun(t, "load", "--segment", target, file, "--json"), &l)
		if l.Entries != d.Entries || l.Applied != d.Entries || l.Skipped != 0 || l.Failed != 0 || l.App != "shop" || l.Source != path {
			t.Errorf("first load: %+v after dump %+v", l, d)
		}
		decodeJSON(t, mustRun(t, "load", "--segment", target, file, "--json"), &l)
		if l.Applied != 0 || l.Skipped != d.Entries {
			t.Errorf("second load changed something: %+v", l)
		}
		// Loading into the live segment: the workers' newer writes win.
		var again loadReport
		decodeJSON(t, mustRun(t, args("load", file, "--json")...), &again)
		if again.Applied != 0 || again.Failed != 0 {
			t.Errorf("loading an older dump over live data applied %d entries: %+v", again.Applied, again)
		}
		withOpen(t, target, func(s *shm.Segment) {
			e, ok := s.GetEntry(nil, []byte(workerKey("1", 3)))
			if !ok || e.Version.Node != 7 {
				t.Errorf("loaded entry %+v, %v: want the source's version", e, ok)
			}
		})
	})

	t.Run("rm and flush", func(t *testing.T) {
		withOpen(t, path, func(s *shm.Segment) {
			if err := s.Set([]byte("admin-note"), []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
		})
		r := gardenctl(t, args("rm", "admin-note")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("rm without --yes: %v", r)
		}
		mustRun(t, args("get", "admin-note")...)
		r = mustRun(t, args("rm", "admin-note", "--yes")...)
		if !strings.Contains(r.stdout, "deleted admin-note") {
			t.Errorf("rm: %v", r)
		}
		r = gardenctl(t, args("get", "admin-note")...)
		if r.code != exitFail || !strings.Contains(r.stderr, "admin-note was deleted") {
			t.Errorf("get after rm: %v", r)
		}
		r = gardenctl(t, args("rm", "admin-note", "--yes")...)
		if r.code != exitFail || !strings.Contains(r.stderr, "no entry admin-note") {
			t.Errorf("rm of a deleted key: %v", r)
		}

		r = gardenctl(t, args("flush")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("flush without --yes: %v", r)
		}
		var f struct{ Deleted int }
		decodeJSON(t, mustRun(t, args("flush", "--yes", "--json")...), &f)
		if f.Deleted < 30 {
			t.Errorf("flush deleted %d entries under two workers' 40", f.Deleted)
		}
	})
}

// TestFlushQuiet empties a segment nobody writes to.
func TestFlushQuiet(t *testing.T) {
	path, _ := fixture(t)
	r := mustRun(t, "flush", "--segment", path, "--yes")
	if !strings.Contains(r.stdout, "deleted 3 entries") {
		t.Errorf("flush: %v", r)
	}
	var rows []entryRow
	decodeJSON(t, mustRun(t, "ls", "--segment", path, "--json"), &rows)
	if len(rows) != 0 {
		t.Errorf("entries left after flush: %+v", rows)
	}
	decodeJSON(t, mustRun(t, "ls", "--segment", path, "--json", "--tombstones"), &rows)
	if len(rows) != 4 {
		t.Errorf("flush should leave 4 tombstones, ls --tombstones lists %+v", rows)
	}
}
