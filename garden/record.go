// record.go encodes and decodes the stored form of a session: the value
// kept in the segment under the session's key.
//
// A record is one msgpack map:
//
//	"c": the session's creation time, Unix milliseconds (an integer)
//	"v": a map of the application's keys (strings) to their values, each
//	     the msgpack encoding of what the application stored
//
// Decoders skip top-level fields they do not know, so later versions can add
// some. The values are kept as raw msgpack so that Get can decode into
// whatever the caller passes; the decoder only finds their boundaries and
// never builds them, and it checks every length it reads, since a record
// may come from another host.

package garden

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/gardenstate/gardenstate/internal/msgpackcheck"
)

// kv is one application key and its raw msgpack value. Both usually
// alias a buffer the record was read into.
type kv struct {
	k   []byte
	raw []byte
}

// appendRecord appends the record of a session created at created (Unix
// ms) holding vals to dst.
func appendRecord(dst []byte, created int64, vals []kv) []byte {
	dst = appendMapLen(dst, 2)
	dst = appendStr(dst, "c")
	dst = append(dst, 0xd3)
	dst = binary.BigEndian.AppendUint64(dst, uint64(created))
	dst = appendStr(dst, "v")
	dst = appendMapLen(dst, len(vals))
	for _, e := range vals {
		dst = appendStr(dst, e.k)
		dst = append(dst, e.raw...)
	}
	return dst
}

// decodeRecord decodes a record. The keys and values in the result alias
// b. vals is reused for the result.
func decodeRecord(b []byte, vals []kv) (created int64, _ []kv, err error) {
	vals = vals[:0]
	n, b, err := readMapLen(b)
	if err != nil {
		return 0, vals, err
	}
	seenC := false
	for range n {
		var field []byte
		if field, b, err = readStr(b); err != nil {
			return 0, vals, err
		}
		switch string(field) {
		case "c":
			if created, b, err = readInt(b); err != nil {
				return 0, vals, err
			}
			seenC = true
		case "v":
			var m int
			if m, b, err = readMapLen(b); err != nil {
				return 0, vals, err
			}
			for range m {
				var k []byte
				if k, b, err = readStr(b); err != nil {
					return 0, vals, err
				}
				l, err := skip(b)
				if err != nil {
					return 0, vals, err
				}
				vals = append(vals, kv{k: k[:len(k):len(k)], raw: b[:l:l]})
				b = b[l:]
			}
		default:
			l, err := skip(b)
			if err != nil {
				return 0, vals, err
			}
			b = b[l:]
		}
	}
	if !seenC {
		return 0, vals, errRecord
	}
	if len(b) != 0 {
		return 0, vals, errRecord
	}
	return created, vals, nil
}

// errRecord is wrapped into ErrCorruptSession by callers.
var errRecord = errors.New("malformed session record")

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendStr[S string | []byte](b []byte, s S) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// readMapLen reads a map header.
func readMapLen(b []byte) (int, []byte, error) {
	if len(b) < 1 {
		return 0, b, errRecord
	}
	var n uint64
	switch c := b[0]; {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), b[1:], nil
	case c == 0xde && len(b) >= 3:
		n, b = uint64(binary.BigEndian.Uint16(b[1:])), b[3:]
	case c == 0xdf && len(b) >= 5:
		n, b = uint64(binary.BigEndian.Uint32(b[1:])), b[5:]
	default:
		return 0, b, errRecord
	}
	if n*2 > uint64(len(b)) { // every key and value takes a byte at least
		return 0, b, errRecord
	}
	return int(n), b, nil
}

// readStr reads a string; the result aliases b.
func readStr(b []byte) ([]byte, []byte, error) {
	if len(b) < 1 {
		return nil, b, errRecord
	}
	var n uint64
	switch c := b[0]; {
	case c&0xe0 == 0xa0:
		n, b = uint64(c&0x1f), b[1:]
	case c == 0xd9 && len(b) >= 2:
		n, b = uint64(b[1]), b[2:]
	case c == 0xda && len(b) >= 3:
		n, b = uint64(binary.BigEndian.Uint16(b[1:])), b[3:]
	case c == 0xdb && len(b) >= 5:
		n, b = uint64(binary.BigEndian.Uint32(b[1:])), b[5:]
	default:
		return nil, b, errRecord
	}
	if n > uint64(len(b)) {
		return nil, b, errRecord
	}
	return b[:n], b[n:], nil
}

// readInt reads an integer of any msgpack width.
func readInt(b []byte) (int64, []byte, error) {
	if len(b) < 1 {
		return 0, b, errRecord
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return int64(c), b[1:], nil
	case c >= 0xe0:
		return int64(int8(c)), b[1:], nil
	case c < 0xcc || c > 0xd3:
		return 0, b, errRecord
	}
	size := 1 << ((c - 0xcc) & 3) // 0xcc..0xcf: uint8..64, 0xd0..0xd3: int8..64
	if len(b) < 1+size {
		return 0, b, errRecord
	}
	p := b[1 : 1+size]
	var u uint64
	switch size {
	case 1:
		u = uint64(p[0])
	case 2:
		u = uint64(binary.BigEndian.Uint16(p))
	case 4:
		u = uint64(binary.BigEndian.Uint32(p))
	case 8:
		u = binary.BigEndian.Uint64(p)
	}
	var v int64
	if c >= 0xd0 { // signed: extend from size bytes
		shift := 64 - 8*size
		v = int64(u<<shift) >> shift
	} else {
		if u > math.MaxInt64 {
			return 0, b, errRecord
		}
		v = int64(u)
	}
	return v, b[1+size:], nil
}

// skip returns the length of the msgpack value at the start of b, at any
// depth (msgpackcheck.Len walks with a counter, not recursion).
func skip(b []byte) (int, error) {
	n, err := msgpackcheck.Len(b)
	if err != nil {
		return 0, errRecord
	}
	return n, nil
}
