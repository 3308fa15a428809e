// session.go turns a session value (msgpack) into a tree that prints as
// JSON. A session is a msgpack map of string keys; a value that is msgpack
// bin holding msgpack itself is decoded too. The bytes come from whatever
// wrote the segment, so decoding checks every length against the input and
// never panics.

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// maxSessionDepth bounds how deeply arrays, maps and nested msgpack inside
// bin values are followed.
const maxSessionDepth = 64

// bytesJSON is how bytes that are not msgpack print: {"base64": "..."}.
type bytesJSON struct {
	Base64 string `json:"base64"`
}

// extJSON is a msgpack extension value other than a timestamp.
type extJSON struct {
	Ext    int8   `json:"ext"`
	Base64 string `json:"base64"`
}

// decodeSession decodes one msgpack value filling all of b.
func decodeSession(b []byte) (any, error) {
	return decodeWhole(b, 0)
}

// decodeWhole decodes exactly one value from b, with nothing left over.
func decodeWhole(b []byte, depth int) (any, error) {
	rd := bytes.NewReader(b)
	d := &sessionDecoder{rd: rd, dec: msgpack.NewDecoder(rd)}
	v, err := d.value(depth)
	if err != nil {
		return nil, err
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the value", rd.Len())
	}
	return v, nil
}

// sessionDecoder walks msgpack with the decoder's primitives, checking each
// declared length against what is left before anything is allocated.
type sessionDecoder struct {
	rd  *bytes.Reader
	dec *msgpack.Decoder
}

func (d *sessionDecoder) value(depth int) (any, error) {
	if depth > maxSessionDepth {
		return nil, fmt.Errorf("nested more than %d deep", maxSessionDepth)
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		return nil, errors.New("unexpected end of data")
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.dec.DecodeNil()
	case c == msgpcode.False || c == msgpcode.True:
		return d.dec.DecodeBool()
	case msgpcode.IsFixedNum(c) || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64:
		return d.dec.DecodeInt64()
	case c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 || c == msgpcode.Uint64:
		return d.dec.DecodeUint64()
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.dec.DecodeFloat64()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64), nil // JSON has no NaN or infinities
		}
		return f, nil
	case msgpcode.IsString(c):
		b, err := d.payload()
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return bytesJSON{base64.StdEncoding.EncodeToString(b)}, nil
		}
		return string(b), nil
	case msgpcode.IsBin(c):
		b, err := d.payload()
		if err != nil {
			return nil, err
		}
		if v, err := decodeWhole(b, depth+1); err == nil && len(b) > 0 {
			return v, nil
		}
		return bytesJSON{base64.StdEncoding.EncodeToString(b)}, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n > d.rd.Len() {
			return nil, fmt.Errorf("an array of %d elements in %d bytes", n, d.rd.Len())
		}
		out := make([]any, 0, n)
		for range n {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if 2*n > d.rd.Len() {
			return nil, fmt.Errorf("a map of %d elements in %d bytes", n, d.rd.Len())
		}
		out := make(map[string]any, n)
		for range n {
			k, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[mapKey(k)] = v
		}
		return out, nil
	case msgpcode.IsExt(c):
		id, n, err := d.dec.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > d.rd.Len() {
			return nil, fmt.Errorf("an extension of %d bytes in %d bytes", n, d.rd.Len())
		}
		b := make([]byte, n)
		if err := d.dec.ReadFull(b); err != nil {
			return nil, err
		}
		if t, ok := extTime(id, b); ok {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
		return extJSON{Ext: id, Base64: base64.StdEncoding.EncodeToString(b)}, nil
	}
	return nil, fmt.Errorf("byte %#02x does not start a msgpack value", c)
}

// payload reads a str or bin value's bytes.
func (d *sessionDecoder) payload() ([]byte, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > d.rd.Len() {
		return nil, fmt.Errorf("a string of %d bytes in %d bytes", n, d.rd.Len())
	}
	b := make([]byte, n)
	if err := d.dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

// extTime decodes the msgpack timestamp extension (type -1).
func extTime(id int8, b []byte) (time.Time, bool) {
	if id != -1 {
		return time.Time{}, false
	}
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0), true
	case 8:
		v := binary.BigEndian.Uint64(b)
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)), true
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b))), true
	}
	return time.Time{}, false
}

// mapKey is a decoded map key as a JSON object key.
func mapKey(k any) string {
	if s, ok := k.(string); ok {
		return s
	}
	b, err := json.Marshal(k)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(k)
	}
	// A key that is itself a map with such keys would be escaped again
	// at every level, doubling in length each time: cut it short.
	if len(s) > maxKeyText {
		i := maxKeyText
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}

// maxKeyText bounds how much of a map key that is not a string is shown.
const maxKeyText = 200
