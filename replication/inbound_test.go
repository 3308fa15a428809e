package replication

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
)

// TestAckNotHeldByDigest: a batch's acknowledgement goes out while the
// digest read right after it is still being answered, not with the
// answer (a segment scan later). The two frames arrive in one write, so
// the ack is written while more is buffered to read.
func TestAckNotHeldByDigest(t *testing.T) {
	a := newMemFarm(t, NewMemNetwork(1), "a")[0].agent
	release := make(chan struct{})
	testhooks.Replication = func(p string) {
		if p == "digest" {
			<-release
		}
	}
	// Cleanups run last-in first-out: the answer is released, and the
	// hook gone, before the agent closes and waits for it.
	t.Cleanup(func() {
		close(release)
		testhooks.Replication = nil
	})

	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	served := make(chan error, 1)
	go func() { served <- a.serve(server) }()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriterSize(client, 64<<10)
	fr := &frameReader{r: bufio.NewReader(client)}
	if err := writeFrame(w, frameHello, &Hello{Node: "x", Meta: a.meta}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := fr.next(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*Hello); !ok {
		t.Fatalf("handshake answer %T, want *Hello", msg)
	}

	if err := writeFrame(w, frameBatch, &Batch{ID: 42, App: "app"}); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(w, frameDigest, &Digest{App: "app", Buckets: make([]uint64, digestBuckets)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // one write: both frames are buffered at once
		t.Fatal(err)
	}
	_, msg, err := fr.next()
	if err != nil {
		t.Fatalf("no ack while the digest is being answered: %v", err)
	}
	if ack, ok := msg.(*Ack); !ok || ack.ID != 42 {
		t.Fatalf("first answer %T %+v, want the ack of batch 42", msg, msg)
	}

	release <- struct{}{}
	_, msg, err = fr.next()
	if err != nil {
		t.Fatalf("no answer to the digest: %v", err)
	}
	if _, ok := msg.(*Keys); !ok {
		t.Fatalf("answer to the digest %T, want *Keys", msg)
	}
	client.Close()
	if err := <-served; err == nil {
		t.Fatal("serve returned nil after the stream closed")
	}
}
