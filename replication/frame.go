// frame.go defines the messages agents exchange on their data streams and
// their framing: a 4-byte big-endian length, a 1-byte type, then a msgpack
// payload.

package replication

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/internal/msgpackcheck"
	"github.com/gardenstate/gardenstate/internal/msgpool"
)

// ProtocolVersion is the version of the data protocol and of the node
// metadata. Peers of another version are refused at join.
const ProtocolVersion = 1

// maxNesting bounds how deep msgpack containers in a frame may nest: the
// messages nest three deep, so anything deeper is hostile.
const maxNesting = 16

// MaxFrame bounds a frame's size: a batch is cut before it, and a peer that
// announces a larger frame is cut off.
const MaxFrame = 16 << 20

type frameType uint8

const (
	frameHello   frameType = 1 + iota // Hello, both ways, first
	frameRefuse                       // Refuse, then the stream closes
	frameBatch                        // Batch of entries to apply
	frameAck                          // Ack of a batch
	frameDigest                       // Digest of an app's buckets
	frameKeys                         // Keys of one bucket that differed
	frameFetch                        // Fetch entries by key
	frameEntries                      // Entries answering a Fetch (not acknowledged)
)

func (t frameType) String() string {
	names := [...]string{"", "hello", "refuse", "batch", "ack", "digest", "keys", "fetch", "entries"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// Hello opens a stream: who is speaking, and what it runs.
type Hello struct {
	Node string   `msgpack:"n"`
	Meta NodeMeta `msgpack:"m"`
}

// Refuse says why the other side will not talk.
type Refuse struct {
	Reason string `msgpack:"r"`
}

// WireEntry is one entry on the wire.
type WireEntry struct {
	Key     []byte `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Time    uint64 `msgpack:"t"` // Version.Time
	Node    uint32 `msgpack:"o"` // Version.Node
	Expires int64  `msgpack:"e,omitempty"`
	Deleted bool   `msgpack:"d,omitempty"`
	// Touch marks a deadline extension of the entry at this version: no
	// value is sent, and the receiver only moves the deadline.
	Touch bool `msgpack:"x,omitempty"`
}

// wireSize estimates an entry's share of a frame, for cutting batches.
func wireSize(w *WireEntry) int { return len(w.Key) + len(w.Value) + 32 }

// Batch carries entries to apply. Through is the sender's change-ring
// sequence that the batch completes (0 for batches that are not part of the
// change feed, such as anti-entropy repairs).
type Batch struct {
	ID      uint64      `msgpack:"i"`
	App     string      `msgpack:"a"`
	Through uint64      `msgpack:"s,omitempty"`
	Entries []WireEntry `msgpack:"e"`
}

// Ack acknowledges the batch with this ID: every entry in it is applied.
type Ack struct {
	ID uint64 `msgpack:"i"`
}

// Digest carries one hash per bucket of an app's keys.
type Digest struct {
	App     string   `msgpack:"a"`
	Buckets []uint64 `msgpack:"b"`
}

// KeyVersion names a key and the version a node holds.
type KeyVersion struct {
	Key  []byte `msgpack:"k"`
	Time uint64 `msgpack:"t"`
	Node uint32 `msgpack:"o"`
}

// Keys lists what the sender holds in one bucket whose digest differed.
// Remaining counts the Keys frames still to come for the same Digest; a
// Digest that matched everywhere is answered by one Keys frame with Bucket
// -1.
type Keys struct {
	App       string       `msgpack:"a"`
	Bucket    int          `msgpack:"b"`
	Remaining int          `msgpack:"r"`
	Keys      []KeyVersion `msgpack:"k"`
}

// Fetch asks for entries by key; the answer is an Entries frame.
type Fetch struct {
	App  string   `msgpack:"a"`
	Keys [][]byte `msgpack:"k"`
}

// Entries answers a Fetch.
type Entries struct {
	App     string      `msgpack:"a"`
	Entries []WireEntry `msgpack:"e"`
}

// ErrFrame is wrapped by every error about a malformed frame.
var ErrFrame = errors.New("replication: bad frame")

// encoders reuse msgpack encoders and their buffers between frames.
var encoders = msgpool.New(4 << 20)

// writeFrame encodes v as one frame of type t.
func writeFrame(w *bufio.Writer, t frameType, v any) error {
	e := encoders.Get()
	defer encoders.Put(e)
	if err := e.Encode(v); err != nil {
		return fmt.Errorf("replication: encode %v: %w", t, err)
	}
	b := e.Buf.Bytes()
	if len(b)+1 > MaxFrame {
		return fmt.Errorf("%w: %v of %d bytes exceeds %d", ErrFrame, t, len(b)+1, MaxFrame)
	}
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(b)+1))
	hdr[4] = byte(t)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame's type and payload. buf is reused when large
// enough.
func readFrame(r io.Reader, buf []byte) (frameType, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 1 || n > MaxFrame {
		return 0, buf, fmt.Errorf("%w: length %d not in 1..%d", ErrFrame, n, MaxFrame)
	}
	t := frameType(hdr[4])
	if t < frameHello || t > frameEntries {
		return 0, buf, fmt.Errorf("%w: unknown type %d", ErrFrame, hdr[4])
	}
	// Grow the buffer as the bytes arrive rather than trusting the length:
	// a short stream claiming a large frame costs little.
	buf = buf[:0]
	for left := int(n - 1); left > 0; {
		chunk := min(left, max(64<<10, len(buf)))
		if cap(buf)-len(buf) < chunk {
			buf = append(buf[:cap(buf)], make([]byte, chunk)...)[:len(buf)]
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk]); err != nil {
			return 0, buf, fmt.Errorf("%w: %v payload cut short: %v", ErrFrame, t, err)
		}
		buf = buf[:len(buf)+chunk]
		left -= chunk
	}
	return t, buf, nil
}

// decodePayload decodes p's bytes, of type t, into the matching message.
func decodePayload(t frameType, p *payload) (any, error) {
	b := p.b
	var v any
	switch t {
	case frameHello:
		v = new(Hello)
	case frameRefuse:
		v = new(Refuse)
	case frameBatch:
		v = new(Batch)
	case frameAck:
		v = new(Ack)
	case frameDigest:
		v = new(Digest)
	case frameKeys:
		v = new(Keys)
	case frameFetch:
		v = new(Fetch)
	case frameEntries:
		v = new(Entries)
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrFrame, t)
	}
	if err := msgpackcheck.Check(b, maxNesting); err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrFrame, t, err)
	}
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(p)
	if err := d.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrFrame, t, err)
	}
	if err := validate(v); err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrFrame, t, err)
	}
	return v, nil
}

// validate checks what msgpack cannot: lengths the segment would refuse.
func validate(v any) error {
	check := func(es []WireEntry) error {
		for i, e := range es {
			if len(e.Key) == 0 || len(e.Key) > 255 {
				return fmt.Errorf("entry %d: key of %d bytes", i, len(e.Key))
			}
			if e.Time == 0 {
				return fmt.Errorf("entry %d: no version", i)
			}
		}
		return nil
	}
	switch m := v.(type) {
	case *Batch:
		return check(m.Entries)
	case *Entries:
		return check(m.Entries)
	case *Digest:
		if len(m.Buckets) != digestBuckets {
			return fmt.Errorf("%d buckets, want %d", len(m.Buckets), digestBuckets)
		}
	case *Keys:
		if m.Bucket < -1 || m.Bucket >= digestBuckets || m.Bucket == -1 && len(m.Keys) > 0 || m.Remaining < 0 {
			return fmt.Errorf("bucket %d (%d keys, %d remaining) out of range", m.Bucket, len(m.Keys), m.Remaining)
		}
	case *Fetch:
		for i, k := range m.Keys {
			if len(k) == 0 || len(k) > 255 {
				return fmt.Errorf("key %d of %d bytes", i, len(k))
			}
		}
	}
	return nil
}

// payload is the reader a frame's payload is decoded from. With alias set,
// the keys and values of WireEntry point into b instead of being copied:
// an entry costs no allocation, but b must not change while they are used.
type payload struct {
	bytes.Reader
	b     []byte
	alias bool
}

func (p *payload) reset(b []byte, alias bool) {
	p.Reader.Reset(b)
	p.b, p.alias = b, alias
}

// take returns the next n bytes, in place.
func (p *payload) take(n int) ([]byte, error) {
	if n > p.Len() {
		return nil, io.ErrUnexpectedEOF
	}
	i := len(p.b) - p.Len()
	p.Seek(int64(n), io.SeekCurrent)
	return p.b[i : i+n : i+n], nil
}

// decodeBytes decodes a msgpack string or binary value: in place when d
// reads an aliasing payload, else a copy.
func decodeBytes(d *msgpack.Decoder) ([]byte, error) {
	p, ok := d.Buffered().(*payload)
	if !ok || !p.alias {
		return d.DecodeBytes()
	}
	n, err := d.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, err // n < 0: nil
	}
	return p.take(n)
}

// frameReader reads and decodes one message after another, reusing its
// buffer. With alias set, the entries of a message point into that buffer:
// for a caller that is done with each message before it asks for the next.
type frameReader struct {
	r     io.Reader
	buf   []byte
	alias bool
	p     payload
}

// next returns the next message and its type.
func (fr *frameReader) next() (frameType, any, error) {
	t, b, err := readFrame(fr.r, fr.buf)
	fr.buf = b
	if err != nil {
		return t, nil, err
	}
	fr.p.reset(b, fr.alias)
	msg, err := decodePayload(t, &fr.p)
	return t, msg, err
}
