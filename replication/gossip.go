// gossip.go implements Membership with hashicorp/memberlist: encrypted
// gossip labelled with the cluster name, node metadata checked at join, and
// a join loop that keeps retrying so two halves of a farm find each other
// again.

package replication

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipConfig configures membership over the network.
type GossipConfig struct {
	// BindAddr and BindPort: where gossip listens (UDP and TCP). Default
	// 0.0.0.0:7946 in gardend; tests use 127.0.0.x with port 0.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort: what peers should dial, when it is
	// not the bind address (NAT, 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int
	// Join lists peers' gossip addresses (host:port) to join. The agent
	// keeps retrying those it is not connected to, every RejoinInterval.
	Join []string
	// RejoinInterval: default 10 s, so a farm split by a partition merges
	// again within seconds of the partition healing.
	RejoinInterval time.Duration
	// Fast selects memberlist's local-network timings scaled down for
	// tests on one machine (probe every 100 ms).
	Fast bool
}

type gossip struct {
	ml       *memberlist.Memberlist
	self     string
	addr     string // our gossip address, as memberlist advertises it
	meta     []byte
	ours     NodeMeta
	changed  notifier
	log      *slog.Logger
	onRefuse func(Refused)

	mu      sync.Mutex
	members map[string]Member

	join     []string
	rejoin   time.Duration
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// newGossip starts memberlist. meta is announced to peers; a peer whose
// metadata differs is refused.
func newGossip(name, cluster string, key []byte, gc GossipConfig, meta NodeMeta, logger *slog.Logger, onRefuse func(Refused)) (*gossip, error) {
	b, err := meta.encode()
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("replication: node metadata of %d bytes exceeds %d (too many apps?)", len(b), memberlist.MetaMaxSize)
	}
	g := &gossip{
		self: name, meta: b, ours: meta, changed: newNotifier(), log: logger, onRefuse: onRefuse,
		members: map[string]Member{}, join: gc.Join, rejoin: gc.RejoinInterval, stop: make(chan struct{}),
	}
	if g.rejoin == 0 {
		g.rejoin = 10 * time.Second
	}
	c := memberlist.DefaultLANConfig()
	if gc.Fast {
		c = memberlist.DefaultLocalConfig()
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 50 * time.Millisecond
		c.GossipInterval = 20 * time.Millisecond
		c.PushPullInterval = time.Second
		c.SuspicionMult = 2
		c.DeadNodeReclaimTime = time.Millisecond
	}
	c.Name = name
	c.BindAddr, c.BindPort = gc.BindAddr, gc.BindPort
	c.AdvertiseAddr, c.AdvertisePort = gc.AdvertiseAddr, gc.AdvertisePort
	c.SecretKey = gossipKey(key)
	c.Label = "gardenstate/" + cluster
	c.Delegate = g
	c.Events = g
	c.Alive = g
	c.Merge = g
	c.Logger = log.New(&memberlistLog{g: g}, "", 0)
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("replication: start membership on %s:%d: %w", gc.BindAddr, gc.BindPort, err)
	}
	g.ml = ml
	// Read once: memberlist rewrites its nodes' addresses in place under
	// its own lock, which LocalNode and Members do not hold for the caller.
	g.addr = ml.LocalNode().Address()
	if len(g.join) > 0 {
		g.wg.Add(1)
		go g.joinLoop()
	}
	return g, nil
}

// Addr is the gossip address peers join.
func (g *gossip) Addr() string { return g.addr }

// joinLoop joins the configured peers and keeps re-joining those that are
// not members, so a restarted or partitioned farm finds itself again.
func (g *gossip) joinLoop() {
	defer g.wg.Done()
	wait := 100 * time.Millisecond
	for {
		var missing []string
		alive := map[string]bool{}
		for _, m := range g.Members() { // as the callbacks recorded them
			alive[m.Addr] = true
		}
		for _, a := range g.join {
			if !alive[a] && a != g.addr {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			n, err := g.ml.Join(missing)
			if err != nil && n == 0 {
				g.log.Debug("join failed; will retry", "peers", missing, "err", err)
			} else {
				wait = g.rejoin
			}
		} else {
			wait = g.rejoin
		}
		select {
		case <-g.stop:
			return
		case <-time.After(wait):
		}
		if wait < g.rejoin {
			wait = min(2*wait, g.rejoin)
		}
	}
}

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte { return g.meta }

// NotifyMsg, GetBroadcasts, LocalState and MergeRemoteState implement
// memberlist.Delegate: no session data ever goes through gossip.
func (g *gossip) NotifyMsg([]byte)                           {}
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (g *gossip) LocalState(join bool) []byte                { return nil }
func (g *gossip) MergeRemoteState(buf []byte, join bool)     {}

// check compares a peer's metadata with ours.
func (g *gossip) check(n *memberlist.Node) error {
	if n.Name == g.self {
		return nil
	}
	m, err := decodeMeta(n.Meta)
	if err == nil {
		if mm := compareMeta(g.ours, m); mm != nil {
			err = mm
		}
	}
	if err != nil {
		g.refuse(n.Name, n.Address(), err.Error())
	}
	return err
}

func (g *gossip) refuse(name, addr, reason string) {
	if g.onRefuse != nil {
		g.onRefuse(Refused{Name: name, Addr: addr, Reason: reason, At: time.Now()})
	}
}

// NotifyAlive implements memberlist.AliveDelegate.
func (g *gossip) NotifyAlive(n *memberlist.Node) error { return g.check(n) }

// NotifyMerge implements memberlist.MergeDelegate.
func (g *gossip) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := g.check(n); err != nil {
			return err
		}
	}
	return nil
}

// NotifyJoin, NotifyLeave and NotifyUpdate implement memberlist.EventDelegate.
func (g *gossip) NotifyJoin(n *memberlist.Node)   { g.update(n, true) }
func (g *gossip) NotifyLeave(n *memberlist.Node)  { g.update(n, false) }
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.update(n, true) }

func (g *gossip) update(n *memberlist.Node, alive bool) {
	if n.Name == g.self {
		return
	}
	g.mu.Lock()
	if m, err := decodeMeta(n.Meta); alive && err == nil && compareMeta(g.ours, m) == nil {
		g.members[n.Name] = Member{Name: n.Name, Addr: n.Address(), Meta: m}
	} else {
		delete(g.members, n.Name)
	}
	g.mu.Unlock()
	g.changed.notify()
}

// Members implements Membership.
func (g *gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	return out
}

// Changed implements Membership.
func (g *gossip) Changed() <-chan struct{} { return g.changed }

// Leave implements Membership.
func (g *gossip) Leave(timeout time.Duration) error {
	g.stopOnce.Do(func() { close(g.stop) })
	g.wg.Wait()
	err := g.ml.Leave(timeout)
	return errors.Join(err, g.ml.Shutdown())
}

// memberlistLog turns memberlist's log lines into slog records, and its
// reports of undecryptable or mislabelled packets into refusals: a peer
// with another farm key or cluster cannot even be read, so this is where it
// shows.
type memberlistLog struct{ g *gossip }

var fromAddr = regexp.MustCompile(`[Ff]rom[= :]+(\S+:\d+)`)

func (w *memberlistLog) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		line := sc.Text()
		addr := ""
		if m := fromAddr.FindStringSubmatch(line); m != nil {
			addr = strings.Trim(m[1], "\"")
		}
		switch {
		case strings.Contains(line, "decrypt"):
			w.g.refuse("", addr, "farm key differs: its gossip cannot be decrypted with ours")
		case strings.Contains(line, "label"):
			w.g.refuse("", addr, "cluster differs: its gossip is labelled for another cluster")
		case strings.Contains(line, "[ERR]"):
			w.g.log.Error(line)
		case strings.Contains(line, "[WARN]"):
			w.g.log.Warn(line)
		default:
			w.g.log.Debug(line)
		}
	}
	return len(p), nil
}

var _ io.Writer = (*memberlistLog)(nil)
