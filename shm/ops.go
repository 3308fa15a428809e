// ops.go implements the key-value operations: lock-free reads validated by
// the stripe's sequence counter, and writes under the stripe lock.

package shm

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// Entry is a stored key with its metadata, as replication sees it.
type Entry struct {
	Key     []byte
	Value   []byte
	Version Version
	// Expires is the absolute deadline; zero means never.
	Expires time.Time
	// Deleted marks a tombstone: the key was deleted at Version.
	Deleted bool
	// Accessed is the last read, to about a second.
	Accessed time.Time
}

// PutOptions refine Put.
type PutOptions struct {
	// TTL is how long the value lives; 0 means no expiry.
	TTL time.Duration
	// Pin keeps the entry when its stripe needs room: it is moved instead
	// of evicted (it still expires). For a little per-host state that
	// must not vanish, such as garden's host key; never for sessions.
	Pin bool
	// IfVersion, when set, makes Put store only if the key's current
	// version equals *IfVersion (the zero Version: only if the key is
	// absent); otherwise it returns ErrVersionConflict.
	IfVersion *Version
}

// hash is the key's 64-bit hash under the segment's seed: xxhash of the key,
// xored with the seed and passed through a bijective finalizer, so that
// without the seed nobody can pick keys that crowd one stripe or slot.
// (The one-shot xxhash is several times faster than a seeded digest.)
func (s *Segment) hash(key []byte) uint64 {
	h := xxhash.Sum64(key) ^ s.h.HashSeed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// readClock is the wall clock for expiry checks on the read path: the wall
// time at Open plus the monotonic time since, which costs half of
// time.Now. A step of the wall clock after Open shifts this process's
// read-side expiry checks by the step; writes use time.Now.
func (s *Segment) readClock() int64 { return s.wall0 + int64(time.Since(s.mono0)) }

func (s *Segment) stripeOf(hash uint64) *stripe { return &s.stripes[hash&s.stripeMask] }

// ctr is one of the stripe's counters (a layout.St* offset).
func (st *stripe) ctr(off uint64) *atomic.Uint64 { return atomic64(st.ctl, off) }

// Get appends the value of key to dst and returns it, with ok reporting
// whether key was found (and is neither expired nor deleted). The returned
// slice never aliases the mapping. key may be modified after Get returns.
func (s *Segment) Get(dst, key []byte) (value []byte, ok bool) {
	var r rec
	out, found, _ := s.readOpt(dst, key, 0, &r)
	return out, found && !r.deleted()
}

// Has reports whether key is present, without copying its value.
func (s *Segment) Has(key []byte) bool {
	var r rec
	_, found, _ := s.readOpt(nil, key, readNoValue, &r)
	return found && !r.deleted()
}

// GetEntry returns key's entry, tombstones included, with its value appended
// to buf. Expired entries are not returned.
func (s *Segment) GetEntry(buf, key []byte) (Entry, bool) {
	var r rec
	out, found, _ := s.readOpt(buf, key, readEntry, &r)
	return s.entry(buf, key, out, &r, found)
}

// Lookup is GetEntry that tells "absent" from "could not tell": it returns
// ErrLockTimeout when the key's stripe is held by a live process that does
// not let go (stopped in the middle of a write), and ErrClosed after Close,
// where Get and GetEntry report a miss.
func (s *Segment) Lookup(buf, key []byte) (Entry, bool, error) {
	var r rec
	out, found, err := s.readOpt(buf, key, readEntry, &r)
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := s.entry(buf, key, out, &r, found)
	return e, ok, nil
}

// Peek is GetEntry for tools: it neither counts as a read nor marks the
// entry as recently used, and it fills in Accessed.
func (s *Segment) Peek(buf, key []byte) (Entry, bool) {
	var r rec
	out, found, _ := s.readOpt(buf, key, readEntry|readPeek, &r)
	e, ok := s.entry(buf, key, out, &r, found)
	if ok {
		e.Accessed = time.Unix(int64(metaAccess(r.meta)), 0)
	}
	return e, ok
}

func (s *Segment) entry(buf, key, out []byte, r *rec, found bool) (Entry, bool) {
	if !found {
		return Entry{}, false
	}
	e := Entry{Key: key, Value: out[len(buf):], Version: r.version(), Deleted: r.deleted()}
	if r.expires != 0 {
		e.Expires = time.Unix(0, r.expires)
	}
	return e, true
}

// readMode says what readOpt is asked for.
type readMode uint8

const (
	readNoValue readMode = 1 << iota // no copy of the value (Has)
	readEntry                        // the whole record decoded, not only what Get needs
	readPeek                         // counters and access marks left alone
)

// readOpt finds key and copies its value, first without the lock (retrying
// while writers interfere), then under it. A found record is live: not
// expired; it may be a tombstone. Unless mode has readEntry, only what
// Get needs of the record is filled in (flags, deadline, value length,
// position, slot meta word): Get stays short, which matters because a
// read waits on memory and the CPU can only run ahead of it for so many
// instructions.
func (s *Segment) readOpt(dst, key []byte, mode readMode, r *rec) ([]byte, bool, error) {
	if len(key) > layout.MaxKey {
		return dst, false, nil
	}
	if verifyReads {
		mode |= readEntry // wholeRecord checks the decoded header
	}
	// The clock first: reading it waits for every earlier instruction to
	// finish (the time-stamp read is fenced), which here is nothing, while
	// later it would hold the lookup back behind the key's hash.
	now := s.readClock()
	h := s.hash(key)
	st := s.stripeOf(h)
	if !s.enter(st) {
		return dst, false, ErrClosed
	}
	defer st.exit()
	n0 := len(dst)
	for try := 0; try < s.opts.ReadRetries; try++ {
		seq := st.seq.Load()
		if seq&1 != 0 {
			runtime.Gosched()
			continue
		}
		out, slot, found := s.lookup(st, h, key, dst[:n0], now, mode, r)
		if st.seq.Load() != seq {
			continue
		}
		if verifyReads && found && mode&readNoValue == 0 && !wholeRecord(r, key, out[n0:]) {
			continue // torn on a weakly ordered CPU: read again
		}
		return s.finishRead(st, out, slot, r, found, now, mode)
	}
	if err := s.lock(st); err != nil {
		st.ctr(layout.StMisses).Add(1)
		return dst[:n0], false, err
	}
	out, slot, found := s.lookup(st, h, key, dst[:n0], now, mode, r)
	s.unlock(st)
	return s.finishRead(st, out, slot, r, found, now, mode)
}

// lookup finds key's entry in st and appends its value to dst. Safe
// without the lock: every read is bounds checked, and lock-free callers
// validate the result with the stripe's sequence counter. The copy starts
// from the slot's length hint before the record header has arrived, so the
// header and the value load in one memory round trip; the header decides,
// and a copy the header disagrees with is made again from the header.
func (s *Segment) lookup(st *stripe, h uint64, key, dst []byte, now int64, mode readMode, r *rec) ([]byte, uint64, bool) {
	tag := tagOf(h)
	n0 := len(dst)
	arena := uint64(len(st.arena))
	kl := uint64(len(key))
	i := s.home(tag)
	for range s.indexMask + 1 {
		w := st.word(i).Load()
		if w == 0 {
			break
		}
		if uint32(w>>32) != tag {
			i = (i + 1) & s.indexMask
			continue
		}
		off := wordOff(w)
		meta := st.meta(i).Load()
		dst = dst[:n0] // nothing from a slot probed before
		if mode&readNoValue == 0 {
			vl := metaLen(meta)
			if vo := off + layout.RecHdrSize + kl; vo <= arena && vl <= arena-vo && vl <= uint64(s.h.MaxValue) {
				dst = append(dst, st.arena[vo:vo+vl]...)
			}
		}
		if !holds(st.arena, off, h, key) {
			i = (i + 1) & s.indexMask
			continue
		}
		if mode&readEntry != 0 {
			var ok bool
			if *r, ok = readRec(st.arena, off); !ok {
				break // torn: the caller's sequence check sends it round again
			}
		} else {
			b := st.arena[off:]
			r.expires = int64(le.Uint64(b[layout.RecExpires:]))
			r.flags = b[layout.RecFlags]
			r.valLen = uint64(le.Uint32(b[layout.RecValLen:]))
			r.off = off
			r.keyLen = kl
		}
		r.meta = meta
		if r.expired(now) {
			return dst[:n0], 0, false
		}
		if mode&readNoValue == 0 && uint64(len(dst)-n0) != r.valLen {
			if r.valAt() > arena || r.valLen > arena-r.valAt() {
				break // torn
			}
			dst = append(dst[:n0], st.arena[r.valAt():r.valAt()+r.valLen]...)
		}
		return dst, i, true
	}
	return dst[:n0], 0, false
}

func (s *Segment) finishRead(st *stripe, out []byte, slot uint64, r *rec, found bool, now int64, mode readMode) ([]byte, bool, error) {
	if mode&readPeek != 0 {
		return out, found, nil
	}
	if !found || r.deleted() {
		st.ctr(layout.StMisses).Add(1)
		return out, found, nil
	}
	st.ctr(layout.StHits).Add(1)
	// Record the access for eviction, at most once a second per entry so
	// that readers do not keep invalidating each other's cache lines. The
	// meta word is the one lookup read; the swap fails if a writer (or
	// another reader) changed it since.
	if sec := now / 1e9; int64(metaAccess(r.meta)) < sec {
		st.meta(slot).CompareAndSwap(r.meta, makeMeta(metaLen(r.meta), sec))
	}
	return out, true, nil
}

// Set stores value under key, replacing any previous value; ttl 0 means no
// expiry. On any error the previous value is left as it was. key and value
// may be modified after Set returns.
func (s *Segment) Set(key, value []byte, ttl time.Duration) error {
	_, err := s.Put(key, value, PutOptions{TTL: ttl})
	return err
}

// Put stores value under key and returns the version it was stored with.
func (s *Segment) Put(key, value []byte, o PutOptions) (Version, error) {
	w := writeReq{key: key, value: value, ttl: o.TTL, mode: modeSet, pinned: o.Pin}
	if o.IfVersion != nil {
		w.mode, w.ifVersion = modeCAS, *o.IfVersion
	}
	v, _, err := s.write(&w)
	return v, err
}

// Delete removes key, leaving a tombstone for TombstoneTTL so replication
// cannot bring it back. It reports whether the key was present.
func (s *Segment) Delete(key []byte) bool {
	_, done, err := s.write(&writeReq{key: key, mode: modeDelete, deleted: true})
	return err == nil && done
}

// DeleteIf removes key, as Delete does, only if its current version is v.
// It returns ErrVersionConflict (and changes nothing) if the key has moved
// on to another version, and false with no error if it is absent.
func (s *Segment) DeleteIf(key []byte, v Version) (bool, error) {
	_, done, err := s.write(&writeReq{key: key, mode: modeDelete, deleted: true, ifVersion: v, checkVersion: true})
	return done, err
}

// Apply stores an entry made elsewhere (by replication) if it is newer than
// what the segment holds: last writer wins by Version, tombstones included.
// For an equal version the expiry deadlines merge by maximum. It reports
// whether anything changed.
func (s *Segment) Apply(e Entry) (bool, error) {
	var exp int64
	if !e.Expires.IsZero() {
		exp = e.Expires.UnixNano()
	}
	if e.Version.IsZero() {
		return false, fmt.Errorf("%w: Apply needs a version", ErrBadOptions)
	}
	w := writeReq{key: e.Key, value: e.Value, expires: exp, deleted: e.Deleted, version: e.Version, mode: modeApply}
	if e.Deleted {
		w.value = nil
	}
	_, done, err := s.write(&w)
	return done, err
}

// MergeExpiry moves key's expiry deadline to expires (zero: never) if the
// stored entry has exactly version v and a deadline earlier than expires.
// Replication uses it to spread sliding-expiry extensions made elsewhere
// without sending values. It reports whether anything changed.
func (s *Segment) MergeExpiry(key []byte, v Version, expires time.Time) bool {
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	_, done, err := s.write(&writeReq{key: key, version: v, expires: exp, mode: modeExtend})
	return err == nil && done
}

// Touch sets key's expiry to ttl from now (0: never) without rewriting the
// value. It reports whether the key was present.
func (s *Segment) Touch(key []byte, ttl time.Duration) bool {
	_, done, err := s.write(&writeReq{key: key, ttl: ttl, mode: modeTouch})
	return err == nil && done
}

// setExpires moves a record's deadline in place, without rewriting it, and
// announces it. Called with st locked.
func (s *Segment) setExpires(st *stripe, r *rec, key []byte, expires int64, kind ChangeKind) {
	st.beginWrite()
	le.PutUint64(st.arena[r.off+layout.RecExpires:], uint64(expires))
	st.ctr(layout.StTouches).Add(1)
	s.emit(st, kind, key, r.version(), expires)
	st.endWrite()
}

type writeMode uint8

const (
	modeSet writeMode = iota
	modeCAS
	modeDelete
	modeApply
	modeExtend
	modeTouch
)

type writeReq struct {
	key, value []byte
	expires    int64
	ttl        time.Duration // modeSet, modeCAS and modeTouch: expires is now+ttl (0: never)
	deleted    bool
	version    Version // set for modeApply
	ifVersion  Version // for modeCAS, and modeDelete with checkVersion
	mode       writeMode
	// checkVersion makes modeDelete conditional on ifVersion.
	checkVersion bool
	pinned       bool // PutOptions.Pin
}

// write performs every kind of store under the stripe lock. done reports
// whether the segment changed.
func (s *Segment) write(w *writeReq) (v Version, done bool, err error) {
	if len(w.key) > layout.MaxKey {
		return v, false, fmt.Errorf("%w: key of %d bytes, at most %d", ErrTooLarge, len(w.key), layout.MaxKey)
	}
	if uint64(len(w.value)) > uint64(s.h.MaxValue) {
		return v, false, fmt.Errorf("%w: value of %d bytes, at most %d", ErrTooLarge, len(w.value), s.h.MaxValue)
	}
	h := s.hash(w.key)
	st := s.stripeOf(h)
	if !s.enter(st) {
		return v, false, ErrClosed
	}
	defer st.exit()
	if err := s.lock(st); err != nil {
		return v, false, err
	}
	defer s.unlock(st)
	now := time.Now().UnixNano()

	if w.ttl > 0 {
		w.expires = now + int64(w.ttl)
	}
	_, old, found := s.find(st, h, w.key)
	live := found && !old.expired(now) && !old.deleted()
	switch w.mode {
	case modeTouch:
		if !live {
			return v, false, nil
		}
		s.setExpires(st, &old, w.key, w.expires, ChangeTouch)
		return old.version(), true, nil
	case modeCAS:
		cur := Version{}
		if live {
			cur = old.version()
		}
		if cur != w.ifVersion {
			return cur, false, fmt.Errorf("%w: stored %v, expected %v", ErrVersionConflict, cur, w.ifVersion)
		}
	case modeDelete:
		if !live {
			return v, false, nil
		}
		if w.checkVersion && old.version() != w.ifVersion {
			return old.version(), false, fmt.Errorf("%w: stored %v, expected %v", ErrVersionConflict, old.version(), w.ifVersion)
		}
		w.expires = now + s.h.TombstoneTTL
	case modeApply, modeExtend:
		s.observe(w.version.Time)
		if found && !old.expired(now) {
			ov := old.version()
			if w.version.Less(ov) {
				return ov, false, nil
			}
			if w.version == ov {
				// Same write seen again: only the deadline may move,
				// and only later (0 is the latest of all).
				if old.deleted() || old.expires == 0 || (w.expires != 0 && w.expires <= old.expires) {
					return ov, false, nil
				}
				s.setExpires(st, &old, w.key, w.expires, ChangeTouch|changeRemote)
				return ov, true, nil
			}
		}
		if w.mode == modeExtend {
			return w.version, false, nil // not the version the deadline belongs to
		}
		if w.expires != 0 && w.expires <= now {
			return w.version, false, nil // already expired: nothing to keep
		}
	}
	v = w.version
	if w.mode != modeApply {
		v = Version{Time: s.nextTime(now), Node: s.h.NodeID}
	}

	st.beginWrite()
	defer st.endWrite()
	size := layout.RecordSize(len(w.key), len(w.value))
	s.sweep(st, now, sweepPerWrite)
	if err := s.makeRoom(st, size, !found, now); err != nil {
		return v, false, err
	}
	head := atomic64(st.ctl, layout.StHead).Load()
	off := head % s.h.ArenaSize
	var flags uint8
	if w.deleted {
		flags = layout.FlagDeleted
	}
	if w.pinned {
		flags |= layout.FlagPinned
	}
	putRec(st.arena, off, size, h, v, w.expires, now/1e6, w.key, w.value, flags)
	if testhooks.Shm != nil {
		testhooks.Shm("written")
	}
	atomic64(st.ctl, layout.StHead).Store(head + size)
	if testhooks.Shm != nil {
		testhooks.Shm("advanced")
	}
	// makeRoom may have moved or evicted the old record: look again.
	word := makeWord(h, off)
	slot, old, found := s.find(st, h, w.key)
	liveBytes := atomic64(st.ctl, layout.StLiveBytes)
	tombs := atomic32(st.ctl, layout.StTombstones)
	if found {
		liveBytes.Add(-old.size)
		if old.deleted() {
			tombs.Add(^uint32(0))
		}
		st.word(slot).Store(word)
	} else {
		if slot == s.noSlot() {
			// The index is full although its count said otherwise: it
			// is damaged. Rebuild it from the log, which now holds the
			// new record too, and check the record made it.
			st.ctr(layout.StCorruptions).Add(1)
			s.rebuild(st)
			if _, got, ok := s.find(st, h, w.key); !ok || got.off != off {
				return v, false, fmt.Errorf("%w: stripe %d: index damaged beyond repair", ErrCorrupt, st.no)
			}
			s.emit(st, ChangeRescan, nil, Version{}, 0)
			return v, true, nil
		}
		st.word(slot).Store(word)
		atomic32(st.ctl, layout.StCount).Add(1)
	}
	liveBytes.Add(size)
	if w.deleted {
		tombs.Add(1)
	}
	st.meta(slot).Store(makeMeta(uint64(len(w.value)), now/1e9))
	if testhooks.Shm != nil {
		testhooks.Shm("published")
	}
	kind := ChangeSet
	if w.deleted {
		kind = ChangeDelete
		st.ctr(layout.StDeletes).Add(1)
	} else {
		st.ctr(layout.StSets).Add(1)
	}
	if w.mode == modeApply {
		kind |= changeRemote
	}
	s.emit(st, kind, w.key, v, w.expires)
	return v, true, nil
}
