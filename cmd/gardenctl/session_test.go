package main

// session_test.go checks the msgpack-to-JSON decoding of session values,
// and fuzzes it: session bytes come from whatever wrote the segment.

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeSession(t *testing.T) {
	at := time.Date(2025, 11, 21, 12, 0, 0, 500, time.UTC)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"session with nested msgpack", sessionValue(map[string]any{"user": "alice", "n": 3, "cart": []any{"apple", 2}}),
			`{"cart":["apple",2],"n":3,"user":"alice"}`},
		{"raw bytes stay base64", mustMsgpack(t, map[string]any{"token": []byte{0, 0xff}}), `{"token":{"base64":"AP8="}}`},
		{"text bytes are not mistaken for msgpack", mustMsgpack(t, map[string]any{"t": []byte("hello")}), `{"t":{"base64":"aGVsbG8="}}`},
		{"empty bytes", mustMsgpack(t, map[string]any{"e": []byte{}}), `{"e":{"base64":""}}`},
		{"timestamp", mustMsgpack(t, at), `"2025-11-21T12:00:00.0000005Z"`},
		{"non-string keys", mustMsgpack(t, map[int]string{1: "a"}), `{"1":"a"}`},
		{"big unsigned", mustMsgpack(t, uint64(math.MaxUint64)), `18446744073709551615`},
		{"negative", mustMsgpack(t, int64(-5)), `-5`},
		{"NaN", mustMsgpack(t, math.NaN()), `"NaN"`},
		{"float", mustMsgpack(t, 1.5), `1.5`},
		{"nil and bools", mustMsgpack(t, []any{nil, true, false}), `[null,true,false]`},
		{"invalid UTF-8 string", []byte{0xa2, 0xff, 0xfe}, `{"base64":"//4="}`},
		{"unknown extension", []byte{0xd4, 0x05, 0x07}, `{"ext":5,"base64":"Bw=="}`},
		{"bin inside bin", mustMsgpack(t, mustMsgpack(t, mustMsgpack(t, "deep"))), `"deep"`},
	}
	for _, c := range cases {
		v, err := decodeSession(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := jsonOf(t, v); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestDecodeSessionRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "end of data"},
		{"trailing bytes", []byte{0x01, 0x02}, "after the value"},
		{"reserved code", []byte{0xc1}, "does not start a msgpack value"},
		{"lying string length", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'}, "2147483647 bytes"},
		{"lying array length", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "an array of"},
		{"lying map length", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff, 1}, "a map of"},
		{"lying ext length", []byte{0xc9, 0x7f, 0xff, 0xff, 0xff, 1}, "an extension of"},
		{"too deep", []byte(strings.Repeat("\x91", 100) + "\x01"), "nested more than"},
	}
	for _, c := range cases {
		if _, err := decodeSession(c.in); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.msg)
		}
	}
}

// FuzzDecodeSession: any bytes decode to something JSON can print, or to
// an error; never a panic.
func FuzzDecodeSession(f *testing.F) {
	f.Add(sessionValue(map[string]any{"user": "alice", "cart": []any{"apple", 2}}))
	f.Add(mustMsgpack(f, map[string]any{"t": time.Unix(1, 2), "b": []byte{1, 2}}))
	f.Add([]byte{0xc6, 0, 0, 0, 3, 0x91, 0x91, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeSession(data)
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded %x to %#v, which JSON cannot print: %v", data, v, err)
		}
	})
}
