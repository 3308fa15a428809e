// peer.go keeps the outbound data stream to one peer: it dials (and
// re-dials), sends the change feed in batches from a bounded queue, runs
// anti-entropy, and reads the peer's answers.

package replication

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
)

type peer struct {
	a    *Agent
	name string
	addr string

	queue  chan queued
	qBytes atomic.Int64
	wake   chan struct{}
	stop   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	conn     net.Conn
	control  []outFrame // frames other than batches, unbounded
	nextID   uint64
	inflight map[uint64]sentBatch
	acked    map[string]uint64 // app -> change-ring sequence acknowledged
	// lagFrom holds, for each app whose changes the peer missed and
	// which waits for anti-entropy, what the peer had acknowledged then.
	lagFrom   map[string]uint64
	aeWanted  bool
	ae        map[string]*aeSession // the comparison in flight per app
	aeAgain   map[string]bool       // another comparison was asked for while one was in flight
	connected bool
	stream    uint64  // streams connected so far: a comparison belongs to one
	lagEWMA   float64 // seconds from send to ack

	sent       atomic.Uint64
	ackedCount atomic.Uint64
	dropped    atomic.Uint64
}

type queued struct {
	b      *Batch
	size   int
	stream uint64 // a comparison's marker: the stream it compared over
}

type outFrame struct {
	t frameType
	v any
}

type sentBatch struct {
	app     string
	through uint64
	n       int
	at      time.Time
}

type aeSession struct {
	view     *appView // nil until the scan is done
	digest   *Digest  // the scan's digest, until writeSome sends it
	startSeq uint64
}

func newPeer(a *Agent, name, addr string) *peer {
	return &peer{
		a: a, name: name, addr: addr, queue: make(chan queued, 4096), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), inflight: map[uint64]sentBatch{}, acked: map[string]uint64{},
		lagFrom: map[string]uint64{}, ae: map[string]*aeSession{}, aeAgain: map[string]bool{},
	}
}

func (p *peer) close() {
	p.once.Do(func() {
		close(p.stop)
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
	})
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// enqueue queues a batch without ever blocking the change feed: a peer that
// cannot keep up loses batches and is marked for anti-entropy instead of
// growing memory.
func (p *peer) enqueue(q queued) {
	if p.qBytes.Load()+int64(q.size) > int64(p.a.cfg.QueueBytes) {
		p.drop(q.b.App)
		return
	}
	select {
	case p.queue <- q:
		p.qBytes.Add(int64(q.size))
	default:
		p.drop(q.b.App)
	}
}

func (p *peer) drop(app string) {
	p.dropped.Add(1)
	p.a.metrics.dropped.WithLabelValues(p.name).Inc()
	p.markLagging(app)
	p.requestAntiEntropy()
}

func (p *peer) markLagging(app string) {
	p.mu.Lock()
	p.setLagging(app)
	p.mu.Unlock()
}

// setLagging marks the peer as having missed changes of app. Called with
// p.mu held.
func (p *peer) setLagging(app string) {
	if _, ok := p.lagFrom[app]; !ok {
		p.lagFrom[app] = p.acked[app]
	}
}

// requestAntiEntropy asks for a comparison of every app with this peer as
// soon as the stream is up.
func (p *peer) requestAntiEntropy() {
	p.mu.Lock()
	p.aeWanted = true
	p.mu.Unlock()
	p.signal()
}

func (p *peer) sendControl(t frameType, v any) {
	p.mu.Lock()
	p.control = append(p.control, outFrame{t, v})
	p.mu.Unlock()
	p.signal()
}

// ackedThrough reports what the peer is known to hold of app's change
// feed, and whether the peer counts for the segment's acknowledged
// sequence: a connected one does. A peer that missed changes holds, for
// sure, only what it had acknowledged before, until the comparison that
// repairs it is acknowledged: its later acknowledgements skip what it
// missed.
func (p *peer) ackedThrough(app string) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from, ok := p.lagFrom[app]; ok {
		return from, p.connected // acked only grows: from is the lesser
	}
	return p.acked[app], p.connected
}

// run dials the peer and serves the stream until the peer is closed.
func (p *peer) run() {
	backoff := 50 * time.Millisecond
	for {
		err := p.session()
		select {
		case <-p.stop:
			return
		default:
		}
		p.a.log.Debug("stream to peer ended; redialling", "peer", p.name, "err", err, "in", backoff)
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session is one connection's life.
func (p *peer) session() error {
	ctx, cancel := context.WithTimeout(p.a.ctx, 5*time.Second)
	conn, err := p.a.tr.Dial(ctx, p.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.addr, err)
	}
	defer conn.Close()
	w := bufio.NewWriterSize(conn, 64<<10)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := p.a.writeHello(w); err != nil {
		return err
	}
	fr := &frameReader{r: bufio.NewReaderSize(conn, 64<<10)}
	t, msg, err := fr.next()
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", p.name, err)
	}
	switch m := msg.(type) {
	case *Refuse:
		p.a.log.Error("peer refused our stream", "peer", p.name, "reason", m.Reason)
		return fmt.Errorf("refused by %s: %s", p.name, m.Reason)
	case *Hello:
		if mm := compareMeta(p.a.meta, m.Meta); mm != nil {
			return fmt.Errorf("peer %s: %w", p.name, mm)
		}
	default:
		return fmt.Errorf("%w: %v before hello", ErrFrame, t)
	}
	conn.SetDeadline(time.Time{})

	p.mu.Lock()
	p.conn = conn
	p.connected = true
	p.stream++
	p.aeWanted = true // whatever happened while we were apart
	p.inflight = map[uint64]sentBatch{}
	for app := range p.a.apps {
		p.setLagging(app)
	}
	p.mu.Unlock()
	p.a.metrics.peerUp(p.name, true)
	defer func() {
		p.mu.Lock()
		p.conn = nil
		p.connected = false
		p.ae = map[string]*aeSession{}
		p.aeAgain = map[string]bool{}
		// Batches still queued as control frames are repair data of this
		// stream's comparisons, whose markers the next stream drops (see
		// writeBatch); its own comparison sends what is still missing.
		// Fetches may go.
		kept := p.control[:0]
		for _, f := range p.control {
			if f.t != frameBatch {
				kept = append(kept, f)
			}
		}
		p.control = kept
		p.mu.Unlock()
		p.a.metrics.peerUp(p.name, false)
	}()

	// The reader applies what the peer sends; it is done before the
	// session is, so that nothing is written to a segment after the
	// agent's Close has returned.
	readErr := make(chan error, 1)
	go func() {
		readErr <- p.readLoop(fr)
		close(readErr)
	}()
	defer func() {
		conn.Close() // ends the reader's wait for a frame
		for range readErr {
		}
	}()
	for {
		if err := p.writeSome(w); err != nil {
			return err
		}
		select {
		case <-p.stop:
			return nil
		case err := <-readErr:
			return err
		case <-p.wake:
		case q := <-p.queue:
			if err := p.writeBatch(w, q); err != nil {
				return err
			}
		}
	}
}

// writeSome writes pending control frames, starts anti-entropy when asked,
// and drains the queue, then flushes.
func (p *peer) writeSome(w *bufio.Writer) error {
	if err := p.writeControl(w); err != nil {
		return err
	}
	for {
		select {
		case q := <-p.queue:
			if err := p.writeBatch(w, q); err != nil {
				return err
			}
			continue
		default:
		}
		break
	}
	return w.Flush()
}

// writeControl starts anti-entropy when asked and writes pending control
// frames and digests, in one hold of p.mu.
func (p *peer) writeControl(w *bufio.Writer) error {
	p.mu.Lock()
	ctl := p.control
	p.control = nil
	if p.aeWanted {
		p.aeWanted = false
		for name, app := range p.a.apps {
			// One comparison per app at a time: the peer's answers carry
			// no session id, so a second one would take the first one's
			// answers for its own and never finish.
			if p.ae[name] != nil {
				p.aeAgain[name] = true
				continue
			}
			s := &aeSession{startSeq: app.processed.Load() - 1}
			p.ae[name] = s
			p.a.goRun(func() { p.startAntiEntropy(name, app, s) })
		}
	}
	var digests []*Digest
	for _, ae := range p.ae {
		if ae.digest != nil {
			digests = append(digests, ae.digest)
			ae.digest = nil
		}
	}
	p.mu.Unlock()
	for _, d := range digests {
		if err := writeFrame(w, frameDigest, d); err != nil {
			return err
		}
	}
	for _, f := range ctl {
		var err error
		if b, ok := f.v.(*Batch); ok {
			err = p.writeTracked(w, b)
		} else {
			err = writeFrame(w, f.t, f.v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeBatch writes a queued batch, after the control frames queued before
// it: a comparison's repair data must precede the marker that ends it,
// which is queued. A marker of a comparison over an earlier stream is
// dropped: its repair data may have been lost with that stream, and its
// acknowledgement would end the lagging this stream began with.
func (p *peer) writeBatch(w *bufio.Writer, q queued) error {
	p.qBytes.Add(-int64(q.size))
	if q.b.ID == markerID {
		p.mu.Lock()
		stale := q.stream != p.stream
		p.mu.Unlock()
		if stale {
			return nil
		}
	}
	if err := p.writeControl(w); err != nil {
		return err
	}
	if err := p.writeTracked(w, q.b); err != nil {
		return err
	}
	if w.Buffered() > 256<<10 {
		return w.Flush()
	}
	return nil
}

// writeTracked sends a batch under a fresh ID and remembers what its
// acknowledgement will mean. The batch may be shared between peers, so it
// is copied, not changed.
func (p *peer) writeTracked(w *bufio.Writer, b *Batch) error {
	n := len(b.Entries)
	if b.ID == markerID {
		n = -1
	}
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.inflight[id] = sentBatch{app: b.App, through: b.Through, n: n, at: time.Now()}
	p.mu.Unlock()
	out := *b
	out.ID = id
	if err := writeFrame(w, frameBatch, &out); err != nil {
		return err
	}
	p.sent.Add(uint64(len(b.Entries)))
	p.a.metrics.sent.WithLabelValues(p.name).Add(float64(len(b.Entries)))
	return nil
}

// startAntiEntropy scans the app for session s and leaves the digest for
// writeSome to send. It runs beside the stream, which keeps sending the
// change feed meanwhile: a scan of a large segment takes tens of
// milliseconds. The session's start sequence is what the peer will have
// acknowledged once the repair that follows is acknowledged. A session
// the stream dropped meanwhile (it ended) is forgotten with its digest;
// a scan that fails ends the stream, and the next one compares again.
func (p *peer) startAntiEntropy(name string, app *appState, s *aeSession) {
	view, err := scanApp(app.seg, p.a.cfg.local)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ae[name] != s {
		return
	}
	if err != nil {
		p.a.log.Warn("anti-entropy scan failed; reconnecting", "app", name, "peer", p.name, "err", err)
		if p.conn != nil {
			p.conn.Close()
		}
		return
	}
	s.view = view
	s.digest = &Digest{App: name, Buckets: view.digests[:]}
	p.a.metrics.aeRuns.WithLabelValues(p.name).Inc()
	p.signal()
}

// readLoop handles what the peer sends back on our stream.
func (p *peer) readLoop(fr *frameReader) error {
	for {
		t, msg, err := fr.next()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *Ack:
			p.onAck(m.ID)
		case *Keys:
			p.onKeys(m)
		case *Entries:
			if err := p.a.apply(m.App, m.Entries); err != nil {
				return err
			}
		case *Refuse:
			return fmt.Errorf("refused by %s: %s", p.name, m.Reason)
		default:
			return fmt.Errorf("%w: unexpected %v from %s", ErrFrame, t, p.name)
		}
	}
}

func (p *peer) onAck(id uint64) {
	p.mu.Lock()
	sb, ok := p.inflight[id]
	if !ok {
		p.mu.Unlock()
		return // not a batch this connection sent and tracks
	}
	delete(p.inflight, id)
	if sb.through > p.acked[sb.app] {
		p.acked[sb.app] = sb.through
	}
	if sb.n < 0 {
		delete(p.lagFrom, sb.app) // the anti-entropy repair is complete
	}
	lag := time.Since(sb.at).Seconds()
	p.lagEWMA = 0.9*p.lagEWMA + 0.1*lag
	p.mu.Unlock()
	p.ackedCount.Add(uint64(max(sb.n, 0)))
	p.a.metrics.ackLag.Observe(lag)
}

// onKeys compares one bucket with ours: sends what we hold newer and
// fetches what the peer holds newer. The last Keys frame of a session
// queues a marker batch whose acknowledgement ends the peer's lagging.
func (p *peer) onKeys(k *Keys) {
	p.mu.Lock()
	s := p.ae[k.App]
	stream := p.stream // a comparison in p.ae began on this stream
	var view *appView
	if s != nil {
		view = s.view
	}
	p.mu.Unlock()
	app := p.a.apps[k.App]
	if view == nil || app == nil {
		return // not an answer to a digest this stream sent
	}
	if k.Bucket >= 0 {
		send, fetch := diffBucket(view.keys[k.Bucket], k.Keys)
		if len(fetch) > 0 {
			p.sendControl(frameFetch, &Fetch{App: k.App, Keys: fetch})
			p.a.metrics.aeFetched.WithLabelValues(p.name).Add(float64(len(fetch)))
		}
		p.a.entriesFor(app, send, func(es []WireEntry, _ int) error {
			p.sendControl(frameBatch, &Batch{App: k.App, Entries: es})
			return nil
		})
		p.a.metrics.aeSent.WithLabelValues(p.name).Add(float64(len(send)))
	}
	if testhooks.Replication != nil {
		testhooks.Replication("keys-compared")
	}
	if k.Remaining == 0 {
		p.mu.Lock()
		// The session is still this comparison's: a stream's reader is
		// done before the next stream begins. Checked all the same, so
		// that a comparison never ends another one.
		current := p.ae[k.App] == s
		again := current && p.aeAgain[k.App]
		if current {
			delete(p.ae, k.App)
			delete(p.aeAgain, k.App)
		}
		p.mu.Unlock()
		if !current {
			return
		}
		if again {
			p.requestAntiEntropy()
		}
		// The marker claims every change through startSeq: it goes by
		// the queue, behind the change batches queued before the
		// comparison started (and the session loop writes the repair
		// data, queued as control frames, before any queued batch).
		p.enqueue(queued{b: &Batch{App: k.App, Through: s.startSeq, Entries: nil, ID: markerID}, stream: stream})
	}
}

// markerID marks, inside the agent, the batch that closes an anti-entropy
// session; on the wire it gets an ordinary ID.
const markerID = ^uint64(0)
