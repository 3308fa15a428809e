package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testseg"
	"github.com/gardenstate/gardenstate/internal/testwait"
)

// testOptions are small enough for quick tests and still have many stripes.
func testOptions() *Options {
	return &Options{Size: 8 << 20, MaxValue: 64 << 10, App: "test"}
}

func openTest(t testing.TB, opts *Options) (*Segment, string) {
	t.Helper()
	path := filepath.Join(testseg.Dir(t), "seg")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustVerify(t testing.TB, s *Segment) {
	t.Helper()
	if err := s.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSetGetDelete(t *testing.T) {
	s, _ := openTest(t, testOptions())
	if _, ok := s.Get(nil, []byte("a")); ok {
		t.Fatal("Get on empty segment found something")
	}
	if err := s.Set([]byte("a"), []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	v, ok := s.Get([]byte("prefix:"), []byte("a"))
	if !ok || string(v) != "prefix:one" {
		t.Fatalf("Get = %q, %v; want prefix:one, true", v, ok)
	}
	if err := s.Set([]byte("a"), []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(nil, []byte("a")); string(v) != "two" {
		t.Fatalf("after overwrite Get = %q", v)
	}
	if !s.Has([]byte("a")) {
		t.Fatal("Has = false")
	}
	if !s.Delete([]byte("a")) {
		t.Fatal("Delete of present key = false")
	}
	if s.Delete([]byte("a")) {
		t.Fatal("second Delete = true")
	}
	if _, ok := s.Get(nil, []byte("a")); ok {
		t.Fatal("Get after Delete found the key")
	}
	e, ok := s.GetEntry(nil, []byte("a"))
	if !ok || !e.Deleted || e.Version.IsZero() {
		t.Fatalf("GetEntry after Delete = %+v, %v; want a tombstone", e, ok)
	}
	st := s.Stats()
	if st.Sets != 2 || st.Deletes != 1 || st.Hits != 3 || st.Tombstones != 1 {
		t.Fatalf("stats %+v", st)
	}
	mustVerify(t, s)
}

func TestReturnedValueDoesNotAlias(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("k"), []byte("value"), 0)
	v, _ := s.Get(nil, []byte("k"))
	v[0] = 'X'
	if w, _ := s.Get(nil, []byte("k")); string(w) != "value" {
		t.Fatalf("modifying a returned value changed the stored one: %q", w)
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("k"), []byte("old"), 0)
	if err := s.Set([]byte("k"), make([]byte, 64<<10+1), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized value: err %v, want ErrTooLarge", err)
	}
	if err := s.Set(bytes.Repeat([]byte("k"), 256), []byte("v"), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized key: err %v, want ErrTooLarge", err)
	}
	if v, _ := s.Get(nil, []byte("k")); string(v) != "old" {
		t.Fatalf("failed Set changed the old value to %q", v)
	}
	if err := s.Set(bytes.Repeat([]byte("k"), 255), make([]byte, 64<<10), 0); err != nil {
		t.Fatalf("largest key and value: %v", err)
	}
	mustVerify(t, s)
}

func TestExpiryAndTouch(t *testing.T) {
	s, _ := openTest(t, testOptions())
	// "touched" lives a minute, so that a stall cannot expire it before
	// its Touch; "short" comes last, so that no later write sweeps it.
	s.Set([]byte("touched"), []byte("v"), time.Minute)
	s.Set([]byte("forever"), []byte("v"), 0)
	s.Set([]byte("short"), []byte("v"), 30*time.Millisecond)
	if !s.Touch([]byte("touched"), time.Hour) {
		t.Fatal("Touch of present key = false")
	}
	if s.Touch([]byte("absent"), time.Hour) {
		t.Fatal("Touch of absent key = true")
	}
	testwait.For(t, 5*time.Second, "the entry to expire", func() bool { return !s.Has([]byte("short")) })
	if !s.Has([]byte("touched")) || !s.Has([]byte("forever")) {
		t.Fatal("touched or unexpiring entry gone")
	}
	e, _ := s.GetEntry(nil, []byte("touched"))
	if d := time.Until(e.Expires); d < 59*time.Minute {
		t.Fatalf("touched entry expires in %v", d)
	}
	n, err := s.Sweep(0)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 expired entry dropped", n, err)
	}
	if st := s.Stats(); st.Expirations != 1 || st.Entries != 2 {
		t.Fatalf("stats after sweep: %+v", st)
	}
	mustVerify(t, s)
}

func TestPutIfVersion(t *testing.T) {
	s, _ := openTest(t, testOptions())
	zero := Version{}
	v1, err := s.Put([]byte("k"), []byte("1"), PutOptions{IfVersion: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put([]byte("k"), []byte("x"), PutOptions{IfVersion: &zero}); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("create over existing: %v", err)
	}
	v2, err := s.Put([]byte("k"), []byte("2"), PutOptions{IfVersion: &v1})
	if err != nil || !v1.Less(v2) {
		t.Fatalf("Put with current version: %v, %v -> %v", err, v1, v2)
	}
	if _, err := s.Put([]byte("k"), []byte("x"), PutOptions{IfVersion: &v1}); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if v, _ := s.Get(nil, []byte("k")); string(v) != "2" {
		t.Fatalf("value %q", v)
	}
}

func TestApplyLastWriterWins(t *testing.T) {
	s, _ := openTest(t, testOptions())
	key := []byte("k")
	old := Version{Time: 100 << 16, Node: 1}
	newer := Version{Time: 200 << 16, Node: 1}
	tie := Version{Time: 200 << 16, Node: 2}
	if ok, err := s.Apply(Entry{Key: key, Value: []byte("new"), Version: newer}); !ok || err != nil {
		t.Fatalf("Apply to empty: %v %v", ok, err)
	}
	if ok, _ := s.Apply(Entry{Key: key, Value: []byte("old"), Version: old}); ok {
		t.Fatal("older write applied")
	}
	if ok, _ := s.Apply(Entry{Key: key, Value: []byte("tie"), Version: tie}); !ok {
		t.Fatal("same time, higher node not applied")
	}
	exp := time.Now().Add(time.Hour)
	if ok, _ := s.Apply(Entry{Key: key, Value: []byte("tie"), Version: tie, Expires: exp}); ok {
		t.Fatal("same version with a deadline replaced an entry that never expires")
	}
	if ok, _ := s.Apply(Entry{Key: key, Deleted: true, Version: old}); ok {
		t.Fatal("older tombstone applied")
	}
	if ok, _ := s.Apply(Entry{Key: key, Deleted: true, Version: Version{Time: 300 << 16, Node: 1}}); !ok {
		t.Fatal("newer tombstone not applied")
	}
	if s.Has(key) {
		t.Fatal("tombstoned key still present")
	}
	if ok, _ := s.Apply(Entry{Key: key, Value: []byte("zombie"), Version: tie}); ok {
		t.Fatal("write older than the tombstone resurrected the key")
	}
	// A local write after applying a remote one is ordered after it.
	future := Version{Time: uint64(time.Now().Add(time.Hour).UnixMilli()) << 16, Node: 9}
	s.Apply(Entry{Key: []byte("f"), Value: []byte("remote"), Version: future})
	v, _ := s.Put([]byte("f"), []byte("local"), PutOptions{})
	if !future.Less(v) {
		t.Fatalf("local version %v not after observed %v", v, future)
	}
	mustVerify(t, s)
}

func TestReopenSeesData(t *testing.T) {
	s, path := openTest(t, testOptions())
	for i := range 100 {
		s.Set(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i), 0)
	}
	s.Close()
	if err := s.Set([]byte("x"), nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := range 100 {
		if v, ok := s2.Get(nil, fmt.Appendf(nil, "k%d", i)); !ok || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("k%d = %q, %v after reopen", i, v, ok)
		}
	}
	if s2.Info().App != "test" {
		t.Fatalf("app %q", s2.Info().App)
	}
}

func TestMergeExpiry(t *testing.T) {
	s, _ := openTest(t, testOptions())
	v, _ := s.Put([]byte("k"), []byte("v"), PutOptions{TTL: time.Minute})
	later := time.Now().Add(time.Hour)
	if s.MergeExpiry([]byte("k"), Version{Time: v.Time - 1, Node: v.Node}, later) {
		t.Fatal("merged the deadline of another version")
	}
	if !s.MergeExpiry([]byte("k"), v, later) {
		t.Fatal("did not merge a later deadline of the same version")
	}
	if s.MergeExpiry([]byte("k"), v, time.Now().Add(time.Second)) {
		t.Fatal("merged an earlier deadline")
	}
	if s.MergeExpiry([]byte("absent"), v, later) || s.Has([]byte("absent")) {
		t.Fatal("MergeExpiry created an entry")
	}
	e, _ := s.GetEntry(nil, []byte("k"))
	if string(e.Value) != "v" || e.Expires.Sub(later).Abs() > time.Millisecond {
		t.Fatalf("entry after merge: %+v", e)
	}
}

func TestAttachPeekRangeExpired(t *testing.T) {
	s, path := openTest(t, testOptions())
	if _, err := Attach(path+".missing", nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Attach of a missing segment: %v", err)
	}
	if _, err := os.Stat(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Attach created a segment")
	}
	a, err := Attach(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s.Set([]byte("k"), []byte("v"), 0)
	s.Set([]byte("gone"), []byte("v"), time.Millisecond)
	before := s.Stats().Gets
	e, ok := a.Peek(nil, []byte("k"))
	if !ok || string(e.Value) != "v" || e.Accessed.IsZero() {
		t.Fatalf("Peek = %+v, %v", e, ok)
	}
	if s.Stats().Gets != before {
		t.Fatal("Peek counted as a read")
	}
	testwait.For(t, 5*time.Second, "the entry to expire", func() bool { return !s.Has([]byte("gone")) })
	var all, live int
	for i := range s.Stripes() {
		s.RangeWith(i, RangeOptions{IncludeExpired: true}, func(Entry) bool { all++; return true })
		s.Range(i, func(Entry) bool { live++; return true })
	}
	if all != 2 || live != 1 {
		t.Fatalf("RangeWith(IncludeExpired) saw %d, Range %d; want 2 and 1", all, live)
	}
}

// TestRangeFilters: Origin, After and Until leave out entries by version.
func TestRangeFilters(t *testing.T) {
	s, _ := openTest(t, testOptions())
	var versions []Version
	for i := range 20 {
		v, err := s.Put(fmt.Appendf(nil, "k%d", i), []byte("v"), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	remote := Version{Time: versions[19].Time + 1, Node: s.NodeID() + 1}
	if ok, err := s.Apply(Entry{Key: []byte("remote"), Value: []byte("v"), Version: remote}); !ok || err != nil {
		t.Fatalf("Apply = %v, %v", ok, err)
	}
	s.Delete([]byte("k3")) // a tombstone, newer than every set
	count := func(o RangeOptions) (keys map[string]bool) {
		keys = map[string]bool{}
		for k, e := range rangeAll(t, s, o) {
			if o.Origin != 0 && e.Version.Node != o.Origin || e.Version.Time <= o.After || o.Until != 0 && e.Version.Time > o.Until {
				t.Errorf("%+v visited %q at %v", o, e.Key, e.Version)
			}
			keys[k] = true
		}
		return keys
	}
	if keys := count(RangeOptions{}); len(keys) != 21 {
		t.Fatalf("no filter: %d entries, want 21", len(keys))
	}
	if keys := count(RangeOptions{Origin: s.NodeID()}); len(keys) != 20 || keys["remote"] {
		t.Fatalf("Origin: %d entries (remote %v), want the 20 local ones", len(keys), keys["remote"])
	}
	if keys := count(RangeOptions{After: versions[9].Time}); len(keys) != 12 || !keys["remote"] || !keys["k3"] || keys["k9"] {
		t.Fatalf("After: %v, want k10..k19, remote and the tombstone of k3", keys)
	}
	if keys := count(RangeOptions{Origin: s.NodeID(), After: versions[9].Time, KeysOnly: true}); len(keys) != 11 {
		t.Fatalf("Origin and After: %d entries, want k10..k19 and k3", len(keys))
	}
	if keys := count(RangeOptions{After: versions[9].Time, Until: versions[14].Time}); len(keys) != 5 || !keys["k14"] || keys["k15"] {
		t.Fatalf("After and Until: %v, want k10..k14", keys)
	}
}

// setAndFind sets key and returns its hash, stripe and index slot.
func setAndFind(t *testing.T, s *Segment, key, val []byte) (uint64, *stripe, uint64) {
	t.Helper()
	if err := s.Set(key, val, 0); err != nil {
		t.Fatal(err)
	}
	h := s.hash(key)
	st := s.stripeOf(h)
	slot, _, ok := s.find(st, h, key)
	if !ok {
		t.Fatal("key not in the index")
	}
	return h, st, slot
}

// TestRangeOverlappingIndex: an index that points at one record from many
// slots (a corrupt segment) is an error for Range, not a copy of more than
// the stripe holds.
func TestRangeOverlappingIndex(t *testing.T) {
	s, _ := openTest(t, &Options{Size: 4 << 20, Stripes: 4, MaxValue: 256 << 10})
	h, st, slot := setAndFind(t, s, []byte("big"), make([]byte, 200<<10))
	w := st.word(slot).Load()
	copies := 0
	for j := uint64(0); j <= s.indexMask && uint64(copies)*200<<10 <= uint64(len(st.arena)); j++ {
		if st.word(j).Load() == 0 {
			st.word(j).Store(w)
			copies++
		}
	}
	err := s.Range(int(h&s.stripeMask), func(Entry) bool { return true })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Range over %d copies of a 200 KiB record in a %d-byte stripe: %v, want ErrCorrupt", copies, len(st.arena), err)
	}
}

func TestDeleteIf(t *testing.T) {
	s, _ := openTest(t, testOptions())
	v1, _ := s.Put([]byte("k"), []byte("1"), PutOptions{})
	v2, _ := s.Put([]byte("k"), []byte("2"), PutOptions{})
	if ok, err := s.DeleteIf([]byte("k"), v1); ok || !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("DeleteIf with a stale version: %v %v", ok, err)
	}
	if !s.Has([]byte("k")) {
		t.Fatal("conflicting DeleteIf deleted")
	}
	if ok, err := s.DeleteIf([]byte("k"), v2); !ok || err != nil {
		t.Fatalf("DeleteIf with the current version: %v %v", ok, err)
	}
	if ok, err := s.DeleteIf([]byte("k"), v2); ok || err != nil {
		t.Fatalf("DeleteIf of an absent key: %v %v", ok, err)
	}
}

// TestWholeRecord checks the checksum reconstruction lock-free reads use
// on weakly ordered CPUs.
func TestWholeRecord(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("key"), []byte("some value"), time.Hour)
	s.Delete([]byte("gone"))
	h := s.hash([]byte("key"))
	_, r, ok := s.find(s.stripeOf(h), h, []byte("key"))
	if !ok {
		t.Fatal("not found")
	}
	if !wholeRecord(&r, []byte("key"), []byte("some value")) {
		t.Fatal("checksum of a whole record does not match")
	}
	if wholeRecord(&r, []byte("key"), []byte("some valuX")) {
		t.Fatal("checksum of a torn value matches")
	}
}

func TestLookupReportsClosed(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("k"), []byte("v"), 0)
	if e, ok, err := s.Lookup(nil, []byte("k")); !ok || err != nil || string(e.Value) != "v" {
		t.Fatalf("Lookup = %+v %v %v", e, ok, err)
	}
	s.Close()
	if _, _, err := s.Lookup(nil, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lookup after Close: %v", err)
	}
}

// The value length in an index slot only lets a read start copying early:
// a wrong one must not change what any read returns, Verify must report
// it, and a rebuild of the index must put it right.
func TestSlotLengthIsOnlyAHint(t *testing.T) {
	s, _ := openTest(t, nil)
	key, val := []byte("hinted"), bytes.Repeat([]byte("v"), 300)
	_, st, slot := setAndFind(t, s, key, val)
	for _, hint := range []uint64{0, 1, 299, 301, 1 << 20, 1<<32 - 1} {
		st.meta(slot).Store(makeMeta(hint, 0))
		if got, ok := s.Get(nil, key); !ok || !bytes.Equal(got, val) {
			t.Errorf("hint %d: Get = %d bytes, %v; want the %d stored", hint, len(got), ok, len(val))
		}
		if e, ok := s.GetEntry([]byte("prefix"), key); !ok || !bytes.Equal(e.Value, val) {
			t.Errorf("hint %d: GetEntry value = %d bytes, %v", hint, len(e.Value), ok)
		}
		if !s.Has(key) {
			t.Errorf("hint %d: Has = false", hint)
		}
		if err := s.Verify(); err == nil || !strings.Contains(err.Error(), "value length") {
			t.Errorf("hint %d: Verify = %v, want the wrong length reported", hint, err)
		}
	}
	s.lock(st)
	s.rebuild(st)
	s.unlock(st)
	mustVerify(t, s)
	if got, ok := s.Get(nil, key); !ok || !bytes.Equal(got, val) {
		t.Errorf("after rebuild: Get = %d bytes, %v", len(got), ok)
	}
}
