package shm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/internal/testseed"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// rangeAll reads every stripe with o: key -> entry.
func rangeAll(t *testing.T, s *Segment, o RangeOptions) map[string]Entry {
	t.Helper()
	got := map[string]Entry{}
	for i := range s.Stripes() {
		if err := s.RangeWith(i, o, func(e Entry) bool {
			if _, dup := got[string(e.Key)]; dup {
				t.Fatalf("%q visited twice", e.Key)
			}
			got[string(e.Key)] = e
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func sameEntries(a, b map[string]Entry) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d entries against %d", len(a), len(b))
	}
	for k, x := range a {
		y, ok := b[k]
		switch {
		case !ok:
			return fmt.Errorf("%q missing", k)
		case x.Version != y.Version || x.Deleted != y.Deleted || !x.Expires.Equal(y.Expires) || !bytes.Equal(x.Value, y.Value):
			return fmt.Errorf("%q: %v %v %v against %v %v %v", k, x.Version, x.Deleted, x.Expires, y.Version, y.Deleted, y.Expires)
		}
	}
	return nil
}

// sinceDiffers reads what o selects twice, since watermark m and from
// whole stripes, and says how the two differ (nil if they do not).
func sinceDiffers(t *testing.T, s *Segment, m Watermark, o RangeOptions) error {
	t.Helper()
	want := rangeAll(t, s, o)
	o.Since = &m
	return sameEntries(rangeAll(t, s, o), want)
}

// followed reports whether stripe st's log can be followed from its place
// in watermark m (a read since m would not fall back to the whole stripe).
func followed(t *testing.T, s *Segment, st *stripe, m Watermark) bool {
	t.Helper()
	var c collected
	walked, err := s.readSince(st, RangeOptions{After: m.Clock, Since: &m}, time.Now().UnixNano(), &c)
	if err != nil {
		t.Fatal(err)
	}
	return walked
}

// TestRangeSince: reading what was placed after a watermark visits exactly
// what reading whole stripes does, while the logs wrap, live records are
// moved to the head or evicted, and entries from another node (some with
// versions ahead of the local clock) arrive. And it does follow the logs.
func TestRangeSince(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	s, _ := openTest(t, &Options{Size: 2 << 20, MaxValue: 8 << 10, Stripes: 8, App: "test"})
	key := func() []byte { return fmt.Appendf(nil, "key-%d", rng.IntN(1500)) }
	other := s.NodeID() + 1
	var marks []Watermark
	for round := range 40 {
		for range 200 {
			k := key()
			switch r := rng.IntN(100); {
			case r < 55:
				ttl := time.Duration(0)
				if rng.IntN(2) == 0 {
					ttl = time.Hour
				}
				if err := s.Set(k, bytes.Repeat([]byte{byte(round)}, rng.IntN(4<<10)), ttl); err != nil {
					t.Fatal(err)
				}
			case r < 65:
				s.Delete(k)
			case r < 75:
				s.Touch(k, 2*time.Hour)
			default:
				// Up to a second behind or ahead of the local clock.
				v := Version{Time: s.Clock() - 1<<16*500 + rng.Uint64N(1<<16*1000), Node: other}
				if _, err := s.Apply(Entry{Key: k, Value: []byte("remote"), Version: v}); err != nil {
					t.Fatal(err)
				}
			}
			if rng.IntN(50) == 0 {
				marks = append(marks, s.Watermark())
			}
		}
		if len(marks) > 6 {
			marks = marks[len(marks)-6:]
		}
		for _, m := range marks {
			for _, o := range []RangeOptions{
				{After: m.Clock},
				{After: m.Clock, Origin: s.NodeID()},
				{After: m.Clock + rng.Uint64N(1<<20), KeysOnly: true},
				{After: m.Clock, Until: m.Clock + rng.Uint64N(1<<20)},
			} {
				if err := sinceDiffers(t, s, m, o); err != nil {
					t.Fatalf("seed %d round %d, %+v: since the watermark: %v", seed, round, o, err)
				}
			}
			for i := range s.stripes {
				if !followed(t, s, &s.stripes[i], m) {
					t.Fatalf("seed %d round %d: stripe %d's log could not be followed from its watermark", seed, round, i)
				}
			}
		}
	}
	if len(marks) == 0 {
		t.Fatal("no watermark taken")
	}
	if st := s.Stats(); st.Relocations == 0 || st.Evictions == 0 {
		t.Fatalf("the logs never wrapped: %d relocations, %d evictions", st.Relocations, st.Evictions)
	}
	mustVerify(t, s)
}

// TestRangeSinceFallsBack: an After earlier than the watermark's clock
// ignores the watermark, and a stripe mended since it was taken is read
// whole.
func TestRangeSinceFallsBack(t *testing.T) {
	s, _ := openTest(t, testOptions())
	old, _ := s.Put([]byte("old"), []byte("v"), PutOptions{})
	m := s.Watermark()
	s.Set([]byte("new"), []byte("v"), 0)
	if got := rangeAll(t, s, RangeOptions{After: old.Time - 1, Since: &m}); len(got) != 2 {
		t.Fatalf("After earlier than the watermark: %d entries, want old and new", len(got))
	}
	if got := rangeAll(t, s, RangeOptions{After: m.Clock, Since: &m}); len(got) != 1 || got["new"].Key == nil {
		t.Fatalf("since the watermark: %v, want new", got)
	}
	st := s.stripeOf(s.hash([]byte("new")))
	st.ctr(layout.StCorruptions).Add(1)
	if followed(t, s, st, m) {
		t.Fatal("a stripe mended since its watermark was followed from it")
	}
	if got := rangeAll(t, s, RangeOptions{After: m.Clock, Since: &m}); len(got) != 1 || got["new"].Key == nil {
		t.Fatalf("after a repair: %v, want new", got)
	}
}

// TestRangeSinceAfterTakeover takes a watermark, then has a process
// killed in the middle of a write. The read since the watermark takes the
// dead process's stripe over, which repairs it, so it must read that stripe
// whole rather than follow its log from the watermark; it finds what a
// whole read finds, the killed process's completed write included.
func TestRangeSinceAfterTakeover(t *testing.T) {
	s, path := openTest(t, testOptions())
	s.Set([]byte("victim"), []byte("before"), 0)
	neighbour := keyInStripe(s, "victim", false)
	m := s.Watermark()
	s.Set([]byte(neighbour), []byte("since"), 0)
	killHolder(t, path, "advanced")

	got := rangeAll(t, s, RangeOptions{After: m.Clock, Since: &m})
	if st := s.Stats(); st.Takeovers != 1 || st.Repairs != 1 {
		t.Fatalf("takeovers %d repairs %d, want 1 and 1: the read did not take the stripe over", st.Takeovers, st.Repairs)
	}
	if _, ok := got["victim"]; !ok || len(got) != 2 {
		t.Fatalf("since the watermark: %d entries, victim found %v; want the neighbour's and the killed write", len(got), ok)
	}
	if err := sameEntries(got, rangeAll(t, s, RangeOptions{After: m.Clock})); err != nil {
		t.Fatalf("since the watermark against the whole read: %v", err)
	}
	st := s.stripeOf(s.hash([]byte("victim")))
	if followed(t, s, st, m) {
		t.Fatal("a stripe repaired after its watermark was followed from it")
	}
	if v, _ := s.Get(nil, []byte("victim")); string(v) != "from-holder" {
		t.Fatalf("victim = %q, want the killed process's completed write", v)
	}
	mustVerify(t, s)
}

// TestRangeSinceWhileAnotherProcessWrites takes watermarks while another
// process writes (filling the segment over and over), then checks that
// each one finds what reading whole stripes finds: a write in flight when
// a watermark is taken is after it or has a version no later than its
// clock.
func TestRangeSinceWhileAnotherProcessWrites(t *testing.T) {
	s, path := openTest(t, &Options{Size: 16 << 20, MaxValue: 64 << 10})
	c := startChild(t, "mix", "GARDEN_PATH="+path, "GARDEN_SEED=1")
	c.Expect(t, "ready", time.Minute)
	stop, taken := make(chan struct{}), make(chan []Watermark)
	go func() {
		// Keep a uniform sample of 40 of the watermarks taken.
		var ms []Watermark
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; ; n++ {
			select {
			case <-stop:
				taken <- ms
				return
			default:
			}
			if m := s.Watermark(); len(ms) < 40 {
				ms = append(ms, m)
			} else if i := rng.IntN(n + 1); i < len(ms) {
				ms[i] = m
			}
		}
	}()
	c.Say("go 300000")
	c.Expect(t, "done", 2*time.Minute)
	close(stop)
	marks := <-taken
	c.CloseInput()
	c.Wait(t, time.Minute)
	if st := s.Stats(); st.Evictions == 0 {
		t.Fatalf("the writer never filled the segment: %+v", st)
	}
	for _, m := range marks {
		if err := sinceDiffers(t, s, m, RangeOptions{After: m.Clock}); err != nil {
			t.Fatalf("watermark at %v: %v", m.Clock, err)
		}
	}
	mustVerify(t, s)
}

// TestWatermarkOrder: a write that completes while a watermark is being
// taken, after its log positions are read, has a version no later than
// its clock: reading since the watermark may leave it out.
func TestWatermarkOrder(t *testing.T) {
	s, _ := openTest(t, testOptions())
	for i := range 20 {
		s.Set(fmt.Appendf(nil, "k%d", i), []byte("v"), 0)
	}
	testhooks.Shm = func(p string) {
		if p == "watermark" {
			s.Set([]byte("racer"), []byte("v"), 0)
		}
	}
	m := s.Watermark()
	testhooks.Shm = nil
	if err := sinceDiffers(t, s, m, RangeOptions{After: m.Clock}); err != nil {
		t.Fatal(err)
	}
}
