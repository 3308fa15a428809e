// Package msgpackcheck checks the structure of msgpack bytes before they are
// decoded: every declared length must fit in the bytes that follow, and
// containers may nest only so deep. The msgpack library trusts declared
// lengths when it allocates, so a few hostile bytes claiming a
// four-billion-element array would otherwise exhaust memory, and deep
// nesting would exhaust the stack.
package msgpackcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error Check returns.
var ErrMalformed = errors.New("malformed msgpack")

// Check walks one msgpack object at the start of b without recursion and
// reports the first declared length that runs past the input, the first
// unused type byte, or nesting deeper than maxDepth.
func Check(b []byte, maxDepth int) error {
	bad := func(pos int, format string, args ...any) error {
		return fmt.Errorf("%w at byte %d: %s", ErrMalformed, pos, fmt.Sprintf(format, args...))
	}
	// stack holds, per open container, how many items it still expects.
	stack := []uint64{1}
	pos := 0
	for len(stack) > 0 {
		if stack[len(stack)-1] == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		stack[len(stack)-1]--
		if pos >= len(b) {
			return bad(pos, "input ends inside an object")
		}
		c := b[pos]
		pos++
		rest := uint64(len(b) - pos)
		var skip uint64  // bytes of payload that follow
		var items uint64 // items of a container that follow
		var sizeLen int  // width of an explicit length field
		var extra uint64 // fixed bytes after the length (ext type)
		var perEntry uint64 = 1
		container := false
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c >= 0x80 && c <= 0x8f:
			items, perEntry, container = uint64(c&0x0f), 2, true
		case c >= 0x90 && c <= 0x9f:
			items, container = uint64(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc1:
			return bad(pos-1, "type byte 0xc1 is never used")
		case c == 0xc4 || c == 0xd9:
			sizeLen = 1
		case c == 0xc5 || c == 0xda:
			sizeLen = 2
		case c == 0xc6 || c == 0xdb:
			sizeLen = 4
		case c == 0xc7:
			sizeLen, extra = 1, 1
		case c == 0xc8:
			sizeLen, extra = 2, 1
		case c == 0xc9:
			sizeLen, extra = 4, 1
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcf || c == 0xd3:
			skip = 8
		case c >= 0xd4 && c <= 0xd8:
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc:
			sizeLen, container = 2, true
		case c == 0xdd:
			sizeLen, container = 4, true
		case c == 0xde:
			sizeLen, container, perEntry = 2, true, 2
		case c == 0xdf:
			sizeLen, container, perEntry = 4, true, 2
		}
		if sizeLen > 0 {
			if rest < uint64(sizeLen) {
				return bad(pos, "length field cut short")
			}
			var n uint64
			switch sizeLen {
			case 1:
				n = uint64(b[pos])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b[pos:]))
			case 4:
				n = uint64(binary.BigEndian.Uint32(b[pos:]))
			}
			pos += sizeLen
			rest -= uint64(sizeLen)
			if container {
				items = n
			} else {
				skip = n + extra
			}
		}
		if container {
			// Every item takes at least one byte.
			if items*perEntry > rest {
				return bad(pos, "container declares %d items, %d bytes follow", items*perEntry, rest)
			}
			if items > 0 {
				if len(stack) > maxDepth {
					return bad(pos, "nested deeper than %d", maxDepth)
				}
				stack = append(stack, items*perEntry)
			}
			continue
		}
		if skip > rest {
			return bad(pos, "declares %d bytes, %d follow", skip, rest)
		}
		pos += int(skip)
	}
	return nil
}
