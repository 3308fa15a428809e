// kv.go is the kv suite: Get and Set of 100 B, 1 KiB and 10 KiB values over
// a preloaded key space, in a gardenstate segment, a Go map behind a
// RWMutex, Redis and memcached: single-goroutine latency and parallel
// throughput.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// The kv suite's reference row: what one call to a network store costs at
// least.
const (
	caseRTT = "round trip 64 B"
	subjRTT = "loopback, another process"
)

var kvSuite = suite{
	name:  "kv",
	title: "Key-value Get/Set: segment vs map vs Redis vs memcached",
	method: func(p params) string {
		return fmt.Sprintf("Each store is preloaded with %d keys (16-byte keys) of the value size, then: "+
			"Get and Set of uniformly random keys from one goroutine for %v each, every call timed (p50/p99/max, and the calls/s that gives); "+
			"then the same from %d goroutines for %v each, counting calls (parallel ops/s). "+
			"The segment lives in %s; Redis and memcached run on 127.0.0.1, started by the harness, reached through go-redis and gomemcache with one connection per goroutine. "+
			"Every store copies values out, as a session read must. Latency samples include one clock reading each (see machine). "+
			"For reference, the first row times %d round trips of 64 bytes to another process over 127.0.0.1, one at a time, just before "+
			"the stores: every Redis or memcached call includes at least one; where CPUs sit idle it is mostly the time to wake them.",
			p.kvKeys, p.kvLatency, p.kvConc, p.kvParallel, shmDir(), p.rttTrips)
	},
	run: runKV,
}

func runKV(ctx context.Context, e *env, r rec) error {
	e.prog.step("loopback round trip")
	rtt, err := loopbackRTT(e.p.rttTrips)
	if err != nil {
		return fmt.Errorf("loopback round trip: %w", err)
	}
	r.latency(caseRTT, subjRTT, rtt.hist)
	r.add(caseRTT, subjRTT, "1-goroutine ops/s", unitOps, rtt.rate())
	for _, size := range e.p.kvSizes {
		if err := kvSize(ctx, e, r, size); err != nil {
			return err
		}
	}
	for _, size := range e.p.kvSizes {
		for _, op := range []string{"get", "set"} {
			cs := op + " " + sizeName(size)
			for _, b := range []string{subjMap, subjRedis, subjMemcached} {
				r.lowerBetter(cs, subjGarden, b, "p50")
				r.lowerBetter(cs, subjGarden, b, "p99")
				r.higherBetter(cs, subjGarden, b, "parallel ops/s")
			}
		}
	}
	return nil
}

// kvSize runs every store for one value size.
func kvSize(ctx context.Context, e *env, r rec, size int) error {
	keys := e.p.kvKeys
	opts := segmentOptions(keys, size)
	if free := freeBytes(shmDir()); free > 0 && uint64(opts.Size) > free/2 {
		// Leave the machine's /dev/shm at least half free.
		for keys > 1000 && uint64(segmentOptions(keys, size).Size) > free/2 {
			keys /= 2
		}
		opts = segmentOptions(keys, size)
		r.note("%s values: %s has %s free, so %d keys were used instead of %d.", sizeName(size), shmDir(), formatBytes(float64(free)), keys, e.p.kvKeys)
	}
	keySet := make([][]byte, keys)
	for i := range keySet {
		keySet[i] = fmt.Appendf(nil, "kv/%013d", i)
	}
	value := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size), byte(size >> 8)}).Read(value)

	type store struct {
		name      string
		open      func() (kvStore, func(), error)
		evictions func() uint64 // live entries evicted so far, where the store counts them
	}
	var seg *shm.Segment
	stores := []store{
		{name: subjGarden, open: func() (kvStore, func(), error) {
			path, remove := segmentPath(fmt.Sprintf("kv-%d", size))
			s, err := shm.Open(path, opts)
			if err != nil {
				remove()
				return nil, nil, err
			}
			seg = s
			return shmStore{s}, func() { s.Close(); remove() }, nil
		}, evictions: func() uint64 { return seg.Stats().ForcedEvictions }},
		{name: subjMap, open: func() (kvStore, func(), error) { return newMapStore(keys), func() {}, nil }},
		{name: subjRedis, open: func() (kvStore, func(), error) {
			bin, ok := usable(e.tools, "redis-server")
			if !ok {
				return nil, nil, errSkip(bin)
			}
			d, err := startRedis(bin)
			if err != nil {
				return nil, nil, err
			}
			s := newRedisStore(d.addr, e.p.kvConc+2)
			return s, func() { s.c.Close(); d.stop(5 * time.Second) }, nil
		}},
		{name: subjMemcached, open: func() (kvStore, func(), error) {
			bin, ok := usable(e.tools, "memcached")
			if !ok {
				return nil, nil, errSkip(bin)
			}
			mem := int(int64(keys)*int64(size+200)*3/2>>20) + 64
			d, err := startMemcached(bin, mem)
			if err != nil {
				return nil, nil, err
			}
			s := newMemcachedStore(d.addr, e.p.kvConc+2)
			return s, func() { d.stop(5 * time.Second) }, nil
		}},
	}
	for _, st := range stores {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.prog.step("%s: %s values, starting", st.name, sizeName(size))
		s, closeFn, err := st.open()
		if reason, ok := skipped(err); ok {
			r.skip("get "+sizeName(size), st.name, reason)
			r.skip("set "+sizeName(size), st.name, reason)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		err = kvMeasure(ctx, e, r, st.name, s, keySet, value, st.evictions)
		closeFn()
		if err != nil {
			return fmt.Errorf("%s, %s values: %w", st.name, sizeName(size), err)
		}
	}
	return nil
}

// kvMeasure preloads s and runs the four measurements.
// Every Get runs before any Set, so that the Gets find the preloaded keys
// even in a store that evicts once Sets have filled it.
func kvMeasure(ctx context.Context, e *env, r rec, name string, s kvStore, keys [][]byte, value []byte, evictions func() uint64) error {
	size := len(value)
	e.prog.step("%s: %s values, loading %d keys", name, sizeName(size), len(keys))
	if err := s.Load(keys, value); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if v, ok, err := s.Get(nil, keys[len(keys)/2]); err != nil || !ok || len(v) != size {
		return fmt.Errorf("read back after load: found %v, %d bytes, err %v", ok, len(v), err)
	}
	get := func(w *worker) error {
		v, ok, err := s.Get(w.buf[:0], keys[w.rng.IntN(len(keys))])
		w.buf = v
		if !ok && err == nil {
			w.misses++
		}
		return err
	}
	set := func(w *worker) error { return s.Set(keys[w.rng.IntN(len(keys))], value) }
	ops := []struct {
		name string
		f    op
	}{{"get", get}, {"set", set}}
	seed := uint64(size)
	check := func(cs, how string, st runStats) {
		if st.errors > 0 {
			r.note("%s, %s (%s): %d of %d calls failed; first error: %v.", name, cs, how, st.errors, st.calls, st.first)
		}
		if st.misses > 0 {
			r.note("%s, %s (%s): %d of %d Gets missed a preloaded key.", name, cs, how, st.misses, st.calls)
		}
	}
	var evicted [3]uint64 // before the Gets, before the Sets, after the Sets
	for i, o := range ops {
		if evictions != nil {
			evicted[i] = evictions()
		}
		cs := o.name + " " + sizeName(size)
		e.prog.step("%s: %s latency", name, cs)
		st := timed(ctx, e.p.kvLatency, seed, o.f)
		r.latency(cs, name, st.hist)
		r.add(cs, name, "1-goroutine ops/s", unitOps, st.rate())
		check(cs, "1 goroutine", st)
		e.prog.step("%s: %s, %d goroutines", name, cs, e.p.kvConc)
		st = parallel(ctx, e.p.kvConc, e.p.kvParallel, seed, o.f)
		r.add(cs, name, "parallel ops/s", unitOps, st.rate())
		check(cs, fmt.Sprintf("%d goroutines", e.p.kvConc), st)
	}
	if evictions != nil {
		evicted[2] = evictions()
		if evicted[0] > 0 {
			r.note("%s, %s values: %d live entries were evicted while loading (the store was too small); Gets of them missed.", name, sizeName(size), evicted[0])
		}
		if n := evicted[2] - evicted[1]; n > 0 {
			r.note("%s, %s values: the Sets evicted %d live entries (%.2g%% of the keys): they wrote more than the segment's free space, "+
				"and the oldest records not read in the last second make room; that work is part of the Set figures.",
				name, sizeName(size), n, 100*float64(n)/float64(len(keys)))
		}
	}
	return ctx.Err()
}

// skipError marks a part that could not run for a reason that is not a
// failure (a tool is not installed).
type skipError string

func (e skipError) Error() string { return string(e) }

func errSkip(reason string) error { return skipError(reason) }

func skipped(err error) (string, bool) {
	if s, ok := err.(skipError); ok {
		return strings.TrimSpace(string(s)), true
	}
	return "", false
}
