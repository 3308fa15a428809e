package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// segmentImage returns the bytes of a small segment holding a few entries,
// tombstones and expired keys.
func segmentImage(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "seg")
	s, err := Open(path, &Options{Size: 1 << 20, MaxValue: 4096, Stripes: 4, RingSize: 256, MaxProcs: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		s.Set(fmt.Appendf(nil, "key-%d", i), fmt.Appendf(nil, "value-%d", i), 0)
	}
	for i := range 10 {
		s.Delete(fmt.Appendf(nil, "key-%d", i))
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpenSegment opens segment files with arbitrary bytes patched in or
// cut off, then uses them: Open must refuse with a clear error or attach,
// and no operation on an attached segment may panic or hang.
func FuzzOpenSegment(f *testing.F) {
	img := segmentImage(f)
	hdr := func(off int) uint32 { return uint32(off) }
	f.Add(hdr(0), []byte("XXXX"), uint32(0))
	f.Add(hdr(8), []byte{2}, uint32(0))
	f.Add(hdr(200), []byte{1, 2, 3}, uint32(0))
	f.Add(uint32(len(img)-1000), []byte{0xff, 0xff, 0xff, 0xff}, uint32(0))
	f.Add(uint32(0), []byte{}, uint32(len(img)/2))
	f.Add(uint32(0), []byte{}, uint32(100))
	// Every stripe control block, index and arena start gets a seed.
	s, err := Open(filepath.Join(f.TempDir(), "probe"), &Options{Size: 1 << 20, MaxValue: 4096, Stripes: 4, RingSize: 256, MaxProcs: 4})
	if err != nil {
		f.Fatal(err)
	}
	for _, off := range []uint64{s.h.StripesOff, s.h.StripesOff + 16, s.h.IndexOff, s.h.ArenaOff, s.h.ArenaOff + 4, s.h.RingOff} {
		f.Add(uint32(off), []byte{0x13, 0x37, 0xff, 0x7f, 0, 0, 0, 0x80}, uint32(0))
	}
	s.Close()
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, cut uint32) {
		b := append([]byte(nil), img...)
		if int(off) < len(b) {
			copy(b[off:], patch)
		}
		if cut != 0 && int(cut) < len(b) {
			b = b[:cut]
		}
		path := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, &Options{LockTimeout: 50e6})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersionMismatch) {
				t.Fatalf("Open of a damaged file: %v (want ErrCorrupt or ErrVersionMismatch)", err)
			}
			return
		}
		defer s.Close()
		for i := range 50 {
			k := fmt.Appendf(nil, "key-%d", i)
			s.Get(nil, k)
			s.Set(k, []byte("new"), 0)
			s.Touch(k, 0)
			if i%3 == 0 {
				s.Delete(k)
			}
		}
		s.Verify()
		s.Stats()
		for i := range s.Stripes() {
			s.Range(i, func(Entry) bool { return true })
		}
		s.ReadChanges(0, make([]Change, 16))
		// After the damage has been met and mended, the segment works.
		for i := range 20 {
			k := binary.AppendUvarint([]byte("after-"), uint64(i))
			if err := s.Set(k, k, 0); err != nil {
				t.Fatalf("Set after damage: %v", err)
			}
			if v, ok := s.Get(nil, k); !ok || string(v) != string(k) {
				t.Fatalf("Get after damage: %q %v", v, ok)
			}
		}
	})
}

func TestOpenRefusesBadFiles(t *testing.T) {
	img := segmentImage(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	cases := []struct {
		name string
		data []byte
		want error
		text string
	}{
		{"empty", nil, ErrCorrupt, "too short"},
		{"truncated", img[:len(img)/2], ErrCorrupt, "truncated"},
		{"foreign", []byte(string(make([]byte, 8192)) + "hello"), ErrCorrupt, "magic"},
		{"version", func() []byte { b := append([]byte(nil), img...); b[8] = 7; return b }(), ErrVersionMismatch, fmt.Sprintf("format version 7, this build reads version %d", layout.FormatVersion)},
		{"checksum", func() []byte { b := append([]byte(nil), img...); b[100] ^= 0xff; return b }(), ErrCorrupt, "checksum"},
	}
	for _, c := range cases {
		_, err := Open(write(c.name, c.data), nil)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v; want %v mentioning %q", c.name, err, c.want, c.text)
		}
	}
	// Options that contradict an existing segment name the field.
	p := write("ok", img)
	_, err := Open(p, &Options{MaxValue: 8192})
	if !errors.Is(err, ErrLayoutMismatch) || !strings.Contains(err.Error(), "MaxValue: segment has 4096, options ask for 8192") {
		t.Errorf("mismatched MaxValue: %v", err)
	}
	_, err = Open(p, &Options{App: "other"})
	if !errors.Is(err, ErrLayoutMismatch) || !strings.Contains(err.Error(), "App") {
		t.Errorf("mismatched App: %v", err)
	}
	if _, err := Open(p, &Options{Stripes: 3}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("3 stripes: %v", err)
	}
}
