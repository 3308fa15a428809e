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

// ErrMalformed is wrapped by every error Check and Len return.
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
		head, body, items, ok := header(b[pos], b[pos+1:])
		if !ok {
			if b[pos] == 0xc1 {
				return bad(pos, "type byte 0xc1 is never used")
			}
			return bad(pos+1, "length field cut short")
		}
		start := pos + 1 + int(head)
		if rest := uint64(len(b) - start); body > rest {
			return bad(start, "declares %d bytes, %d follow", body, rest)
		}
		pos = start + int(body)
		if items > 0 {
			// Every item takes at least one byte.
			if rest := uint64(len(b) - pos); items > rest {
				return bad(pos, "container declares %d items, %d bytes follow", items, rest)
			}
			if len(stack) > maxDepth {
				return bad(pos, "nested deeper than %d", maxDepth)
			}
			stack = append(stack, items)
		}
	}
	return nil
}

// Len returns the length of the msgpack value at the start of b, checking
// every declared length against the input as Check does. It walks nested
// containers with a counter rather than a stack, so it accepts any depth
// in constant memory.
func Len(b []byte) (int, error) {
	pos := 0
	pending := uint64(1) // values still to pass
	for pending > 0 {
		if pos >= len(b) || pending > uint64(len(b)-pos) {
			return 0, fmt.Errorf("%w: %d values declared past the end of %d bytes", ErrMalformed, pending, len(b))
		}
		pending--
		head, body, items, ok := header(b[pos], b[pos+1:])
		if !ok {
			return 0, fmt.Errorf("%w at byte %d: bad type byte or length field", ErrMalformed, pos)
		}
		end := uint64(pos) + 1 + head + body
		if end > uint64(len(b)) {
			return 0, fmt.Errorf("%w at byte %d: declares %d bytes past the end", ErrMalformed, pos, end-uint64(len(b)))
		}
		pos = int(end)
		pending += items
	}
	return pos, nil
}

// header decodes what the type byte c and the bytes after it (rest) say of
// a value: head is how many header bytes follow c, body the payload size,
// items the nested values (a map's keys and values both count). ok is
// false for the unused byte 0xc1 and for a length field cut short.
func header(c byte, rest []byte) (head, body, items uint64, ok bool) {
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 0, 0, 0, true
	case c&0xf0 == 0x80: // fixmap
		return 0, 0, 2 * uint64(c&0x0f), true
	case c&0xf0 == 0x90: // fixarray
		return 0, 0, uint64(c & 0x0f), true
	case c&0xe0 == 0xa0: // fixstr
		return 0, uint64(c & 0x1f), 0, true
	}
	be := func(n int) (uint64, bool) {
		if len(rest) < n {
			return 0, false
		}
		switch n {
		case 1:
			return uint64(rest[0]), true
		case 2:
			return uint64(binary.BigEndian.Uint16(rest)), true
		}
		return uint64(binary.BigEndian.Uint32(rest)), true
	}
	var l uint64
	switch c {
	case 0xcc, 0xd0:
		return 0, 1, 0, true
	case 0xcd, 0xd1:
		return 0, 2, 0, true
	case 0xca, 0xce, 0xd2:
		return 0, 4, 0, true
	case 0xcb, 0xcf, 0xd3:
		return 0, 8, 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte and 1, 2, 4, 8 or 16 bytes
		return 0, 1 + 1<<(c-0xd4), 0, true
	case 0xc4, 0xd9: // bin8, str8
		l, ok = be(1)
		return 1, l, 0, ok
	case 0xc5, 0xda:
		l, ok = be(2)
		return 2, l, 0, ok
	case 0xc6, 0xdb:
		l, ok = be(4)
		return 4, l, 0, ok
	case 0xc7: // ext8: length, type, data
		l, ok = be(1)
		return 1, 1 + l, 0, ok
	case 0xc8:
		l, ok = be(2)
		return 2, 1 + l, 0, ok
	case 0xc9:
		l, ok = be(4)
		return 4, 1 + l, 0, ok
	case 0xdc:
		l, ok = be(2)
		return 2, 0, l, ok
	case 0xdd:
		l, ok = be(4)
		return 4, 0, l, ok
	case 0xde:
		l, ok = be(2)
		return 2, 0, 2 * l, ok
	case 0xdf:
		l, ok = be(4)
		return 4, 0, 2 * l, ok
	}
	return 0, 0, 0, false // 0xc1 is never used
}
