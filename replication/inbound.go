// inbound.go serves the streams peers open to this agent: it checks their
// hello, applies their batches and acknowledges them, answers digests with
// the keys of differing buckets, and answers fetches.

package replication

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
)

func (a *Agent) acceptLoop() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if a.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("accept failed", "err", err)
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.inbound[c] = true
		a.mu.Unlock()
		a.goRun(func() {
			defer func() {
				a.mu.Lock()
				delete(a.inbound, c)
				a.mu.Unlock()
				c.Close()
			}()
			if err := a.serve(c); err != nil && a.ctx.Err() == nil {
				a.log.Debug("inbound stream ended", "remote", c.RemoteAddr(), "err", err)
			}
		})
	}
}

// serve runs one inbound stream.
func (a *Agent) serve(c net.Conn) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 64<<10)
	// Every message is done with before the next is read: batches are
	// applied (copied into the segment) in this loop.
	fr := &frameReader{r: r, alias: true}
	w := bufio.NewWriterSize(c, 64<<10)
	t, msg, err := fr.next()
	if err != nil {
		if isTLSKeyError(err) {
			a.metrics.refused(Refused{Addr: c.RemoteAddr().String(), Reason: "data stream: farm key differs", At: time.Now()})
		}
		return err
	}
	h, ok := msg.(*Hello)
	if !ok {
		return fmt.Errorf("%w: %v before hello", ErrFrame, t)
	}
	if mm := compareMeta(a.meta, h.Meta); mm != nil {
		a.metrics.refused(Refused{Name: h.Node, Addr: c.RemoteAddr().String(), Reason: mm.Error(), At: time.Now()})
		writeFrame(w, frameRefuse, &Refuse{Reason: mm.Error()})
		w.Flush()
		return mm
	}
	if err := a.writeHello(w); err != nil {
		return err
	}
	c.SetDeadline(time.Time{})
	// Answers to digests are written beside the loop, which goes on
	// applying batches while the segment is scanned; wmu orders the
	// writers of w.
	var wmu sync.Mutex
	reply := func(write func() error) error {
		wmu.Lock()
		defer wmu.Unlock()
		err := write()
		if err == nil && r.Buffered() == 0 {
			err = w.Flush()
		}
		return err
	}
	for {
		t, msg, err := fr.next()
		if errors.Is(err, ErrFrame) {
			a.log.Warn("bad frame from peer; closing stream", "peer", h.Node, "err", err)
		}
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *Batch:
			if err = a.apply(m.App, m.Entries); err == nil {
				err = reply(func() error { return writeFrame(w, frameAck, &Ack{ID: m.ID}) })
			}
		case *Digest:
			a.goRun(func() {
				if err := a.answerDigest(w, &wmu, m); err != nil {
					c.Close() // the loop's next read fails and ends the stream
				}
			})
			// Writes nothing; flushes what the loop wrote before, if
			// nothing follows.
			err = reply(func() error { return nil })
		case *Fetch:
			err = reply(func() error { return a.answerFetch(w, m) })
		default:
			err = fmt.Errorf("%w: unexpected %v from %s", ErrFrame, t, h.Node)
		}
		if err != nil {
			return err
		}
	}
}

// writeHello sends this agent's Hello, which opens every stream in both
// directions.
func (a *Agent) writeHello(w *bufio.Writer) error {
	if err := writeFrame(w, frameHello, &Hello{Node: a.cfg.NodeName, Meta: a.meta}); err != nil {
		return err
	}
	return w.Flush()
}

// answerDigest sends our keys of every bucket whose digest differs,
// taking wmu for each frame it writes to w.
func (a *Agent) answerDigest(w *bufio.Writer, wmu *sync.Mutex, d *Digest) error {
	if testhooks.Replication != nil {
		testhooks.Replication("digest")
	}
	var frames []*Keys
	if app := a.apps[d.App]; app != nil {
		view, err := scanApp(app.seg, a.cfg.local)
		if err != nil {
			return err
		}
		for i := range digestBuckets {
			if view.digests[i] != d.Buckets[i] {
				frames = append(frames, &Keys{App: d.App, Bucket: i, Keys: view.keys[i]})
			}
		}
	}
	if len(frames) == 0 {
		frames = []*Keys{{App: d.App, Bucket: -1}} // nothing differs
	}
	for n, k := range frames {
		k.Remaining = len(frames) - 1 - n
	}
	// wmu is taken per frame so that acks can go between them; the acks'
	// writer flushes what is buffered, the last frame flushes here.
	for i, k := range frames {
		wmu.Lock()
		err := writeFrame(w, frameKeys, k)
		if err == nil && i == len(frames)-1 {
			err = w.Flush()
		}
		wmu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// answerFetch sends the entries asked for that we hold, in frames of at
// most BatchBytes.
func (a *Agent) answerFetch(w *bufio.Writer, f *Fetch) error {
	app := a.apps[f.App]
	sent := false
	err := a.entriesFor(app, f.Keys, func(es []WireEntry, _ int) error {
		sent = true
		return writeFrame(w, frameEntries, &Entries{App: f.App, Entries: es})
	})
	if err != nil || sent {
		return err
	}
	return writeFrame(w, frameEntries, &Entries{App: f.App}) // nothing found: say so
}

// entriesFor reads the entries of keys that app holds (leaving out
// host-local keys) and hands them to emit in batches (see batcher).
func (a *Agent) entriesFor(app *appState, keys [][]byte, emit func(es []WireEntry, size int) error) error {
	if app == nil {
		return nil
	}
	b := a.batcher(emit)
	for _, k := range keys {
		if a.cfg.local(k) {
			continue
		}
		if e, ok := app.seg.GetEntry(nil, k); ok {
			if err := b.add(toWire(e)); err != nil {
				return err
			}
		}
	}
	return b.flush()
}

// batcher cuts a run of entries into batches of at most BatchEntries
// entries and BatchBytes bytes (by wireSize), handing each to emit with
// its size.
type batcher struct {
	maxEntries, maxBytes int
	emit                 func(es []WireEntry, size int) error
	es                   []WireEntry
	size                 int
}

func (a *Agent) batcher(emit func(es []WireEntry, size int) error) *batcher {
	return &batcher{maxEntries: a.cfg.BatchEntries, maxBytes: a.cfg.BatchBytes, emit: emit}
}

func (b *batcher) add(w WireEntry) error {
	n := wireSize(&w)
	if len(b.es) > 0 && (len(b.es) >= b.maxEntries || b.size+n > b.maxBytes) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.es = append(b.es, w)
	b.size += n
	return nil
}

// flush emits what is pending.
func (b *batcher) flush() error {
	if len(b.es) == 0 {
		return nil
	}
	es, size := b.es, b.size
	b.es, b.size = nil, 0
	return b.emit(es, size)
}

func isTLSKeyError(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "farm key differs") || strings.Contains(err.Error(), "certificate"))
}
