// membership.go defines what the agent needs from membership: the live,
// accepted peers and a signal when they change. gossip.go implements it
// with hashicorp/memberlist; memnet.go with an in-memory network for tests.

package replication

import "time"

// Member is a live peer that passed the metadata comparison.
type Member struct {
	Name string
	Addr string // its membership (gossip) address
	Meta NodeMeta
}

// Refused is a peer turned away, and why.
type Refused struct {
	Name   string    `json:"name"`
	Addr   string    `json:"addr"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Membership tells the agent who its peers are. All methods must be safe
// for concurrent use.
type Membership interface {
	// Members returns the live accepted peers, not including this node.
	Members() []Member
	// Changed is signalled (without blocking; signals coalesce) whenever
	// the member list may have changed.
	Changed() <-chan struct{}
	// Leave announces a graceful departure and stops.
	Leave(timeout time.Duration) error
}

// notifier coalesces change signals.
type notifier chan struct{}

func newNotifier() notifier { return make(notifier, 1) }

func (n notifier) notify() {
	select {
	case n <- struct{}{}:
	default:
	}
}
