package layout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestAtomicAlignment pins every word used with sync/atomic or futex to its
// natural alignment, and the hot stripe words to separate cache lines.
func TestAtomicAlignment(t *testing.T) {
	words64 := map[string]int{
		"HdrHLC": HdrHLC, "HdrRingHead": HdrRingHead, "HdrAcked": HdrAcked, "HdrMarks": HdrMarks,
		"StSeq": StSeq, "StHead": StHead, "StTail": StTail, "StLiveBytes": StLiveBytes, "StPendingRing": StPendingRing,
		"StHits": StHits, "StMisses": StMisses, "StLockTimeouts": StLockTimeouts, "StSets": StSets,
		"StDeletes": StDeletes, "StTouches": StTouches, "StExpirations": StExpirations, "StEvictions": StEvictions,
		"StForcedEvictions": StForcedEvictions, "StLockWaits": StLockWaits, "StTakeovers": StTakeovers,
		"StRepairs": StRepairs, "StDropped": StDropped, "StCorruptions": StCorruptions,
		"StStaleUnlocks": StStaleUnlocks, "StRelocations": StRelocations, "SlotAttached": SlotAttached,
		"IdxWord": IdxWord, "IdxMeta": IdxMeta, "RecExpires": RecExpires, "RecPlaced": RecPlaced, "RingSeq": RingSeq,
	}
	for name, off := range words64 {
		if off%8 != 0 {
			t.Errorf("%s at %d is not 8-byte aligned", name, off)
		}
	}
	words32 := map[string]int{"HdrAckedWake": HdrAckedWake, "HdrRingWake": HdrRingWake, "HdrRingWaiters": HdrRingWaiters, "StLock": StLock, "StCount": StCount,
		"StTombstones": StTombstones, "StSweep": StSweep, "SlotGen": SlotGen, "SlotPID": SlotPID}
	for name, off := range words32 {
		if off%4 != 0 {
			t.Errorf("%s at %d is not 4-byte aligned", name, off)
		}
	}
	for name, off := range map[string]int{"HdrHLC": HdrHLC, "HdrRingHead": HdrRingHead, "HdrAcked": HdrAcked,
		"HdrAckedWake": HdrAckedWake, "HdrMarks": HdrMarks, "HdrRingWake": HdrRingWake, "HdrRingWaiters": HdrRingWaiters} {
		if off%CacheLine != 0 {
			t.Errorf("%s at %d does not start a cache line", name, off)
		}
	}
	// Reader counters, writer counters and the lock each on their own line.
	if StLock/CacheLine == StHits/CacheLine || StHits/CacheLine == StSets/CacheLine {
		t.Error("lock, reader counters and writer counters share a cache line")
	}
	for name, n := range map[string]int{"StripeSize": StripeSize, "SlotSize": SlotSize, "IndexSlotSize": IndexSlotSize,
		"RingRecSize": RingRecSize, "RecHdrSize": RecHdrSize, "HeaderSize": HeaderSize} {
		if n%8 != 0 {
			t.Errorf("%s %d is not a multiple of 8", name, n)
		}
	}
	if StripeSize%CacheLine != 0 || SlotSize != CacheLine {
		t.Error("stripes or slots are not whole cache lines")
	}
	if HdrRingOff+8 > HdrChecksum || hdrFixedEnd > HdrHLC {
		t.Error("fixed header overlaps the mutable words")
	}
	if RingKey+MaxKey > RingCRC || RingCRC+4 > RingRecSize {
		t.Error("ring record cannot hold the longest key")
	}
	if RecValLen+4 > RecCRC || RecCRC+4 > RecHdrSize || RecKeyLen+2 > RecValLen {
		t.Error("record header fields overlap")
	}
}

var le = binary.LittleEndian

func validHeader(t *testing.T) ([]byte, Header) {
	t.Helper()
	p := Params{Size: 8 << 20, AvgEntry: 512, MaxValue: 64 << 10, MaxProcs: 64, RingSize: 1024,
		HashSeed: 42, Created: 1, NodeID: 7, TombstoneTTL: 1e9, App: "app"}
	h, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, HeaderSize)
	Encode(b, h)
	return b, h
}

func TestPlanFitsAndRoundTrips(t *testing.T) {
	for _, size := range []uint64{1 << 20, 8 << 20, 64 << 20, 1 << 30} {
		h, err := Plan(Params{Size: size, AvgEntry: 512, MaxValue: 1 << 16, MaxProcs: 256, RingSize: 256, App: "x"})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		b := make([]byte, HeaderSize)
		Encode(b, h)
		got, err := Decode(b, size)
		if err != nil {
			t.Fatalf("size %d: Decode of a planned header: %v", size, err)
		}
		if got != h {
			t.Fatalf("size %d: round trip\n got %+v\nwant %+v", size, got, h)
		}
		if 2*RecordSize(MaxKey, 1<<16) > h.ArenaSize {
			t.Fatalf("size %d: arena %d cannot hold two largest records", size, h.ArenaSize)
		}
	}
	if _, err := Plan(Params{Size: 1 << 20, AvgEntry: 512, MaxValue: 1 << 20, MaxProcs: 256, RingSize: 256}); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("1 MiB segment with 1 MiB values: %v, want ErrTooSmall", err)
	}
}

func TestDecodeNamesWhatIsWrong(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b []byte) uint64 // returns the file size to claim
		want   error
		text   string
	}{
		{"short", func(b []byte) uint64 { return 100 }, ErrShort, "too short"},
		{"magic", func(b []byte) uint64 { b[0] = 'X'; return 8 << 20 }, ErrMagic, "magic"},
		{"version", func(b []byte) uint64 { b[HdrVersion] = 9; return 8 << 20 }, ErrVersion, fmt.Sprintf("version 9, this build reads version %d", FormatVersion)},
		{"checksum", func(b []byte) uint64 { b[HdrApp] ^= 1; return 8 << 20 }, ErrChecksum, "checksum"},
		{"truncated", func(b []byte) uint64 { return 4 << 20 }, ErrShort, "truncated"},
		{"stripes", func(b []byte) uint64 {
			le.PutUint32(b[HdrStripes:], 3)
			le.PutUint32(b[HdrChecksum:], Checksum(b))
			return 8 << 20
		}, ErrLayout, "stripes 3"},
		{"region", func(b []byte) uint64 {
			le.PutUint64(b[HdrArenaOff:], 8<<20)
			le.PutUint32(b[HdrChecksum:], Checksum(b))
			return 8 << 20
		}, ErrLayout, "arenas region"},
	}
	for _, c := range cases {
		b, _ := validHeader(t)
		size := c.mutate(b)
		_, err := Decode(b, size)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v; want %v mentioning %q", c.name, err, c.want, c.text)
		}
	}
}

// FuzzDecode feeds arbitrary header bytes: Decode must return a header
// whose regions lie inside the file, or an error, and never panic.
func FuzzDecode(f *testing.F) {
	b, _ := func() ([]byte, Header) {
		h, _ := Plan(Params{Size: 8 << 20, AvgEntry: 512, MaxValue: 64 << 10, MaxProcs: 64, RingSize: 1024, App: "app"})
		b := make([]byte, HeaderSize)
		Encode(b, h)
		return b, h
	}()
	f.Add(b[:hdrFixedEnd], uint64(8<<20), false)
	f.Add([]byte("GRDNSEG\x00"), uint64(4096), true)
	f.Fuzz(func(t *testing.T, data []byte, size uint64, fixSum bool) {
		buf := make([]byte, HeaderSize)
		copy(buf, data)
		if fixSum {
			le.PutUint32(buf[HdrChecksum:], Checksum(buf))
		}
		h, err := Decode(buf, size)
		if err != nil {
			return
		}
		end := h.ArenaOff + uint64(h.Stripes)*h.ArenaSize
		if end > size || h.IndexOff+uint64(h.Stripes)*uint64(h.IndexSlots)*IndexSlotSize > size {
			t.Fatalf("accepted header with regions past the %d-byte file: %+v", size, h)
		}
	})
}
