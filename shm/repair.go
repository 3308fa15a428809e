// repair.go restores a stripe whose writer died in the middle of a write.
//
// Writes only append whole records to the log before publishing them, and
// every index change is a single-word store, so the log between tail and
// head is the truth: a stripe is repaired by rebuilding its index from the
// log. The last valid record of each key wins (later records are newer: a
// replacement, a tombstone, or a relocated copy). A record whose checksum
// fails is dropped and counted; a Set that returned has a whole record in
// the log and so survives every repair.

package shm

import (
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// repair runs right after a waiter took the lock of a dead owner.
func (s *Segment) repair(st *stripe) {
	pending := atomic64(st.ctl, layout.StPendingRing)
	if st.seq.Load()&1 == 0 && pending.Load() == 0 {
		return // the owner died outside any change: nothing to mend
	}
	if st.seq.Load()&1 != 0 {
		s.rebuild(st)
		st.ctr(layout.StRepairs).Add(1)
		st.seq.Add(1) // consistent again
	}
	if p := pending.Load(); p != 0 {
		// The dead writer reserved this ring record: fill it in so the
		// ring has no hole. Or it may have taken a number it never
		// claimed: nobody claims it now, so readers skip it as abandoned.
		if p&layout.PendingTaking == 0 {
			s.writeRing(p, ChangeRescan, nil, Version{}, 0, uint16(st.no))
		}
		pending.Store(0)
	}
	// The dead writer may have changed the stripe without announcing it:
	// tell the agent to rescan the stripe.
	s.emit(st, ChangeRescan, nil, Version{}, 0)
}

// logAt reads st's log at logical position pos, before head: a pad (pad
// true, r.size its size) or an entry record. ok is false if neither is
// there, or the record runs past head.
func (s *Segment) logAt(st *stripe, pos, head uint64) (r rec, pad, ok bool) {
	off := pos % s.h.ArenaSize
	if n := padAt(st.arena, off); n != 0 {
		return rec{size: n}, true, true
	}
	r, ok = readRec(st.arena, off)
	return r, false, ok && r.size <= head-pos
}

// rebuild recomputes a stripe's index and counters from its log. The caller
// holds the lock and has the stripe marked as being written (or no reader
// can trust it yet).
func (s *Segment) rebuild(st *stripe) {
	arena := s.h.ArenaSize
	headW, tailW := atomic64(st.ctl, layout.StHead), atomic64(st.ctl, layout.StTail)
	head, tail := headW.Load(), tailW.Load()
	var dropped uint64
	if badBounds(head, tail, arena) {
		// The log bounds themselves are gone: nothing in it can be
		// trusted.
		dropped++
		head, tail = 0, 0
		tailW.Store(0)
		headW.Store(0)
	}
	clear(st.idx)
	now := time.Now().UnixNano()
	stripeNo := uint64(st.no)
	var count, tombs uint32
	var live uint64
	pos := tail
	for pos < head {
		r, pad, ok := s.logAt(st, pos, head)
		if !ok {
			dropped++ // cannot tell where the next record starts: cut the log here
			break
		}
		pos += r.size
		if pad {
			continue
		}
		if recCRC(st.arena, &r) != r.crc || r.hash&s.stripeMask != stripeNo {
			dropped++
			continue
		}
		key := st.arena[r.keyAt() : r.keyAt()+r.keyLen]
		slot, old, found := s.find(st, r.hash, key)
		if found {
			live -= old.size
			if old.deleted() {
				tombs--
			}
		}
		if r.expired(now) {
			// The newest record of the key has expired: the key is gone.
			if found {
				s.removeSlot(st, slot)
				count--
			}
			continue
		}
		w := makeWord(r.hash, r.off)
		if found {
			st.word(slot).Store(w)
		} else {
			// The index was cleared and count is what it holds, so
			// below this find has returned a free slot.
			if count >= uint32(s.indexMask) {
				dropped++
				continue
			}
			st.word(slot).Store(w)
			count++
		}
		st.meta(slot).Store(makeMeta(r.valLen, r.placed/1000))
		live += r.size
		if r.deleted() {
			tombs++
		}
	}
	if pos < head {
		headW.Store(pos)
	}
	atomic64(st.ctl, layout.StLiveBytes).Store(live)
	atomic32(st.ctl, layout.StCount).Store(count)
	atomic32(st.ctl, layout.StTombstones).Store(tombs)
	if dropped > 0 {
		st.ctr(layout.StDropped).Add(dropped)
	}
}
