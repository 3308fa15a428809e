// agent.go is the host agent: it tails every app's change ring, ships the
// changes to the peers membership reports, applies what peers send, and
// runs anti-entropy.

package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/gardenstate/gardenstate/shm"
)

// Agent replicates a host's segments to the other hosts of its farm.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	apps    map[string]*appState
	meta    NodeMeta
	tr      Transport
	ln      net.Listener
	mem     Membership
	gossip  *gossip
	metrics *metrics
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	peers   map[string]*peer
	inbound map[net.Conn]bool
	closed  bool
}

type appState struct {
	name string
	seg  *shm.Segment
	// processed is the change-ring sequence before which every change has
	// been handed to the peers' queues.
	processed atomic.Uint64
	// rescan asks the agent to compare this app with every peer.
	rescan chan struct{}
}

// New checks cfg and prepares an agent; Start runs it.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), apps: map[string]*appState{},
		peers: map[string]*peer{}, inbound: map[net.Conn]bool{},
	}
	a.meta = NodeMeta{Protocol: ProtocolVersion, Cluster: cfg.Cluster, KeyFP: keyFingerprint(cfg.Key)}
	for name, seg := range cfg.Apps {
		a.apps[name] = &appState{name: name, seg: seg, rescan: make(chan struct{}, 1)}
		a.meta.Apps = append(a.meta.Apps, appMeta(name, seg))
	}
	slices.SortFunc(a.meta.Apps, func(x, y AppMeta) int { return strings.Compare(x.Name, y.Name) })
	a.metrics = newMetrics(a, cfg.Registerer)
	return a, nil
}

// Start opens the data listener, joins membership and starts replicating.
// It returns once the agent is running; Close stops it.
func (a *Agent) Start() error {
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.started = time.Now()
	a.tr = a.cfg.Transport
	if a.tr == nil {
		tc := a.cfg.TLS
		if tc == nil {
			var err error
			if tc, err = FarmTLS(a.cfg.Key); err != nil {
				return err
			}
		}
		addr := a.cfg.DataAddr
		if addr == "" {
			port := 7948
			if a.cfg.Gossip.BindPort == 0 {
				port = 0
			}
			addr = net.JoinHostPort(a.cfg.Gossip.BindAddr, strconv.Itoa(port))
		}
		a.tr = &TCPTransport{Addr: addr, TLS: tc}
	}
	ln, err := a.tr.Listen()
	if err != nil {
		return fmt.Errorf("replication: listen for data streams: %w", err)
	}
	a.ln = ln
	a.meta.DataAddr = ln.Addr().String()
	if a.cfg.AdvertiseData != "" {
		a.meta.DataAddr = a.cfg.AdvertiseData
	}
	a.mem = a.cfg.Membership
	if a.mem == nil {
		g, err := newGossip(a.cfg.NodeName, a.cfg.Cluster, a.cfg.Key, a.cfg.Gossip, a.meta, a.log, a.metrics.refused)
		if err != nil {
			ln.Close()
			return err
		}
		a.gossip, a.mem = g, g
	}
	for _, app := range a.apps {
		// Changes made before this start reach the peers by anti-entropy
		// on join; the feed starts here.
		app.processed.Store(app.seg.LastSeq() + 1)
		a.goRun(func() { a.tail(app) })
	}
	a.goRun(a.acceptLoop)
	a.goRun(a.memberLoop)
	a.goRun(a.ackLoop)
	a.log.Info("agent started", "data", a.meta.DataAddr, "cluster", a.cfg.Cluster, "apps", len(a.apps))
	return nil
}

func (a *Agent) goRun(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// GossipAddr returns the membership address peers join (empty when
// membership is not gossip).
func (a *Agent) GossipAddr() string {
	if a.gossip == nil {
		return ""
	}
	return a.gossip.Addr()
}

// DataAddr returns where this agent's data streams listen.
func (a *Agent) DataAddr() string { return a.meta.DataAddr }

// Close leaves the farm gracefully (within timeout) and stops the agent.
func (a *Agent) Close(timeout time.Duration) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	err := a.mem.Leave(timeout)
	a.cancel()
	a.ln.Close()
	a.mu.Lock()
	for _, p := range a.peers {
		p.close()
	}
	for c := range a.inbound {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	a.metrics.unregister()
	return err
}

// memberLoop keeps one outbound stream per live peer.
func (a *Agent) memberLoop() {
	tick := time.NewTicker(a.cfg.AntiEntropyInterval)
	defer tick.Stop()
	for {
		a.syncPeers()
		select {
		case <-a.ctx.Done():
			return
		case <-a.mem.Changed():
		case <-tick.C:
			a.mu.Lock()
			for _, p := range a.peers {
				p.requestAntiEntropy()
			}
			a.mu.Unlock()
		}
	}
}

func (a *Agent) syncPeers() {
	members := a.mem.Members()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	live := map[string]bool{}
	for _, m := range members {
		live[m.Name] = true
		if p, ok := a.peers[m.Name]; ok && p.addr == m.Meta.DataAddr {
			continue
		} else if ok {
			p.close()
		}
		p := newPeer(a, m.Name, m.Meta.DataAddr)
		a.peers[m.Name] = p
		a.goRun(p.run)
		a.log.Info("peer joined", "peer", m.Name, "data", m.Meta.DataAddr)
	}
	for name, p := range a.peers {
		if !live[name] {
			p.close()
			delete(a.peers, name)
			a.log.Info("peer left", "peer", name)
		}
	}
}

func (a *Agent) peerList() []*peer {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		out = append(out, p)
	}
	return out
}

// tail follows one app's change ring and hands local changes to the peers.
func (a *Agent) tail(app *appState) {
	buf := make([]shm.Change, 1024)
	// The expiry last sent per key (by a hash of the key: a collision can
	// only hold back one touch until the next set), for TouchMinDelta.
	lastTouch := map[uint64]int64{}
	var scratch []byte
	var batch *Batch
	var bytes int
	// data holds the keys and values of the entries sent: a chunk is
	// allocated per few hundred entries rather than twice per entry, and
	// the batches that point into a chunk keep it alive.
	var data []byte
	flush := func(through uint64) {
		if batch == nil {
			batch = &Batch{App: app.name}
		}
		batch.Through = through
		a.broadcast(batch, bytes)
		batch, bytes = nil, 0
	}
	// newest dates what a gap may have lost: the latest version time of a
	// local change read from the ring, or the clock read at the last gap,
	// and to begin with the segment's clock (what came before, the comparison every
	// new stream starts with covers).
	newest := app.seg.Clock()
	var recent sentLog
	var marks watermarks
	repairs := app.seg.Stats().Repairs
	for {
		from := app.processed.Load()
		n, next, err := app.seg.ReadChanges(from, buf)
		if errors.Is(err, shm.ErrGap) {
			a.metrics.gaps.WithLabelValues(app.name).Inc()
			// A write takes its version, then its ring slot. Every
			// change from head on took its version after clock (less
			// catchUpMargin), so a later gap need go back no further
			// (not to the newest version the catch-up finds: a stripe it
			// scans late may hold a write newer than writes made
			// meanwhile to stripes it had passed). Every change before
			// head took its version by clock, so what is newer the tail
			// reads from the ring and the catch-up leaves out.
			head := app.seg.LastSeq() + 1
			clock := app.seg.Clock()
			// A stripe repaired after its writer died completes the
			// writer's change with the version it took then, which a
			// catch-up dates too old to send: compare with the peers too.
			if r := app.seg.Stats().Repairs; r != repairs {
				repairs = r
				a.rescanAll(app)
			}
			floor := catchUpFloor(newest)
			sent, cerr := a.catchUp(app, floor, clock, from-1, &recent, marks.before(floor))
			if cerr != nil {
				a.log.Warn("change feed fell behind; comparing with every peer", "app", app.name, "err", err, "catch_up_err", cerr)
				a.rescanAll(app) // and go on from the oldest change kept
			} else {
				a.log.Warn("change feed fell behind; sent what changed from the segment itself", "app", app.name, "err", err, "entries", sent)
				flush(head - 1)
				app.processed.Store(head)
				newest = clock
				if a.ctx.Err() != nil {
					return
				}
				continue
			}
		} else if errors.Is(err, shm.ErrClosed) {
			return
		}
		for _, c := range buf[:n] {
			if c.Remote {
				continue
			}
			newest = max(newest, c.Version.Time)
			switch c.Kind {
			case shm.ChangeRescan:
				a.rescanAll(app)
				repairs = app.seg.Stats().Repairs // this comparison covers them
				continue
			case shm.ChangeExpire:
				continue
			}
			if a.cfg.local(c.Key) {
				continue
			}
			if cap(data)-len(data) < 16<<10 {
				data = make([]byte, 0, 256<<10)
			}
			// A touch sends no value: read it into scratch, which the
			// next touch reuses; a set's value goes into data.
			touch := c.Kind == shm.ChangeTouch
			dst := data[len(data):]
			if touch {
				dst = scratch[:0]
			}
			e, ok := app.seg.GetEntry(dst, c.Key)
			if touch {
				scratch = e.Value[:0]
			}
			if !ok || e.Version != c.Version {
				continue // gone since, or a newer change follows
			}
			w := toWire(e)
			h := xxhash.Sum64(c.Key)
			if touch {
				if last, ok := lastTouch[h]; ok && w.Expires-last < int64(a.cfg.TouchMinDelta) {
					continue
				}
				w.Value = nil
				w.Touch = true
			} else if len(e.Value) <= cap(data)-len(data) {
				data = data[:len(data)+len(e.Value)] // read in place
			}
			if w.Expires != 0 {
				if len(lastTouch) > 1<<17 {
					clear(lastTouch)
				}
				lastTouch[h] = w.Expires
			}
			// c.Key is reused by the next read.
			if len(c.Key) <= cap(data)-len(data) {
				w.Key = append(data, c.Key...)[len(data):]
				data = data[:len(data)+len(c.Key)]
			} else {
				w.Key = slices.Clone(c.Key)
			}
			if batch == nil {
				batch = &Batch{App: app.name}
			}
			batch.Entries = append(batch.Entries, w)
			bytes += wireSize(&w)
			if !touch {
				recent.add(&w)
			}
			if len(batch.Entries) >= a.cfg.BatchEntries || bytes >= a.cfg.BatchBytes {
				flush(c.Seq)
			}
		}
		floor := catchUpFloor(newest)
		recent.forget(floor)
		marks.update(app.seg, floor)
		if next > from {
			flush(next - 1)
			app.processed.Store(next)
		}
		if n == len(buf) {
			continue
		}
		if n == 0 {
			if app.seg.LastSeq() >= next {
				// The record at next is still being written.
				time.Sleep(100 * time.Microsecond)
			} else {
				// Sleep until a writer wakes us (or now and then, to
				// notice that the agent is closing).
				app.seg.WaitChanges(next, 50*time.Millisecond)
			}
		}
		if a.ctx.Err() != nil {
			return
		}
	}
}

// broadcast queues a batch for every peer that should hold its keys.
func (a *Agent) broadcast(b *Batch, size int) {
	_, all := a.cfg.Placement.(AllHosts)
	for _, p := range a.peerList() {
		out := b
		if !all {
			out = &Batch{App: b.App, Through: b.Through}
			for _, e := range b.Entries {
				if a.cfg.Placement.Holds(p.name, b.App, e.Key) {
					out.Entries = append(out.Entries, e)
				}
			}
		}
		p.enqueue(queued{b: out, size: size})
	}
}

// catchUpMargin is how much older than the newest change read from the
// ring a change lost with the ring may be. A write takes its version and
// then its ring slot in one hold of its stripe's lock, so writers on other
// stripes can enter the ring in a slightly different order than their
// versions; the margin covers a writer held up between the two for this
// long. One held up longer, in the same moment the ring overtakes the
// agent, is repaired by the next periodic anti-entropy.
const catchUpMargin = 50 << 16 // 50 ms of version time

// catchUpFloor is the version time after which a catch-up sends what
// changed, given the newest change read.
func catchUpFloor(newest uint64) uint64 { return newest - min(newest, catchUpMargin) }

// catchUp replaces the change records the ring lost (the tail read through
// seq before them): it sends every local entry of app whose version time
// is after floor and not after until, read from the segment itself, in
// batches that claim nothing past seq. The entries are far fewer than a
// comparison with every peer would move, and nothing waits on the peers'
// answers. What a version cannot tell is not sent: an expiry extension
// lost with the ring reaches the peers with the session's next write or
// extension. The segment is read from watermark since (nil: all of it),
// which must be no later than floor. It returns how many entries it sent.
func (a *Agent) catchUp(app *appState, floor, until, seq uint64, recent *sentLog, since *shm.Watermark) (sent int, err error) {
	already := recent.since(floor)
	stalled := map[*peer]bool{}
	b := a.batcher(func(es []WireEntry, size int) error {
		a.waitForRoom(size, stalled)
		a.broadcast(&Batch{App: app.name, Through: seq, Entries: es}, size)
		for i := range es {
			recent.add(&es[i])
		}
		sent += len(es)
		return nil
	})
	// The scan copies the local entries in the window, values included;
	// those already sent are dropped after the copy.
	o := shm.RangeOptions{Origin: app.seg.NodeID(), After: floor, Until: until, Since: since}
	for i := range app.seg.Stripes() {
		err := app.seg.RangeWith(i, o, func(e shm.Entry) bool {
			w := toWire(e)
			if !already.has(&w) && !a.cfg.local(e.Key) {
				b.add(w) // emit above never fails
			}
			return true
		})
		if err != nil {
			return sent, err
		}
	}
	b.flush()
	return sent, nil
}

// watermarks are segment watermarks the tail takes as it goes, oldest
// first, so that a catch-up reads only what was placed after the newest
// one no later than its floor, not every entry of the segment.
type watermarks struct{ ms []shm.Watermark }

// markEvery is how much version time passes between watermarks: a
// catch-up reads back at most this much further than its floor.
const markEvery = catchUpMargin / 5

// maxMarks bounds the watermarks kept. The floor moves with local changes
// only, and the clock with remote ones too: on a host that mostly receives,
// watermarks would pile up past the floor.
const maxMarks = int(catchUpMargin/markEvery) + 2

// update takes a watermark if the newest is markEvery old, and drops those
// no catch-up will use again: later floors are not earlier than floor.
// Beyond maxMarks it drops the second oldest: the oldest may be the only
// one no later than floor, and any kept is correct, only later ones
// cheaper.
func (w *watermarks) update(seg *shm.Segment, floor uint64) {
	if n := len(w.ms); n == 0 || seg.Clock()-w.ms[n-1].Clock >= markEvery {
		w.ms = append(w.ms, seg.Watermark())
	}
	for len(w.ms) > 1 && w.ms[1].Clock <= floor {
		w.ms = w.ms[1:]
	}
	if len(w.ms) > maxMarks {
		w.ms = append(w.ms[:1], w.ms[2:]...)
	}
}

// before returns the newest watermark no later than floor, or nil.
func (w *watermarks) before(floor uint64) *shm.Watermark {
	var m *shm.Watermark
	for i := range w.ms {
		if w.ms[i].Clock <= floor {
			m = &w.ms[i]
		}
	}
	return m
}

// sentLog holds the versions and deadlines of the local entries the tail
// sent lately, in about the order sent. A version time names one write of
// this node, so a catch-up can leave out what was sent at the same version
// with the same deadline: at high write rates, most of what its margin
// covers. (An entry whose deadline moved since goes again: the extension
// may have been lost with the ring.) Touches are not logged: one carries
// the version of a write that may not have been sent.
type sentLog struct{ sent []sentMark }

type sentMark struct {
	time    uint64
	expires int64
}

func (l *sentLog) add(w *WireEntry) { l.sent = append(l.sent, sentMark{w.Time, w.Expires}) }

// forget drops the marks up to floor from the front: no catch-up looks
// back that far. (A catch-up logs out of order, so a few older marks may
// stay a while behind a newer one; the log is only ever a hint, and is cut
// back outright if it grows beyond 1M marks.)
func (l *sentLog) forget(floor uint64) {
	i := 0
	for i < len(l.sent) && l.sent[i].time <= floor {
		i++
	}
	if len(l.sent)-i > 1<<20 {
		i = len(l.sent) - 1<<19
	}
	l.sent = l.sent[i:]
}

// since returns what was sent with version times after floor.
func (l *sentLog) since(floor uint64) sentSet {
	m := make(sentSet, len(l.sent))
	for _, s := range l.sent {
		if s.time > floor {
			m[s.time] = s.expires
		}
	}
	return m
}

// sentSet maps version times to the deadline last sent with them.
type sentSet map[uint64]int64

// has reports whether w was sent as it is.
func (m sentSet) has(w *WireEntry) bool {
	exp, ok := m[w.Time]
	return ok && exp == w.Expires
}

// waitForRoom paces a catch-up, which reads far faster than a stream
// sends: it waits until every peer's queue is half empty enough for size
// more bytes. A peer whose queue does not shrink for a second is not
// reading; it joins stalled and is not waited for again (its queue then
// drops, which marks it for anti-entropy, as for any batch).
func (a *Agent) waitForRoom(size int, stalled map[*peer]bool) {
	limit := int64(a.cfg.QueueBytes/2 - size)
	for _, p := range a.peerList() {
		if stalled[p] {
			continue
		}
		low, since := p.qBytes.Load(), time.Now()
		for q := low; q > limit; q = p.qBytes.Load() {
			if q < low {
				low, since = q, time.Now()
			}
			if time.Since(since) > time.Second {
				stalled[p] = true
				break
			}
			if a.ctx.Err() != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
}

func (a *Agent) rescanAll(app *appState) {
	for _, p := range a.peerList() {
		p.markLagging(app.name)
		p.requestAntiEntropy()
	}
}

// ackLoop writes, for every app, the sequence through which every
// connected peer has acknowledged the change feed.
func (a *Agent) ackLoop() {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		peers := a.peerList()
		for _, app := range a.apps {
			through := app.processed.Load() - 1
			for _, p := range peers {
				if acked, counted := p.ackedThrough(app.name); counted && acked < through {
					through = acked
				}
			}
			app.seg.SetAcked(through)
		}
	}
}

// apply stores entries received from a peer. It stops early only when the
// agent is closing, and then returns the context's error: the entries
// are not all stored, so they must not be acknowledged.
func (a *Agent) apply(appName string, es []WireEntry) error {
	app := a.apps[appName]
	if app == nil {
		return nil
	}
	applied := 0
	defer func() { a.metrics.applied.WithLabelValues(appName).Add(float64(applied)) }()
	for _, w := range es {
		if a.cfg.local(w.Key) {
			continue
		}
		if w.Touch {
			if app.seg.MergeExpiry(w.Key, shm.Version{Time: w.Time, Node: w.Node}, timeOrZero(w.Expires)) {
				applied++
			} else if cerr := a.ctx.Err(); cerr != nil {
				return cerr // as below; a touch that did not apply may have waited
			}
			continue
		}
		ok, err := app.seg.Apply(fromWire(w))
		if err != nil {
			// A stripe held by a stopped process costs each entry on it
			// the segment's lock timeout; a closing agent does not wait
			// for the rest.
			if cerr := a.ctx.Err(); cerr != nil {
				return cerr
			}
			a.log.Warn("cannot apply entry from peer", "app", appName, "err", err)
			continue
		}
		if ok {
			applied++
		}
	}
	return nil
}

func timeOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Fetch makes sure the local copy of key is at least version want: it asks
// every connected peer for the key and waits until it arrives or ctx ends.
// garden calls it (through the admin API) when a request's cookie names a
// newer version than the local one: read-your-writes without sticky
// sessions.
func (a *Agent) Fetch(ctx context.Context, appName string, key []byte, want shm.Version) error {
	app := a.apps[appName]
	if app == nil {
		return fmt.Errorf("replication: no app %q", appName)
	}
	have := func() bool {
		e, ok := app.seg.GetEntry(nil, key)
		return ok && !e.Version.Less(want)
	}
	if have() {
		return nil
	}
	for _, p := range a.peerList() {
		p.sendControl(frameFetch, &Fetch{App: appName, Keys: [][]byte{key}})
	}
	t := time.NewTicker(500 * time.Microsecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication: version %v of the key did not arrive: %w", want, ctx.Err())
		case <-t.C:
			if have() {
				return nil
			}
		}
	}
}
