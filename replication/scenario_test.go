package replication

// Scenario tests on the in-memory network: random writes on several nodes,
// partitions, heals and dropped connections, ending with every node
// holding the same sessions, equal to the last-writer-wins model.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/internal/testseed"
	"github.com/gardenstate/gardenstate/internal/testseg"
	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

var testKey = bytes.Repeat([]byte{7}, KeySize)

func quietLogger() *slog.Logger {
	if os.Getenv("GARDEN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type memNodeT struct {
	name  string
	seg   *shm.Segment
	agent *Agent
}

func newMemFarm(t *testing.T, net *MemNetwork, names ...string) []*memNodeT {
	return newMemFarmOpts(t, net, func(*Config) {}, names...)
}

func newMemFarmOpts(t *testing.T, net *MemNetwork, opt func(*Config), names ...string) []*memNodeT {
	return newMemFarmSeg(t, net, shm.Options{Size: 8 << 20, MaxValue: 16 << 10}, opt, names...)
}

// newMemFarmSeg is newMemFarmOpts with the nodes' segment options (NodeID
// and App are set per node).
func newMemFarmSeg(t *testing.T, net *MemNetwork, so shm.Options, opt func(*Config), names ...string) []*memNodeT {
	var nodes []*memNodeT
	for i, name := range names {
		so.NodeID, so.App = uint32(i+1), "app"
		seg, err := shm.Open(filepath.Join(t.TempDir(), name), &so)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { seg.Close() })
		meta := NodeMeta{Protocol: ProtocolVersion, Cluster: "test", KeyFP: keyFingerprint(testKey), Apps: []AppMeta{appMeta("app", seg)}}
		tr, mem, _ := net.Node(name, meta)
		cfg := Config{
			NodeName: name, Cluster: "test", Key: testKey, Apps: map[string]*shm.Segment{"app": seg},
			Transport: tr, Membership: mem, Logger: quietLogger(), AntiEntropyInterval: 200 * time.Millisecond,
		}
		opt(&cfg)
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(time.Second) })
		nodes = append(nodes, &memNodeT{name: name, seg: seg, agent: a})
	}
	return nodes
}

// warmUp replicates one write from a to b and waits until the comparisons
// every new stream starts with, both ways, are over with none asked for
// again, so that a test can count the comparisons it causes.
func warmUp(t *testing.T, a, b *memNodeT) {
	t.Helper()
	settled := func(n *memNodeT) bool {
		ps := n.agent.peerList()
		if len(ps) != 1 {
			return false
		}
		p := ps[0]
		p.mu.Lock()
		defer p.mu.Unlock()
		_, lagging := p.lagFrom["app"]
		return p.connected && !lagging && len(p.ae) == 0 && len(p.aeAgain) == 0 && !p.aeWanted
	}
	a.seg.Set([]byte("warmup"), []byte("x"), time.Hour)
	testwait.For(t, 10*time.Second, "warm-up replication", func() bool {
		return b.seg.Has([]byte("warmup")) && settled(a) && settled(b)
	})
}

// counterSum adds up the counters of one family in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// lwwModel keeps, for every key, the newest write made anywhere.
type lwwModel map[string]shm.Entry

func (m lwwModel) record(e shm.Entry) {
	if old, ok := m[string(e.Key)]; !ok || old.Version.Less(e.Version) {
		m[string(e.Key)] = e
	}
}

// converged reports how the nodes differ from the model (empty when they
// agree).
func converged(nodes []*memNodeT, model lwwModel) string {
	for _, n := range nodes {
		for k, want := range model {
			got, ok := n.seg.GetEntry(nil, []byte(k))
			switch {
			case want.Deleted && (!ok || got.Deleted):
			case !ok:
				return fmt.Sprintf("%s lacks %s (want %v)", n.name, k, want.Version)
			case got.Version != want.Version || got.Deleted != want.Deleted || !bytes.Equal(got.Value, want.Value):
				return fmt.Sprintf("%s has %s at %v (deleted %v), want %v (deleted %v)", n.name, k, got.Version, got.Deleted, want.Version, want.Deleted)
			}
		}
	}
	return ""
}

func waitConverged(t *testing.T, nodes []*memNodeT, model lwwModel, d time.Duration) {
	t.Helper()
	var diff string
	if !testwait.Until(d, func() bool {
		diff = converged(nodes, model)
		return diff == ""
	}) {
		t.Fatalf("timed out after %v waiting for convergence: %s", d, diff)
	}
}

// write does a random Set or Delete on a random node and records it.
func write(rng *rand.Rand, nodes []*memNodeT, model lwwModel, keys int) {
	n := nodes[rng.IntN(len(nodes))]
	k := fmt.Appendf(nil, "session-%d", rng.IntN(keys))
	if rng.IntN(10) == 0 {
		if n.seg.Delete(k) {
			e, _ := n.seg.GetEntry(nil, k)
			model.record(shm.Entry{Key: k, Version: e.Version, Deleted: true})
		}
		return
	}
	v := fmt.Appendf(nil, "%s@%s#%d", k, n.name, rng.Uint64())
	ver, err := n.seg.Put(k, v, shm.PutOptions{TTL: time.Hour})
	if err != nil {
		panic(err)
	}
	model.record(shm.Entry{Key: k, Value: v, Version: ver})
}

func TestScenarioReplicates(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 1))
	net := NewMemNetwork(rng.Uint64())
	nodes := newMemFarm(t, net, "a", "b", "c")
	model := lwwModel{}
	for range 500 {
		write(rng, nodes, model, 100)
	}
	waitConverged(t, nodes, model, 20*time.Second)
}

func TestScenarioPartitionsAndHeals(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	net := NewMemNetwork(rng.Uint64())
	names := []string{"a", "b", "c", "d"}
	nodes := newMemFarm(t, net, names...)
	model := lwwModel{}
	for round := range 6 {
		// Split the farm at random, write on both sides, heal.
		perm := rng.Perm(len(names))
		cut := 1 + rng.IntN(len(names)-1)
		var left, right []string
		for i, p := range perm {
			if i < cut {
				left = append(left, names[p])
			} else {
				right = append(right, names[p])
			}
		}
		net.Partition(left, right)
		if round%2 == 1 {
			net.SetDropRate(0.01)
		}
		for range 200 {
			write(rng, nodes, model, 60)
		}
		net.SetDropRate(0)
		net.Heal()
		for range 50 {
			write(rng, nodes, model, 60)
		}
	}
	waitConverged(t, nodes, model, 30*time.Second)
}

func TestScenarioNodeDownAndBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	net := NewMemNetwork(rng.Uint64())
	nodes := newMemFarm(t, net, "a", "b", "c")
	model := lwwModel{}
	for range 100 {
		write(rng, nodes, model, 50)
	}
	net.SetDown("c", true)
	for range 300 {
		write(rng, nodes[:2], model, 50) // c is unreachable; writes go to a and b
	}
	net.SetLatency(200 * time.Microsecond)
	net.SetDown("c", false)
	waitConverged(t, nodes, model, 30*time.Second)
}

// gapFarm starts nodes a and b on segments of size bytes whose change ring
// (256 records) writes soon overtake, with no periodic comparison, so that
// only the catch-up from the segment can repair the loss; each node's
// metrics go to its own registry. extra, if not nil, adjusts the config.
func gapFarm(t *testing.T, net *MemNetwork, size int64, extra func(*Config)) ([]*memNodeT, map[string]*prometheus.Registry) {
	t.Helper()
	regs := map[string]*prometheus.Registry{}
	nodes := newMemFarmSeg(t, net, shm.Options{Size: size, MaxValue: 16 << 10, RingSize: 256}, func(c *Config) {
		c.AntiEntropyInterval = time.Hour
		regs[c.NodeName] = prometheus.NewRegistry()
		c.Registerer = regs[c.NodeName]
		if extra != nil {
			extra(c)
		}
	}, "a", "b")
	return nodes, regs
}

// TestFeedGapCaughtUpFromSegment: when writes overtake the change ring,
// the agent sends what changed from the segment itself, without comparing
// with its peer, and the peer ends up with every write and delete.
func TestFeedGapCaughtUpFromSegment(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 5))
	net := NewMemNetwork(rng.Uint64())
	nodes, regs := gapFarm(t, net, 16<<20, nil)
	a, b := nodes[0], nodes[1]
	sumOn := func(node, name string) float64 { return counterSum(t, regs[node], name) }
	sum := func(name string) float64 { return sumOn("a", name) }
	// The feed has read a change (the loss is dated from it).
	warmUp(t, a, b)
	runs := sum("gardenstate_antientropy_runs_total")
	runsB := sumOn("b", "gardenstate_antientropy_runs_total")

	const keys = 4000
	val := make([]byte, 200)
	written := 0
	for round := 0; sum("gardenstate_replication_feed_gaps_total") == 0; round++ {
		if round == 50 {
			t.Fatalf("%d writes never overtook a ring of 256 changes", written)
		}
		for i := range keys {
			k := fmt.Appendf(nil, "k%d", rng.IntN(keys))
			if i%7 == 0 {
				a.seg.Delete(k)
				continue
			}
			val[0] = byte(round)
			if err := a.seg.Set(k, val, time.Hour); err != nil {
				t.Fatal(err)
			}
			written++
		}
	}
	model := lwwModel{}
	for i := range keys {
		if e, ok := a.seg.GetEntry(nil, fmt.Appendf(nil, "k%d", i)); ok {
			model.record(e)
		}
	}
	waitConverged(t, nodes, model, 30*time.Second)
	t.Logf("%d writes, %.0f feed gaps", written, sum("gardenstate_replication_feed_gaps_total"))
	if n := sum("gardenstate_antientropy_runs_total") - runs; n != 0 {
		t.Fatalf("%.0f comparisons ran: the lost changes should have been sent from the segment (peers %+v)", n, a.agent.Peers().Members)
	}
	if p := a.agent.Peers().Members; len(p) != 1 || p[0].State != "alive" || p[0].Dropped != 0 {
		t.Fatalf("peer %+v, want alive with nothing dropped", p)
	}
	// b had nothing of its own to send: if its feed fell behind on the
	// changes it applied, catching up found nothing, and asked no one.
	if n := sumOn("b", "gardenstate_antientropy_runs_total") - runsB; n != 0 {
		t.Fatalf("b ran %.0f comparisons (its feed fell behind %.0f times)", n, sumOn("b", "gardenstate_replication_feed_gaps_total"))
	}
}

// TestFeedGapsWhileWriting: a writer that keeps overtaking the ring while
// the agent catches up from the segment (each catch-up slowed by the
// peer's queue) loses nothing, and sends each write about once. A
// catch-up that finds, in a stripe it scans late, a write newer than the
// writes made meanwhile to stripes it had passed must not date the next
// gap from that write.
func TestFeedGapsWhileWriting(t *testing.T) {
	net := NewMemNetwork(testseed.Seed(t))
	nodes, regs := gapFarm(t, net, 32<<20, func(c *Config) { c.QueueBytes, c.BatchEntries = 1<<20, 32 })
	a, b := nodes[0], nodes[1]
	gaps := func() float64 { return counterSum(t, regs["a"], "gardenstate_replication_feed_gaps_total") }
	warmUp(t, a, b)
	runs := counterSum(t, regs["a"], "gardenstate_antientropy_runs_total")
	sent0 := a.agent.Peers().Members[0].Sent
	net.SetLatency(200 * time.Microsecond)

	// New keys only, so that a lost write is never covered by a later one.
	val := make([]byte, 200)
	model := lwwModel{}
	const maxKeys = 60000
	n := 0
	for ; n < maxKeys && (n%1000 != 0 || n < 20000 || gaps() < 6); n++ {
		k := fmt.Appendf(nil, "k%d", n)
		if err := a.seg.Set(k, val, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	net.SetLatency(0)
	for i := range n {
		if e, ok := a.seg.GetEntry(nil, fmt.Appendf(nil, "k%d", i)); ok {
			model.record(e)
		}
	}
	if len(model) != n {
		t.Fatalf("a holds %d of its %d keys: the segment is too small for the test", len(model), n)
	}
	waitConverged(t, nodes, model, 30*time.Second)
	t.Logf("%d writes, %.0f feed gaps", n, gaps())
	if gaps() < 2 {
		t.Fatalf("%d writes overtook the ring %.0f times, want at least 2", n, gaps())
	}
	if r := counterSum(t, regs["a"], "gardenstate_antientropy_runs_total") - runs; r != 0 {
		t.Fatalf("%.0f comparisons ran: the lost changes should have been sent from the segment (peers %+v)", r, a.agent.Peers().Members)
	}
	// Each write is sent about once: a catch-up leaves out what the tail
	// or an earlier catch-up sent. (A write that took its version just
	// as a gap was handled may go twice.)
	if sent := a.agent.Peers().Members[0].Sent - sent0; sent > uint64(n)*101/100 {
		t.Fatalf("%d entries sent for %d writes", sent, n)
	}
}

// TestWatermarks: the tail's watermarks stay few while the clock moves and
// the floor does not (a host that mostly receives), and the one a catch-up
// gets is the newest no later than its floor.
func TestWatermarks(t *testing.T) {
	seg, err := shm.Open(filepath.Join(testseg.Dir(t), "seg"), &shm.Options{Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	seg.Set([]byte("local"), []byte("v"), 0)
	floor := seg.Clock()
	var w watermarks
	w.update(seg, floor)
	remote := shm.Version{Time: floor, Node: seg.NodeID() + 1}
	for i := range 2000 {
		remote.Time += markEvery
		if _, err := seg.Apply(shm.Entry{Key: fmt.Appendf(nil, "r%d", i), Value: []byte("v"), Version: remote}); err != nil {
			t.Fatal(err)
		}
		w.update(seg, floor)
		if len(w.ms) > maxMarks {
			t.Fatalf("%d watermarks kept after %d remote entries", len(w.ms), i+1)
		}
	}
	if m := w.before(floor); m == nil || m.Clock > floor {
		t.Fatalf("no watermark at or before the floor %d: %v", floor, m)
	}
	// As the floor moves on, the catch-up gets the newest one before it.
	floor = w.ms[len(w.ms)-2].Clock
	w.update(seg, floor)
	if m := w.before(floor); m == nil || m.Clock != floor {
		t.Fatalf("before(%d) = %v, want the watermark taken then", floor, m)
	}
}

// TestSentLog: a catch-up leaves out an entry only if it was sent at the
// same version with the same deadline, and only within its floor.
func TestSentLog(t *testing.T) {
	var l sentLog
	set := WireEntry{Key: []byte("k"), Time: 100, Expires: 5}
	del := WireEntry{Key: []byte("d"), Time: 120, Deleted: true}
	l.add(&set)
	l.add(&del)
	m := l.since(50)
	if !m.has(&set) || !m.has(&del) {
		t.Fatalf("since(50) = %v: lacks what was sent", m)
	}
	touched := set
	touched.Expires = 9 // extended after it was sent: the extension may be lost
	if m.has(&touched) {
		t.Fatal("an entry whose deadline moved counts as sent")
	}
	if newer := (WireEntry{Key: []byte("k"), Time: 130, Expires: 5}); m.has(&newer) {
		t.Fatal("a newer version counts as sent")
	}
	if m := l.since(100); m.has(&set) || !m.has(&del) {
		t.Fatalf("since(100) = %v, want only time 120", m)
	}
	l.forget(110)
	if m := l.since(0); m.has(&set) || !m.has(&del) {
		t.Fatalf("after forget(110): %v, want only time 120", m)
	}
}

// TestStalledPeerMemoryBounded: a peer that stops reading costs a bounded
// queue, not memory that grows with the writes; once it reads again,
// anti-entropy brings it up to date.
func TestStalledPeerMemoryBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 4))
	net := NewMemNetwork(rng.Uint64())
	// No periodic anti-entropy: catching up must come from the comparisons
	// that drops and gaps ask for, even when they overlap.
	nodes := newMemFarmOpts(t, net, func(c *Config) { c.QueueBytes = 1 << 20; c.AntiEntropyInterval = time.Hour }, "a", "b")
	a, b := nodes[0], nodes[1]
	// Both streams up first: b can pull the warm-up write over its own
	// stream before a's has finished its handshake, and a handshake that
	// meets the pause waits for its deadline, with the peer "connecting".
	warmUp(t, a, b)
	net.SetPaused("b", true)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	val := make([]byte, 2048)
	// 32 MiB through a 1 MiB queue; 1.2 MiB of live data, more than the
	// queue holds even after a catch-up from the segment, and that fits
	// every stripe.
	const writes, keys = 16000, 600
	for i := range writes {
		if err := a.seg.Set(fmt.Appendf(nil, "k%d", i%keys), val, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, "the feed to reach the end of the ring", func() bool {
		return a.agent.apps["app"].processed.Load() > a.seg.LastSeq()
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	var queued int64
	var dropped uint64
	for _, p := range a.agent.peerList() {
		queued += p.qBytes.Load()
		dropped += p.dropped.Load()
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("queued %d bytes, dropped %d batches, heap grew %d KiB", queued, dropped, grew>>10)
	if queued > 2<<20 {
		t.Fatalf("queue holds %d bytes, bound is 1 MiB", queued)
	}
	// The changes that did not fit went by the wayside: dropped from the
	// queue or overtaken in the change ring. Either way the peer is
	// marked as behind, for anti-entropy to catch up.
	if st := a.agent.Peers().Members; len(st) != 1 || st[0].State != "catching-up" {
		t.Fatalf("peer state %+v, want catching-up", st)
	}
	if grew > 16<<20 {
		t.Fatalf("heap grew by %d MiB while the peer stalled", grew>>20)
	}
	net.SetPaused("b", false)
	model := lwwModel{}
	for i := range keys {
		k := fmt.Appendf(nil, "k%d", i)
		e, ok := a.seg.GetEntry(nil, k)
		if !ok {
			t.Fatalf("%s missing on a", k)
		}
		model.record(e)
	}
	waitConverged(t, nodes, model, 30*time.Second)
	testwait.For(t, 10*time.Second, "the peer to be in sync again", func() bool {
		p := a.agent.Peers().Members
		return len(p) == 1 && p[0].State == "alive"
	})
}

// TestCloseStopsApplyingToAHeldStripe: a closing agent does not go on
// applying, entry after entry, to a stripe a live process holds (each
// would wait the segment's lock timeout before Close could return).
func TestCloseStopsApplyingToAHeldStripe(t *testing.T) {
	const entries = 50
	var armed atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	testhooks.Shm = func(p string) {
		if p == "written" && armed.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	}
	t.Cleanup(func() { testhooks.Shm = nil })
	var failed atomic.Int64
	logger := slog.New(countingHandler{msg: "cannot apply entry from peer", n: &failed})
	so := shm.Options{Size: 8 << 20, MaxValue: 16 << 10, Stripes: 1, LockTimeout: 200 * time.Millisecond}
	nodes := newMemFarmSeg(t, NewMemNetwork(1), so, func(c *Config) { c.Logger = logger; c.AntiEntropyInterval = time.Hour }, "a", "b")
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before the segments close, which waits for the holder

	// This process holds a's only stripe, as a stopped worker would.
	armed.Store(true)
	holder := make(chan error, 1)
	go func() { holder <- a.seg.Set([]byte("held"), []byte("x"), time.Hour) }()
	<-held
	for i := range entries {
		if err := b.seg.Set(fmt.Appendf(nil, "k%d", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 10*time.Second, "an entry to time out on the held stripe", func() bool { return failed.Load() > 0 })
	a.agent.Close(time.Second)
	if n := failed.Load(); n >= entries/2 {
		t.Fatalf("%d of %d entries waited out the lock timeout before Close returned", n, entries)
	}
	free()
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
}

// countingHandler counts the records with one message and drops the rest.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }
