// record.go reads and writes the records of a stripe's arena log and the
// slots of its hash index.
//
// Every read here is bounds checked against the arena, because lock-free
// readers may be looking at bytes a writer is overwriting: a torn record
// must look invalid (and make the reader retry), never index out of range.

package shm

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

var le = binary.LittleEndian

// rec is a decoded record header.
type rec struct {
	off     uint64 // arena offset of the record
	size    uint64
	hash    uint64
	hlc     uint64
	expires int64 // unix ns, 0 = never
	placed  int64 // unix ms
	node    uint32
	keyLen  uint64
	valLen  uint64
	flags   uint8
	crc     uint32
	meta    uint64 // the index slot's meta word (length hint, last read), when read
}

func (r *rec) deleted() bool          { return r.flags&layout.FlagDeleted != 0 }
func (r *rec) expired(now int64) bool { return r.expires != 0 && r.expires <= now }
func (r *rec) version() Version       { return Version{Time: r.hlc, Node: r.node} }
func (r *rec) keyAt() uint64          { return r.off + layout.RecHdrSize }
func (r *rec) valAt() uint64          { return r.off + layout.RecHdrSize + r.keyLen }

// readRec decodes the entry record at off. ok is false if there is no
// well-formed entry record there.
func readRec(arena []byte, off uint64) (r rec, ok bool) {
	n := uint64(len(arena))
	if off%8 != 0 || off >= n || n-off < layout.RecHdrSize {
		return r, false
	}
	b := arena[off : off+layout.RecHdrSize]
	if le.Uint32(b[layout.RecMagic:]) != layout.EntryMagic {
		return r, false
	}
	r.off = off
	r.size = uint64(le.Uint32(b[layout.RecSize:]))
	r.keyLen = uint64(b[layout.RecKeyLen])
	r.valLen = uint64(le.Uint32(b[layout.RecValLen:]))
	if r.size%8 != 0 || r.size > n-off || layout.RecHdrSize+r.keyLen+r.valLen > r.size {
		return r, false
	}
	r.hash = le.Uint64(b[layout.RecHash:])
	r.hlc = le.Uint64(b[layout.RecHLC:])
	r.expires = int64(le.Uint64(b[layout.RecExpires:]))
	r.placed = int64(le.Uint64(b[layout.RecPlaced:]))
	r.node = le.Uint32(b[layout.RecNode:])
	r.flags = b[layout.RecFlags]
	r.crc = le.Uint32(b[layout.RecCRC:])
	return r, true
}

// recCRC computes the checksum of a record as stored.
func recCRC(arena []byte, r *rec) uint32 {
	b := arena[r.off:]
	c := crc32.Update(0, layout.CRC(), b[layout.RecHash:layout.RecExpires])
	c = crc32.Update(c, layout.CRC(), b[layout.RecNode:layout.RecCRC])
	return crc32.Update(c, layout.CRC(), b[layout.RecHdrSize:layout.RecHdrSize+r.keyLen+r.valLen])
}

// putRec writes a whole record at off; the caller has made room.
func putRec(arena []byte, off, size, hash uint64, v Version, expires, placed int64, key, val []byte, flags uint8) {
	b := arena[off : off+size]
	le.PutUint32(b[layout.RecMagic:], layout.EntryMagic)
	le.PutUint32(b[layout.RecSize:], uint32(size))
	le.PutUint64(b[layout.RecHash:], hash)
	le.PutUint64(b[layout.RecHLC:], v.Time)
	le.PutUint64(b[layout.RecExpires:], uint64(expires))
	le.PutUint64(b[layout.RecPlaced:], uint64(placed))
	le.PutUint32(b[layout.RecNode:], v.Node)
	b[layout.RecKeyLen] = uint8(len(key))
	b[layout.RecFlags] = flags
	b[46], b[47] = 0, 0
	le.PutUint32(b[layout.RecValLen:], uint32(len(val)))
	copy(b[layout.RecHdrSize:], key)
	copy(b[layout.RecHdrSize+len(key):], val)
	r := rec{off: off, keyLen: uint64(len(key)), valLen: uint64(len(val))}
	le.PutUint32(b[layout.RecCRC:], recCRC(arena, &r))
}

// putPad fills [off, off+size) with a pad record.
func putPad(arena []byte, off, size uint64) {
	le.PutUint32(arena[off+layout.RecMagic:], layout.PadMagic)
	le.PutUint32(arena[off+layout.RecSize:], uint32(size))
}

// padAt reports the size of a well-formed pad record at off, or 0.
func padAt(arena []byte, off uint64) uint64 {
	n := uint64(len(arena))
	if off%8 != 0 || off >= n || n-off < 8 || le.Uint32(arena[off:]) != layout.PadMagic {
		return 0
	}
	size := uint64(le.Uint32(arena[off+4:]))
	if size < 8 || size%8 != 0 || size > n-off {
		return 0
	}
	return size
}

// Index slots.

func (st *stripe) word(i uint64) *atomic.Uint64 {
	return atomic64(st.idx, i*layout.IndexSlotSize+layout.IdxWord)
}
func (st *stripe) meta(i uint64) *atomic.Uint64 {
	return atomic64(st.idx, i*layout.IndexSlotSize+layout.IdxMeta)
}

// makeMeta is a slot's meta word: the value length and a read time.
func makeMeta(valLen uint64, accessSec int64) uint64 {
	return valLen<<32 | uint64(uint32(accessSec))
}

func metaLen(m uint64) uint64    { return m >> 32 }
func metaAccess(m uint64) uint32 { return uint32(m) }

func tagOf(hash uint64) uint32 { return uint32(hash >> 32) }

func makeWord(hash, off uint64) uint64 { return uint64(tagOf(hash))<<32 | (off>>3 + 1) }

// wordOff is the arena offset a slot word points at. A zero low half (which
// no valid word has) yields an offset far outside any arena.
func wordOff(w uint64) uint64 { return (w&0xffffffff - 1) << 3 }

func (s *Segment) home(tag uint32) uint64 { return uint64(tag) & s.indexMask }

// find looks key up in st's index. Safe without the lock (the caller then
// validates with the stripe's sequence counter). When key is absent, slot
// is the free slot where it would go, or noSlot if the index is full (it
// is damaged: the index is never let fill up).
func (s *Segment) find(st *stripe, hash uint64, key []byte) (slot uint64, r rec, ok bool) {
	tag := tagOf(hash)
	i := s.home(tag)
	for range s.indexMask + 1 {
		w := st.word(i).Load()
		if w == 0 {
			return i, r, false
		}
		if uint32(w>>32) == tag && holds(st.arena, wordOff(w), hash, key) {
			if r, ok := readRec(st.arena, wordOff(w)); ok {
				return i, r, true
			}
		}
		i = (i + 1) & s.indexMask
	}
	return s.noSlot(), r, false
}

// holds reports whether the record at off is key's (whose hash is h): of
// the checks readRec makes, those a lookup needs, without decoding the rest
// of the header. Bounds checked, for lock-free readers.
func holds(arena []byte, off, h uint64, key []byte) bool {
	n, kl := uint64(len(arena)), uint64(len(key))
	if off%8 != 0 || off >= n || n-off < layout.RecHdrSize+kl {
		return false
	}
	b := arena[off : off+layout.RecHdrSize+kl]
	return le.Uint32(b[layout.RecMagic:]) == layout.EntryMagic && le.Uint64(b[layout.RecHash:]) == h &&
		uint64(b[layout.RecKeyLen]) == kl && bytes.Equal(b[layout.RecHdrSize:], key)
}

// noSlot is find's answer when the index has no free slot.
func (s *Segment) noSlot() uint64 { return s.indexMask + 1 }

// slotAt finds the index slot that points at the record at off, if any:
// the record is live exactly when one does.
func (s *Segment) slotAt(st *stripe, hash, off uint64) (uint64, bool) {
	want := makeWord(hash, off)
	i := s.home(tagOf(hash))
	for range s.indexMask + 1 {
		w := st.word(i).Load()
		if w == 0 {
			return 0, false
		}
		if w == want {
			return i, true
		}
		i = (i + 1) & s.indexMask
	}
	return 0, false
}

// removeSlot empties slot i with backward-shift deletion, so that probe
// sequences stay unbroken without tombstone slots.
func (s *Segment) removeSlot(st *stripe, i uint64) {
	mask := s.indexMask
	j := i
	for range mask + 1 {
		j = (j + 1) & mask
		w := st.word(j).Load()
		if w == 0 {
			break
		}
		h := s.home(uint32(w >> 32))
		// The entry at j may move to i unless its home lies cyclically
		// in (i, j].
		if (i <= j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			st.word(i).Store(w)
			st.meta(i).Store(st.meta(j).Load())
			i = j
		}
	}
	st.word(i).Store(0)
	st.meta(i).Store(0)
}

// wholeRecord checks a lock-free read against the record's checksum: the
// header fields as decoded, the key asked for and the value copied out.
// Only needed where loads may be reordered past the sequence check (see
// verifyReads).
func wholeRecord(r *rec, key, val []byte) bool {
	var h [28]byte
	le.PutUint64(h[0:], r.hash)
	le.PutUint64(h[8:], r.hlc)
	le.PutUint32(h[16:], r.node)
	h[20], h[21] = uint8(r.keyLen), r.flags
	le.PutUint32(h[24:], uint32(r.valLen))
	c := crc32.Update(0, layout.CRC(), h[:])
	c = crc32.Update(c, layout.CRC(), key)
	return crc32.Update(c, layout.CRC(), val) == r.crc
}

// badBounds reports whether a stripe's log positions cannot be right: the
// tail past the head, more in use than the arena holds, or unaligned.
func badBounds(head, tail, arena uint64) bool {
	return tail > head || head-tail > arena || head%8 != 0 || tail%8 != 0
}
