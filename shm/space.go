// space.go makes room in a stripe's arena: the bounded expiry sweep, and
// reclaiming records at the tail of the log (expired first, then a second
// chance for recently read entries, then eviction).
//
// A stripe's arena is a circular log. New records are appended at head;
// records at tail are reclaimed when space runs out. A record is live while
// an index slot points at it; a replaced or deleted record stays in the log
// as garbage until the tail passes it.

package shm

import (
	"fmt"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

const (
	// sweepPerWrite is how many index slots each write checks for expired
	// entries: enough to cycle through a stripe's index every few thousand
	// writes, small enough to cost well under a microsecond.
	sweepPerWrite = 8
	// relocateBudget is how many live records one write may move from the
	// tail to the head (a second chance) before it evicts instead.
	relocateBudget = 16
	// pinnedBudget bounds the moves of pinned records in one write, so a
	// stripe of nothing but pinned records still makes room.
	pinnedBudget = 64
)

// indexLimit is the most occupied slots a stripe's index may have: at 3/4
// full, linear probes stay short.
func (s *Segment) indexLimit() uint32 { return uint32(s.indexMask+1) / 4 * 3 }

// reserve is the free space makeRoom keeps beyond what a write needs: a
// quarter of the arena. With that much free, a live record of up to an
// eighth of the arena at the tail can always be copied to the head (after
// padding to the end of the arena if it would not fit there) instead of
// being evicted, and the copy never overlaps the original, so a crash
// during the move loses nothing.
func (s *Segment) reserve() uint64 { return s.h.ArenaSize / 4 &^ 7 }

// makeRoom reclaims space at the tail until size contiguous bytes are free
// at the head, plus the reserve, and, for a new key, the index has a free
// slot.
func (s *Segment) makeRoom(st *stripe, size uint64, newKey bool, now int64) error {
	arena := s.h.ArenaSize
	headW, tailW := atomic64(st.ctl, layout.StHead), atomic64(st.ctl, layout.StTail)
	count := atomic32(st.ctl, layout.StCount)
	budget := relocateBudget
	pinBudget := pinnedBudget
	rebuilt := false
	for guard := 0; ; guard++ {
		head, tail := headW.Load(), tailW.Load()
		if badBounds(head, tail, arena) {
			st.ctr(layout.StCorruptions).Add(1)
			s.rebuild(st)
			continue
		}
		free := arena - (head - tail)
		contig := arena - head%arena
		if contig < size {
			if free >= contig {
				putPad(st.arena, head%arena, contig)
				headW.Store(head + contig)
				continue
			}
		} else if free >= size+s.reserve() && (!newKey || count.Load() < s.indexLimit()) {
			return nil
		}
		if head == tail || guard > 1<<22 {
			// Cannot happen in a consistent stripe: a record is at most
			// half an arena, and an empty index has room. The counters
			// are damaged: recompute them once.
			st.ctr(layout.StCorruptions).Add(1)
			s.rebuild(st)
			if rebuilt {
				return fmt.Errorf("%w: stripe %d: cannot make room for %d bytes", ErrCorrupt, st.no, size)
			}
			rebuilt = true
			continue
		}
		s.reclaimTail(st, size, now, &budget, &pinBudget)
	}
}

// reclaimTail frees the record at the tail of the log.
func (s *Segment) reclaimTail(st *stripe, need uint64, now int64, budget, pinBudget *int) {
	arena := s.h.ArenaSize
	headW, tailW := atomic64(st.ctl, layout.StHead), atomic64(st.ctl, layout.StTail)
	tail := tailW.Load()
	off := tail % arena
	if pad := padAt(st.arena, off); pad != 0 {
		tailW.Store(tail + pad)
		return
	}
	r, ok := readRec(st.arena, off)
	if !ok {
		st.ctr(layout.StCorruptions).Add(1)
		s.rebuild(st)
		return
	}
	slot, live := s.slotAt(st, r.hash, off)
	if !live {
		tailW.Store(tail + r.size)
		return
	}
	liveBytes := atomic64(st.ctl, layout.StLiveBytes)
	head := headW.Load()
	if r.expired(now) {
		s.dropLive(st, slot, &r, true)
		tailW.Store(tail + r.size)
		return
	}
	garbage := (head - tail) - liveBytes.Load()
	free := arena - (head - tail)
	headOff := head % arena
	if contig := arena - headOff; contig < r.size && free-contig >= r.size {
		putPad(st.arena, headOff, contig) // wrap so the copy is contiguous
		head += contig
		headW.Store(head)
		free -= contig
		headOff = 0
	}
	room := free >= r.size && arena-headOff >= r.size
	recent := int64(metaAccess(st.meta(slot).Load()))*1000 > r.placed
	pinned := r.flags&layout.FlagPinned != 0 && *pinBudget > 0
	if room && (pinned || *budget > 0 && (recent || garbage >= need)) {
		// Second chance: move the record to the head. Copy first, then
		// repoint the slot, then free the old place, so a crash at any
		// point leaves a whole copy in the log.
		if pinned {
			*pinBudget--
		} else {
			*budget--
		}
		copy(st.arena[headOff:headOff+r.size], st.arena[off:off+r.size])
		le.PutUint64(st.arena[headOff+layout.RecPlaced:], uint64(now/1e6))
		headW.Store(head + r.size)
		if testhooks.Shm != nil {
			testhooks.Shm("relocate-copied")
		}
		st.word(slot).Store(makeWord(r.hash, headOff))
		if testhooks.Shm != nil {
			testhooks.Shm("relocate-repointed")
		}
		tailW.Store(tail + r.size)
		st.ctr(layout.StRelocations).Add(1)
		return
	}
	st.ctr(layout.StEvictions).Add(1)
	if !r.deleted() {
		st.ctr(layout.StForcedEvictions).Add(1)
	}
	s.dropLive(st, slot, &r, false)
	if testhooks.Shm != nil {
		testhooks.Shm("evicted")
	}
	tailW.Store(tail + r.size)
}

// dropLive removes a live record from the index. An expired entry (not a
// tombstone) is counted and announced on the change ring.
func (s *Segment) dropLive(st *stripe, slot uint64, r *rec, expired bool) {
	s.removeSlot(st, slot)
	atomic64(st.ctl, layout.StLiveBytes).Add(-r.size)
	atomic32(st.ctl, layout.StCount).Add(^uint32(0))
	if r.deleted() {
		atomic32(st.ctl, layout.StTombstones).Add(^uint32(0))
		return
	}
	if expired {
		st.ctr(layout.StExpirations).Add(1)
		s.emit(st, ChangeExpire, st.arena[r.keyAt():r.keyAt()+r.keyLen], r.version(), r.expires)
	}
}

// sweep checks n index slots, round robin, and drops expired entries and
// tombstones past their window.
func (s *Segment) sweep(st *stripe, now int64, n int) {
	cur := atomic32(st.ctl, layout.StSweep)
	start := uint64(cur.Load())
	for k := range uint64(n) {
		i := (start + k) & s.indexMask
		w := st.word(i).Load()
		if w == 0 {
			continue
		}
		r, ok := readRec(st.arena, wordOff(w))
		if !ok {
			// The index points at no record (the file was damaged): its
			// counters cannot be trusted either. Rebuild from the log.
			st.ctr(layout.StCorruptions).Add(1)
			s.rebuild(st)
			break
		}
		if r.expired(now) {
			s.dropLive(st, i, &r, true)
		}
	}
	cur.Store(uint32((start + uint64(n)) & s.indexMask))
}

// Sweep drops expired entries from up to stripes stripes (all of them if
// stripes <= 0), a bounded amount of work each, continuing where the last
// sweep stopped. Writes sweep as they go; a janitor calls Sweep so that
// expiry is also noticed on a segment that nobody writes to. It returns the
// number of entries dropped.
func (s *Segment) Sweep(stripes int) (int, error) {
	if stripes <= 0 || stripes > len(s.stripes) {
		stripes = len(s.stripes)
	}
	var dropped int
	for range stripes {
		i := int(s.sweepNext.Add(1)-1) % len(s.stripes)
		st := &s.stripes[i]
		if !s.enter(st) {
			return dropped, ErrClosed
		}
		if err := s.lock(st); err != nil {
			st.exit()
			return dropped, err
		}
		count := atomic32(st.ctl, layout.StCount)
		before := count.Load()
		st.beginWrite()
		s.sweep(st, time.Now().UnixNano(), int(min(s.indexMask+1, 1024)))
		st.endWrite()
		dropped += int(before - count.Load())
		s.unlock(st)
		st.exit()
	}
	return dropped, nil
}
