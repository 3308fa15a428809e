// lock.go implements the cross-process stripe locks: a futex word in the
// mapping whose value names the owner, and the takeover of a lock whose owner
// died.
//
// A lock word is 0 when free. Otherwise bits 0-19 hold the owner's slot
// generation, bits 20-29 its slot, and bit 31 says that someone may be
// sleeping on the word. Owners are (slot, generation) pairs rather than
// PIDs: a slot's generation changes every time a process takes it, so a
// recycled PID or slot never looks like the old owner.
//
// Liveness comes from the kernel: every attached process holds an OFD lock
// on its slot's byte of the file, and the kernel drops it only after every
// thread of a dead process is gone. So once that lock is free, the old owner
// can no longer write to the mapping, and a waiter may take its stripe over.
// A stopped (SIGSTOP) process still holds its OFD lock and is never taken
// over; waiters time out instead.

package shm

import (
	"fmt"
	"runtime"
	"time"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

const (
	genBits   = 20
	genMask   = 1<<genBits - 1
	slotShift = genBits
	slotMask  = 1<<10 - 1
	ownerMask = 1<<30 - 1
	waitBit   = 1 << 31

	// spinTries is how often a waiter re-checks the word before sleeping:
	// critical sections are a few microseconds, so a short spin usually
	// wins without a system call.
	spinTries = 50
	// futexSlice is the longest a waiter sleeps before it checks whether
	// the owner is still alive. It bounds how long a dead owner stalls
	// others, together with the kernel's time to tear the process down.
	futexSlice = 2 * time.Millisecond
)

// lock takes st's lock. If the previous owner died, the stripe is repaired
// first. A stripe found marked as being written with nobody holding its lock
// (only damage to the file can do that) is repaired too.
func (s *Segment) lock(st *stripe) error {
	if !st.lock.CompareAndSwap(0, s.owner) {
		if err := s.lockSlow(st); err != nil {
			return err
		}
	}
	if st.seq.Load()&1 != 0 {
		st.ctr(layout.StCorruptions).Add(1)
		s.repair(st)
	}
	return nil
}

func (s *Segment) lockSlow(st *stripe) error {
	st.ctr(layout.StLockWaits).Add(1)
	start := time.Now()
	deadline := start.Add(s.opts.LockTimeout)
	var lastOwner uint32
	ownerSince := start
	for i := 0; ; i++ {
		w := st.lock.Load()
		if w == 0 {
			// Having waited, assume others wait too: keep the waiter bit
			// so our unlock wakes the next one.
			if st.lock.CompareAndSwap(0, s.owner|waitBit) {
				return nil
			}
			continue
		}
		if w&ownerMask != lastOwner {
			lastOwner, ownerSince = w&ownerMask, time.Now()
		}
		if i < spinTries {
			runtime.Gosched()
			continue
		}
		if w&waitBit == 0 && !st.lock.CompareAndSwap(w, w|waitBit) {
			continue
		}
		futexWait(st.lock, w|waitBit, futexSlice)
		now := time.Now()
		if w2 := st.lock.Load(); w2 != 0 && w2&ownerMask == lastOwner && now.Sub(ownerSince) >= futexSlice {
			if !s.ownerAlive(lastOwner) && st.lock.CompareAndSwap(w2, s.owner|waitBit) {
				st.ctr(layout.StTakeovers).Add(1)
				s.repair(st)
				return nil
			}
		}
		if now.After(deadline) {
			st.ctr(layout.StLockTimeouts).Add(1)
			slot := lastOwner >> slotShift & slotMask
			pid := uint32(0)
			if slot >= 1 && slot <= s.h.MaxProcs {
				pid = atomic32(s.mem, s.slotOff(slot)+layout.SlotPID).Load()
			}
			return fmt.Errorf("%w: stripe %d held by live process slot %d (pid %d) for over %v",
				ErrLockTimeout, st.no, slot, pid, now.Sub(ownerSince).Round(time.Millisecond))
		}
	}
}

// unlock releases st's lock if this process still owns it. If a waiter took
// the stripe over in the meantime (it judged us dead), the word names the
// new owner and the stale unlock changes nothing; it is counted.
func (s *Segment) unlock(st *stripe) {
	for {
		w := st.lock.Load()
		if w&ownerMask != s.owner {
			st.ctr(layout.StStaleUnlocks).Add(1)
			return
		}
		if st.lock.CompareAndSwap(w, 0) {
			if w&waitBit != 0 {
				futexWake(st.lock, 1)
			}
			return
		}
	}
}

// ownerAlive reports whether the process named by a lock word's owner field
// is still attached.
func (s *Segment) ownerAlive(owner uint32) bool {
	slot, gen := owner>>slotShift&slotMask, owner&genMask
	if slot == 0 || slot > s.h.MaxProcs {
		return false // no process can have written this: corrupt word
	}
	if slot == s.slot {
		return gen == s.owner&genMask // our own slot: alive only if it is us
	}
	if atomic32(s.mem, s.slotOff(slot)+layout.SlotGen).Load()&genMask != gen {
		return false // the slot has been taken by a newer process since
	}
	held, err := ofdHeld(s.fd, int64(s.slotOff(slot)+layout.SlotLockByte))
	if err != nil {
		return true // cannot tell: never take over a possibly live owner
	}
	return held
}

// beginWrite marks the stripe inconsistent for lock-free readers.
func (st *stripe) beginWrite() { st.seq.Add(1) }

// endWrite marks it consistent again.
func (st *stripe) endWrite() { st.seq.Add(1) }
