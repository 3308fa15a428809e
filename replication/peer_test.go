package replication

import (
	"bufio"
	"bytes"
	"testing"

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
