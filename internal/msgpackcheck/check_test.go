package msgpackcheck

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestAcceptsWhatTheLibraryWrites(t *testing.T) {
	vals := []any{
		nil, true, 1, -1, 300, -300, 1 << 40, 3.5, float32(2), "s", bytes.Repeat([]byte("b"), 70000),
		[]any{1, "x", []any{map[string]any{"k": []byte("v")}}}, map[string]any{"a": 1, "b": []int{1, 2, 3}},
		msgpack.RawMessage{0xd4, 1, 2},
	}
	for _, v := range vals {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(b, 16); err != nil {
			t.Errorf("%#v: %v", v, err)
		}
		if n, err := Len(append(b, 0xc0)); n != len(b) || err != nil {
			t.Errorf("Len(%#v) = %d, %v; want %d", v, n, err, len(b))
		}
	}
}

func TestRejects(t *testing.T) {
	cases := map[string][]byte{
		"huge array":     {0xdd, 0xff, 0xff, 0xff, 0xff},
		"huge map":       {0xdf, 0x0f, 0xff, 0xff, 0xff, 1},
		"huge bin":       {0xc6, 0xff, 0xff, 0xff, 0xff},
		"short str":      {0xa5, 'a'},
		"empty":          {},
		"unused":         {0xc1},
		"cut length":     {0xdc, 0x01},
		"missing item":   {0x92, 0x01},
		"deep":           bytes.Repeat([]byte{0x91}, 100),
		"fixext cut":     {0xd8, 1, 2},
		"map half pairs": {0x82, 1, 2, 3},
	}
	for name, b := range cases {
		if err := Check(b, 32); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if _, err := Len(b); name != "deep" && !errors.Is(err, ErrMalformed) {
			t.Errorf("Len, %s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzCheck: whatever Check accepts, the library decodes without running
// out of memory or stack.
func FuzzCheck(f *testing.F) {
	for _, s := range [][]byte{{0x91, 0x01}, {0xdd, 0, 0, 0, 1, 0xc0}, {0x81, 0xa1, 'a', 0xc4, 1, 'x'}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b, 32) != nil {
			return
		}
		var v any
		msgpack.Unmarshal(b, &v)
	})
}
