// memnet.go is an in-memory network for tests of replication: data streams
// and membership for any number of agents in one process, with partitions,
// added latency and dropped connections. Like memberlist's MockNetwork it is
// not a test file, so that other packages' tests can use it.

package replication

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// MemNetwork connects in-memory agents. The zero value is not usable; call
// NewMemNetwork.
type MemNetwork struct {
	mu        sync.Mutex
	nodes     map[string]*memNode // by name
	byAddr    map[string]*memNode
	partition map[string]int // node -> side; nodes on different sides cannot talk
	latency   time.Duration
	dropRate  float64 // chance that a write breaks its connection
	rng       *rand.Rand
	resume    map[string]chan struct{} // paused nodes: closed on resume
}

type memNode struct {
	net     *MemNetwork
	name    string
	addr    string
	meta    NodeMeta
	down    bool
	accept  chan net.Conn
	closed  chan struct{}
	changed notifier
	conns   map[*memConn]bool
}

// NewMemNetwork returns an empty network. seed makes dropped connections
// repeatable.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{
		nodes: map[string]*memNode{}, byAddr: map[string]*memNode{}, partition: map[string]int{},
		rng: rand.New(rand.NewPCG(seed, 7)), resume: map[string]chan struct{}{},
	}
}

// Node registers a node and returns its data transport and membership.
// meta.DataAddr is set to the node's in-memory address.
func (n *MemNetwork) Node(name string, meta NodeMeta) (Transport, Membership, NodeMeta) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node := &memNode{
		net: n, name: name, addr: "mem:" + name, accept: make(chan net.Conn, 64),
		closed: make(chan struct{}), changed: newNotifier(), conns: map[*memConn]bool{},
	}
	meta.DataAddr = node.addr
	node.meta = meta
	n.nodes[name] = node
	n.byAddr[node.addr] = node
	n.changedLocked()
	return node, node, meta
}

func (n *MemNetwork) changedLocked() {
	for _, x := range n.nodes {
		x.changed.notify()
	}
}

// Partition splits the network: each group can only reach itself; nodes in
// no group form one more group. Connections across groups break at once.
func (n *MemNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partition = map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			n.partition[name] = i + 1
		}
	}
	n.cutLocked()
	n.changedLocked()
}

// Heal removes every partition.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partition = map[string]int{}
	n.changedLocked()
}

// SetDown takes a node off the network (as if it crashed) or back on.
func (n *MemNetwork) SetDown(name string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if x := n.nodes[name]; x != nil {
		x.down = down
	}
	n.cutLocked()
	n.changedLocked()
}

// SetPaused makes a node stop reading from its connections (as a process
// that hangs does), or start again. Its peers' writes then block.
func (n *MemNetwork) SetPaused(name string, paused bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, was := n.resume[name]
	switch {
	case paused && !was:
		n.resume[name] = make(chan struct{})
	case !paused && was:
		close(ch)
		delete(n.resume, name)
	}
}

// SetLatency delays every write by d.
func (n *MemNetwork) SetLatency(d time.Duration) {
	n.mu.Lock()
	n.latency = d
	n.mu.Unlock()
}

// SetDropRate makes each write break its connection with probability p.
func (n *MemNetwork) SetDropRate(p float64) {
	n.mu.Lock()
	n.dropRate = p
	n.mu.Unlock()
}

func (n *MemNetwork) reachableLocked(a, b *memNode) bool {
	return !a.down && !b.down && n.partition[a.name] == n.partition[b.name]
}

// cutLocked closes connections that the current partition forbids.
func (n *MemNetwork) cutLocked() {
	for _, x := range n.nodes {
		for c := range x.conns {
			if !n.reachableLocked(c.from, c.to) {
				c.breakBoth()
			}
		}
	}
}

// Listen implements Transport.
func (x *memNode) Listen() (net.Listener, error) { return memListener{x}, nil }

// Dial implements Transport.
func (x *memNode) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n := x.net
	n.mu.Lock()
	to := n.byAddr[addr]
	if to == nil || !n.reachableLocked(x, to) {
		n.mu.Unlock()
		return nil, fmt.Errorf("memnet: dial %s from %s: unreachable", addr, x.name)
	}
	a, b := net.Pipe()
	ca := &memConn{Conn: a, net: n, from: x, to: to, closed: make(chan struct{})}
	cb := &memConn{Conn: b, net: n, from: to, to: x, closed: make(chan struct{})}
	ca.peer, cb.peer = cb, ca
	x.conns[ca] = true
	to.conns[cb] = true
	n.mu.Unlock()
	select {
	case to.accept <- cb:
		return ca, nil
	case <-to.closed:
	case <-ctx.Done():
	}
	ca.breakBoth()
	return nil, fmt.Errorf("memnet: dial %s: not accepting", addr)
}

// Members implements Membership: every reachable node that is up.
func (x *memNode) Members() []Member {
	n := x.net
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Member
	for _, y := range n.nodes {
		if y != x && n.reachableLocked(x, y) {
			out = append(out, Member{Name: y.name, Addr: y.addr, Meta: y.meta})
		}
	}
	return out
}

// Changed implements Membership.
func (x *memNode) Changed() <-chan struct{} { return x.changed }

// Leave implements Membership.
func (x *memNode) Leave(time.Duration) error {
	x.net.SetDown(x.name, true)
	return nil
}

type memListener struct{ x *memNode }

func (l memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.x.accept:
		return c, nil
	case <-l.x.closed:
		return nil, net.ErrClosed
	}
}

func (l memListener) Close() error {
	l.x.net.mu.Lock()
	defer l.x.net.mu.Unlock()
	select {
	case <-l.x.closed:
	default:
		close(l.x.closed)
	}
	return nil
}

func (l memListener) Addr() net.Addr { return memAddr(l.x.addr) }

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// memConn is one end of an in-memory stream.
type memConn struct {
	net.Conn
	net      *MemNetwork
	from, to *memNode
	peer     *memConn
	once     sync.Once
	closed   chan struct{} // closed when the connection breaks
}

var errDropped = errors.New("memnet: connection dropped")

func (c *memConn) Read(p []byte) (int, error) {
	c.net.mu.Lock()
	ch := c.net.resume[c.from.name]
	c.net.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.net.mu.Lock()
	lat, drop := c.net.latency, c.net.dropRate > 0 && c.net.rng.Float64() < c.net.dropRate
	c.net.mu.Unlock()
	if drop {
		c.breakBoth()
		return 0, errDropped
	}
	if lat > 0 {
		time.Sleep(lat)
	}
	return c.Conn.Write(p)
}

func (c *memConn) Close() error {
	c.breakBoth()
	return nil
}

// breakBoth closes both ends, as a broken network path does. It may be
// called with the network's lock held, so the bookkeeping happens later.
func (c *memConn) breakBoth() {
	for _, x := range []*memConn{c, c.peer} {
		x.once.Do(func() {
			x.Conn.Close()
			close(x.closed)
		})
	}
	go func() {
		c.net.mu.Lock()
		delete(c.from.conns, c)
		delete(c.to.conns, c.peer)
		c.net.mu.Unlock()
	}()
}
