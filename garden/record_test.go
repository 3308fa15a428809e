package garden

// record_test.go checks the stored session format against the msgpack
// library and with a fuzz target for the decoder.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestRecordRoundTrip(t *testing.T) {
	raw := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nested := map[string]any{"a": []any{1, "x", nil, true, 2.5, map[string]any{"deep": []byte{1, 2}}}}
	vals := []kv{
		{k: []byte("n"), raw: raw(42)},
		{k: []byte("neg"), raw: raw(-1 << 40)},
		{k: []byte("s"), raw: raw(strings.Repeat("x", 300))},
		{k: []byte(strings.Repeat("k", 40)), raw: raw(nested)},
		{k: []byte("bin"), raw: raw(bytes.Repeat([]byte{7}, 70000))},
		{k: []byte(""), raw: raw(nil)},
	}
	for _, n := range []int{0, 1, len(vals)} {
		b := appendRecord(nil, 1700000000123, vals[:n])
		created, got, err := decodeRecord(b, nil)
		if err != nil || created != 1700000000123 || len(got) != n {
			t.Fatalf("%d values: created %d, %d values, %v", n, created, len(got), err)
		}
		for i := range got {
			if !bytes.Equal(got[i].k, vals[i].k) || !bytes.Equal(got[i].raw, vals[i].raw) {
				t.Errorf("value %d: %q=%x, want %q=%x", i, got[i].k, got[i].raw, vals[i].k, vals[i].raw)
			}
		}
		// The msgpack library reads a record as a plain map.
		var m map[string]any
		if err := msgpack.Unmarshal(b, &m); err != nil || len(m) != 2 {
			t.Errorf("msgpack reads the record as %v, %v", m, err)
		}
	}
	// A record written by the msgpack library decodes too.
	b := raw(map[string]any{"c": 5, "v": map[string]any{"x": "y"}, "future": []int{1}})
	created, got, err := decodeRecord(b, nil)
	if err != nil || created != 5 || len(got) != 1 || string(got[0].k) != "x" {
		t.Errorf("library record: %d %v %v", created, got, err)
	}
}

func TestRecordRejects(t *testing.T) {
	good := appendRecord(nil, 7, []kv{{k: []byte("a"), raw: []byte{0x01}}})
	for _, b := range [][]byte{
		nil, {0x80}, {0x81}, good[:len(good)-1], append(bytes.Clone(good), 0),
		{0x81, 0xa1, 'v', 0x80},                              // no creation time
		{0x82, 0xa1, 'c', 0x01, 0xa1, 'v', 0x81, 0x01, 0x01}, // non-string key
		{0x82, 0xa1, 'c', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x80}, // too big
		{0x82, 0xa1, 'c', 0x01, 0xa1, 'v', 0x81, 0xa1, 'a', 0xc1},                                // reserved byte
		{0x82, 0xa1, 'c', 0x01, 0xa1, 'v', 0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, _, err := decodeRecord(b, nil); err == nil {
			t.Errorf("decodeRecord(%x) accepted", b)
		}
	}
	// Deep nesting is walked without recursion.
	deep := append([]byte{0x82, 0xa1, 'c', 0x01, 0xa1, 'v', 0x81, 0xa1, 'a'}, bytes.Repeat([]byte{0x91}, 1<<20)...)
	if _, _, err := decodeRecord(append(deep, 0xc0), nil); err != nil {
		t.Errorf("deeply nested value: %v", err)
	}
	if _, _, err := decodeRecord(deep, nil); err == nil {
		t.Error("truncated deeply nested value accepted")
	}
}

func TestSkipMatchesLibrary(t *testing.T) {
	for _, v := range []any{
		0, 127, 128, -32, -33, 1 << 20, -1 << 40, uint64(1) << 63, 1.5, float32(2.5), "", strings.Repeat("s", 40),
		strings.Repeat("s", 300), strings.Repeat("s", 70000), []byte{}, bytes.Repeat([]byte{1}, 300), bytes.Repeat([]byte{1}, 70000),
		[]int{1, 2, 3}, make([]int, 20), make([]int, 70000), map[string]int{"a": 1}, nil, true, false,
		msgpack.RawMessage{0xd4, 1, 2}, msgpack.RawMessage{0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		msgpack.RawMessage{0xc7, 2, 9, 1, 2}, msgpack.RawMessage{0xc8, 0, 1, 9, 1}, msgpack.RawMessage{0xc9, 0, 0, 0, 1, 9, 1},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, err := skip(append(b, 0xc0))
		if err != nil || n != len(b) {
			t.Errorf("skip(%T) = %d, %v; want %d", v, n, err, len(b))
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, nil))
	f.Add(appendRecord(nil, -1, []kv{{k: []byte("a"), raw: []byte{0x93, 0x01, 0xa1, 'x', 0x80}}}))
	f.Add([]byte{0x82, 0xa1, 'c', 0x01, 0xa1, 'v', 0x81, 0xa1, 'a', 0x91, 0x91, 0x91})
	f.Fuzz(func(t *testing.T, b []byte) {
		created, vals, err := decodeRecord(b, nil)
		if err != nil {
			return
		}
		// What decodes re-encodes to a record that decodes the same.
		again := appendRecord(nil, created, vals)
		c2, v2, err := decodeRecord(again, nil)
		if err != nil || c2 != created || len(v2) != len(vals) {
			t.Fatalf("re-encoded record: %d %d %v", c2, len(v2), err)
		}
		for i := range vals {
			if !bytes.Equal(v2[i].k, vals[i].k) || !bytes.Equal(v2[i].raw, vals[i].raw) {
				t.Fatalf("value %d changed", i)
			}
		}
	})
}
