// options.go defines the Options of a segment and their defaults.

package shm

import (
	"fmt"
	"os"
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// Options configure Open. A nil *Options means all defaults. Layout fields
// (Size, MaxValue, Stripes, MaxProcs, RingSize, App, TombstoneTTL) are used
// when the segment is created; when attaching to an existing segment, any
// of them that is set must match the segment or Open fails with
// ErrLayoutMismatch, and the ones left zero are taken from it.
// AvgEntrySize only shapes a segment being created.
type Options struct {
	// Size of the segment file in bytes. Default 64 MiB: about 40,000
	// sessions of 1 KiB.
	Size int64
	// MaxValue is the largest value accepted. Default 1 MiB. Each stripe
	// must hold two of them, so a larger MaxValue means fewer stripes.
	MaxValue int
	// Stripes is the number of lock stripes, a power of two. Default: the
	// most (up to 1024) that leave each stripe room for two MaxValue
	// values; more stripes mean less lock contention.
	Stripes int
	// AvgEntrySize sizes the hash index: one slot per AvgEntrySize/2 bytes
	// of arena. Default 512. Smaller entries than this fill the index
	// before the memory, which then evicts early.
	AvgEntrySize int
	// MaxProcs is how many processes may attach at once. Default 256.
	MaxProcs int
	// RingSize is the number of change records kept for the replication
	// agent, a power of two, 296 bytes each. Default: a sixteenth of Size,
	// between 256 and 65536 records (8192, 2.3 MiB, for 64 MiB): at 20k
	// writes/s the agent may then stall for 400 ms before it must rescan.
	RingSize int
	// App names the application; it is stored in the header and checked at
	// attach when set. At most 64 bytes.
	App string
	// NodeID identifies this host in entry versions. Default: random at
	// creation. The agent sets one per host.
	NodeID uint32
	// TombstoneTTL is how long a deleted key is remembered so that
	// replication cannot resurrect it. Default 10 minutes.
	TombstoneTTL time.Duration
	// Mode is the file mode of a new segment. Default 0600.
	Mode os.FileMode
	// NoHugePages keeps a new segment on 4 KiB pages. By default a segment
	// created on tmpfs (/dev/shm) is moved onto 2 MiB pages at creation,
	// where the kernel allows it (Linux 6.1 or later): a random read then
	// misses the TLB far less. The move happens once, in Open, and costs
	// 0.6-4.5 ms per MiB (measured): more when free memory is fragmented
	// and the kernel compacts it to find 2 MiB pages.
	NoHugePages bool

	// LockTimeout bounds every wait for a stripe lock. Default 5 s: far
	// longer than any operation holds a lock, so it only fires when the
	// holder is alive but stopped (a dead holder is taken over within
	// milliseconds).
	LockTimeout time.Duration
	// ReadRetries is how often a lock-free read is retried when a writer
	// changed the stripe underneath it before the reader takes the lock.
	// Default 8.
	ReadRetries int
}

const (
	defaultSize         = 64 << 20
	defaultMaxValue     = 1 << 20
	defaultAvgEntry     = 512
	defaultMaxProcs     = 256
	defaultTombstoneTTL = 10 * time.Minute
	defaultMode         = 0o600
	defaultLockTimeout  = 5 * time.Second
	defaultReadRetries  = 8
)

// withDefaults returns a copy of o with every zero field set to its default,
// and records which layout fields the caller set explicitly.
func (o *Options) withDefaults() (Options, explicit) {
	var r Options
	if o != nil {
		r = *o
	}
	ex := explicit{
		size: r.Size != 0, maxValue: r.MaxValue != 0, stripes: r.Stripes != 0,
		procs: r.MaxProcs != 0, ring: r.RingSize != 0, app: r.App != "", tomb: r.TombstoneTTL != 0,
	}
	if r.Size == 0 {
		r.Size = defaultSize
	}
	if r.MaxValue == 0 {
		r.MaxValue = defaultMaxValue
	}
	if r.AvgEntrySize == 0 {
		r.AvgEntrySize = defaultAvgEntry
	}
	if r.MaxProcs == 0 {
		r.MaxProcs = defaultMaxProcs
	}
	if r.RingSize == 0 {
		r.RingSize = 256
		for r.RingSize < 65536 && int64(r.RingSize)*2*layout.RingRecSize <= r.Size/16 {
			r.RingSize *= 2
		}
	}
	if r.TombstoneTTL == 0 {
		r.TombstoneTTL = defaultTombstoneTTL
	}
	if r.Mode == 0 {
		r.Mode = defaultMode
	}
	if r.LockTimeout == 0 {
		r.LockTimeout = defaultLockTimeout
	}
	if r.ReadRetries == 0 {
		r.ReadRetries = defaultReadRetries
	}
	return r, ex
}

type explicit struct{ size, maxValue, stripes, procs, ring, app, tomb bool }

// validate reports the first out-of-range option.
func (o *Options) validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("%w: %s %v: %s", ErrBadOptions, name, v, want)
	}
	switch {
	case o.Size < 1<<20:
		return bad("Size", o.Size, "must be at least 1 MiB")
	case o.MaxValue < 1 || o.MaxValue > 1<<30:
		return bad("MaxValue", o.MaxValue, "must be between 1 and 1 GiB")
	case o.Stripes < 0 || o.Stripes > 1<<16 || o.Stripes&(o.Stripes-1) != 0:
		return bad("Stripes", o.Stripes, "must be a power of two up to 65536")
	case o.AvgEntrySize < 64:
		return bad("AvgEntrySize", o.AvgEntrySize, "must be at least 64")
	case o.MaxProcs < 1 || o.MaxProcs > layout.MaxProcs:
		return bad("MaxProcs", o.MaxProcs, fmt.Sprintf("must be between 1 and %d", layout.MaxProcs))
	case o.RingSize < 1 || o.RingSize > 1<<24 || o.RingSize&(o.RingSize-1) != 0:
		return bad("RingSize", o.RingSize, "must be a power of two up to 2^24")
	case len(o.App) > layout.AppNameLen:
		return bad("App", o.App, fmt.Sprintf("must be at most %d bytes", layout.AppNameLen))
	case o.TombstoneTTL < 0:
		return bad("TombstoneTTL", o.TombstoneTTL, "must not be negative")
	case o.LockTimeout < 0:
		return bad("LockTimeout", o.LockTimeout, "must not be negative")
	case o.ReadRetries < 0:
		return bad("ReadRetries", o.ReadRetries, "must not be negative")
	}
	return nil
}
