// ring.go implements the change ring: every Set, Delete, Touch and expiry
// appends a record the replication agent tails, and the agent writes back
// the sequence through which its peers have everything.
//
// Writers reserve a sequence number with one atomic add and fill in their
// record; they never wait for the reader. A record is complete when its
// sequence word equals its sequence number. A reader that fell more than a
// ring behind gets ErrGap and must rescan the segment.

package shm

import (
	"context"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// ChangeKind says what a change record reports.
type ChangeKind uint8

const (
	// ChangeSet: the key was stored.
	ChangeSet ChangeKind = 1 + iota
	// ChangeDelete: the key was deleted (a tombstone was stored).
	ChangeDelete
	// ChangeTouch: the key's expiry moved.
	ChangeTouch
	// ChangeExpire: the key expired and was dropped.
	ChangeExpire
	// ChangeRescan: a stripe was repaired after its writer died; changes
	// to it may have gone unrecorded, so rescan the stripe.
	ChangeRescan

	changeRemote ChangeKind = 0x80 // the change was applied from another node
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeSet:
		return "set"
	case ChangeDelete:
		return "delete"
	case ChangeTouch:
		return "touch"
	case ChangeExpire:
		return "expire"
	case ChangeRescan:
		return "rescan"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Change is one record of the change ring.
type Change struct {
	Seq     uint64
	Kind    ChangeKind
	Remote  bool   // applied from another node (by Apply) rather than written here
	Key     []byte // ReadChanges reuses its array when given this Change again
	Version Version
	Expires time.Time // zero: never
	Stripe  int
}

func (s *Segment) ringRec(seq uint64) uint64 {
	return s.h.RingOff + (seq&uint64(s.h.RingSize-1))*layout.RingRecSize
}

// emit appends a change record. Called with st locked and being written; a
// writer that dies here leaves StPendingRing for repair to complete.
func (s *Segment) emit(st *stripe, kind ChangeKind, key []byte, v Version, expires int64) {
	pending := atomic64(st.ctl, layout.StPendingRing)
	// Announce the taking first: the record is then never unclaimed
	// while this writer lives, however long it is descheduled between
	// taking the number and claiming it.
	pending.Store(layout.PendingTaking | s.ringHead.Load())
	seq := s.ringHead.Add(1) - 1
	if testhooks.Shm != nil {
		testhooks.Shm("reserved")
	}
	pending.Store(seq)
	s.writeRing(seq, kind, key, v, expires, uint16(st.no))
	pending.Store(0)
	// A change applied from a peer wakes the tailer at most every
	// remoteWakeEvery: it has nothing to do with them (the agent sends
	// local changes) but must read past them before the ring wraps, and a
	// wake-up per applied entry cost the applier a system call and the
	// tailer a trip round its loop each, a fifth of the replicated write
	// rate in a burst. Spaced wake-ups keep a slow stream's latency (the
	// tailer's process stays awake) at a bounded cost in a fast one.
	//
	// A writer that finds a sleeper announced wakes every sleeper, then
	// clears the announcement it found: the writers after it pay no
	// system call until one announces itself again, and a writer stopped
	// or killed before it woke anyone leaves the announcement to the next.
	if a := s.waiters.Load(); a != 0 && (kind&changeRemote == 0 || s.remoteWakeDue()) {
		s.ringWake.Add(1)
		futexWake(s.ringWake, 1<<30)
		s.waiters.CompareAndSwap(a, 0)
	}
}

// remoteWakeDue reports whether a change applied from a peer should wake
// the tailers, and if so counts the wake-up.
func (s *Segment) remoteWakeDue() bool {
	now := int64(time.Since(s.mono0))
	last := s.remoteWake.Load()
	return now-last >= int64(s.remoteWakeEvery) && s.remoteWake.CompareAndSwap(last, now)
}

// WaitChanges blocks until a change with a sequence number of at least seq
// has been handed out (LastSeq() >= seq), or d has passed, and reports
// which. A tailer sleeps here instead of polling: writers wake it, paying a
// system call only while someone sleeps. Changes written on this host wake
// it; changes applied from peers (Change.Remote) at most every 50 µs, so
// one of those may be seen only at the next wake-up or when d has passed.
func (s *Segment) WaitChanges(seq uint64, d time.Duration) bool {
	if !s.enterMisc() {
		return false
	}
	defer s.exitMisc()
	deadline := time.Now().Add(d)
	for {
		w := s.ringWake.Load()
		if s.ringHead.Load() > seq {
			return true
		}
		// Announce ourselves to the next writer to finish a record,
		// with a value of this round: a writer clearing the
		// announcement of an earlier round leaves this one.
		a := w + 1
		if a == 0 {
			a = 1
		}
		s.waiters.Store(a)
		if s.ringHead.Load() > seq {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 || s.closed.Load() {
			return false
		}
		// No wake-up can be lost: a writer takes its sequence number
		// before it reads the announcement, and bumps the futex word
		// before it clears one; we announced ourselves after reading
		// the word and before reading the head, so a writer we did not
		// see finds our announcement (or one that a later writer
		// cleared only after bumping the word) and the word moves on
		// after we read it. Nothing to undo on the way out, or if this
		// process is killed in here: a stale announcement costs the
		// next writer one wake.
		futexWait(s.ringWake, w, left)
	}
}

// writeRing fills record seq, unless its slot already holds a later lap's
// record: then this one is lost to readers anyway (they get ErrGap) and
// must not damage the newer one. A writer paused across a whole lap can
// still write into a newer record; the checksum makes readers reject the
// mix.
func (s *Segment) writeRing(seq uint64, kind ChangeKind, key []byte, v Version, expires int64, stripe uint16) {
	off := s.ringRec(seq)
	sw := atomic64(s.mem, off+layout.RingSeq)
	for {
		cur := sw.Load()
		if cur >= seq {
			return // a later lap's record, or this one already complete
		}
		if sw.CompareAndSwap(cur, 0) {
			break
		}
	}
	b := s.mem[off : off+layout.RingRecSize]
	le.PutUint64(b[layout.RingHLC:], v.Time)
	le.PutUint64(b[layout.RingExpires:], uint64(expires))
	le.PutUint32(b[layout.RingNode:], v.Node)
	b[layout.RingKind] = uint8(kind)
	b[layout.RingKeyLen] = uint8(len(key))
	le.PutUint16(b[layout.RingStripe:], stripe)
	copy(b[layout.RingKey:], key)
	le.PutUint32(b[layout.RingCRC:], ringCRC(seq, b))
	sw.Store(seq)
}

// ringCRC covers the record's fields, mixed with its sequence number (by
// multiplication rather than through the checksum, which would make the
// sequence's bytes escape to the heap on every write).
func ringCRC(seq uint64, b []byte) uint32 {
	c := crc32.Update(0, layout.CRC(), b[layout.RingHLC:layout.RingKey])
	c = crc32.Update(c, layout.CRC(), b[layout.RingKey:layout.RingKey+int(b[layout.RingKeyLen])])
	return c ^ uint32((seq*0x9e3779b97f4a7c15)>>32)
}

// LastSeq returns the sequence number of the newest change handed out (0
// when none, and after Close). The record may still be being written.
func (s *Segment) LastSeq() uint64 {
	if !s.enterMisc() {
		return 0
	}
	defer s.exitMisc()
	return s.ringHead.Load() - 1
}

// ReadChanges copies complete change records with sequence numbers from
// `from` on into out and returns how many it copied and the sequence to ask
// for next. It stops early at a record still being written. If records from
// `from` on were already overwritten it returns ErrGap, with next set to the
// oldest sequence still readable: the caller must rescan the segment to
// learn what it missed, then continue from next.
//
// A record that will never be completed (its writer died between taking
// the sequence number and claiming it, or is stopped inside the write while
// the feed moves on by half a ring) is reported as a ChangeRescan record
// with Stripe -1: something may have changed anywhere.
func (s *Segment) ReadChanges(from uint64, out []Change) (n int, next uint64, err error) {
	if !s.enterMisc() {
		return 0, from, ErrClosed
	}
	defer s.exitMisc()
	if from == 0 {
		from = 1
	}
	head := s.ringHead.Load()
	if oldest := s.oldest(head); from < oldest {
		return 0, oldest, fmt.Errorf("%w: asked for %d, oldest kept is %d", ErrGap, from, oldest)
	}
	for next = from; next < head && n < len(out); next++ {
		ok, err := s.readRing(next, &out[n])
		if err != nil {
			return n, next, err
		}
		if !ok {
			if !s.abandoned(next, head) {
				return n, next, nil // still being written
			}
			out[n] = Change{Seq: next, Kind: ChangeRescan, Stripe: -1, Key: out[n].Key[:0]}
		}
		n++
	}
	return n, next, nil
}

// oldest is the oldest sequence number the ring still holds, given the
// next one to hand out.
func (s *Segment) oldest(head uint64) uint64 {
	if size := uint64(s.h.RingSize); head > size {
		return head - size
	}
	return 1
}

// readRing copies record seq into c. ok is false if the record is not
// complete yet; ErrGap if it was overwritten or fails its checksum.
func (s *Segment) readRing(seq uint64, c *Change) (bool, error) {
	off := s.ringRec(seq)
	sw := atomic64(s.mem, off+layout.RingSeq)
	gap := func(why string) (bool, error) {
		return false, fmt.Errorf("%w: record %d %s (oldest kept is %d)", ErrGap, seq, why, s.oldest(s.ringHead.Load()))
	}
	if cur := sw.Load(); cur != seq {
		if cur > seq {
			return gap("was overwritten")
		}
		return false, nil
	}
	// The record is copied into c.Key's array, which the caller reuses
	// from read to read (a local array would escape to the heap through
	// the checksum), and the key then moved to its front.
	if cap(c.Key) < layout.RingRecSize {
		c.Key = make([]byte, layout.RingRecSize)
	}
	b := c.Key[:layout.RingRecSize]
	copy(b, s.mem[off:off+layout.RingRecSize])
	if sw.Load() != seq {
		return gap("was overwritten while being read")
	}
	if le.Uint32(b[layout.RingCRC:]) != ringCRC(seq, b) {
		return gap("fails its checksum (a writer was paused across a lap of the ring)")
	}
	kind := ChangeKind(b[layout.RingKind])
	c.Seq = seq
	c.Kind = kind &^ changeRemote
	c.Remote = kind&changeRemote != 0
	c.Version = Version{Time: le.Uint64(b[layout.RingHLC:]), Node: le.Uint32(b[layout.RingNode:])}
	c.Expires = time.Time{}
	if e := int64(le.Uint64(b[layout.RingExpires:])); e != 0 {
		c.Expires = time.Unix(0, e)
	}
	c.Stripe = int(le.Uint16(b[layout.RingStripe:]))
	c.Key = b[:copy(b, b[layout.RingKey:layout.RingKey+int(b[layout.RingKeyLen])])]
	return true, nil
}

// abandoned decides whether incomplete record seq will never be written:
// a stripe whose dead owner claims it (or was taking a number) is taken
// over first, and repair completes the record (or drops the claim); a
// record nobody claims had a writer that died before claiming it (a
// writer announces the taking before it takes the number, and completes
// the record before it drops its claim); one a live writer claims (or
// may hold: it is taking a number) is abandoned once the feed has moved
// on by half a ring, where waiting longer would lose more than skipping
// it.
func (s *Segment) abandoned(seq, head uint64) bool {
	claimed := false
	for i := range s.stripes {
		st := &s.stripes[i]
		pending := atomic64(st.ctl, layout.StPendingRing)
		if !mayHold(pending.Load(), seq) {
			continue
		}
		if w := st.lock.Load(); w != 0 && !s.ownerAlive(w&ownerMask) && s.enter(st) {
			// Repair completes a claimed record and drops the
			// announcement of a number being taken.
			s.takeOverIfDead(st)
			st.exit()
			if !mayHold(pending.Load(), seq) {
				continue
			}
		}
		claimed = true
	}
	if atomic64(s.mem, s.ringRec(seq)+layout.RingSeq).Load() == seq {
		return false // completed meanwhile
	}
	return !claimed || head-seq > uint64(s.h.RingSize)/2
}

// mayHold reports whether a stripe whose StPendingRing is p may hold ring
// record seq: it claims seq, or is taking a number no smaller than a
// bound at or below seq.
func mayHold(p, seq uint64) bool {
	if p&layout.PendingTaking != 0 {
		return p&^layout.PendingTaking <= seq
	}
	return p == seq
}

// Acked returns the sequence through which the agent reports every change
// delivered to its peers (0 after Close).
func (s *Segment) Acked() uint64 {
	if !s.enterMisc() {
		return 0
	}
	defer s.exitMisc()
	return s.acked.Load()
}

// SetAcked records that every change through seq reached the peers, and
// wakes writers waiting for it. Only the replication agent calls it; the
// value never moves backwards.
func (s *Segment) SetAcked(seq uint64) {
	if !s.enterMisc() {
		return
	}
	defer s.exitMisc()
	for {
		old := s.acked.Load()
		if seq <= old {
			return
		}
		if s.acked.CompareAndSwap(old, seq) {
			s.ackWake.Add(1)
			futexWake(s.ackWake, 1<<30)
			return
		}
	}
}

// WaitAcked blocks until the agent has acknowledged seq (see LastSeq), the
// context ends, or the segment is closed.
func (s *Segment) WaitAcked(ctx context.Context, seq uint64) error {
	if !s.enterMisc() {
		return ErrClosed
	}
	defer s.exitMisc()
	for {
		w := s.ackWake.Load()
		if s.acked.Load() >= seq {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed.Load() {
			return ErrClosed // Close waits for this call: return now
		}
		futexWait(s.ackWake, w, 10*time.Millisecond)
	}
}

// Mark returns user word i (0 <= i < 8) of the segment header: a few words
// of shared state for the layers above, kept with the segment so it
// survives any one process. Word 0 is used by garden for its expiry
// cursor.
func (s *Segment) Mark(i int) uint64 {
	if !s.enterMisc() {
		return 0
	}
	defer s.exitMisc()
	return atomic64(s.mem, layout.HdrMarks+uint64(i%layout.NumMarks)*8).Load()
}

// CompareAndSwapMark sets user word i to new if it holds old.
func (s *Segment) CompareAndSwapMark(i int, old, new uint64) bool {
	if !s.enterMisc() {
		return false
	}
	defer s.exitMisc()
	return atomic64(s.mem, layout.HdrMarks+uint64(i%layout.NumMarks)*8).CompareAndSwap(old, new)
}
