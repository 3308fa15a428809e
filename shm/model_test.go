package shm

// Model-based tests: random operations checked against a plain map, with the
// seed printed so a failure replays (GARDEN_SEED=n).

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testseed"
	"github.com/gardenstate/gardenstate/internal/testwait"
)

// checkModel runs ops random operations on keys distinct keys whose values
// are at most maxVal bytes, on a segment big enough that nothing is
// evicted, and compares every result with a map.
func checkModel(t *testing.T, opts *Options, ops, keys, maxVal int) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	s, path := openTest(t, opts)
	model := map[string][]byte{}
	key := func() []byte { return fmt.Appendf(nil, "key-%d", rng.IntN(keys)) }
	var buf []byte
	for op := range ops {
		k := key()
		switch r := rng.IntN(100); {
		case r < 40:
			v := make([]byte, rng.IntN(maxVal+1))
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			if err := s.Set(k, v, 0); err != nil {
				t.Fatalf("op %d: Set(%s): %v", op, k, err)
			}
			model[string(k)] = v
		case r < 50:
			_, had := model[string(k)]
			if got := s.Delete(k); got != had {
				t.Fatalf("op %d: Delete(%s) = %v, model says %v", op, k, got, had)
			}
			delete(model, string(k))
		case r < 55:
			_, had := model[string(k)]
			if got := s.Touch(k, time.Hour); got != had {
				t.Fatalf("op %d: Touch(%s) = %v, model says %v", op, k, got, had)
			}
		case r < 57:
			// Close and reopen: everything must still be there.
			s.Close()
			var err error
			if s, err = Open(path, nil); err != nil {
				t.Fatalf("op %d: reopen: %v", op, err)
			}
			t.Cleanup(func() { s.Close() })
		default:
			want, had := model[string(k)]
			var ok bool
			buf, ok = s.Get(buf[:0], k)
			if ok != had || !bytes.Equal(buf, want) {
				t.Fatalf("op %d: Get(%s) = %d bytes, %v; model has %d bytes, %v", op, k, len(buf), ok, len(want), had)
			}
		}
	}
	for k, want := range model {
		if got, ok := s.Get(nil, []byte(k)); !ok || !bytes.Equal(got, want) {
			t.Fatalf("final: %s differs from the model", k)
		}
	}
	st := s.Stats()
	if st.ForcedEvictions != 0 {
		t.Fatalf("%d forced evictions: the model test segment is too small", st.ForcedEvictions)
	}
	if live := st.Entries - st.Tombstones; live != uint64(len(model)) {
		t.Fatalf("segment holds %d live entries, model %d", live, len(model))
	}
	mustVerify(t, s)
}

func TestModelSmall(t *testing.T) { checkModel(t, testOptions(), 20000, 200, 300) }
func TestModelLargeValues(t *testing.T) {
	checkModel(t, &Options{Size: 16 << 20, MaxValue: 64 << 10, Stripes: 4}, 3000, 40, 64<<10)
}
func TestModelOneStripe(t *testing.T) {
	checkModel(t, &Options{Size: 2 << 20, MaxValue: 4 << 10, Stripes: 1}, 20000, 100, 2000)
}

// TestChurnFullSegment fills a small segment many times over with mixed
// value sizes: eviction must make room every time, never fail a Set, keep
// the newest writes, count what it evicts, and leave the segment valid.
func TestChurnFullSegment(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	s, _ := openTest(t, &Options{Size: 2 << 20, MaxValue: 32 << 10})
	sizes := []int{0, 10, 100, 1000, 4000, 16000, 32 << 10}
	var total int
	recent := make([]string, 0, 8)
	for i := 0; total < 40<<20; i++ {
		k := fmt.Sprint("churn-", i)
		v := bytes.Repeat([]byte{byte(i)}, sizes[rng.IntN(len(sizes))])
		if err := s.Set([]byte(k), v, 0); err != nil {
			t.Fatalf("Set %d (%d bytes) on a full segment: %v", i, len(v), err)
		}
		total += len(v)
		if len(recent) == cap(recent) {
			recent = recent[1:]
		}
		recent = append(recent, k)
		if i%97 == 0 {
			// Keep reading one old key: the second chance should keep it.
			s.Get(nil, []byte("churn-0"))
		}
	}
	// The newest write is always there; the few before it are there unless
	// their own stripe needed the room.
	if !s.Has([]byte(recent[len(recent)-1])) {
		t.Fatalf("newest key %s evicted", recent[len(recent)-1])
	}
	st := s.Stats()
	if st.Evictions == 0 || st.ForcedEvictions == 0 {
		t.Fatalf("wrote %d MiB into 2 MiB without evictions: %+v", total>>20, st)
	}
	if st.BytesUsed > st.BytesTotal {
		t.Fatalf("used %d of %d bytes", st.BytesUsed, st.BytesTotal)
	}
	t.Logf("evictions %d (forced %d), relocations %d, entries %d, live %d of %d bytes",
		st.Evictions, st.ForcedEvictions, st.Relocations, st.Entries, st.BytesLive, st.BytesTotal)
	mustVerify(t, s)
}

// TestExpiredEvictedFirst fills a stripe with entries of which half have
// expired: making room must drop those before any live one.
func TestExpiredEvictedFirst(t *testing.T) {
	s, _ := openTest(t, &Options{Size: 1 << 20, MaxValue: 8 << 10, Stripes: 1})
	val := make([]byte, 1000)
	n := int(s.h.ArenaSize/2) / 1100
	for i := range n {
		ttl := time.Duration(0)
		if i%2 == 0 {
			ttl = time.Millisecond
		}
		s.Set(fmt.Appendf(nil, "k%d", i), val, ttl)
	}
	testwait.For(t, 5*time.Second, "the entries to expire", func() bool { return !s.Has([]byte("k0")) })
	// Write as much again: there is room for it only if the expired
	// entries go.
	for i := range n / 2 {
		if err := s.Set(fmt.Appendf(nil, "new%d", i), val, 0); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.ForcedEvictions != 0 {
		t.Fatalf("%d live entries evicted while expired ones were available", st.ForcedEvictions)
	}
	for i := 1; i < n; i += 2 {
		if !s.Has(fmt.Appendf(nil, "k%d", i)) {
			t.Fatalf("live k%d gone", i)
		}
	}
	mustVerify(t, s)
}

// TestPinnedSurvivesChurn: a pinned entry is moved, never evicted, however
// much is written through its stripe.
func TestPinnedSurvivesChurn(t *testing.T) {
	s, _ := openTest(t, &Options{Size: 2 << 20, MaxValue: 16 << 10, Stripes: 2})
	if _, err := s.Put([]byte("pinned"), []byte("keep me"), PutOptions{Pin: true}); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 4000)
	for i := range 5000 {
		if err := s.Set(fmt.Appendf(nil, "churn-%d", i), val, 0); err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().ForcedEvictions == 0 {
		t.Fatal("the churn evicted nothing: it did not test the pin")
	}
	if v, ok := s.Get(nil, []byte("pinned")); !ok || string(v) != "keep me" {
		t.Fatalf("pinned entry = %q, %v after churn", v, ok)
	}
	mustVerify(t, s)
}
