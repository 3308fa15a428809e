// config.go defines the agent's Config, its defaults and their reasons.

package replication

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gardenstate/gardenstate/shm"
)

// Config configures an Agent.
type Config struct {
	// NodeName is this agent's unique name in the farm (default: the
	// host name in gardend).
	NodeName string
	// Cluster names the farm. Agents of another cluster are refused.
	Cluster string
	// Key is the 32-byte farm key: it encrypts gossip and, unless TLS is
	// set, authenticates and encrypts the data streams.
	Key []byte
	// Apps maps application names to their attached segments.
	Apps map[string]*shm.Segment

	// Transport carries the data streams. Default: TCP on DataAddr with
	// TLS.
	Transport Transport
	// TLS secures the default transport's streams. Default: FarmTLS, an
	// identity derived from the farm key; FileTLS takes the operator's
	// certificates instead.
	TLS *tls.Config
	// DataAddr is where the default transport listens: default the gossip
	// bind address with port 7948 (or port 0 if gossip's port is 0).
	DataAddr string
	// AdvertiseData is the data address peers should dial, when it is not
	// the listener's.
	AdvertiseData string

	// Membership, when set, replaces gossip (tests use MemNetwork).
	Membership Membership
	// Gossip configures memberlist when Membership is nil.
	Gossip GossipConfig

	// Placement chooses which peers hold a key. Default: every host holds
	// every session.
	Placement Placement
	// LocalPrefixes name keys that belong to one host and are never
	// replicated nor accepted from peers. Default ["garden/"]: garden keeps
	// per-host state there (the host key used when no farm key is
	// configured).
	LocalPrefixes []string

	// QueueBytes bounds what is queued for one peer. Default 64 MiB: a
	// few seconds of writes at full speed. A peer that falls further
	// behind is caught up by anti-entropy instead.
	QueueBytes int
	// BatchEntries and BatchBytes bound a batch. Defaults 512 and 1 MiB:
	// large enough to amortise a frame, small enough to keep latency low.
	BatchEntries int
	BatchBytes   int
	// AntiEntropyInterval is how often every peer's copy is compared.
	// Default 1 minute; it also runs on join, on reconnect and after a
	// gap in the change feed.
	AntiEntropyInterval time.Duration
	// TouchMinDelta: an expiry extension is sent only if it moved the
	// deadline by at least this much since the last one sent for the key.
	// Default 30 s, so a session read on every request does not cause a
	// network message on every request.
	TouchMinDelta time.Duration

	// Logger for everything the agent reports. Default slog.Default().
	Logger *slog.Logger
	// Registerer for the agent's Prometheus metrics. Default: none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Placement == nil {
		c.Placement = AllHosts{}
	}
	if c.LocalPrefixes == nil {
		c.LocalPrefixes = []string{"garden/"}
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 64 << 20
	}
	if c.BatchEntries == 0 {
		c.BatchEntries = 512
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = time.Minute
	}
	if c.TouchMinDelta == 0 {
		c.TouchMinDelta = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("replication: bad configuration")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.NodeName == "":
		return bad("NodeName is empty")
	case c.Cluster == "":
		return bad("Cluster is empty")
	case len(c.Key) != KeySize:
		return bad("farm key has %d bytes, need %d", len(c.Key), KeySize)
	case len(c.Apps) == 0:
		return bad("no apps")
	case c.BatchBytes > MaxFrame/2:
		return bad("BatchBytes %d above %d", c.BatchBytes, MaxFrame/2)
	}
	for name, s := range c.Apps {
		if name == "" || s == nil {
			return bad("app %q has no segment", name)
		}
		if s.Info().MaxValue+1024 > MaxFrame/2 {
			return bad("app %q: values up to %d bytes do not fit a frame", name, s.Info().MaxValue)
		}
	}
	return nil
}

// Placement decides which peers receive a key's changes. It must be safe
// for concurrent use and fast: it is called for every change.
type Placement interface {
	// Holds reports whether peer should hold key of app.
	Holds(peer, app string, key []byte) bool
}

// AllHosts places every session on every host.
type AllHosts struct{}

// Holds implements Placement.
func (AllHosts) Holds(string, string, []byte) bool { return true }

// local reports whether key belongs to this host only.
func (c *Config) local(key []byte) bool {
	for _, p := range c.LocalPrefixes {
		if len(key) >= len(p) && string(key[:len(p)]) == p {
			return true
		}
	}
	return false
}
