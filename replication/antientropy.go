// antientropy.go compares two agents' copies of an app without sending the
// data: keys fall into buckets by a seed-independent hash, each bucket has
// an order-independent digest of its (key, version) pairs, and only the
// buckets whose digests differ have their key lists exchanged.

package replication

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"

	"github.com/gardenstate/gardenstate/shm"
)

// digestBuckets is the number of buckets an app's keys are split into.
const digestBuckets = 256

// bucketOf is the same on every host: it must not depend on a segment's
// hash seed.
func bucketOf(key []byte) int { return int(xxhash.Sum64(key) % digestBuckets) }

func entryDigest(key []byte, t uint64, node uint32) uint64 {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], t)
	binary.LittleEndian.PutUint32(b[8:], node)
	d := xxhash.New()
	d.Write(key)
	d.Write(b[:])
	return d.Sum64()
}

// appView is what one scan of a segment yields: per-bucket digests and the
// key versions in every bucket.
type appView struct {
	digests [digestBuckets]uint64
	keys    [digestBuckets][]KeyVersion
}

// scanApp reads the whole segment, one stripe at a time, leaving out keys
// for which skip is true.
func scanApp(seg *shm.Segment, skip func([]byte) bool) (*appView, error) {
	v := new(appView)
	for i := range seg.Stripes() {
		err := seg.RangeWith(i, shm.RangeOptions{KeysOnly: true}, func(e shm.Entry) bool {
			if skip(e.Key) {
				return true
			}
			b := bucketOf(e.Key)
			v.digests[b] ^= entryDigest(e.Key, e.Version.Time, e.Version.Node)
			v.keys[b] = append(v.keys[b], KeyVersion{Key: e.Key, Time: e.Version.Time, Node: e.Version.Node})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (k KeyVersion) version() shm.Version { return shm.Version{Time: k.Time, Node: k.Node} }

// diffBucket compares our keys of a bucket with theirs and returns the keys
// we hold newer (or they lack) and the keys they hold newer (or we lack).
func diffBucket(ours, theirs []KeyVersion) (send, fetch [][]byte) {
	tm := make(map[string]shm.Version, len(theirs))
	for _, k := range theirs {
		tm[string(k.Key)] = k.version()
	}
	om := make(map[string]bool, len(ours))
	for _, k := range ours {
		om[string(k.Key)] = true
		if tv, ok := tm[string(k.Key)]; !ok || tv.Less(k.version()) {
			send = append(send, k.Key)
		} else if k.version().Less(tv) {
			fetch = append(fetch, k.Key)
		}
	}
	for _, k := range theirs {
		if !om[string(k.Key)] {
			fetch = append(fetch, k.Key)
		}
	}
	return send, fetch
}

func toWire(e shm.Entry) WireEntry {
	w := WireEntry{Key: e.Key, Value: e.Value, Time: e.Version.Time, Node: e.Version.Node, Deleted: e.Deleted}
	if !e.Expires.IsZero() {
		w.Expires = e.Expires.UnixNano()
	}
	return w
}

func fromWire(w WireEntry) shm.Entry {
	e := shm.Entry{Key: w.Key, Value: w.Value, Version: shm.Version{Time: w.Time, Node: w.Node}, Deleted: w.Deleted}
	e.Expires = timeOrZero(w.Expires)
	return e
}
