// dumpfile_test.go checks that dump files round-trip, that every way a file
// can be cut short or damaged gives a FormatError naming the problem, and
// fuzzes the reader.

package dumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/shm"
)

func sampleEntries() []shm.Entry {
	exp := time.Unix(0, 1_800_000_000_123_456_789)
	return []shm.Entry{
		{Key: []byte("sess-1"), Value: []byte("hello"), Version: shm.Version{Time: 1 << 40, Node: 7}, Expires: exp},
		{Key: []byte{0, 1, 0xff}, Value: bytes.Repeat([]byte{0xab}, 70000), Version: shm.Version{Time: 5, Node: 1}},
		{Key: []byte("gone"), Value: []byte{}, Version: shm.Version{Time: 9, Node: 2}, Expires: exp, Deleted: true},
		{Key: []byte{}, Value: []byte{}, Version: shm.Version{Time: 1}},
	}
}

func sampleHeader() Header {
	return Header{App: "shop", Source: "/dev/shm/gardenstate-shop", Node: 42, Dumped: time.Unix(0, 1_700_000_000_000_000_000)}
}

func encode(t testing.TB, h Header, es []shm.Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Bytes() != int64(b.Len()) {
		t.Fatalf("Bytes() = %d, wrote %d", w.Bytes(), b.Len())
	}
	return b.Bytes()
}

// readAll returns the header and entries of a dump, or the first error.
func readAll(data []byte) (Header, []shm.Entry, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, err
	}
	var es []shm.Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return r.Header(), es, nil
		}
		if err != nil {
			return r.Header(), es, err
		}
		es = append(es, e)
	}
}

func TestRoundTrip(t *testing.T) {
	data := encode(t, sampleHeader(), sampleEntries())
	h, es, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleHeader()
	want.Format = FormatVersion
	if !reflect.DeepEqual(h, want) {
		t.Errorf("header %+v, want %+v", h, want)
	}
	if !reflect.DeepEqual(es, sampleEntries()) {
		t.Errorf("entries differ after a round trip:\n got %+v\nwant %+v", es, sampleEntries())
	}
}

func TestWriterRefusesLongKey(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(shm.Entry{Key: make([]byte, 256), Version: shm.Version{Time: 1}}); err == nil {
		t.Fatal("a 256-byte key was accepted")
	}
}

// TestTruncated cuts a dump at every length: each must be an error, never a
// success and never a panic.
func TestTruncated(t *testing.T) {
	data := encode(t, sampleHeader(), sampleEntries()[:1])
	for n := 0; n < len(data); n++ {
		_, _, err := readAll(data[:n])
		if err == nil {
			t.Fatalf("a dump cut to %d of %d bytes read without error", n, len(data))
		}
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("cut to %d bytes: %v is not ErrFormat", n, err)
		}
	}
}

func TestDamaged(t *testing.T) {
	good := encode(t, sampleHeader(), sampleEntries()[:2])
	magicLen := len(Magic)
	headerBody := int(binary.LittleEndian.Uint32(good[magicLen+1:]))
	firstEntry := magicLen + frameHeaderSize + headerBody

	// reframe rebuilds a frame with a valid checksum around body.
	reframe := func(kind byte, body []byte) []byte {
		f := make([]byte, frameHeaderSize, frameHeaderSize+len(body))
		f[0] = kind
		binary.LittleEndian.PutUint32(f[1:], uint32(len(body)))
		binary.LittleEndian.PutUint32(f[5:], frameCRC(kind, body))
		return append(f, body...)
	}
	mp := func(vs ...any) []byte {
		var b bytes.Buffer
		enc := msgpack.NewEncoder(&b)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	headerWith := func(body []byte) []byte {
		return append([]byte(Magic), reframe(kindHeader, body)...)
	}
	end := func(n int) []byte { return reframe(kindEnd, mp(map[string]any{"entries": n})) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"wrong magic", append([]byte("GRDNSEG\x00"), good[magicLen:]...), "not a gardenctl dump file"},
		{"flipped byte", func() []byte {
			b := bytes.Clone(good)
			b[firstEntry+frameHeaderSize+3] ^= 0x40
			return b
		}(), "checksum"},
		{"unknown kind", func() []byte {
			b := bytes.Clone(good)
			b[firstEntry] = 'X'
			return b
		}(), "unknown frame kind"},
		{"huge frame", func() []byte {
			b := bytes.Clone(good[:firstEntry+frameHeaderSize])
			binary.LittleEndian.PutUint32(b[firstEntry+1:], 0xffffffff)
			return b
		}(), "more than"},
		{"trailing data", append(bytes.Clone(good), 0), "data after the end frame"},
		{"count mismatch", append(bytes.Clone(good[:firstEntry]), end(3)...), "counts 3 entries, the file holds 0"},
		{"newer format", headerWith(mp(map[string]any{"format": 2})), "format version 2"},
		{"no format", headerWith(mp(map[string]any{"app": "x"})), "no format version"},
		{"header not a map", headerWith(mp([]int{1})), "not a msgpack map"},
		{"entry first", append([]byte(Magic), good[firstEntry:]...), "first frame"},
		{"second header", append(bytes.Clone(good[:firstEntry]), good[magicLen:firstEntry]...), "second header"},
		{"entry not an array", append(bytes.Clone(good[:firstEntry]), reframe(kindEntry, mp("x"))...), "not a msgpack array"},
		{"entry short", append(bytes.Clone(good[:firstEntry]), reframe(kindEntry, mp([]any{[]byte("k")}))...), "1 elements"},
		{"entry no version", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, append([]byte{0x96}, mp([]byte("k"), []byte("v"), 0, 0, 0, false)...))...), "no version"},
		{"entry string key", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, append([]byte{0x96}, mp("k", []byte("v"), 1, 0, 0, false)...))...), "key is not msgpack bin"},
		{"entry long key", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, append([]byte{0x96}, mp(make([]byte, 300), []byte("v"), 1, 0, 0, false)...))...), "key of 300 bytes"},
		{"entry lying bin length", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, []byte{0x96, 0xc6, 0x7f, 0xff, 0xff, 0xff, 1})...), "claims 2147483647 bytes"},
		{"tombstone with value", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, append([]byte{0x96}, mp([]byte("k"), []byte("v"), 1, 0, 0, true)...))...), "tombstone"},
		{"negative expiry", append(bytes.Clone(good[:firstEntry]),
			reframe(kindEntry, append([]byte{0x96}, mp([]byte("k"), []byte("v"), 1, 0, -5, false)...))...), "negative"},
		{"deep header value", headerWith(append(append(append([]byte{0x82}, mp("format", 1, "x")...),
			bytes.Repeat([]byte{0x91}, 100)...), 1)), "nested"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readAll(c.data)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want ErrFormat mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it must never panic, and
// whatever it accepts must survive a write and a second read unchanged.
func FuzzReader(f *testing.F) {
	good := encode(f, sampleHeader(), sampleEntries()[:1])
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(Magic))
	f.Add(encode(f, Header{}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, es, err := readAll(data)
		if err != nil {
			return
		}
		again := encode(t, h, es)
		h2, es2, err := readAll(again)
		if err != nil {
			t.Fatalf("rewritten dump does not read back: %v", err)
		}
		if !reflect.DeepEqual(h, h2) || len(es) != len(es2) {
			t.Fatalf("rewritten dump differs: %+v %d entries, then %+v %d entries", h, len(es), h2, len(es2))
		}
		for i := range es {
			if !reflect.DeepEqual(es[i], es2[i]) {
				t.Fatalf("entry %d differs after rewriting: %+v, then %+v", i, es[i], es2[i])
			}
		}
	})
}
