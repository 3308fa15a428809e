package replication

import (
	"bufio"
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMarkerOfAnEndedStreamIsDropped: a comparison's marker still queued
// when its stream ended is not sent on the next one (the repair data it
// vouches for may have been lost with the old stream, and its
// acknowledgement would end the lagging the new stream began with); a
// marker of the current stream is sent and tracked.
func TestMarkerOfAnEndedStreamIsDropped(t *testing.T) {
	a := &Agent{log: quietLogger()}
	a.metrics = newMetrics(a, prometheus.NewRegistry())
	p := newPeer(a, "peer", "")
	p.stream = 2
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	marker := &Batch{App: "app", Through: 7, ID: markerID}
	if err := p.writeBatch(w, queued{b: marker, stream: 1}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if out.Len() != 0 || len(p.inflight) != 0 {
		t.Fatalf("a marker of an ended stream: %d bytes written, %d batches tracked; want none", out.Len(), len(p.inflight))
	}
	if err := p.writeBatch(w, queued{b: marker, stream: 2}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if out.Len() == 0 || len(p.inflight) != 1 {
		t.Fatalf("a marker of this stream: %d bytes written, %d batches tracked; want it sent", out.Len(), len(p.inflight))
	}
}

// TestEndOfAnOldComparisonKeepsTheNew: the last Keys of a comparison whose
// stream ended while it was being compared does not end the comparison
// the next stream has begun for the same app, nor queue a marker. (A
// session waits for its reader, so streams do not overlap this way now;
// the check in onKeys stays, and this test keeps it honest.)
func TestEndOfAnOldComparisonKeepsTheNew(t *testing.T) {
	a := &Agent{log: quietLogger(), apps: map[string]*appState{"app": {}}, cfg: Config{QueueBytes: 1 << 20}}
	a.metrics = newMetrics(a, prometheus.NewRegistry())
	p := newPeer(a, "peer", "")
	p.stream = 1
	p.ae["app"] = &aeSession{view: &appView{}, startSeq: 5}
	next := &aeSession{startSeq: 9}
	testhooks.Replication = func(point string) {
		if point == "keys-compared" { // the stream ends; the next one compares
			p.mu.Lock()
			p.stream = 2
			p.ae["app"] = next
			p.mu.Unlock()
		}
	}
	defer func() { testhooks.Replication = nil }()
	p.onKeys(&Keys{App: "app", Bucket: -1, Remaining: 0})
	if p.ae["app"] != next || len(p.queue) != 0 {
		t.Fatalf("after the old comparison's last Keys: session %+v, %d queued; want the new session, nothing queued", p.ae["app"], len(p.queue))
	}
}

// TestCloseWaitsForStreamReaders: once Close returns, no reader of an
// outbound stream is left to apply what a peer sent to the segment. The
// first reader to compare a Keys frame is held until the agents are
// closed (or, since a Close that waits for it cannot return before, for
// a second).
func TestCloseWaitsForStreamReaders(t *testing.T) {
	var once sync.Once
	var readerDone atomic.Bool
	entered, closed := make(chan struct{}), make(chan struct{})
	testhooks.Replication = func(point string) {
		if point != "keys-compared" {
			return
		}
		once.Do(func() {
			close(entered)
			select {
			case <-closed:
			case <-time.After(time.Second):
			}
			readerDone.Store(true)
		})
	}
	t.Cleanup(func() { testhooks.Replication = nil })
	nodes := newMemFarm(t, NewMemNetwork(1), "a", "b")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no stream compared a Keys frame")
	}
	for _, n := range nodes {
		n.agent.Close(time.Second)
	}
	done := readerDone.Load()
	close(closed)
	if !done {
		t.Fatal("Close returned while a stream's reader was still comparing")
	}
}
