package shm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

func init() {
	childRoles["opener"] = childOpener
	childRoles["holder"] = childHolder
}

// childOpener opens the segment named by GARDEN_PATH as soon as it is told
// to, stores its own key and prints the hash seed it sees.
func childOpener() int {
	in := bufio.NewReader(os.Stdin)
	in.ReadString('\n') // "go"
	s, err := Open(os.Getenv("GARDEN_PATH"), &Options{Size: 4 << 20, MaxValue: 4096})
	if err != nil {
		return childFail("open: %v", err)
	}
	defer s.Close()
	key := "opener-" + os.Getenv("GARDEN_ID")
	if err := s.Set([]byte(key), []byte(key), 0); err != nil {
		return childFail("set: %v", err)
	}
	fmt.Printf("seed %d\n", s.Info().HashSeed)
	return 0
}

func TestConcurrentCreate(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "seg")
		const n = 6
		var kids []*child
		for i := range n {
			kids = append(kids, startChild(t, "opener", "GARDEN_PATH="+path, fmt.Sprint("GARDEN_ID=", i)))
		}
		for _, k := range kids {
			k.Say("go")
		}
		seeds := map[string]bool{}
		for _, k := range kids {
			seeds[k.Expect(t, "seed ", 30*time.Second)] = true
			if code := k.Wait(t, 30*time.Second); code != 0 {
				t.Fatalf("child exit %d: %s", code, k.Stderr())
			}
		}
		if len(seeds) != 1 {
			t.Fatalf("round %d: children saw %d different segments: %v", round, len(seeds), seeds)
		}
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			key := fmt.Sprint("opener-", i)
			if !s.Has([]byte(key)) {
				t.Fatalf("round %d: %s missing: the children did not share one segment", round, key)
			}
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("leftover files next to the segment: %v", entries)
		}
		mustVerify(t, s)
		s.Close()
	}
}

// childHolder sets GARDEN_KEY and stops inside the write, holding the
// stripe lock, at the hook point GARDEN_POINT: it prints "holding" and
// waits for a line on stdin (or to be killed) before finishing.
func childHolder() int {
	s, err := Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	point := os.Getenv("GARDEN_POINT")
	in := bufio.NewReader(os.Stdin)
	testhooks.Shm = func(p string) {
		if p == point {
			fmt.Println("holding")
			in.ReadString('\n')
		}
	}
	if err := s.Set([]byte(os.Getenv("GARDEN_KEY")), []byte("from-holder"), 0); err != nil {
		return childFail("set: %v", err)
	}
	testhooks.Shm = nil
	fmt.Println("done")
	s.Close()
	return 0
}

// killHolder starts a holder child that writes "victim" and stops at
// point holding its stripe's lock, and SIGKILLs it there.
func killHolder(t *testing.T, path, point string) {
	t.Helper()
	h := startChild(t, "holder", "GARDEN_PATH="+path, "GARDEN_KEY=victim", "GARDEN_POINT="+point)
	h.Expect(t, "holding", 30*time.Second)
	h.Cmd.Process.Signal(syscall.SIGKILL)
	h.Wait(t, 30*time.Second)
}

// keyInStripe returns a key other than avoid that hashes to the same
// stripe as avoid, or, if other is true, to a different one.
func keyInStripe(s *Segment, avoid string, other bool) string {
	want := s.hash([]byte(avoid)) & s.stripeMask
	for i := 0; ; i++ {
		k := fmt.Sprint("probe-", i)
		if (s.hash([]byte(k))&s.stripeMask == want) != other {
			return k
		}
	}
}

func TestTakeoverFromKilledHolder(t *testing.T) {
	for _, point := range []string{"written", "advanced", "published"} {
		t.Run(point, func(t *testing.T) {
			s, path := openTest(t, testOptions())
			s.Set([]byte("victim"), []byte("before"), 0)
			neighbour := keyInStripe(s, "victim", false)
			s.Set([]byte(neighbour), []byte("neighbour"), 0)
			killHolder(t, path, point)

			// The stripe is locked by a dead process, mid-write: the next
			// writer takes it over and repairs it.
			if err := s.Set([]byte(neighbour), []byte("after"), 0); err != nil {
				t.Fatalf("Set on the dead holder's stripe: %v", err)
			}
			st := s.Stats()
			if st.Takeovers != 1 || st.Repairs != 1 {
				t.Fatalf("takeovers %d repairs %d, want 1 and 1", st.Takeovers, st.Repairs)
			}
			v, ok := s.Get(nil, []byte("victim"))
			switch point {
			case "written":
				// The record was complete but not yet in the log: the
				// interrupted Set never happened.
				if string(v) != "before" {
					t.Fatalf("victim = %q, %v; want the old value", v, ok)
				}
			default:
				// The whole record was in the log: repair keeps it.
				if string(v) != "from-holder" {
					t.Fatalf("victim = %q, %v; want the new value", v, ok)
				}
			}
			if v, _ := s.Get(nil, []byte(neighbour)); string(v) != "after" {
				t.Fatalf("neighbour = %q", v)
			}
			mustVerify(t, s)
		})
	}
}

func TestStoppedHolderIsNotTakenOver(t *testing.T) {
	opts := testOptions()
	s, path := openTest(t, opts)
	h := startChild(t, "holder", "GARDEN_PATH="+path, "GARDEN_KEY=victim", "GARDEN_POINT=advanced")
	h.Expect(t, "holding", 30*time.Second)
	if err := h.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// A second handle with a short lock timeout, so the wait is bounded.
	o2 := *opts
	o2.LockTimeout = 100 * time.Millisecond
	s2, err := Open(path, &o2)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	same := keyInStripe(s2, "victim", false)
	other := keyInStripe(s2, "victim", true)
	err = s2.Set([]byte(same), []byte("x"), 0)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Set on a stopped holder's stripe: %v, want ErrLockTimeout", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(h.Cmd.Process.Pid)) {
		t.Fatalf("timeout error does not name the holder's pid %d: %v", h.Cmd.Process.Pid, err)
	}
	if _, _, err := s2.Lookup(nil, []byte("victim")); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Lookup of the key being written by a stopped holder: %v, want ErrLockTimeout", err)
	}
	if err := s2.Set([]byte(other), []byte("y"), 0); err != nil {
		t.Fatalf("Set on another stripe while one is held: %v", err)
	}
	if st := s2.Stats(); st.Takeovers != 0 || st.LockTimeouts == 0 {
		t.Fatalf("stopped owner: takeovers %d (want 0), lock timeouts %d (want > 0)", st.Takeovers, st.LockTimeouts)
	}
	h.Cmd.Process.Signal(syscall.SIGCONT)
	h.Say("finish")
	h.Expect(t, "done", 30*time.Second)
	if code := h.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("holder exit %d: %s", code, h.Stderr())
	}
	if err := s2.Set([]byte(same), []byte("x"), 0); err != nil {
		t.Fatalf("Set after the holder resumed: %v", err)
	}
	if v, _ := s.Get(nil, []byte("victim")); string(v) != "from-holder" {
		t.Fatalf("the resumed holder's write = %q", v)
	}
	if st := s.Stats(); st.Takeovers != 0 || st.StaleUnlocks != 0 {
		t.Fatalf("takeovers %d stale unlocks %d, want 0", st.Takeovers, st.StaleUnlocks)
	}
	mustVerify(t, s)
}

// TestStaleUnlockIsHarmless covers the owner that comes back after its lock
// was taken over: its unlock must leave the new owner's lock alone.
func TestStaleUnlockIsHarmless(t *testing.T) {
	a, path := openTest(t, testOptions())
	b, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.lock(&a.stripes[0]); err != nil {
		t.Fatal(err)
	}
	// b takes the lock over as it would from a dead owner.
	b.stripes[0].lock.Store(b.owner)
	a.unlock(&a.stripes[0])
	if w := b.stripes[0].lock.Load(); w&ownerMask != b.owner {
		t.Fatalf("stale unlock changed the lock word to %#x", w)
	}
	if n := a.Stats().StaleUnlocks; n != 1 {
		t.Fatalf("stale unlocks %d, want 1", n)
	}
	b.unlock(&b.stripes[0])
	if w := b.stripes[0].lock.Load(); w != 0 {
		t.Fatalf("owner's unlock left %#x", w)
	}
}

func TestProcsListsAttached(t *testing.T) {
	s, path := openTest(t, testOptions())
	h := startChild(t, "holder", "GARDEN_PATH="+path, "GARDEN_KEY=k", "GARDEN_POINT=written")
	h.Expect(t, "holding", 30*time.Second)
	ps, err := s.Procs()
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for _, p := range ps {
		pids[p.PID] = true
	}
	if len(ps) != 2 || !pids[os.Getpid()] || !pids[h.Cmd.Process.Pid] {
		t.Fatalf("Procs = %+v, want this process and %d", ps, h.Cmd.Process.Pid)
	}
	h.Kill()
	testwait.For(t, 10*time.Second, "the killed process to leave Procs", func() bool {
		ps, _ = s.Procs()
		return len(ps) == 1
	})
}

// TestRingHoleFromDeadWriter: a writer killed after taking a change
// sequence number but before claiming it leaves a record nobody will
// write. The feed must not stop there: it reports a rescan and goes on.
func TestRingHoleFromDeadWriter(t *testing.T) {
	s, path := openTest(t, testOptions())
	from := s.LastSeq() + 1
	killHolder(t, path, "reserved")
	hole := from
	other := keyInStripe(s, "victim", true)
	if err := s.Set([]byte(other), []byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]Change, 16)
	n, next, err := s.ReadChanges(from, buf)
	if err != nil {
		t.Fatal(err)
	}
	var sawRescan, sawAfter bool
	for _, c := range buf[:n] {
		if c.Seq == hole && c.Kind == ChangeRescan && c.Stripe == -1 {
			sawRescan = true
		}
		if string(c.Key) == other && c.Kind == ChangeSet {
			sawAfter = true
		}
	}
	if !sawRescan || !sawAfter || next <= hole+1 {
		t.Fatalf("feed after a hole at %d: %+v, next %d; want a rescan there and the later set", hole, buf[:n], next)
	}
}

func TestMethodsAfterClose(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.Set([]byte("k"), []byte("v"), 0)
	s.Close()
	if _, ok := s.Get(nil, []byte("k")); ok {
		t.Fatal("Get after Close found the key")
	}
	if st := s.Stats(); st != (Stats{}) || s.StripeStats(0) != (Stats{}) {
		t.Fatal("Stats after Close not zero")
	}
	if s.LastSeq() != 0 || s.Acked() != 0 || s.Mark(0) != 0 || s.CompareAndSwapMark(0, 0, 1) {
		t.Fatal("ring methods after Close did something")
	}
	s.SetAcked(5)
	if _, _, err := s.ReadChanges(1, make([]Change, 4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadChanges after Close: %v", err)
	}
	if err := s.WaitAcked(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitAcked after Close: %v", err)
	}
	if _, err := s.Procs(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Procs after Close: %v", err)
	}
	if err := s.Range(0, func(Entry) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Range after Close: %v", err)
	}
	if err := s.Verify(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Verify after Close: %v", err)
	}
	// A watermark or the clock asked of a closed segment is empty, not a
	// fault.
	if m := s.Watermark(); m.Clock != 0 || len(m.stripes) != 0 {
		t.Fatalf("Watermark after Close = %+v", m)
	}
	if c := s.Clock(); c != 0 {
		t.Fatalf("Clock after Close = %d", c)
	}
}

// TestRingRecordMixedAcrossLapsIsRejected: a writer paused across a whole
// lap of the ring can write its fields into the newer record; the checksum
// makes readers report a gap rather than the mix.
func TestRingRecordMixedAcrossLapsIsRejected(t *testing.T) {
	s, _ := openTest(t, &Options{Size: 4 << 20, MaxValue: 4096, RingSize: 256})
	for i := range 300 {
		s.Set(fmt.Appendf(nil, "k%d", i), []byte("v"), 0)
	}
	seq := s.LastSeq()
	buf := make([]Change, 1)
	if n, _, err := s.ReadChanges(seq, buf); n != 1 || err != nil {
		t.Fatalf("reading the newest record: %d %v", n, err)
	}
	// The paused writer of the previous lap resumes and writes its key.
	off := s.ringRec(seq)
	copy(s.mem[off+32:], "stale-key-from-a-paused-writer")
	if _, _, err := s.ReadChanges(seq, buf); !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("mixed record: %v, want ErrGap naming the checksum", err)
	}
}

func init() { childRoles["writer"] = childWriter }

// childWriter stores GARDEN_KEY when told to.
func childWriter() int {
	s, err := Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer s.Close()
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	in.ReadString('\n')
	if err := s.Set([]byte(os.Getenv("GARDEN_KEY")), []byte("v"), 0); err != nil {
		return childFail("set: %v", err)
	}
	fmt.Println("done")
	return 0
}

// TestWaitChangesWakesAcrossProcesses: a tailer sleeping in WaitChanges is
// woken by another process's write, and times out when nothing comes.
func TestWaitChangesWakesAcrossProcesses(t *testing.T) {
	s, path := openTest(t, testOptions())
	next := s.LastSeq() + 1
	if s.WaitChanges(next, 20*time.Millisecond) {
		t.Fatal("WaitChanges reported a change nobody made")
	}
	w := startChild(t, "writer", "GARDEN_PATH="+path, "GARDEN_KEY=k")
	w.Expect(t, "ready", 30*time.Second)
	woke := make(chan bool)
	go func() { woke <- s.WaitChanges(next, time.Minute) }()
	w.Say("go")
	w.Expect(t, "done", 30*time.Second)
	select {
	case ok := <-woke:
		if !ok {
			t.Fatal("WaitChanges timed out")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitChanges was not woken by the write")
	}
}

func init() { childRoles["waiter"] = childWaiter }

// childWaiter attaches and sleeps in WaitChanges for a change nobody
// makes.
func childWaiter() int {
	s, err := Open(os.Getenv("GARDEN_PATH"), nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	go func() { // leave with the test binary, whose end closes stdin
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Println("ready")
	for {
		s.WaitChanges(s.LastSeq()+1<<40, time.Hour)
	}
}

// TestKilledWaiterCostsOneWake: a tailer killed while asleep in
// WaitChanges leaves its announcement behind; the next write clears it with
// one wake-up, and the writes after it make no system call for it.
func TestKilledWaiterCostsOneWake(t *testing.T) {
	s, path := openTest(t, testOptions())
	c := startChild(t, "waiter", "GARDEN_PATH="+path)
	c.Expect(t, "ready", 30*time.Second)
	testwait.For(t, 30*time.Second, "the waiter to sleep", func() bool { return s.waiters.Load() != 0 })
	c.Kill()
	w0 := s.ringWake.Load()
	for i := range 100 {
		if err := s.Set(fmt.Appendf(nil, "k%d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.ringWake.Load() - w0; n != 1 {
		t.Fatalf("100 writes after the waiter died made %d wake-ups, want 1", n)
	}
}

// TestRemoteChangesWakeNoTailer: changes applied from a peer wake a
// sleeping tailer at most every remoteWakeEvery (the agent has nothing to
// do with them but must read past them), a local write always. The futex
// word counts the wake-ups.
func TestRemoteChangesWakeNoTailer(t *testing.T) {
	s, _ := openTest(t, testOptions())
	s.remoteWakeEvery = time.Hour
	s.remoteWake.Store(int64(time.Since(s.mono0))) // one just happened
	s.waiters.Store(1)                             // as a tailer asleep in WaitChanges
	w0 := s.ringWake.Load()
	remote := Entry{Key: []byte("r"), Value: []byte("v"), Version: Version{Time: 1 << 40, Node: s.NodeID() + 1}, Expires: time.Now().Add(time.Minute)}
	if ok, err := s.Apply(remote); !ok || err != nil {
		t.Fatalf("Apply = %v, %v", ok, err)
	}
	if !s.MergeExpiry(remote.Key, remote.Version, time.Now().Add(time.Hour)) {
		t.Fatal("MergeExpiry did not extend")
	}
	if w := s.ringWake.Load(); w != w0 {
		t.Fatalf("changes from a peer woke the tailer %d times", w-w0)
	}
	if err := s.Set([]byte("l"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if w := s.ringWake.Load(); w == w0 {
		t.Fatal("a local write did not wake the tailer")
	}
	if n, _, err := s.ReadChanges(1, make([]Change, 8)); err != nil || n != 3 {
		t.Fatalf("ReadChanges: %d changes, %v; want 3", n, err)
	}
	// Once the interval has passed, the next applied change wakes it, and
	// the ones after it do not.
	s.remoteWake.Store(-int64(time.Hour))
	s.waiters.Store(1) // asleep again
	w1 := s.ringWake.Load()
	for i := range 100 {
		e := Entry{Key: fmt.Appendf(nil, "r%d", i), Value: []byte("v"), Version: Version{Time: 1<<40 + uint64(i), Node: s.NodeID() + 1}}
		if ok, err := s.Apply(e); !ok || err != nil {
			t.Fatalf("Apply = %v, %v", ok, err)
		}
	}
	if w := s.ringWake.Load(); w != w1+1 {
		t.Fatalf("100 changes from a peer woke the tailer %d times, want once", w-w1)
	}
}

// TestRingNumberBeingTaken: a writer that has taken a change sequence
// number and not yet claimed it (descheduled there, for instance) is
// waited for, not skipped as dead, however long it takes.
func TestRingNumberBeingTaken(t *testing.T) {
	s, _ := openTest(t, testOptions())
	next := s.LastSeq() + 1
	var n int
	var err error
	testhooks.Shm = func(p string) {
		if p == "reserved" {
			testhooks.Shm = nil
			n, _, err = s.ReadChanges(next, make([]Change, 4))
		}
	}
	if err := s.Set([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err != nil || n != 0 {
		t.Fatalf("ReadChanges while the writer takes its number: %d changes, %v; want none yet", n, err)
	}
	buf := make([]Change, 4)
	if n, _, err := s.ReadChanges(next, buf); err != nil || n != 1 || buf[0].Kind != ChangeSet {
		t.Fatalf("ReadChanges after the write: %+v, %v; want the set", buf[:n], err)
	}
}

// TestAbandonedTakingBound: a writer taking a ring number holds back
// skipping a hole only at or after the ring head it saw before taking: a
// hole before that is not its number.
func TestAbandonedTakingBound(t *testing.T) {
	s, _ := openTest(t, testOptions())
	head := s.ringHead.Add(1)
	hole := head - 1 // taken by a writer that died before claiming it
	taker := atomic64(s.stripes[1].ctl, layout.StPendingRing)
	taker.Store(layout.PendingTaking | head)
	if !s.abandoned(hole, head) {
		t.Fatal("a writer taking a number after the hole kept it from being skipped")
	}
	taker.Store(layout.PendingTaking | hole)
	if s.abandoned(hole, head) {
		t.Fatal("a hole a live writer may be taking was skipped")
	}
}
