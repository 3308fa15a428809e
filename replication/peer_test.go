package replication

import (
	"bufio"
	"bytes"
	"testing"

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
// the next stream has begun for the same app, nor queue a marker.
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
