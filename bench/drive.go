// drive.go runs an operation over and over for a fixed time: from one
// goroutine with every call timed (latency), or from many goroutines with
// calls counted (throughput).

package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// runStats is what a drive observed.
type runStats struct {
	hist    *Hist // per-call latency; nil for throughput runs
	calls   uint64
	elapsed time.Duration
	errors  uint64
	misses  uint64 // reads that found nothing, as the op counted them
	first   error  // the first error, for the report
}

func (r runStats) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.calls) / r.elapsed.Seconds()
}

// worker is the state of one calling goroutine: its random keys, its
// read buffer, what it counted.
type worker struct {
	rng    *rand.Rand
	buf    []byte
	misses uint64
}

// op is one call under test.
type op func(w *worker) error

// timed calls f from one goroutine for d (or until ctx ends), timing every
// call.
func timed(ctx context.Context, d time.Duration, seed uint64, f op) runStats {
	w := &worker{rng: rand.New(rand.NewPCG(seed, 1))}
	r := runStats{hist: &Hist{}}
	start := time.Now()
	end := start.Add(d)
	for {
		t0 := time.Now()
		err := f(w)
		t1 := time.Now()
		r.hist.Record(t1.Sub(t0))
		r.calls++
		if err != nil {
			r.errors++
			if r.first == nil {
				r.first = err
			}
		}
		if t1.After(end) || r.calls&1023 == 0 && ctx.Err() != nil {
			r.elapsed = t1.Sub(start)
			r.misses = w.misses
			return r
		}
	}
}

// parallel calls f from conc goroutines for d (or until ctx ends) and
// counts the calls.
func parallel(ctx context.Context, conc int, d time.Duration, seed uint64, f op) runStats {
	var stop atomic.Bool
	var calls, errs, misses atomic.Uint64
	var firstMu sync.Mutex
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for g := range conc {
		wg.Go(func() {
			w := &worker{rng: rand.New(rand.NewPCG(seed, uint64(g)+2))}
			var n, e uint64
			for !stop.Load() {
				for range 16 {
					if err := f(w); err != nil {
						e++
						firstMu.Lock()
						if first == nil {
							first = err
						}
						firstMu.Unlock()
					}
					n++
				}
			}
			calls.Add(n)
			errs.Add(e)
			misses.Add(w.misses)
		})
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	return runStats{calls: calls.Load(), elapsed: time.Since(start), errors: errs.Load(), misses: misses.Load(), first: first}
}
