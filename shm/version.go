// version.go defines entry versions and the segment's hybrid logical clock.

package shm

import (
	"fmt"
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// Version orders the writes of one key across hosts: a hybrid logical clock
// timestamp (wall-clock milliseconds << 16 | a logical counter) and the node
// that made the write. Later Time wins; equal Times are ordered by Node.
type Version struct {
	Time uint64
	Node uint32
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	return v.Time < w.Time || v.Time == w.Time && v.Node < w.Node
}

// IsZero reports whether v is the zero Version (no entry).
func (v Version) IsZero() bool { return v == Version{} }

// Wall returns the wall-clock part of the timestamp.
func (v Version) Wall() time.Time { return time.UnixMilli(int64(v.Time >> 16)) }

func (v Version) String() string { return fmt.Sprintf("%d.%d@%d", v.Time>>16, v.Time&0xffff, v.Node) }

// nextTime returns a clock value greater than any handed out or observed
// before by any process on the segment, close to the wall clock.
func (s *Segment) nextTime(nowNs int64) uint64 {
	wall := uint64(nowNs/1e6) << 16
	for {
		old := s.hlc.Load()
		next := wall
		if next <= old {
			next = old + 1
		}
		if s.hlc.CompareAndSwap(old, next) {
			return next
		}
	}
}

// observe moves the clock past a version seen from another node, so that a
// local write made after applying it is ordered after it.
func (s *Segment) observe(t uint64) {
	for {
		old := s.hlc.Load()
		if t <= old || s.hlc.CompareAndSwap(old, t) {
			return
		}
	}
}

// Clock returns the newest version time handed out or observed on the
// segment, by any process: every later local write gets a greater one.
// After Close it returns 0.
func (s *Segment) Clock() uint64 {
	if !s.enterMisc() {
		return 0
	}
	defer s.exitMisc()
	return s.hlc.Load()
}

// NodeID returns the node id this segment stamps on local writes.
func (s *Segment) NodeID() uint32 { return s.h.NodeID }

// FormatVersion is the segment format this build reads and writes. A
// segment of another version is refused with ErrVersionMismatch.
const FormatVersion = layout.FormatVersion

// Info describes a segment's header.
type Info struct {
	App           string
	FormatVersion int
	Size          int64
	Stripes       int
	IndexSlots    int // per stripe
	ArenaSize     int64
	MaxValue      int
	MaxKey        int
	MaxProcs      int
	RingSize      int
	NodeID        uint32
	HashSeed      uint64
	Created       time.Time
	TombstoneTTL  time.Duration
}

// HugePages returns how many bytes of this process's mapping of the segment
// the kernel maps with 2 MiB pages (see Options.NoHugePages): the segment's
// size when it got them, 0 when it did not or the platform cannot tell.
// It reads /proc/self/smaps: for diagnostics, not for a hot path.
func (s *Segment) HugePages() int64 { return pmdMapped(s.mem) }

// Info returns the segment's header fields.
func (s *Segment) Info() Info {
	h := s.h
	return Info{
		App: h.App, FormatVersion: int(h.Version), Size: int64(h.FileSize), Stripes: int(h.Stripes),
		IndexSlots: int(h.IndexSlots), ArenaSize: int64(h.ArenaSize), MaxValue: int(h.MaxValue),
		MaxKey: layout.MaxKey, MaxProcs: int(h.MaxProcs), RingSize: int(h.RingSize), NodeID: h.NodeID,
		HashSeed: h.HashSeed, Created: time.Unix(0, h.Created), TombstoneTTL: time.Duration(h.TombstoneTTL),
	}
}
