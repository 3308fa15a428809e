// params.go holds every size and duration the suites use, for a full run
// and for -quick, with the reason for each; -scale multiplies the counts
// and durations (the smoke test runs with a small scale).

package main

import (
	"runtime"
	"time"
)

// params are the knobs of one run.
type params struct {
	rttTrips int // loopback round trips timed for the machine description

	// kv
	kvKeys     int           // keys preloaded in every store
	kvSizes    []int         // value sizes
	kvLatency  time.Duration // single-goroutine latency run, per op and store
	kvParallel time.Duration // parallel throughput run, per op and store
	kvConc     int           // goroutines of the parallel run

	// procs
	procsKeys   int
	procsCounts []int
	procsRun    time.Duration

	// http
	httpWorkers  int // worker processes of every server
	httpConc     int // concurrent users of the load generator
	httpRun      time.Duration
	sessionBytes int // padding kept in every session
	wrkSessions  int // sessions wrk cycles through

	// replication
	replEntries    int           // entries of the throughput run
	replRate       int           // writes/s of the lag run
	replLagRun     time.Duration // length of the lag run
	replStallRun   time.Duration // writing while the peer does not read
	replQueueBytes int           // the per-peer queue bound under test
	replCatchUp    time.Duration // how long to wait for the stalled peer to catch up

	// crash
	crashKills    int
	crashBaseline int // uncontended Sets measured for comparison
}

func newParams(quick bool, scale float64) params {
	p := params{
		rttTrips: 20_000,
		// The sizes: 100k keys of 100 B, 1 KiB and 10 KiB.
		kvKeys: 100_000, kvSizes: []int{100, 1024, 10 << 10},
		// Long enough for a stable p99 of the slowest store (a network
		// round trip of ~50 µs gives 20k samples a second).
		kvLatency: time.Second, kvParallel: time.Second,
		// Enough goroutines that a store behind a network round trip is
		// not idle waiting: 8 per core, the same for every store.
		kvConc: 8 * runtime.GOMAXPROCS(0),

		procsKeys: 100_000, procsCounts: []int{1, 2, 4}, procsRun: 3 * time.Second,

		// One worker per core, as prefork defaults to.
		httpWorkers: runtime.NumCPU(), httpConc: 16, httpRun: 5 * time.Second,
		sessionBytes: 1024, wrkSessions: 256,

		// 100k entries of 1 KiB: about half a second at the 200k/s target.
		replEntries: 100_000,
		// The design's "tens of thousands of writes per second".
		replRate: 20_000, replLagRun: 5 * time.Second,
		// Writes for 4 s at full speed exceed the default 64 MiB queue
		// several times over.
		replStallRun: 4 * time.Second, replQueueBytes: 64 << 20,
		// Long enough to see the periodic anti-entropy (every minute by
		// default) repair what the catch-up missed.
		replCatchUp: 2 * time.Minute,

		crashKills: 300, crashBaseline: 100_000,
	}
	if quick {
		// A whole run in under a minute: fewer keys (the per-op costs
		// hardly depend on the key count), shorter runs, fewer kills,
		// and a smaller queue so that it fills within the short stall.
		p.rttTrips = 5000
		p.kvKeys, p.kvLatency, p.kvParallel = 10_000, 150*time.Millisecond, 150*time.Millisecond
		p.procsKeys, p.procsRun = 20_000, 700*time.Millisecond
		p.httpRun = time.Second
		p.replEntries, p.replLagRun, p.replStallRun, p.replQueueBytes = 20_000, 1500*time.Millisecond, time.Second, 16<<20
		p.replCatchUp = 20 * time.Second
		p.crashKills, p.crashBaseline = 30, 20_000
	}
	if scale != 1 {
		n := func(v, least int) int { return max(int(float64(v)*scale), least) }
		d := func(v time.Duration) time.Duration { return max(time.Duration(float64(v)*scale), 20*time.Millisecond) }
		p.rttTrips = n(p.rttTrips, 100)
		p.kvKeys, p.procsKeys = n(p.kvKeys, 100), n(p.procsKeys, 100)
		p.kvLatency, p.kvParallel, p.procsRun, p.httpRun = d(p.kvLatency), d(p.kvParallel), d(p.procsRun), d(p.httpRun)
		p.replEntries, p.replLagRun, p.replStallRun = n(p.replEntries, 100), d(p.replLagRun), d(p.replStallRun)
		p.replCatchUp = max(d(p.replCatchUp), time.Second)
		p.replQueueBytes = n(p.replQueueBytes, 1<<20)
		p.wrkSessions = n(p.wrkSessions, 4)
		p.crashKills, p.crashBaseline = n(p.crashKills, 3), n(p.crashBaseline, 100)
	}
	return p
}
