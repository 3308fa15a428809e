// writer.go writes dump files.

package dumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/shm"
)

// Writer writes a dump file: the magic and header at NewWriter, one entry
// frame per Write, the end frame at Close. It buffers nothing itself beyond
// one frame; wrap w in a bufio.Writer for speed.
type Writer struct {
	w     io.Writer
	body  bytes.Buffer
	enc   *msgpack.Encoder
	count uint64
	bytes int64
	err   error // the first write error; every later call returns it
}

// NewWriter writes the magic and the header frame to w. h.Format is set to
// FormatVersion.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	dw := &Writer{w: w}
	dw.enc = msgpack.NewEncoder(&dw.body)
	if _, err := io.WriteString(w, Magic); err != nil {
		return nil, fmt.Errorf("dump: write: %w", err)
	}
	dw.bytes = int64(len(Magic))
	dw.body.Reset()
	e := dw.enc
	var dumped int64
	if !h.Dumped.IsZero() {
		dumped = h.Dumped.UnixNano()
	}
	err := errors.Join(
		e.EncodeMapLen(5),
		e.EncodeString("format"), e.EncodeInt(FormatVersion),
		e.EncodeString("app"), e.EncodeString(h.App),
		e.EncodeString("source"), e.EncodeString(h.Source),
		e.EncodeString("node"), e.EncodeUint(uint64(h.Node)),
		e.EncodeString("dumped"), e.EncodeInt(dumped),
	)
	if err != nil {
		return nil, fmt.Errorf("dump: encode header: %w", err)
	}
	if err := dw.frame(kindHeader); err != nil {
		return nil, err
	}
	return dw, nil
}

// Write appends one entry. e.Key must be at most MaxKey bytes; a
// tombstone's value is not written.
func (w *Writer) Write(e shm.Entry) error {
	if w.err != nil {
		return w.err
	}
	if len(e.Key) > MaxKey {
		return fmt.Errorf("dump: key of %d bytes, at most %d", len(e.Key), MaxKey)
	}
	value := e.Value
	if e.Deleted {
		value = nil
	}
	if len(value) > MaxBody-1<<12 {
		return fmt.Errorf("dump: value of %d bytes, at most %d", len(value), MaxBody-1<<12)
	}
	var expires int64
	if !e.Expires.IsZero() {
		expires = e.Expires.UnixNano()
	}
	w.body.Reset()
	enc := w.enc
	err := errors.Join(
		enc.EncodeArrayLen(6),
		encodeBin(enc, e.Key),
		encodeBin(enc, value),
		enc.EncodeUint(e.Version.Time),
		enc.EncodeUint(uint64(e.Version.Node)),
		enc.EncodeInt(expires),
		enc.EncodeBool(e.Deleted),
	)
	if err != nil {
		return fmt.Errorf("dump: encode entry: %w", err)
	}
	if err := w.frame(kindEntry); err != nil {
		return err
	}
	w.count++
	return nil
}

// encodeBin writes b as msgpack bin, an empty bin for nil.
func encodeBin(enc *msgpack.Encoder, b []byte) error {
	if b == nil {
		b = []byte{}
	}
	return enc.EncodeBytes(b)
}

// Close writes the end frame. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.body.Reset()
	err := errors.Join(w.enc.EncodeMapLen(1), w.enc.EncodeString("entries"), w.enc.EncodeUint(w.count))
	if err != nil {
		return fmt.Errorf("dump: encode end: %w", err)
	}
	if err := w.frame(kindEnd); err != nil {
		return err
	}
	w.err = errors.New("dump: writer closed")
	return nil
}

// Count returns how many entries were written.
func (w *Writer) Count() uint64 { return w.count }

// Bytes returns how many bytes were written so far.
func (w *Writer) Bytes() int64 { return w.bytes }

// frame writes the body buffer as one frame of kind.
func (w *Writer) frame(kind byte) error {
	body := w.body.Bytes()
	var h [frameHeaderSize]byte
	h[0] = kind
	binary.LittleEndian.PutUint32(h[1:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[5:], frameCRC(kind, body))
	if _, err := w.w.Write(h[:]); err != nil {
		w.err = fmt.Errorf("dump: write: %w", err)
		return w.err
	}
	if _, err := w.w.Write(body); err != nil {
		w.err = fmt.Errorf("dump: write: %w", err)
		return w.err
	}
	w.bytes += int64(len(h) + len(body))
	return nil
}
