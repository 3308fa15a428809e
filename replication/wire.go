// wire.go encodes WireEntry by hand: entries are most of every batch, and
// the msgpack library's reflection costs several times more per entry.
// The bytes are the same map the struct tags describe, so either side may
// decode with reflection.

package replication

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

var (
	_ msgpack.CustomEncoder = (*WireEntry)(nil)
	_ msgpack.CustomDecoder = (*WireEntry)(nil)
)

// EncodeMsgpack implements msgpack.CustomEncoder.
func (w *WireEntry) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 3
	if len(w.Value) > 0 {
		n++
	}
	if w.Expires != 0 {
		n++
	}
	if w.Deleted {
		n++
	}
	if w.Touch {
		n++
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	field := func(name string, enc func() error) error {
		if err := e.EncodeString(name); err != nil {
			return err
		}
		return enc()
	}
	if err := field("k", func() error { return e.EncodeBytes(w.Key) }); err != nil {
		return err
	}
	if len(w.Value) > 0 {
		if err := field("v", func() error { return e.EncodeBytes(w.Value) }); err != nil {
			return err
		}
	}
	if err := field("t", func() error { return e.EncodeUint(w.Time) }); err != nil {
		return err
	}
	if err := field("o", func() error { return e.EncodeUint(uint64(w.Node)) }); err != nil {
		return err
	}
	if w.Expires != 0 {
		if err := field("e", func() error { return e.EncodeInt(w.Expires) }); err != nil {
			return err
		}
	}
	if w.Deleted {
		if err := field("d", func() error { return e.EncodeBool(true) }); err != nil {
			return err
		}
	}
	if w.Touch {
		if err := field("x", func() error { return e.EncodeBool(true) }); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack implements msgpack.CustomDecoder. Unknown fields are
// skipped, so a later protocol may add some.
func (w *WireEntry) DecodeMsgpack(d *msgpack.Decoder) error {
	*w = WireEntry{}
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("entry is nil")
	}
	for range n {
		name, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch name {
		case "k":
			w.Key, err = decodeBytes(d)
		case "v":
			w.Value, err = decodeBytes(d)
		case "t":
			w.Time, err = d.DecodeUint64()
		case "o":
			var u uint64
			if u, err = d.DecodeUint64(); err == nil && u > 1<<32-1 {
				err = fmt.Errorf("node %d out of range", u)
			}
			w.Node = uint32(u)
		case "e":
			w.Expires, err = d.DecodeInt64()
		case "d":
			w.Deleted, err = d.DecodeBool()
		case "x":
			w.Touch, err = d.DecodeBool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return fmt.Errorf("entry field %q: %w", name, err)
		}
	}
	return nil
}
