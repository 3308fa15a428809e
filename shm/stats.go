// stats.go gathers the per-stripe counters into Stats, and lists the
// processes attached to a segment.

package shm

import (
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// Stats are a segment's counters, summed over its stripes. Counters only
// grow (from the segment's creation, across every process); gauges
// (Entries, Bytes*) describe the present.
type Stats struct {
	Gets            uint64 // Get, GetEntry and Has calls
	Hits            uint64
	Misses          uint64
	Sets            uint64 // stores, local and applied from peers
	Deletes         uint64
	Touches         uint64
	Expirations     uint64 // entries dropped because their deadline passed
	Evictions       uint64 // entries (and tombstones) dropped to make room
	ForcedEvictions uint64 // evictions of live, unexpired entries: the segment is too small
	Relocations     uint64 // recently read entries moved instead of evicted
	LockWaits       uint64 // lock acquisitions that had to wait
	LockTimeouts    uint64 // waits that gave up (a live owner held on)
	Takeovers       uint64 // locks taken over from a dead owner
	Repairs         uint64 // stripes rebuilt after a takeover
	Dropped         uint64 // records a repair could not prove whole
	Corruptions     uint64 // inconsistencies met and mended outside a takeover
	StaleUnlocks    uint64 // unlocks by a process whose lock had been taken over

	Entries    uint64 // live entries, tombstones included
	Tombstones uint64
	BytesLive  uint64 // arena bytes of live records
	BytesUsed  uint64 // arena bytes between tail and head, garbage included
	BytesFree  uint64 // arena bytes not in use
	BytesTotal uint64 // arena bytes
}

func (a *Stats) add(b Stats) {
	a.Gets += b.Gets
	a.Hits += b.Hits
	a.Misses += b.Misses
	a.Sets += b.Sets
	a.Deletes += b.Deletes
	a.Touches += b.Touches
	a.Expirations += b.Expirations
	a.Evictions += b.Evictions
	a.ForcedEvictions += b.ForcedEvictions
	a.Relocations += b.Relocations
	a.LockWaits += b.LockWaits
	a.LockTimeouts += b.LockTimeouts
	a.Takeovers += b.Takeovers
	a.Repairs += b.Repairs
	a.Dropped += b.Dropped
	a.Corruptions += b.Corruptions
	a.StaleUnlocks += b.StaleUnlocks
	a.Entries += b.Entries
	a.Tombstones += b.Tombstones
	a.BytesLive += b.BytesLive
	a.BytesUsed += b.BytesUsed
	a.BytesFree += b.BytesFree
	a.BytesTotal += b.BytesTotal
}

// Stats returns the counters of the whole segment. It takes no lock; each
// counter is read atomically, the set as a whole is not a snapshot.
func (s *Segment) Stats() Stats {
	var t Stats
	if !s.enterMisc() {
		return t
	}
	defer s.exitMisc()
	for i := range s.stripes {
		t.add(s.stripeStats(i))
	}
	return t
}

// StripeStats returns the counters of stripe i (0 <= i < Stripes()); zero
// after Close.
func (s *Segment) StripeStats(i int) Stats {
	if !s.enterMisc() {
		return Stats{}
	}
	defer s.exitMisc()
	return s.stripeStats(i)
}

func (s *Segment) stripeStats(i int) Stats {
	st := &s.stripes[i]
	c := func(off uint64) uint64 { return atomic64(st.ctl, off).Load() }
	x := Stats{
		Hits: c(layout.StHits), Misses: c(layout.StMisses), Sets: c(layout.StSets), Deletes: c(layout.StDeletes),
		Touches: c(layout.StTouches), Expirations: c(layout.StExpirations), Evictions: c(layout.StEvictions),
		ForcedEvictions: c(layout.StForcedEvictions), Relocations: c(layout.StRelocations),
		LockWaits: c(layout.StLockWaits), LockTimeouts: c(layout.StLockTimeouts), Takeovers: c(layout.StTakeovers),
		Repairs: c(layout.StRepairs), Dropped: c(layout.StDropped), Corruptions: c(layout.StCorruptions),
		StaleUnlocks: c(layout.StStaleUnlocks),
		Entries:      uint64(atomic32(st.ctl, layout.StCount).Load()),
		Tombstones:   uint64(atomic32(st.ctl, layout.StTombstones).Load()),
		BytesLive:    c(layout.StLiveBytes),
		BytesTotal:   s.h.ArenaSize,
	}
	x.Gets = x.Hits + x.Misses
	if head, tail := c(layout.StHead), c(layout.StTail); head >= tail && head-tail <= s.h.ArenaSize {
		x.BytesUsed = head - tail
	}
	x.BytesFree = x.BytesTotal - x.BytesUsed
	return x
}

// Stripes returns the number of lock stripes.
func (s *Segment) Stripes() int { return len(s.stripes) }

// Proc is a process attached to a segment.
type Proc struct {
	Slot     int
	PID      int
	Attached time.Time
	Self     bool // this Segment
}

// Procs lists the processes attached to the segment now: the slots whose
// OFD lock is held.
func (s *Segment) Procs() ([]Proc, error) {
	if !s.enterMisc() {
		return nil, ErrClosed
	}
	defer s.exitMisc()
	var ps []Proc
	for slot := uint32(1); slot <= s.h.MaxProcs; slot++ {
		self := slot == s.slot
		if !self {
			held, err := ofdHeld(s.fd, int64(s.slotOff(slot)+layout.SlotLockByte))
			if err != nil {
				return ps, err
			}
			if !held {
				continue
			}
		}
		ps = append(ps, Proc{
			Slot: int(slot), Self: self,
			PID:      int(atomic32(s.mem, s.slotOff(slot)+layout.SlotPID).Load()),
			Attached: time.Unix(0, int64(atomic64(s.mem, s.slotOff(slot)+layout.SlotAttached).Load())),
		})
	}
	return ps, nil
}
