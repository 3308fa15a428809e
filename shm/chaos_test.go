package shm

// The chaos test: worker processes do mixed Get/Set/Delete/Touch on one
// segment while the test SIGKILLs a random one, again and again, sometimes
// at a random instruction and sometimes while it provably holds a stripe
// lock in the middle of a write, and starts a replacement. It checks that
// nothing stalls, that no read is ever torn, that every acknowledged write
// survives, and that the segment verifies clean at the end.
//
// GARDEN_CHAOS_KILLS sets the number of kills (default: a short run).

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/internal/testseed"
)

func init() { childRoles["chaos"] = childChaos }

const chaosTTL = time.Hour

// chaosKeysPerWorker is how many keys each worker owns: more when the run
// is meant to overflow the segment.
var chaosKeysPerWorker = 48

// chaosMaxPayload bounds a value's random payload.
var chaosMaxPayload = 3000

func init() {
	if os.Getenv("GARDEN_EVICT") != "" {
		chaosKeysPerWorker, chaosMaxPayload = 96, 7000
	}
}

func chaosKey(worker, i int) string { return fmt.Sprintf("w%d-k%d", worker, i) }

// chaosValue is self-checking: hash | counter | key length | key | payload.
func chaosValue(rng *rand.Rand, key string, counter uint64) []byte {
	n := 8 + 8 + 1 + len(key) + rng.IntN(chaosMaxPayload)
	v := make([]byte, n)
	binary.LittleEndian.PutUint64(v[8:], counter)
	v[16] = byte(len(key))
	copy(v[17:], key)
	for i := 17 + len(key); i < n; i++ {
		v[i] = byte(rng.Uint32())
	}
	binary.LittleEndian.PutUint64(v[0:], xxhash.Sum64(v[8:]))
	return v
}

// checkValue returns the value's counter, or an error if it is torn or
// belongs to another key.
func checkValue(v []byte, key string) (uint64, error) {
	if len(v) < 17 || xxhash.Sum64(v[8:]) != binary.LittleEndian.Uint64(v) {
		return 0, fmt.Errorf("torn value for %s (%d bytes)", key, len(v))
	}
	if n := int(v[16]); 17+n > len(v) || string(v[17:17+n]) != key {
		return 0, fmt.Errorf("value for %s carries another key", key)
	}
	return binary.LittleEndian.Uint64(v[8:]), nil
}

// childChaos runs until killed. Protocol on stdout, one line per write:
//
//	B s|d <key index> <counter>   about to set / delete own key
//	D                             the last B is acknowledged
//	T <nanoseconds>               an operation that took over 1 ms
//	H                             holding a stripe lock (will block)
//	X <reason>                    a check failed (and exit 3)
func childChaos() int {
	worker, _ := strconv.Atoi(os.Getenv("GARDEN_WORKER"))
	workers, _ := strconv.Atoi(os.Getenv("GARDEN_WORKERS"))
	counter, _ := strconv.ParseUint(os.Getenv("GARDEN_COUNTER"), 10, 64)
	holdAt, _ := strconv.Atoi(os.Getenv("GARDEN_HOLD_AT")) // 0: never
	seed, _ := strconv.ParseUint(os.Getenv("GARDEN_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, uint64(worker)))
	s, err := Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	out := os.Stdout
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	points := []string{"written", "advanced", "published", "reserved"}
	if os.Getenv("GARDEN_EVICT") != "" {
		points = append(points, "relocate-copied", "relocate-repointed", "evicted")
	}
	holdPoint := points[rng.IntN(len(points))]
	var buf []byte
	for op := 1; ; op++ {
		if op == holdAt {
			testhooks.Shm = func(p string) {
				if p == holdPoint {
					say("H")
					// Hold the lock until killed. Should the parent go away
					// first, its end of stdin closes: leave, lock held.
					io.Copy(io.Discard, os.Stdin)
					os.Exit(childFail("stdin closed while holding a lock: the test is gone"))
				}
			}
		}
		start := time.Now()
		i := rng.IntN(chaosKeysPerWorker)
		key := chaosKey(worker, i)
		switch r := rng.IntN(100); {
		case r < 50: // read anyone's key
			w := rng.IntN(workers)
			k := chaosKey(w, rng.IntN(chaosKeysPerWorker))
			var ok bool
			buf, ok = s.Get(buf[:0], []byte(k))
			if ok {
				if _, err := checkValue(buf, k); err != nil {
					say("X %v", err)
					return 3
				}
			}
		case r < 80 || op == holdAt:
			counter++
			say("B s %d %d", i, counter)
			if err := s.Set([]byte(key), chaosValue(rng, key, counter), chaosTTL); err != nil {
				say("X set: %v", err)
				return 3
			}
			say("D")
		case r < 90:
			counter++
			say("B d %d %d", i, counter)
			s.Delete([]byte(key))
			say("D")
		default:
			s.Touch([]byte(key), chaosTTL)
		}
		if d := time.Since(start); d > time.Millisecond {
			say("T %d", d.Nanoseconds())
		}
	}
}

// keyState is what the test knows of one key: its value counter (0 when
// absent) as of the last acknowledged write, and what each write begun
// since by a worker killed before its acknowledgement may have made it.
// (Several pile up when successive workers owning the key are each killed
// in the middle of a write to it.)
type keyState struct {
	counter uint64
	maybe   []uint64
}

// holds reports whether the key may hold got.
func (ks *keyState) holds(got uint64) bool {
	return got == ks.counter || slices.Contains(ks.maybe, got)
}

type chaosWorker struct {
	c       *child
	slot    int
	pending *struct {
		key     int
		counter uint64 // 0 for delete
	}
	ops int
}

func chaosKills() int {
	if n, err := strconv.Atoi(os.Getenv("GARDEN_CHAOS_KILLS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 10
	}
	return 40
}

func TestChaosKill(t *testing.T) { chaosKill(t, false) }

// TestChaosKillEvicting runs the chaos test on a segment too small for the
// workers' data, so that writes evict, relocate and expire while workers
// are killed in the middle of it. Entries may then be gone, but never
// older than their last acknowledged write.
func TestChaosKillEvicting(t *testing.T) { chaosKill(t, true) }

func chaosKill(t *testing.T, evicting bool) {
	kills := chaosKills()
	seed := testseed.Seed(t)
	t.Logf("%d kills", kills)
	rng := rand.New(rand.NewPCG(seed, 0))
	opts := &Options{Size: 32 << 20, MaxValue: 8 << 10, LockTimeout: 30 * time.Second}
	var extraEnv []string
	if evicting {
		opts = &Options{Size: 1 << 20, MaxValue: 8 << 10, Stripes: 4, LockTimeout: 30 * time.Second}
		extraEnv = []string{"GARDEN_EVICT=1"}
		t.Setenv("GARDEN_EVICT", "1")
		chaosKeysPerWorker, chaosMaxPayload = 96, 7000
		t.Cleanup(func() { chaosKeysPerWorker, chaosMaxPayload = 48, 3000 })
	}
	s, path := openTest(t, opts)
	const nworkers = 3
	model := make([][]keyState, nworkers)
	for i := range model {
		model[i] = make([]keyState, chaosKeysPerWorker)
	}
	var counterBase uint64
	workers := make([]*chaosWorker, nworkers)
	// next waits for a line from any worker (cases[slot] is the worker in
	// slot's output, cases[nworkers] the stall timer); no line within
	// progressDeadline means the workers are stuck.
	const progressDeadline = 20 * time.Second
	cases := make([]reflect.SelectCase, nworkers+1)
	start := func(slot int, hold bool) {
		counterBase += 1 << 32
		holdAt := 0
		if hold {
			holdAt = 20 + rng.IntN(400)
		}
		c := startChild(t, "chaos", append([]string{"GARDEN_PATH=" + path, fmt.Sprint("GARDEN_WORKER=", slot),
			fmt.Sprint("GARDEN_WORKERS=", nworkers), fmt.Sprint("GARDEN_COUNTER=", counterBase),
			fmt.Sprint("GARDEN_HOLD_AT=", holdAt), fmt.Sprint("GARDEN_SEED=", rng.Uint64())}, extraEnv...)...)
		workers[slot] = &chaosWorker{c: c, slot: slot}
		cases[slot] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Lines)}
	}
	for i := range nworkers {
		start(i, rng.IntN(2) == 0)
	}
	var stalls []time.Duration
	// apply consumes one protocol line of worker w; it reports whether the
	// worker signalled that it holds a lock.
	apply := func(w *chaosWorker, line string) bool {
		f := strings.Fields(line)
		switch f[0] {
		case "B":
			k, _ := strconv.Atoi(f[2])
			c, _ := strconv.ParseUint(f[3], 10, 64)
			if f[1] == "d" {
				c = 0
			}
			w.pending = &struct {
				key     int
				counter uint64
			}{k, c}
		case "D":
			if w.pending == nil {
				t.Fatalf("worker %d: D without B", w.slot)
			}
			model[w.slot][w.pending.key] = keyState{counter: w.pending.counter}
			w.pending = nil
			w.ops++
		case "T":
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			stalls = append(stalls, time.Duration(ns))
		case "H":
			return true
		case "X":
			t.Fatalf("worker %d: %s", w.slot, line)
		}
		return false
	}
	stall := time.NewTimer(progressDeadline)
	defer stall.Stop()
	cases[nworkers] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stall.C)}
	next := func() (*chaosWorker, string) {
		i, v, ok := reflect.Select(cases)
		if i == nworkers {
			t.Fatalf("no worker made progress for %v (stall)", progressDeadline)
		}
		w := workers[i]
		if !ok {
			t.Fatalf("worker %d exited: %v\n%s", w.slot, w.c.Cmd.ProcessState, w.c.Stderr())
		}
		stall.Reset(progressDeadline)
		return w, v.String()
	}
	// reap kills w and takes in all it said; a write it began and did not
	// see acknowledged may or may not have happened.
	reap := func(w *chaosWorker) {
		w.c.Cmd.Process.Signal(syscall.SIGKILL)
		for l := range w.c.Lines {
			apply(w, l)
		}
		w.c.Wait(t, 30*time.Second)
		if p := w.pending; p != nil {
			st := &model[w.slot][p.key]
			st.maybe = append(st.maybe, p.counter)
		}
	}
	holdKills := 0
	for kill := 0; kill < kills; kill++ {
		// Let a random victim run until it has done `want` more writes,
		// serving every worker's output meanwhile. A worker that says it
		// holds a lock is killed at once, whoever it is.
		victim := workers[rng.IntN(nworkers)]
		opsBefore := victim.ops
		want := 5 + rng.IntN(200)
		for victim.ops-opsBefore < want {
			if w, l := next(); apply(w, l) {
				victim = w
				holdKills++
				break
			}
		}
		reap(victim)
		start(victim.slot, rng.IntN(2) == 0)
	}
	for _, w := range workers {
		reap(w)
	}

	if err := s.Verify(); err != nil {
		t.Fatalf("Verify after %d kills: %v", kills, err)
	}
	st := s.Stats()
	t.Logf("%d kills, %d of them while holding a stripe lock mid-write", kills, holdKills)
	if holdKills > 0 && st.Takeovers == 0 {
		t.Fatalf("%d lock holders were killed but no lock was taken over", holdKills)
	}
	t.Logf("stats: sets %d gets %d takeovers %d repairs %d dropped %d lock waits %d", st.Sets, st.Gets, st.Takeovers, st.Repairs, st.Dropped, st.LockWaits)
	if !evicting && (st.ForcedEvictions != 0 || st.Expirations != 0) {
		t.Fatalf("test segment too small: %d forced evictions, %d expirations", st.ForcedEvictions, st.Expirations)
	}
	if evicting && (st.ForcedEvictions == 0 || st.Relocations == 0) {
		t.Fatalf("the evicting run did not evict (%d) or relocate (%d)", st.ForcedEvictions, st.Relocations)
	}
	var buf []byte
	for w := range model {
		for i, ks := range model[w] {
			key := chaosKey(w, i)
			var got uint64
			v, ok := s.Get(buf[:0], []byte(key))
			if ok {
				var err error
				if got, err = checkValue(v, key); err != nil {
					t.Fatal(err)
				}
			}
			if evicting {
				// Evicted entries are gone, but what is there is the
				// last acknowledged write or one begun since: never an
				// older one, nor a deleted one come back.
				if ok && !ks.holds(got) {
					t.Errorf("%s: holds write %d, acknowledged write %d (unacknowledged since: %v)", key, got, ks.counter, ks.maybe)
				}
				continue
			}
			if !ks.holds(got) {
				t.Errorf("%s: holds write %d, acknowledged write %d (unacknowledged since: %v)", key, got, ks.counter, ks.maybe)
			}
		}
	}
	if len(stalls) > 0 {
		slices.Sort(stalls)
		t.Logf("operations over 1 ms: %d; p50 %v p99 %v max %v", len(stalls),
			stalls[len(stalls)/2], stalls[len(stalls)*99/100], stalls[len(stalls)-1])
	}
}
