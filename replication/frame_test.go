package replication

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/vmihailenco/msgpack/v5"
	"testing"
)

func encode(t testing.TB, ft frameType, v any) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeFrame(w, ft, v); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.Bytes()
}

// newPayload is a payload reading b, as a stream's frame reader resets
// its own for each frame.
func newPayload(b []byte, alias bool) *payload {
	p := &payload{}
	p.reset(b, alias)
	return p
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := []struct {
		t frameType
		v any
	}{
		{frameHello, &Hello{Node: "a", Meta: NodeMeta{Protocol: 1, Cluster: "c", Apps: []AppMeta{{Name: "x", Format: 1, MaxValue: 10, MaxKey: 255}}}}},
		{frameBatch, &Batch{ID: 7, App: "x", Through: 9, Entries: []WireEntry{{Key: []byte("k"), Value: []byte("v"), Time: 1, Node: 2, Expires: 3}}}},
		{frameAck, &Ack{ID: 7}},
		{frameDigest, &Digest{App: "x", Buckets: make([]uint64, digestBuckets)}},
		{frameKeys, &Keys{App: "x", Bucket: 3, Remaining: 1, Keys: []KeyVersion{{Key: []byte("k"), Time: 1, Node: 2}}}},
		{frameFetch, &Fetch{App: "x", Keys: [][]byte{[]byte("k")}}},
		{frameEntries, &Entries{App: "x"}},
		{frameRefuse, &Refuse{Reason: "no"}},
	}
	var all []byte
	for _, m := range msgs {
		all = append(all, encode(t, m.t, m.v)...)
	}
	r := bytes.NewReader(all)
	for _, m := range msgs {
		ft, b, err := readFrame(r, nil)
		if err != nil || ft != m.t {
			t.Fatalf("readFrame: %v %v, want %v", ft, err, m.t)
		}
		if _, err := decodeFrame(ft, b); err != nil {
			t.Fatalf("%v: %v", ft, err)
		}
	}
}

func TestFrameErrorsAreClear(t *testing.T) {
	cases := map[string][]byte{
		"huge length":  {0xff, 0xff, 0xff, 0xff, 3},
		"zero length":  {0, 0, 0, 0, 3},
		"unknown type": {0, 0, 0, 1, 99},
		"cut short":    {0, 0, 0, 10, 3, 1, 2},
	}
	for name, b := range cases {
		_, _, err := readFrame(bytes.NewReader(b), nil)
		if !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v, want ErrFrame", name, err)
		}
	}
	bad := []struct {
		t frameType
		v any
	}{
		{frameBatch, &Batch{App: "x", Entries: []WireEntry{{Key: nil, Time: 1}}}},
		{frameBatch, &Batch{App: "x", Entries: []WireEntry{{Key: make([]byte, 256), Time: 1}}}},
		{frameBatch, &Batch{App: "x", Entries: []WireEntry{{Key: []byte("k")}}}},
		{frameDigest, &Digest{App: "x", Buckets: make([]uint64, 3)}},
		{frameKeys, &Keys{App: "x", Bucket: 999}},
		{frameFetch, &Fetch{App: "x", Keys: [][]byte{nil}}},
	}
	for _, m := range bad {
		ft, b, err := readFrame(bytes.NewReader(encode(t, m.t, m.v)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeFrame(ft, b); !errors.Is(err, ErrFrame) {
			t.Errorf("%v %+v: %v, want ErrFrame", m.t, m.v, err)
		}
	}
}

// decodeFrame decodes a payload of type t into the matching message, which
// shares no memory with b.
func decodeFrame(t frameType, b []byte) (any, error) {
	return decodePayload(t, newPayload(b, false))
}

// FuzzDecodeFrame: bytes from a peer never panic the decoder, and what it
// accepts survives a round trip.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encode(f, frameBatch, &Batch{ID: 1, App: "a", Entries: []WireEntry{{Key: []byte("k"), Value: []byte("v"), Time: 5}}}))
	f.Add(encode(f, frameHello, &Hello{Node: "n", Meta: NodeMeta{Cluster: "c"}}))
	f.Add(encode(f, frameKeys, &Keys{App: "a", Bucket: -1}))
	f.Add(encode(f, frameDigest, &Digest{App: "a", Buckets: make([]uint64, digestBuckets)}))
	f.Add([]byte{0, 0, 0, 2, 4, 0xc0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			ft, b, err := readFrame(r, nil)
			if err != nil {
				return
			}
			v, err := decodeFrame(ft, b)
			if err != nil {
				if !errors.Is(err, ErrFrame) {
					t.Fatalf("decode error not wrapping ErrFrame: %v", err)
				}
				continue
			}
			again := encode(t, ft, v)
			// Decoded in place, the message is the same.
			inPlace, err := decodePayload(ft, newPayload(b, true))
			if err != nil {
				t.Fatalf("%v decodes copied but not in place: %v", ft, err)
			}
			if b3 := encode(t, ft, inPlace); !bytes.Equal(b3, again) {
				t.Fatalf("%v decoded in place differs:\n%x\n%x", ft, b3, again)
			}
			ft2, b2, err := readFrame(bytes.NewReader(again), nil)
			if err != nil || ft2 != ft {
				t.Fatalf("re-encoded %v does not read back: %v", ft, err)
			}
			if _, err := decodeFrame(ft2, b2); err != nil {
				t.Fatalf("re-encoded %v does not decode: %v", ft, err)
			}
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	b, _ := NodeMeta{Protocol: 1, Cluster: "c", Apps: []AppMeta{{Name: "x"}}}.encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMeta(data)
		if err != nil {
			return
		}
		compareMeta(m, m)
	})
}

// TestWireEntryMatchesReflection: the hand-written codec reads what
// reflection writes and writes what reflection reads.
func TestWireEntryMatchesReflection(t *testing.T) {
	type plain WireEntry // same tags, no custom codec
	es := []WireEntry{
		{Key: []byte("k"), Time: 1},
		{Key: []byte("k"), Value: []byte("value"), Time: 1 << 40, Node: 1<<32 - 1, Expires: -5, Deleted: true, Touch: true},
	}
	for _, e := range es {
		b1, err := msgpack.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		p := plain(e)
		b2, err := msgpack.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		var fromPlain WireEntry
		if err := msgpack.Unmarshal(b2, &fromPlain); err != nil {
			t.Fatal(err)
		}
		var back plain
		if err := msgpack.Unmarshal(b1, &back); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fromPlain) != fmt.Sprint(e) || fmt.Sprint(WireEntry(back)) != fmt.Sprint(e) {
			t.Fatalf("codecs disagree on %+v: %+v, %+v", e, fromPlain, back)
		}
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := &Batch{ID: 1, App: "app", Through: 9}
	for i := range 512 {
		batch.Entries = append(batch.Entries, WireEntry{Key: fmt.Appendf(nil, "s/%022d", i), Value: make([]byte, 1024), Time: uint64(i+1) << 20, Node: 7, Expires: 1e18})
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		writeFrame(w, frameBatch, batch)
		w.Flush()
	}
	b.SetBytes(int64(buf.Len()))
	data := buf.Bytes()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ft, p, _ := readFrame(bytes.NewReader(data), nil)
			if _, err := decodeFrame(ft, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
