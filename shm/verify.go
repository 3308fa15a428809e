// verify.go checks a segment's consistency, and iterates over a stripe's
// entries; both work on a private copy of one stripe at a time, taken
// without the lock when writers allow it.

package shm

import (
	"errors"
	"fmt"
	"time"

	"github.com/gardenstate/gardenstate/internal/testhooks"
	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// snapshotTries is how often a lock-free copy of a stripe is attempted
// before the copy is taken under the lock.
const snapshotTries = 4

// snapshot returns a private copy of stripe i: control block, index and
// arena, consistent as of one moment. A stripe whose lock owner died is
// taken over (and so repaired) first.
func (s *Segment) snapshot(i int) (*stripe, error) {
	st := &s.stripes[i]
	cp := &stripe{
		no:    i,
		ctl:   make([]byte, len(st.ctl)),
		idx:   make([]byte, len(st.idx)),
		arena: make([]byte, len(st.arena)),
	}
	err := s.stable(st, func() {
		copy(cp.ctl, st.ctl)
		copy(cp.idx, st.idx)
		copy(cp.arena, st.arena)
	})
	if err != nil {
		return nil, err
	}
	cp.lock, cp.seq = atomic32(cp.ctl, layout.StLock), atomic64(cp.ctl, layout.StSeq)
	return cp, nil
}

// stable runs read, which reads stripe st, until it has run from start to
// end between two writes: without the lock while writers allow it
// (snapshotTries times), else under the lock. A stripe left locked by a
// dead process is taken over (and repaired) first.
func (s *Segment) stable(st *stripe, read func()) error {
	if !s.enter(st) {
		return ErrClosed
	}
	defer st.exit()
	if err := s.takeOverIfDead(st); err != nil {
		return err
	}
	for range snapshotTries {
		seq := st.seq.Load()
		if seq&1 != 0 {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		read()
		loadFence() // the copy is complete before the counter is read again
		if st.seq.Load() == seq {
			return nil
		}
	}
	if err := s.lock(st); err != nil {
		return err
	}
	read()
	s.unlock(st)
	return nil
}

// takeOverIfDead takes over st's lock if a dead process holds it, which
// repairs the stripe; the caller has entered st.
func (s *Segment) takeOverIfDead(st *stripe) error {
	if w := st.lock.Load(); w != 0 && !s.ownerAlive(w&ownerMask) {
		if err := s.lock(st); err != nil {
			return err
		}
		s.unlock(st)
	}
	return nil
}

// Verify walks every stripe and reports every inconsistency it finds, each
// an error wrapping ErrCorrupt that names the stripe (nil when clean). It
// does not stop writers: each stripe is checked on a private copy taken
// between two writes. A stripe left locked by a dead process is taken over
// and repaired first, as any operation would.
func (s *Segment) Verify() error {
	var errs []error
	for i := range s.stripes {
		cp, err := s.snapshot(i)
		if err != nil {
			errs = append(errs, fmt.Errorf("stripe %d: %w", i, err))
			continue
		}
		errs = append(errs, s.verifyStripe(i, cp)...)
	}
	return errors.Join(errs...)
}

func (s *Segment) verifyStripe(i int, st *stripe) (errs []error) {
	more := 0
	bad := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf("%w: stripe %d: %s", ErrCorrupt, i, fmt.Sprintf(format, args...)))
		} else {
			more++
		}
	}
	defer func() {
		if more > 0 {
			errs = append(errs, fmt.Errorf("%w: stripe %d: %d more problems not listed", ErrCorrupt, i, more))
		}
	}()
	arena := s.h.ArenaSize
	c := func(off uint64) uint64 { return atomic64(st.ctl, off).Load() }
	head, tail := c(layout.StHead), c(layout.StTail)
	if st.seq.Load()&1 != 0 {
		bad("sequence counter %d is odd (a write never finished)", st.seq.Load())
	}
	if badBounds(head, tail, arena) {
		bad("log bounds tail=%d head=%d invalid for a %d-byte arena", tail, head, arena)
		return errs
	}
	// Walk the log.
	records := map[uint64]rec{}
	for pos := tail; pos < head; {
		off := pos % arena
		r, pad, ok := s.logAt(st, pos, head)
		if !ok {
			bad("no valid record at log position %d (offset %d)", pos, off)
			break
		}
		if pad {
			if off+r.size != arena {
				bad("pad record at %d does not reach the end of the arena", off)
			}
			pos += r.size
			continue
		}
		if recCRC(st.arena, &r) != r.crc {
			bad("record at offset %d fails its checksum", off)
		}
		if r.hash&s.stripeMask != uint64(i) {
			bad("record at offset %d hashes to stripe %d", off, r.hash&s.stripeMask)
		}
		records[off] = r
		pos += r.size
	}
	// Check the index against the log.
	var count, tombs uint32
	var live uint64
	for slot := uint64(0); slot <= s.indexMask; slot++ {
		w := st.word(slot).Load()
		if w == 0 {
			continue
		}
		count++
		off := wordOff(w)
		r, ok := records[off]
		if !ok {
			bad("index slot %d points at offset %d, which holds no record of the log", slot, off)
			continue
		}
		if tagOf(r.hash) != uint32(w>>32) {
			bad("index slot %d: tag %#x, record hash %#x", slot, uint32(w>>32), r.hash)
			continue
		}
		if n := metaLen(st.meta(slot).Load()); n != r.valLen {
			bad("index slot %d: value length %d, record holds %d", slot, n, r.valLen)
		}
		key := st.arena[r.keyAt() : r.keyAt()+r.keyLen]
		if got, _, ok := s.find(st, r.hash, key); !ok || got != slot {
			bad("index slot %d: key %q is unreachable or duplicated (lookup finds slot %d)", slot, key, got)
		}
		live += r.size
		if r.deleted() {
			tombs++
		}
	}
	if n := uint32(c(layout.StCount)); n != count {
		bad("entry count %d, index holds %d", n, count)
	}
	if n := atomic32(st.ctl, layout.StTombstones).Load(); n != tombs {
		bad("tombstone count %d, index holds %d", n, tombs)
	}
	if n := c(layout.StLiveBytes); n != live {
		bad("live bytes %d, index accounts for %d", n, live)
	}
	return errs
}

// RangeOptions refine RangeWith.
type RangeOptions struct {
	// IncludeExpired also visits entries whose deadline has passed but
	// that have not been dropped yet.
	IncludeExpired bool
	// KeysOnly leaves Entry.Value nil: for comparing versions (as
	// anti-entropy does) without copying the data.
	KeysOnly bool
	// Origin, if not zero, visits only entries whose version carries this
	// node id; After and Until, if not zero, only those whose version time
	// is later than After and not later than Until: what replication
	// sends after its change feed fell behind. Entries left out are not
	// copied.
	Origin       uint32
	After, Until uint64
	// Since, if set and After is not earlier than its Clock, reads only
	// the records placed in the stripe's log after the watermark instead of
	// looking up every entry: what was written since costs the same
	// however many entries the segment holds. The entries visited are the
	// same either way. (Where the log cannot be followed from the watermark,
	// after a repair, the whole stripe is read.)
	Since *Watermark
}

// Watermark is a point in a segment's history: where each stripe's log ended
// and, read just after, the clock. A local write with a version later
// than Clock is placed after the watermark in its stripe's log, so a reader
// that wants only such versions (RangeOptions.Since) need not read the
// records placed before it.
type Watermark struct {
	Clock   uint64
	stripes []markPos
}

// markPos is where one stripe's log ended, and its repairs, corruptions
// and dropped records then: a rebuild may cut the log back and place
// records where the watermark's position falls inside one.
type markPos struct{ head, mends uint64 }

// Watermark returns the segment's current watermark (after Close, an
// empty one, with which RangeWith reads stripes whole).
func (s *Segment) Watermark() Watermark {
	if !s.enterMisc() {
		return Watermark{}
	}
	defer s.exitMisc()
	m := Watermark{stripes: make([]markPos, len(s.stripes))}
	for i := range s.stripes {
		// The mends first: a rebuild that cuts the log back counts
		// itself (StDropped) after moving the head.
		mends := s.stripes[i].mends()
		m.stripes[i] = markPos{head: atomic64(s.stripes[i].ctl, layout.StHead).Load(), mends: mends}
	}
	if testhooks.Shm != nil {
		testhooks.Shm("watermark")
	}
	// A write takes its version before its record advances the head: a
	// record placed before the head read has a version no later than
	// the clock read after it.
	m.Clock = s.hlc.Load()
	return m
}

func (st *stripe) mends() uint64 {
	return st.ctr(layout.StRepairs).Load() + st.ctr(layout.StCorruptions).Load() + st.ctr(layout.StDropped).Load()
}

// Range calls fn for every unexpired entry of stripe i, tombstones
// included, until fn returns false. The entries are copies taken at one
// moment; fn may keep them and may call any method of s.
func (s *Segment) Range(i int, fn func(Entry) bool) error {
	return s.RangeWith(i, RangeOptions{}, fn)
}

// RangeWith is Range with options. The stripe is read between two writes
// without taking its lock when writers allow it, else under the lock; fn
// runs after the stripe is released. A stripe whose index points more than
// once at the same bytes is reported with ErrCorrupt.
func (s *Segment) RangeWith(i int, o RangeOptions, fn func(Entry) bool) error {
	if i < 0 || i >= len(s.stripes) {
		return fmt.Errorf("%w: stripe %d of %d", ErrBadOptions, i, len(s.stripes))
	}
	st := &s.stripes[i]
	now := time.Now().UnixNano()
	var c collected
	walked, err := s.readSince(st, o, now, &c)
	if err != nil {
		return err
	}
	if !walked {
		if err := s.stable(st, func() { s.collect(st, o, now, &c) }); err != nil {
			return err
		}
	}
	if c.overlap {
		return fmt.Errorf("%w: stripe %d: its index points at overlapping records (Verify says where)", ErrCorrupt, i)
	}
	for _, e := range c.es {
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// collected is what collect copied out of a stripe. A read that has to
// be made again reuses its memory.
type collected struct {
	recs    []rec
	es      []Entry
	buf     []byte // the keys and values of es
	overlap bool   // the entries found add up to more than the stripe holds
}

// collect copies out a stripe's entries into c: first it finds them and
// adds up their sizes, then copies them into memory allocated once.
// Without the lock the bytes may be changing underneath: every read is
// bounds checked, and the caller throws the result away unless the
// stripe's sequence counter stayed put.
func (s *Segment) collect(st *stripe, o RangeOptions, now int64, c *collected) {
	c.recs = c.recs[:0]
	for slot := uint64(0); slot <= s.indexMask; slot++ {
		w := st.word(slot).Load()
		if w == 0 {
			continue
		}
		r, ok := readRec(st.arena, wordOff(w))
		if !ok || !o.wants(&r, now) {
			continue
		}
		c.add(&r, st.meta(slot).Load(), o.KeysOnly)
	}
	c.copyOut(st, o.KeysOnly)
}

// readSince collects st's records placed since the watermark o.Since,
// when o allows a read since it (After no earlier than the watermark, the
// watermark of this segment's stripes). walked is false when it does not,
// or when st's log cannot be followed from the watermark: the caller then
// reads the whole stripe.
func (s *Segment) readSince(st *stripe, o RangeOptions, now int64, c *collected) (walked bool, err error) {
	m := o.Since
	if m == nil || o.After < m.Clock || len(m.stripes) != len(s.stripes) {
		return false, nil
	}
	err = s.stable(st, func() { walked = s.collectSince(st, m.stripes[st.no], o, now, c) })
	return walked, err
}

// collectSince is collect for the records placed in st's log from p on:
// it follows the log instead of the index, and keeps the records the
// index still points at. It reports false where the log cannot be
// followed from p (a repair or a rebuild since, or, the read being torn or
// the log damaged, no record where one must start), leaving c to collect.
func (s *Segment) collectSince(st *stripe, p markPos, o RangeOptions, now int64, c *collected) bool {
	c.recs = c.recs[:0]
	arena := s.h.ArenaSize
	head, tail := atomic64(st.ctl, layout.StHead).Load(), atomic64(st.ctl, layout.StTail).Load()
	if st.mends() != p.mends || badBounds(head, tail, arena) || p.head > head || p.head%8 != 0 {
		return false
	}
	// Records before the tail are gone, and those the tail passed that
	// were live have been placed again at the head.
	for pos := max(p.head, tail); pos < head; {
		r, pad, ok := s.logAt(st, pos, head)
		if !ok {
			return false
		}
		pos += r.size
		if pad || !o.wants(&r, now) {
			continue
		}
		if slot, live := s.slotAt(st, r.hash, r.off); live {
			c.add(&r, st.meta(slot).Load(), o.KeysOnly)
		}
	}
	c.copyOut(st, o.KeysOnly)
	return true
}

// wants reports whether a record found is one o asks for.
func (o *RangeOptions) wants(r *rec, now int64) bool {
	return (o.IncludeExpired || !r.expired(now)) && (o.Origin == 0 || r.node == o.Origin) &&
		r.hlc > o.After && (o.Until == 0 || r.hlc <= o.Until)
}

// add notes a record to copy out (its key alone with keysOnly).
func (c *collected) add(r *rec, meta uint64, keysOnly bool) {
	if keysOnly {
		r.valLen = 0
	}
	r.meta = meta
	c.recs = append(c.recs, *r)
}

// copyOut copies the keys and values of the records noted in c into
// memory allocated once.
func (c *collected) copyOut(st *stripe, keysOnly bool) {
	size := uint64(0)
	for i := range c.recs {
		size += c.recs[i].keyLen + c.recs[i].valLen
	}
	// Records overlap if the read was torn (the caller reads again) or
	// the index is corrupt.
	if c.overlap = size > uint64(len(st.arena)); c.overlap {
		c.es = c.es[:0]
		return
	}
	if uint64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	if cap(c.es) < len(c.recs) {
		c.es = make([]Entry, len(c.recs))
	}
	buf, es := c.buf[:size], c.es[:len(c.recs)]
	for i := range c.recs {
		r := &c.recs[i]
		k := buf[:copy(buf, st.arena[r.keyAt():r.keyAt()+r.keyLen]):r.keyLen]
		buf = buf[r.keyLen:]
		e := Entry{Key: k, Version: r.version(), Deleted: r.deleted(), Accessed: time.Unix(int64(metaAccess(r.meta)), 0)}
		if !keysOnly {
			e.Value = buf[:copy(buf, st.arena[r.valAt():r.valAt()+r.valLen]):r.valLen]
			buf = buf[r.valLen:]
		}
		if r.expires != 0 {
			e.Expires = time.Unix(0, r.expires)
		}
		es[i] = e
	}
	c.es = es
}
