// Command bench measures gardenstate against what users would pick instead,
// side by side in one run on the machine it runs on, and writes a report.
//
//	go run ./bench                  # every suite, a few minutes
//	go run ./bench -quick           # every suite in under a minute
//	go run ./bench -suite kv,http   # some suites
//
// It prints the machine (CPU, cores, kernel, Go, GOMAXPROCS, transparent
// huge pages) and, per suite, a table of absolute figures and of ratios
// against the baselines measured in the same run, and writes report.md
// with SVG plots into -out (default bench/results/<timestamp>). -json FILE
// writes every figure as JSON too. A progress line runs on stderr. -scale F
// multiplies every count and duration (the smoke test runs the whole
// harness with -quick -scale 0.05).
//
// # Suites
//
//   - kv: Get and Set of 100 B, 1 KiB and 10 KiB values over 100k keys in
//     a segment (in /dev/shm), a Go map behind a sync.RWMutex, Redis and
//     memcached: single-goroutine latency (p50, p99) and parallel
//     throughput.
//   - procs: 1, 2 and 4 processes on one segment, 90% Get / 10% Set:
//     throughput and its ratio to one process.
//   - http: examples/webgarden, and one counter handler under
//     garden/prefork with sessions in a segment, with no sessions, and
//     with sessions in Redis, loaded by a net/http load generator
//     (keep-alive and a new connection per request) and by wrk.
//   - replication: two agents over TCP with TLS on 127.0.0.1 and
//     127.0.0.2: replicated writes per second, lag at 20k writes/s, and
//     the sender's memory while its peer stops reading.
//   - crash: a process writing a key is SIGKILLed, often holding the
//     stripe lock; how long the next Set of that key stalls, and how many
//     kills the segment had to take a lock over from.
//
// redis-server, memcached and wrk are used when they are on PATH: the
// harness starts its own redis-server and memcached on 127.0.0.1 with
// ports the kernel picks, and stops them afterwards. Parts that need a
// missing tool are reported as "not installed" (-without pretends a tool
// is missing). Nothing listens on anything but loopback.
//
// # Caveats
//
// Linux only, like the segment. Everything (servers, load generators,
// both agents) shares one machine, so the figures say how the designs
// compare here, not what a farm of separate hosts would do. The harness
// re-runs its own binary as child processes (the procs workers, the crash
// victim, the HTTP server, the loopback echo), selected by the
// GARDENSTATE_BENCH_CHILD environment variable. Each suite also reports how
// many cores other processes kept busy while it ran: on a shared machine
// that says how far its figures were disturbed.
//
// Segment files are created as /dev/shm/gardenstate-bench-<pid>-* and
// removed at the end, on failure and on Ctrl-C; a harness killed with
// SIGKILL leaves them behind (its child processes die with it).
package main
