package shm

// Benchmarks, each beside its baseline measured in the same run: compare
// runs with benchstat (see the README's Benchmarks section).

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

const (
	benchKeys  = 100_000
	benchValue = 1024
)

func benchKey(i int) []byte { return fmt.Appendf(nil, "session:%08d:abcdefghijklmnopqrstuv", i) }

// store is what the benchmarks drive: the segment or the baseline.
type store interface {
	get(dst, k []byte) ([]byte, bool)
	set(k, v []byte) error
}

type segStore struct{ s *Segment }

func (s segStore) get(dst, k []byte) ([]byte, bool) { return s.s.Get(dst, k) }
func (s segStore) set(k, v []byte) error            { return s.s.Set(k, v, 0) }

// mapStore is the in-process baseline: a map behind a sync.RWMutex, values
// copied in and out as the segment does.
type mapStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (m *mapStore) get(dst, k []byte) ([]byte, bool) {
	m.mu.RLock()
	v, ok := m.m[string(k)]
	if ok {
		dst = append(dst, v...)
	}
	m.mu.RUnlock()
	return dst, ok
}

func (m *mapStore) set(k, v []byte) error {
	c := append([]byte(nil), v...)
	m.mu.Lock()
	m.m[string(k)] = c
	m.mu.Unlock()
	return nil
}

func benchStores(b *testing.B) map[string]store {
	s, _ := benchFilled(b)
	m := &mapStore{m: map[string][]byte{}}
	val := make([]byte, benchValue)
	for i := range benchKeys {
		m.set(benchKey(i), val)
	}
	return map[string]store{"impl=shm": segStore{s}, "impl=map": m, "impl=bare": bareStore{s}}
}

// bareStore reads the segment the shortest way its layout allows: hash,
// index slot, record, with none of Get's guarantees (no sequence check,
// no protection from Close, no expiry, no counters, no access mark). It is
// not correct under concurrent writes; it is here to show what the layout
// itself costs beside the map, apart from what Get adds to it.
type bareStore struct{ s *Segment }

func (b bareStore) get(dst, k []byte) ([]byte, bool) {
	s := b.s
	h := s.hash(k)
	st := s.stripeOf(h)
	for i, n := s.home(tagOf(h)), uint64(0); n <= s.indexMask; i, n = (i+1)&s.indexMask, n+1 {
		w := st.word(i).Load()
		if w == 0 {
			break
		}
		if uint32(w>>32) != tagOf(h) {
			continue
		}
		off := wordOff(w)
		vo, vl := off+layout.RecHdrSize+uint64(len(k)), metaLen(st.meta(i).Load())
		if vo+vl > uint64(len(st.arena)) {
			break
		}
		out := append(dst, st.arena[vo:vo+vl]...)
		if holds(st.arena, off, h, k) {
			return out, true
		}
	}
	return dst, false
}

func (b bareStore) set(k, v []byte) error { return b.s.Set(k, v, 0) }

func BenchmarkGet(b *testing.B) {
	benchStoreOps(b, []string{"impl=map", "impl=shm", "impl=bare"},
		func(st store, buf, key []byte) ([]byte, bool) { return st.get(buf, key) })
}

func BenchmarkSet(b *testing.B) {
	val := make([]byte, benchValue)
	benchStoreOps(b, []string{"impl=map", "impl=shm"},
		func(st store, buf, key []byte) ([]byte, bool) { return buf, st.set(key, val) == nil })
}

// benchStoreOps runs op on the segment and on the baseline, 1 KiB values
// over 100k keys: from one goroutine, stepping through the keys (a failed
// op fails the benchmark), and from many, at random keys.
func benchStoreOps(b *testing.B, names []string, op func(st store, buf, key []byte) ([]byte, bool)) {
	stores := benchStores(b)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	for _, name := range names {
		st := stores[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchValue)
			b.ReportAllocs()
			buf := make([]byte, 0, benchValue)
			i := 0
			for b.Loop() {
				var ok bool
				if buf, ok = op(st, buf[:0], keys[i%benchKeys]); !ok {
					b.Fatalf("%s failed", b.Name())
				}
				i += 7919
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.SetBytes(benchValue)
			b.ReportAllocs()
			var seed atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				buf := make([]byte, 0, benchValue)
				for pb.Next() {
					buf, _ = op(st, buf[:0], keys[rng.IntN(benchKeys)])
				}
			})
		})
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("k"), make([]byte, 1024), 0)
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { buf, _ = s.Get(buf[:0], []byte("k")) }); n != 0 {
		t.Fatalf("Get allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { s.Set([]byte("k"), buf, 0) }); n != 0 {
		t.Fatalf("Set allocates %v times per call", n)
	}
}

func init() { childRoles["mix"] = childMix }

// childMix attaches and, told "go N", runs N operations of a 90/10
// Get/Set mix over the benchmark keys, then prints "done".
func childMix() int {
	s, err := Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer s.Close()
	seed, _ := strconv.ParseUint(os.Getenv("GARDEN_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 0))
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	val := make([]byte, benchValue)
	buf := make([]byte, 0, benchValue)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var n int
		fmt.Sscanf(in.Text(), "go %d", &n)
		for i := range n {
			k := keys[rng.IntN(benchKeys)]
			if i%10 == 0 {
				s.Set(k, val, 0)
			} else {
				buf, _ = s.Get(buf[:0], k)
			}
		}
		fmt.Println("done")
	}
	return 0
}

// benchFilled opens a segment holding the benchmark keys, closed when b
// ends, and returns it with its path. A failed Set or an eviction fails b:
// the segment is sized to hold them all.
func benchFilled(b *testing.B) (*Segment, string) {
	s, path := openTest(b, &Options{Size: 512 << 20, MaxValue: 64 << 10})
	val := make([]byte, benchValue)
	for i := range benchKeys {
		if err := s.Set(benchKey(i), val, 0); err != nil {
			b.Fatal(err)
		}
	}
	if f := s.Stats().ForcedEvictions; f != 0 {
		b.Fatalf("benchmark segment too small: %d evictions", f)
	}
	return s, path
}

// BenchmarkProcs runs the 90/10 mix in 1 and 2 processes on one segment;
// b.N operations are split between them, so ns/op falling with more
// processes is the scaling (ops/s is reported too).
func BenchmarkProcs(b *testing.B) {
	_, path := benchFilled(b)
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			var kids []*child
			for i := range procs {
				c := startChild(b, "mix", "GARDEN_PATH="+path, fmt.Sprint("GARDEN_SEED=", i))
				c.Expect(b, "ready", time.Minute)
				kids = append(kids, c)
			}
			b.ResetTimer()
			start := time.Now()
			for _, c := range kids {
				c.Say(fmt.Sprint("go ", b.N/procs+1))
			}
			for _, c := range kids {
				c.Expect(b, "done", 10*time.Minute)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
			for _, c := range kids {
				c.CloseInput()
				c.Wait(b, time.Minute)
			}
		})
	}
}

// BenchmarkTakeoverStall kills a process while it holds a stripe lock in
// the middle of a write, and measures how long a write to that stripe from
// another process waits: from the kill to the write's return.
func BenchmarkTakeoverStall(b *testing.B) {
	s, path := openTest(b, &Options{Size: 8 << 20, MaxValue: 64 << 10})
	var stalls []time.Duration
	for b.Loop() {
		h := startChild(b, "holder", "GARDEN_PATH="+path, "GARDEN_KEY=victim", "GARDEN_POINT=advanced")
		h.Expect(b, "holding", time.Minute)
		start := time.Now()
		h.Cmd.Process.Signal(syscall.SIGKILL)
		if err := s.Set([]byte("victim"), []byte("after"), 0); err != nil {
			b.Fatal(err)
		}
		stalls = append(stalls, time.Since(start))
		h.Wait(b, time.Minute)
	}
	slices.Sort(stalls)
	b.ReportMetric(float64(stalls[len(stalls)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(stalls[len(stalls)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(stalls[len(stalls)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkRangeSince reads the entries written since a point in time, as
// replication's catch-up does after its change feed fell behind: 1000 new
// 1 KiB entries in a segment holding the 100k benchmark keys, read from
// every stripe whole (the baseline) or only since a watermark. ns/op is
// one read of all stripes.
func BenchmarkRangeSince(b *testing.B) {
	s, _ := benchFilled(b)
	val := make([]byte, benchValue)
	m := s.Watermark()
	for i := range 1000 {
		s.Set(benchKey(benchKeys+i), val, 0)
	}
	for _, since := range []*Watermark{nil, &m} {
		name := "read=whole"
		if since != nil {
			name = "read=since"
		}
		b.Run(name, func(b *testing.B) {
			o := RangeOptions{Origin: s.NodeID(), After: m.Clock, Since: since}
			for b.Loop() {
				n := 0
				for i := range s.Stripes() {
					if err := s.RangeWith(i, o, func(Entry) bool { n++; return true }); err != nil {
						b.Fatal(err)
					}
				}
				if n != 1000 {
					b.Fatalf("read %d entries, want 1000", n)
				}
			}
		})
	}
}
