package replication

// Real agents on loopback: memberlist gossip and TLS data streams on
// 127.0.0.x addresses with ports chosen by the kernel.

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

type loopNode struct {
	name  string
	seg   *shm.Segment
	agent *Agent
}

type loopOpts struct {
	key      []byte
	cluster  string
	maxValue int
	join     []string
	wrap     func(net.Conn) net.Conn
}

func startLoop(t *testing.T, name, ip string, o loopOpts) *loopNode {
	t.Helper()
	if o.key == nil {
		o.key = testKey
	}
	if o.cluster == "" {
		o.cluster = "loop"
	}
	if o.maxValue == 0 {
		o.maxValue = 16 << 10
	}
	seg, err := shm.Open(filepath.Join(t.TempDir(), name), &shm.Options{Size: 8 << 20, MaxValue: o.maxValue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	var tr Transport
	if o.wrap != nil {
		tc, _ := FarmTLS(o.key)
		tr = &TCPTransport{Addr: ip + ":0", TLS: tc, Wrap: o.wrap}
	}
	a, err := New(Config{
		NodeName: name, Cluster: o.cluster, Key: o.key, Apps: map[string]*shm.Segment{"app": seg},
		Transport: tr, DataAddr: ip + ":0", Logger: quietLogger(),
		Gossip: GossipConfig{BindAddr: ip, BindPort: 0, Join: o.join, RejoinInterval: 200 * time.Millisecond, Fast: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(time.Second) })
	return &loopNode{name: name, seg: seg, agent: a}
}

func TestLoopbackFarm(t *testing.T) {
	a := startLoop(t, "a", "127.0.0.1", loopOpts{})
	b := startLoop(t, "b", "127.0.0.2", loopOpts{join: []string{a.agent.GossipAddr()}})
	c := startLoop(t, "c", "127.0.0.3", loopOpts{join: []string{a.agent.GossipAddr()}})
	nodes := []*loopNode{a, b, c}
	testwait.For(t, 20*time.Second, "three members", func() bool {
		for _, n := range nodes {
			if len(n.agent.Peers().Members) != 2 {
				return false
			}
		}
		return true
	})
	// A write on any host is read on every host.
	for i, n := range nodes {
		k := fmt.Appendf(nil, "session-%d", i)
		if err := n.seg.Set(k, []byte("from "+n.name), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		for i, m := range nodes {
			k := fmt.Appendf(nil, "session-%d", i)
			testwait.For(t, 10*time.Second, fmt.Sprintf("%s on %s", k, n.name), func() bool {
				v, ok := n.seg.Get(nil, k)
				return ok && string(v) == "from "+m.name
			})
		}
	}
	// The writer learns its write reached every peer. Acknowledgement
	// counts the peers a's streams are connected to, and the sessions
	// above may have reached b and c over their own streams: wait for a's.
	testwait.For(t, 10*time.Second, "a's streams to both peers", func() bool {
		ps := a.agent.Peers().Members
		return len(ps) == 2 && ps[0].State != "connecting" && ps[1].State != "connecting"
	})
	if _, err := a.seg.Put([]byte("durable"), []byte("x"), shm.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "acknowledgement", func() bool { return a.seg.Acked() >= a.seg.LastSeq() })
	for _, n := range []*loopNode{b, c} {
		if !n.seg.Has([]byte("durable")) {
			t.Fatalf("acknowledged write missing on %s", n.name)
		}
	}
	// Status and peers describe the farm.
	st := a.agent.Status()
	if st.Members != 2 || len(st.Apps) != 1 || st.Apps[0].App != "app" {
		t.Fatalf("status %+v", st)
	}
	for _, p := range a.agent.Peers().Members {
		if p.State != "alive" || p.Sent == 0 {
			t.Fatalf("peer %+v", p)
		}
	}
}

func TestLoopbackRefusesMismatchedPeers(t *testing.T) {
	a := startLoop(t, "a", "127.0.0.1", loopOpts{})
	cases := []struct {
		name string
		o    loopOpts
		want string
	}{
		{"wrongkey", loopOpts{key: bytes.Repeat([]byte{9}, KeySize)}, "farm key"},
		{"wrongcluster", loopOpts{cluster: "other"}, "cluster"},
		{"wronglayout", loopOpts{maxValue: 32 << 10}, "layout of app"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.join = []string{a.agent.GossipAddr()}
			bad := startLoop(t, c.name, fmt.Sprintf("127.0.0.%d", 10+i), c.o)
			testwait.For(t, 20*time.Second, "refusal of "+c.name, func() bool {
				for _, r := range append(a.agent.Peers().Refused, bad.agent.Peers().Refused...) {
					if strings.Contains(r.Reason, c.want) {
						return true
					}
				}
				return false
			})
			bad.seg.Set([]byte("leak"), []byte("x"), 0)
			// Whatever gossip saw, no data flows and no member is added.
			for _, p := range a.agent.Peers().Members {
				if p.Name == c.name {
					t.Fatalf("mismatched peer %s became a member", c.name)
				}
			}
			if a.seg.Has([]byte("leak")) {
				t.Fatalf("data from mismatched peer %s arrived", c.name)
			}
		})
	}
}

// capture records every byte written on wrapped connections.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

type capConn struct {
	net.Conn
	c *capture
}

func (c capConn) Write(p []byte) (int, error) {
	c.c.mu.Lock()
	c.c.buf.Write(p)
	c.c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c capConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.mu.Lock()
	c.c.buf.Write(p[:n])
	c.c.mu.Unlock()
	return n, err
}

func TestLoopbackStreamIsEncrypted(t *testing.T) {
	cp := &capture{}
	wrap := func(c net.Conn) net.Conn { return capConn{c, cp} }
	a := startLoop(t, "a", "127.0.0.1", loopOpts{wrap: wrap})
	b := startLoop(t, "b", "127.0.0.2", loopOpts{wrap: wrap, join: []string{a.agent.GossipAddr()}})
	secret := []byte("SECRET-SESSION-PAYLOAD-0123456789")
	key := []byte("session-with-a-secret")
	testwait.For(t, 20*time.Second, "membership", func() bool { return len(a.agent.Peers().Members) == 1 })
	a.seg.Set(key, secret, time.Hour)
	testwait.For(t, 10*time.Second, "replication", func() bool { return b.seg.Has(key) })
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.buf.Len() < 1000 {
		t.Fatalf("captured only %d bytes: the capture did not see the stream", cp.buf.Len())
	}
	for _, plain := range [][]byte{secret, key, []byte("SECRET")} {
		if bytes.Contains(cp.buf.Bytes(), plain) {
			t.Fatalf("plaintext %q on the wire", plain)
		}
	}
}
