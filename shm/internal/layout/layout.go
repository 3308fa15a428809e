// Package layout defines the byte layout of a segment file: the header, the
// process slot table, the stripes, their hash indexes and arenas, and the
// change ring. It is the only place that knows where anything lives inside
// the mapping; the shm package reads and writes through these offsets.
//
// Everything is little endian. Every word that more than one process updates
// concurrently is 8-byte aligned (4-byte for futex words) so it can be used
// with sync/atomic; layout_test.go pins the offsets.
package layout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Magic opens every segment file.
var Magic = [8]byte{'G', 'R', 'D', 'N', 'S', 'E', 'G', 0}

// FormatVersion is the version of the layout described in this file. A
// segment of any other version is refused. 3: HdrRingWaiters holds an
// announcement instead of a count, and StPendingRing may hold PendingTaking.
const FormatVersion = 3

const (
	// CacheLine is the size that hot, independently written words are
	// padded to, so that two processes updating neighbouring counters do
	// not invalidate each other's cache lines.
	CacheLine = 64

	// HeaderSize is the size of the header page at offset 0.
	HeaderSize = 4096

	// MaxKey is the longest key a segment stores (the length is one byte).
	MaxKey = 255

	// MaxProcs is the most slots a segment can have: the owner field of a
	// lock word holds the slot in 10 bits and slot 0 means "no owner".
	MaxProcs = 1023

	// AppNameLen is the room for the application name in the header.
	AppNameLen = 64
)

// Offsets of the fixed header fields. The fields up to HdrChecksum are
// written once at creation and covered by the checksum.
const (
	HdrMagic        = 0
	HdrVersion      = 8
	HdrHeaderSize   = 12
	HdrFileSize     = 16
	HdrStripes      = 24
	HdrIndexSlots   = 28
	HdrArenaSize    = 32
	HdrMaxValue     = 40
	HdrMaxKey       = 44
	HdrMaxProcs     = 48
	HdrRingSize     = 52
	HdrHashSeed     = 56
	HdrCreated      = 64
	HdrNodeID       = 72
	HdrTombstoneTTL = 80
	HdrApp          = 88
	HdrSlotsOff     = HdrApp + AppNameLen // 152
	HdrStripesOff   = 160
	HdrIndexOff     = 168
	HdrArenaOff     = 176
	HdrRingOff      = 184
	HdrChecksum     = 192
	hdrFixedEnd     = 196
)

// Offsets of the mutable header words, each alone on its cache line.
const (
	// HdrHLC is the segment's hybrid logical clock: the last version handed
	// out to a local write (wall milliseconds << 16 | logical counter).
	// Updated by CAS; it only ever grows.
	HdrHLC = 256
	// HdrRingHead is the next change-ring sequence number to hand out.
	// Writers reserve a sequence with an atomic add; it only ever grows.
	HdrRingHead = 320
	// HdrAcked is the sequence through which the replication agent reports
	// every change delivered to its peers. Written only by the agent.
	HdrAcked = 384
	// HdrAckedWake is a 32-bit futex word bumped whenever HdrAcked moves,
	// so that writers waiting for an acknowledgement can sleep on it.
	HdrAckedWake = 448
	// HdrMarks holds NumMarks uint64 words for the segment's users (for
	// example the cursor of the process that fires expiry hooks), so that
	// such state survives the process that wrote it.
	HdrMarks = 512
	NumMarks = 8
	// HdrRingWake is a 32-bit futex word bumped after a change record is
	// written if HdrRingWaiters is not zero: a tailer about to sleep in
	// WaitChanges announces itself there (HdrRingWake's value as it read
	// it, plus one), and a writer that finds an announcement bumps
	// HdrRingWake, wakes every sleeper, and then clears that announcement
	// if it is still the one it found.
	HdrRingWake    = 576
	HdrRingWaiters = 640
)

// Process slot table: one cache line per slot. Slot numbers start at 1.
const (
	SlotSize = CacheLine
	// SlotGen is the slot's generation (uint32), incremented each time a
	// process takes the slot. Lock owners are (slot, generation), so a new
	// process in a reused slot is never mistaken for the old one.
	SlotGen = 0
	// SlotPID is the pid of the process in the slot (informational only;
	// liveness never depends on it).
	SlotPID = 4
	// SlotAttached is when the process attached (unix nanoseconds).
	SlotAttached = 8
	// SlotLockByte is the byte of the file (relative to the slot) on which
	// the process in the slot holds an OFD write lock while it is attached.
	// The kernel drops the lock when the process dies, which is how other
	// processes learn that it is gone.
	SlotLockByte = 16
)

// Stripe control block: four cache lines.
const (
	StripeSize = 4 * CacheLine

	// Line 0: written by the stripe's writer, read by everyone.

	// StLock is the stripe's cross-process lock (uint32 futex word): 0 when
	// free, else the owner (slot<<20 | generation) and the waiters bit. It
	// protects everything in the stripe: the control block, the index
	// slots (except the read-time half of their meta words, which readers
	// set by compare-and-swap) and the arena.
	StLock = 0
	// StSeq is the stripe's sequence counter (uint64): odd while a writer
	// is modifying the stripe, even when it is consistent. Readers that do
	// not take the lock copy what they need and accept it only if StSeq
	// was even and unchanged across the copy.
	StSeq = 8
	// StHead and StTail are logical positions (they only grow) in the
	// arena log: records live in [tail, head), at position % ArenaSize.
	StHead = 16
	StTail = 24
	// StLiveBytes is the size of the records the index points at.
	StLiveBytes = 32
	// StCount is the number of occupied index slots, tombstones included.
	StCount = 40
	// StTombstones is how many of them are tombstones.
	StTombstones = 44
	// StSweep is the index slot where the next bounded expiry sweep starts.
	StSweep = 48
	// StPendingRing is the change-ring sequence the writer reserved and has
	// not finished writing (0 when none); repair completes it. While the
	// writer takes the number it holds PendingTaking | a lower bound of the
	// number, so that a reader waiting for a record at or after the bound
	// knows a live writer may hold it.
	StPendingRing = 56

	// Line 1: counters bumped by lock-free readers.
	StHits   = CacheLine + 0
	StMisses = CacheLine + 8
	// StLockTimeouts counts operations that gave up waiting for the lock.
	StLockTimeouts = CacheLine + 16

	// Line 2: counters bumped by the lock holder or by waiters.
	StSets            = 2*CacheLine + 0
	StDeletes         = 2*CacheLine + 8
	StTouches         = 2*CacheLine + 16
	StExpirations     = 2*CacheLine + 24
	StEvictions       = 2*CacheLine + 32
	StForcedEvictions = 2*CacheLine + 40
	StLockWaits       = 2*CacheLine + 48
	StTakeovers       = 2*CacheLine + 56

	// Line 3: rare counters.
	StRepairs      = 3*CacheLine + 0
	StDropped      = 3*CacheLine + 8
	StCorruptions  = 3*CacheLine + 16
	StStaleUnlocks = 3*CacheLine + 24
	StRelocations  = 3*CacheLine + 32
)

// PendingTaking is the bit of StPendingRing set while its writer takes a
// change-ring sequence number: the rest is the ring head before the
// taking, and the number will be at least that.
const PendingTaking = uint64(1) << 63

// Index slot: 16 bytes. Word is tag<<32 | (arena offset/8 + 1); 0 is empty.
// Meta is the record's value length << 32 | its last read time (unix
// seconds). Writers store both halves under the lock; readers update the
// time half without it, by compare-and-swap so that they never undo a
// writer's length. The length lets a reader start copying the value in the
// same memory round trip as it loads the record header; the record's own
// length stays authoritative.
const (
	IndexSlotSize = 16
	IdxWord       = 0
	IdxMeta       = 8
)

// Arena records. A record is 8-byte aligned and never wraps around the end
// of the arena; a pad record fills the gap instead.
const (
	RecMagic    = 0 // uint32: EntryMagic or PadMagic
	RecSize     = 4 // uint32: whole record, aligned to 8
	RecHash     = 8
	RecHLC      = 16
	RecExpires  = 24 // int64 unix nanoseconds, 0 = never; updated in place by Touch
	RecPlaced   = 32 // int64 unix milliseconds when written or relocated
	RecNode     = 40
	RecKeyLen   = 44
	RecFlags    = 45
	RecValLen   = 48
	RecCRC      = 52 // crc32c of [RecHash,RecExpires) + [RecNode,RecCRC) + key + value: all but the two words updated in place
	RecHdrSize  = 56
	EntryMagic  = 0x454e5247 // "GRNE"
	PadMagic    = 0x504e5247 // "GRNP"
	FlagDeleted = 1
	FlagPinned  = 2 // moved, never evicted, when its stripe needs room
)

// Change ring records: fixed size.
const (
	RingRecSize = 296
	RingSeq     = 0 // uint64: the record's sequence once complete; anything else means in progress or another lap
	RingHLC     = 8
	RingExpires = 16
	RingNode    = 24
	RingKind    = 28
	RingKeyLen  = 29
	RingStripe  = 30 // uint16
	RingKey     = 32
	RingCRC     = 288 // crc32c of the sequence and every field: a record mixed from two writers fails it
)

// Header is the immutable part of a segment header.
type Header struct {
	Version      uint32
	FileSize     uint64
	Stripes      uint32
	IndexSlots   uint32 // per stripe, a power of two
	ArenaSize    uint64 // per stripe, a multiple of 8
	MaxValue     uint32
	MaxKey       uint32
	MaxProcs     uint32
	RingSize     uint32 // records, a power of two
	HashSeed     uint64
	Created      int64
	NodeID       uint32
	TombstoneTTL int64 // nanoseconds
	App          string

	SlotsOff   uint64
	StripesOff uint64
	IndexOff   uint64
	ArenaOff   uint64
	RingOff    uint64
}

// Params are what a new segment is sized from.
type Params struct {
	Size         uint64
	Stripes      uint32
	AvgEntry     uint32
	MaxValue     uint32
	MaxProcs     uint32
	RingSize     uint32
	HashSeed     uint64
	Created      int64
	NodeID       uint32
	TombstoneTTL int64
	App          string
}

// Errors returned by Decode and Plan; the shm package wraps them in its own
// sentinels.
var (
	ErrMagic    = errors.New("not a gardenstate segment (bad magic)")
	ErrVersion  = errors.New("unsupported format version")
	ErrChecksum = errors.New("header checksum mismatch")
	ErrLayout   = errors.New("inconsistent layout")
	ErrShort    = errors.New("file too short")
	ErrTooSmall = errors.New("size too small")
)

func align(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// RecordSize is the arena space a record with these lengths takes.
func RecordSize(keyLen, valLen int) uint64 {
	return align(uint64(RecHdrSize+keyLen+valLen), 8)
}

// Plan lays out a segment of p.Size bytes. If p.Stripes is 0 it picks the
// largest power of two (up to 1024) that leaves each stripe's arena room for
// at least two values of the largest size.
func Plan(p Params) (Header, error) {
	h := Header{
		Version: FormatVersion, FileSize: p.Size, MaxValue: p.MaxValue, MaxKey: MaxKey,
		MaxProcs: p.MaxProcs, RingSize: p.RingSize, HashSeed: p.HashSeed, Created: p.Created,
		NodeID: p.NodeID, TombstoneTTL: p.TombstoneTTL, App: p.App,
	}
	if p.MaxProcs == 0 || p.MaxProcs > MaxProcs {
		return h, fmt.Errorf("%w: MaxProcs %d not in 1..%d", ErrLayout, p.MaxProcs, MaxProcs)
	}
	if p.RingSize == 0 || p.RingSize&(p.RingSize-1) != 0 {
		return h, fmt.Errorf("%w: ring size %d is not a power of two", ErrLayout, p.RingSize)
	}
	if p.AvgEntry < 64 {
		return h, fmt.Errorf("%w: average entry size %d below 64", ErrLayout, p.AvgEntry)
	}
	if len(p.App) > AppNameLen {
		return h, fmt.Errorf("%w: application name longer than %d bytes", ErrLayout, AppNameLen)
	}
	h.SlotsOff = HeaderSize
	h.RingOff = align(h.SlotsOff+uint64(p.MaxProcs+1)*SlotSize, 4096)
	h.StripesOff = align(h.RingOff+uint64(p.RingSize)*RingRecSize, 4096)
	minArena := 2 * RecordSize(MaxKey, int(p.MaxValue))
	minRoom := minArena + indexBytes(minArena, p.AvgEntry) // per stripe
	stripes := p.Stripes
	if stripes == 0 {
		stripes = 1024
		for stripes > 1 && perStripe(p, h.StripesOff, stripes) < minRoom {
			stripes /= 2
		}
	}
	if stripes&(stripes-1) != 0 || stripes > 1<<16 {
		return h, fmt.Errorf("%w: stripe count %d is not a power of two up to 65536", ErrLayout, stripes)
	}
	h.Stripes = stripes
	room := perStripe(p, h.StripesOff, stripes)
	if room < minRoom {
		need := h.StripesOff + uint64(stripes)*(StripeSize+minRoom) + 4096
		return h, fmt.Errorf("%w: %d bytes cannot hold %d stripes of two %d-byte values; need at least %d",
			ErrTooSmall, p.Size, stripes, p.MaxValue, need)
	}
	// Split each stripe's room between index and arena: the fewest
	// power-of-two index slots that still give one slot per AvgEntry/2
	// bytes of arena (a load factor of at most 1/2 at the expected size).
	slots := uint64(64)
	for slots*IndexSlotSize < room && slots*uint64(p.AvgEntry) < 2*(room-slots*IndexSlotSize) {
		slots <<= 1
	}
	arena := (room - slots*IndexSlotSize) &^ 7
	if arena > 1<<35 {
		arena = 1 << 35 // index offsets are 32 bits of 8-byte units
	}
	if arena < minArena || slots > 1<<30 {
		return h, fmt.Errorf("%w: %d bytes leave %d-byte arenas, below %d", ErrTooSmall, p.Size, arena, minArena)
	}
	h.ArenaSize = arena
	h.IndexSlots = uint32(slots)
	h.IndexOff = align(h.StripesOff+uint64(stripes)*StripeSize, 4096)
	h.ArenaOff = align(h.IndexOff+uint64(stripes)*uint64(h.IndexSlots)*IndexSlotSize, 4096)
	if end := h.ArenaOff + uint64(stripes)*h.ArenaSize; end > p.Size {
		return h, fmt.Errorf("%w: layout needs %d bytes, have %d", ErrTooSmall, end, p.Size)
	}
	return h, nil
}

// perStripe is the room each stripe gets for its index and arena.
func perStripe(p Params, stripesOff uint64, stripes uint32) uint64 {
	fixed := align(stripesOff+uint64(stripes)*StripeSize, 4096) + 2*4096 // alignment slack
	if p.Size <= fixed {
		return 0
	}
	return (p.Size - fixed) / uint64(stripes)
}

// indexBytes is the size of the index for an arena: a power-of-two number
// of slots, at least twice the entries the arena holds at AvgEntry bytes.
func indexBytes(arena uint64, avg uint32) uint64 {
	want := 2 * arena / uint64(avg)
	slots := uint64(64)
	for slots < want {
		slots <<= 1
	}
	return slots * IndexSlotSize
}

// Encode writes h into the first HeaderSize bytes of b, with its checksum.
func Encode(b []byte, h Header) {
	le := binary.LittleEndian
	copy(b[HdrMagic:], Magic[:])
	le.PutUint32(b[HdrVersion:], h.Version)
	le.PutUint32(b[HdrHeaderSize:], HeaderSize)
	le.PutUint64(b[HdrFileSize:], h.FileSize)
	le.PutUint32(b[HdrStripes:], h.Stripes)
	le.PutUint32(b[HdrIndexSlots:], h.IndexSlots)
	le.PutUint64(b[HdrArenaSize:], h.ArenaSize)
	le.PutUint32(b[HdrMaxValue:], h.MaxValue)
	le.PutUint32(b[HdrMaxKey:], h.MaxKey)
	le.PutUint32(b[HdrMaxProcs:], h.MaxProcs)
	le.PutUint32(b[HdrRingSize:], h.RingSize)
	le.PutUint64(b[HdrHashSeed:], h.HashSeed)
	le.PutUint64(b[HdrCreated:], uint64(h.Created))
	le.PutUint32(b[HdrNodeID:], h.NodeID)
	le.PutUint64(b[HdrTombstoneTTL:], uint64(h.TombstoneTTL))
	clear(b[HdrApp : HdrApp+AppNameLen])
	copy(b[HdrApp:HdrApp+AppNameLen], h.App)
	le.PutUint64(b[HdrSlotsOff:], h.SlotsOff)
	le.PutUint64(b[HdrStripesOff:], h.StripesOff)
	le.PutUint64(b[HdrIndexOff:], h.IndexOff)
	le.PutUint64(b[HdrArenaOff:], h.ArenaOff)
	le.PutUint64(b[HdrRingOff:], h.RingOff)
	le.PutUint32(b[HdrChecksum:], Checksum(b))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the crc32c of the header bytes before the checksum field.
func Checksum(b []byte) uint32 { return crc32.Checksum(b[:HdrChecksum], castagnoli) }

// CRC returns the Castagnoli table used for record checksums.
func CRC() *crc32.Table { return castagnoli }

// Decode reads and validates the header at the start of b, a file of
// fileSize bytes. Every error names the field that is wrong.
func Decode(b []byte, fileSize uint64) (Header, error) {
	var h Header
	if len(b) < hdrFixedEnd || fileSize < HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, a segment header needs %d", ErrShort, fileSize, HeaderSize)
	}
	le := binary.LittleEndian
	if [8]byte(b[HdrMagic:HdrMagic+8]) != Magic {
		return h, fmt.Errorf("%w: first bytes %x, want %x", ErrMagic, b[HdrMagic:HdrMagic+8], Magic[:])
	}
	h.Version = le.Uint32(b[HdrVersion:])
	if h.Version != FormatVersion {
		return h, fmt.Errorf("%w: segment has format version %d, this build reads version %d", ErrVersion, h.Version, FormatVersion)
	}
	if got, want := le.Uint32(b[HdrChecksum:]), Checksum(b); got != want {
		return h, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrChecksum, got, want)
	}
	if hs := le.Uint32(b[HdrHeaderSize:]); hs != HeaderSize {
		return h, fmt.Errorf("%w: header size %d, want %d", ErrLayout, hs, HeaderSize)
	}
	h.FileSize = le.Uint64(b[HdrFileSize:])
	h.Stripes = le.Uint32(b[HdrStripes:])
	h.IndexSlots = le.Uint32(b[HdrIndexSlots:])
	h.ArenaSize = le.Uint64(b[HdrArenaSize:])
	h.MaxValue = le.Uint32(b[HdrMaxValue:])
	h.MaxKey = le.Uint32(b[HdrMaxKey:])
	h.MaxProcs = le.Uint32(b[HdrMaxProcs:])
	h.RingSize = le.Uint32(b[HdrRingSize:])
	h.HashSeed = le.Uint64(b[HdrHashSeed:])
	h.Created = int64(le.Uint64(b[HdrCreated:]))
	h.NodeID = le.Uint32(b[HdrNodeID:])
	h.TombstoneTTL = int64(le.Uint64(b[HdrTombstoneTTL:]))
	app := b[HdrApp : HdrApp+AppNameLen]
	for i, c := range app {
		if c == 0 {
			app = app[:i]
			break
		}
	}
	h.App = string(app)
	h.SlotsOff = le.Uint64(b[HdrSlotsOff:])
	h.StripesOff = le.Uint64(b[HdrStripesOff:])
	h.IndexOff = le.Uint64(b[HdrIndexOff:])
	h.ArenaOff = le.Uint64(b[HdrArenaOff:])
	h.RingOff = le.Uint64(b[HdrRingOff:])
	return h, h.validate(fileSize)
}

// validate checks that the layout is self-consistent and fits the file, so
// that no offset computed from it can fall outside the mapping.
func (h Header) validate(fileSize uint64) error {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s %v %s", ErrLayout, field, v, why)
	}
	switch {
	case h.FileSize != fileSize:
		if fileSize < h.FileSize {
			return fmt.Errorf("%w: header says %d bytes, file has %d (truncated)", ErrShort, h.FileSize, fileSize)
		}
		return bad("file size", h.FileSize, fmt.Sprintf("differs from the file's %d bytes", fileSize))
	case h.Stripes == 0 || h.Stripes&(h.Stripes-1) != 0 || h.Stripes > 1<<16:
		return bad("stripes", h.Stripes, "is not a power of two up to 65536")
	case h.IndexSlots < 64 || h.IndexSlots&(h.IndexSlots-1) != 0 || h.IndexSlots > 1<<30:
		return bad("index slots", h.IndexSlots, "is not a power of two from 64 to 2^30")
	case h.ArenaSize%8 != 0 || h.ArenaSize > 1<<35:
		return bad("arena size", h.ArenaSize, "is not a multiple of 8 up to 32 GiB")
	case h.MaxKey != MaxKey:
		return bad("max key", h.MaxKey, fmt.Sprintf("is not %d", MaxKey))
	case h.MaxValue == 0 || 2*RecordSize(MaxKey, int(h.MaxValue)) > h.ArenaSize:
		return bad("max value", h.MaxValue, fmt.Sprintf("does not fit twice in a %d-byte arena", h.ArenaSize))
	case h.MaxProcs == 0 || h.MaxProcs > MaxProcs:
		return bad("max procs", h.MaxProcs, fmt.Sprintf("not in 1..%d", MaxProcs))
	case h.RingSize == 0 || h.RingSize&(h.RingSize-1) != 0 || h.RingSize > 1<<24:
		return bad("ring size", h.RingSize, "is not a power of two up to 2^24")
	case h.TombstoneTTL < 0:
		return bad("tombstone ttl", h.TombstoneTTL, "is negative")
	}
	type region struct {
		name     string
		off, len uint64
	}
	regions := []region{
		{"header", 0, HeaderSize},
		{"slot table", h.SlotsOff, uint64(h.MaxProcs+1) * SlotSize},
		{"ring", h.RingOff, uint64(h.RingSize) * RingRecSize},
		{"stripes", h.StripesOff, uint64(h.Stripes) * StripeSize},
		{"index", h.IndexOff, uint64(h.Stripes) * uint64(h.IndexSlots) * IndexSlotSize},
		{"arenas", h.ArenaOff, uint64(h.Stripes) * h.ArenaSize},
	}
	var end uint64
	for _, r := range regions {
		if r.off%8 != 0 {
			return bad(r.name+" offset", r.off, "is not 8-byte aligned")
		}
		if r.off < end {
			return bad(r.name+" offset", r.off, fmt.Sprintf("overlaps the region before it (ends at %d)", end))
		}
		if r.off+r.len < r.off || r.off+r.len > fileSize {
			return bad(r.name+" region", fmt.Sprintf("[%d,+%d)", r.off, r.len), fmt.Sprintf("runs past the end of the %d-byte file", fileSize))
		}
		end = r.off + r.len
	}
	return nil
}
