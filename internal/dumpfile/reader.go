// reader.go reads dump files, checking every frame: the bytes come from a
// file someone else wrote, so any input gives entries or a *FormatError,
// never a panic or an allocation larger than the input.

package dumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/gardenstate/gardenstate/internal/msgpackcheck"
	"github.com/gardenstate/gardenstate/shm"
)

// maxSkipDepth bounds the nesting of unknown header values skipped over.
const maxSkipDepth = 32

// Reader reads a dump file frame by frame.
type Reader struct {
	r     io.Reader
	off   int64 // bytes consumed
	h     Header
	count uint64
	done  bool
	err   error // the first error; every later Next returns it
	buf   bytes.Buffer
}

// NewReader reads and checks the magic and the header frame.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: r}
	var m [len(Magic)]byte
	n, err := io.ReadFull(r, m[:])
	switch {
	case err == io.EOF:
		return nil, rd.bad(0, "the file is empty")
	case err == io.ErrUnexpectedEOF:
		return nil, rd.bad(0, fmt.Sprintf("%d bytes, too short for a dump file", n))
	case err != nil:
		return nil, fmt.Errorf("dump: read: %w", err)
	case string(m[:]) != Magic:
		return nil, rd.bad(0, fmt.Sprintf("not a gardenctl dump file (starts with %q, a dump starts with %q)", m[:], Magic))
	}
	rd.off = int64(len(Magic))
	kind, body, start, err := rd.frame()
	if err != nil {
		return nil, err
	}
	if kind != kindHeader {
		return nil, rd.bad(start, fmt.Sprintf("the first frame is %q, a dump starts with a header frame", rune(kind)))
	}
	if rd.h, err = decodeHeader(body); err != nil {
		return nil, rd.bad(start, "header: "+err.Error())
	}
	return rd, nil
}

// Header returns the dump's header.
func (r *Reader) Header() Header { return r.h }

// Offset returns how many bytes of the file have been read.
func (r *Reader) Offset() int64 { return r.off }

// Count returns how many entries Next has returned.
func (r *Reader) Count() uint64 { return r.count }

// Next returns the next entry, or io.EOF after a valid end frame at the end
// of the file. Any other error (a *FormatError for malformed input) is
// returned again by every later call.
func (r *Reader) Next() (shm.Entry, error) {
	if r.err != nil {
		return shm.Entry{}, r.err
	}
	if r.done {
		return shm.Entry{}, io.EOF
	}
	kind, body, start, err := r.frame()
	if err != nil {
		return shm.Entry{}, err
	}
	switch kind {
	case kindEntry:
		e, err := decodeEntry(body)
		if err != nil {
			return shm.Entry{}, r.bad(start, fmt.Sprintf("entry %d: %v", r.count+1, err))
		}
		r.count++
		return e, nil
	case kindEnd:
		n, err := decodeEnd(body)
		if err != nil {
			return shm.Entry{}, r.bad(start, "end frame: "+err.Error())
		}
		if n != r.count {
			return shm.Entry{}, r.bad(start, fmt.Sprintf("the end frame counts %d entries, the file holds %d", n, r.count))
		}
		var b [1]byte
		switch _, err := io.ReadFull(r.r, b[:]); {
		case err == io.EOF:
		case err == nil:
			return shm.Entry{}, r.bad(r.off, "data after the end frame")
		default:
			r.err = fmt.Errorf("dump: read: %w", err)
			return shm.Entry{}, r.err
		}
		r.done = true
		return shm.Entry{}, io.EOF
	default: // kindHeader; frame rejects unknown kinds
		return shm.Entry{}, r.bad(start, "a second header frame")
	}
}

// bad records and returns a FormatError at off.
func (r *Reader) bad(off int64, msg string) error {
	r.err = &FormatError{Offset: off, Msg: msg}
	return r.err
}

// frame reads one whole frame and checks its kind, length and checksum.
// The body is valid until the next call.
func (r *Reader) frame() (kind byte, body []byte, start int64, err error) {
	start = r.off
	var h [frameHeaderSize]byte
	switch _, err := io.ReadFull(r.r, h[:]); {
	case err == io.EOF:
		return 0, nil, start, r.bad(start, fmt.Sprintf("the file ends after %d entries without an end frame (cut short?)", r.count))
	case err == io.ErrUnexpectedEOF:
		return 0, nil, start, r.bad(start, "the file ends inside a frame header (cut short?)")
	case err != nil:
		r.err = fmt.Errorf("dump: read: %w", err)
		return 0, nil, start, r.err
	}
	kind = h[0]
	length := binary.LittleEndian.Uint32(h[1:])
	crc := binary.LittleEndian.Uint32(h[5:])
	if kind != kindHeader && kind != kindEntry && kind != kindEnd {
		return 0, nil, start, r.bad(start, fmt.Sprintf("unknown frame kind %#02x (damaged file?)", kind))
	}
	if length > MaxBody {
		return 0, nil, start, r.bad(start, fmt.Sprintf("frame claims %d bytes, more than the %d allowed (damaged file?)", length, MaxBody))
	}
	r.buf.Reset()
	n, err := io.CopyN(&r.buf, r.r, int64(length))
	if err == io.EOF {
		return 0, nil, start, r.bad(start, fmt.Sprintf("the file ends %d bytes into a %d-byte frame (cut short?)", n, length))
	}
	if err != nil {
		r.err = fmt.Errorf("dump: read: %w", err)
		return 0, nil, start, r.err
	}
	body = r.buf.Bytes()
	if got := frameCRC(kind, body); got != crc {
		return 0, nil, start, r.bad(start, fmt.Sprintf("frame checksum is %#08x, the frame holds %#08x (damaged file)", crc, got))
	}
	r.off += frameHeaderSize + int64(length)
	return kind, body, start, nil
}

// decodeHeader reads the header map.
func decodeHeader(body []byte) (Header, error) {
	var h Header
	rd := bytes.NewReader(body)
	d := msgpack.NewDecoder(rd)
	n, err := mapLen(d, rd)
	if err != nil {
		return h, err
	}
	format := -1
	for range n {
		key, err := str(d, "key")
		if err != nil {
			return h, err
		}
		switch key {
		case "format":
			v, err := d.DecodeInt64()
			if err != nil {
				return h, fmt.Errorf("format: %v", err)
			}
			if v < 0 || v > math.MaxInt32 {
				return h, fmt.Errorf("format version %d is out of range", v)
			}
			format = int(v)
		case "app":
			if h.App, err = str(d, "app"); err != nil {
				return h, err
			}
		case "source":
			if h.Source, err = str(d, "source"); err != nil {
				return h, err
			}
		case "node":
			v, err := d.DecodeUint64()
			if err != nil || v > math.MaxUint32 {
				return h, fmt.Errorf("node is not a 32-bit node id (%v)", err)
			}
			h.Node = uint32(v)
		case "dumped":
			v, err := d.DecodeInt64()
			if err != nil {
				return h, fmt.Errorf("dumped: %v", err)
			}
			if v != 0 {
				h.Dumped = time.Unix(0, v)
			}
		default:
			if err := skipValue(d, body[len(body)-rd.Len():]); err != nil {
				return h, fmt.Errorf("%s: %v", key, err)
			}
		}
	}
	if rd.Len() != 0 {
		return h, fmt.Errorf("%d bytes after the header map", rd.Len())
	}
	switch {
	case format < 0:
		return h, errors.New("no format version")
	case format != FormatVersion:
		return h, fmt.Errorf("dump format version %d, this gardenctl reads version %d", format, FormatVersion)
	}
	h.Format = format
	return h, nil
}

// decodeEntry reads an entry array.
func decodeEntry(body []byte) (shm.Entry, error) {
	var e shm.Entry
	rd := bytes.NewReader(body)
	d := msgpack.NewDecoder(rd)
	if c, err := d.PeekCode(); err != nil || !isArray(c) {
		return e, errors.New("not a msgpack array")
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return e, err
	}
	if n != 6 {
		return e, fmt.Errorf("an array of %d elements, an entry has 6", n)
	}
	if e.Key, err = bin(d, rd, "key"); err != nil {
		return e, err
	}
	if len(e.Key) > MaxKey {
		return e, fmt.Errorf("key of %d bytes, at most %d", len(e.Key), MaxKey)
	}
	if e.Value, err = bin(d, rd, "value"); err != nil {
		return e, err
	}
	if e.Version.Time, err = d.DecodeUint64(); err != nil {
		return e, fmt.Errorf("version time: %v", err)
	}
	node, err := d.DecodeUint64()
	if err != nil || node > math.MaxUint32 {
		return e, fmt.Errorf("version node is not a 32-bit node id (%v)", err)
	}
	e.Version.Node = uint32(node)
	exp, err := d.DecodeInt64()
	if err != nil {
		return e, fmt.Errorf("expires: %v", err)
	}
	if exp < 0 {
		return e, fmt.Errorf("expires %d is negative", exp)
	}
	if exp != 0 {
		e.Expires = time.Unix(0, exp)
	}
	if e.Deleted, err = d.DecodeBool(); err != nil {
		return e, fmt.Errorf("deleted: %v", err)
	}
	switch {
	case rd.Len() != 0:
		return e, fmt.Errorf("%d bytes after the entry", rd.Len())
	case e.Version.IsZero():
		return e, errors.New("no version")
	case e.Deleted && len(e.Value) != 0:
		return e, fmt.Errorf("a tombstone with a %d-byte value", len(e.Value))
	}
	return e, nil
}

// decodeEnd reads the end map and returns its entry count.
func decodeEnd(body []byte) (uint64, error) {
	rd := bytes.NewReader(body)
	d := msgpack.NewDecoder(rd)
	n, err := mapLen(d, rd)
	if err != nil {
		return 0, err
	}
	var count uint64
	seen := false
	for range n {
		key, err := str(d, "key")
		if err != nil {
			return 0, err
		}
		if key != "entries" {
			if err := skipValue(d, body[len(body)-rd.Len():]); err != nil {
				return 0, fmt.Errorf("%s: %v", key, err)
			}
			continue
		}
		if count, err = d.DecodeUint64(); err != nil {
			return 0, fmt.Errorf("entries: %v", err)
		}
		seen = true
	}
	if rd.Len() != 0 {
		return 0, fmt.Errorf("%d bytes after the end map", rd.Len())
	}
	if !seen {
		return 0, errors.New("no entry count")
	}
	return count, nil
}

func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

func isMap(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

// mapLen reads a map header whose element count the remaining bytes can hold.
func mapLen(d *msgpack.Decoder, rd *bytes.Reader) (int, error) {
	if c, err := d.PeekCode(); err != nil || !isMap(c) {
		return 0, errors.New("not a msgpack map")
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return 0, err
	}
	if n < 0 || 2*n > rd.Len() {
		return 0, fmt.Errorf("a map of %d elements in %d bytes", n, rd.Len())
	}
	return n, nil
}

// str reads a msgpack string.
func str(d *msgpack.Decoder, what string) (string, error) {
	if c, err := d.PeekCode(); err != nil || !msgpcode.IsString(c) {
		return "", fmt.Errorf("%s is not a string", what)
	}
	s, err := d.DecodeString()
	if err != nil {
		return "", fmt.Errorf("%s: %v", what, err)
	}
	return s, nil
}

// bin reads a msgpack bin value, allocating only what the input holds.
func bin(d *msgpack.Decoder, rd *bytes.Reader, what string) ([]byte, error) {
	if c, err := d.PeekCode(); err != nil || !msgpcode.IsBin(c) {
		return nil, fmt.Errorf("%s is not msgpack bin", what)
	}
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	if n < 0 || n > rd.Len() {
		return nil, fmt.Errorf("%s claims %d bytes, %d remain", what, n, rd.Len())
	}
	b := make([]byte, n)
	if err := d.ReadFull(b); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	return b, nil
}

// skipValue passes over the value at the start of rest, the decoder's
// remaining input, after checking its declared lengths and nesting.
func skipValue(d *msgpack.Decoder, rest []byte) error {
	if err := msgpackcheck.Check(rest, maxSkipDepth); err != nil {
		return err
	}
	return d.Skip()
}
