// replication.go is the replication suite: two agents in this process,
// each with its own segment, on 127.0.0.1 and 127.0.0.2 over real TCP with
// TLS and gossip membership. It measures the replicated write rate, the
// lag at a fixed write rate, and that the sender's memory stays bounded
// while its peer stops reading.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gardenstate/gardenstate/replication"
	"github.com/gardenstate/gardenstate/shm"
)

// Targets the replication figures are compared with (the numbers
// for "low milliseconds at tens of thousands of writes per second").
const (
	replLagTarget        = 5 * time.Millisecond
	replThroughputTarget = 200_000.0
)

var replicationSuite = suite{
	name:  "replication",
	title: "Replication between two agents",
	method: func(p params) string {
		return fmt.Sprintf("Two agents (replication.New) run in this process, A on 127.0.0.1 and B on 127.0.0.2, each with its own segment in %s, "+
			"joined by gossip (GossipConfig{Fast: true}) and connected by the TCP transport with TLS 1.3 (replication.FileTLS with a CA made for the run; "+
			"B's connections are wrapped so the stall test can pause its reads). Values are 1 KiB. "+
			"(a) Throughput: %d new keys are Set on A as fast as one goroutine can; the time runs until every one is on B. "+
			"(b) Lag: %d writes/s on A for %v, each value carrying its write time; a reader tails B's change ring from B.LastSeq()+1 and, for every "+
			"remote Set, reads the entry (same version only) and records now − written. The reader polls every ~50 µs, which the lags include. "+
			"(c) Stall: B stops reading its data streams (gossip still runs, so A keeps B as a live peer) while A writes as fast as it can for %v "+
			"with QueueBytes = %s; A's Go heap (runtime.ReadMemStats, both agents share it) is sampled every 50 ms until A has worked through its "+
			"change ring; then B resumes and the time until B holds every key at A's version is measured (for at most %v).",
			shmDir(), p.replEntries, p.replRate, p.replLagRun, p.replStallRun, formatBytes(float64(p.replQueueBytes)), p.replCatchUp)
	},
	run: runReplication,
}

// replNode is one agent with its segment.
type replNode struct {
	name  string
	seg   *shm.Segment
	agent *replication.Agent
	reg   *prometheus.Registry
	pause *pauser
	logs  *tailBuffer
	undo  func()
}

const replApp = "bench"

func startReplNode(name, ip string, key []byte, cluster string, tf tlsFiles, opts *shm.Options, queue int, join []string) (*replNode, error) {
	path, remove := segmentPath("repl-" + name)
	seg, err := shm.Open(path, opts)
	if err != nil {
		remove()
		return nil, err
	}
	tc, err := replication.FileTLS(tf.cert, tf.key, tf.ca)
	if err != nil {
		seg.Close()
		remove()
		return nil, err
	}
	n := &replNode{name: name, seg: seg, reg: prometheus.NewRegistry(), pause: &pauser{}, logs: &tailBuffer{max: 4 << 10}}
	a, err := replication.New(replication.Config{
		NodeName: name, Cluster: cluster, Key: key, Apps: map[string]*shm.Segment{replApp: seg},
		Transport:  &replication.TCPTransport{Addr: net.JoinHostPort(ip, "0"), TLS: tc, Wrap: n.pause.wrap},
		Gossip:     replication.GossipConfig{BindAddr: ip, BindPort: 0, Join: join, RejoinInterval: 200 * time.Millisecond, Fast: true},
		QueueBytes: queue,
		Logger:     slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: n.reg,
	})
	if err == nil {
		err = a.Start()
	}
	if err != nil {
		seg.Close()
		remove()
		return nil, err
	}
	n.agent = a
	n.undo = cleanups.add(func() {
		n.pause.resume() // a paused read would keep Close waiting
		a.Close(time.Second)
		seg.Close()
		remove()
	})
	return n, nil
}

// peer returns what n's agent says about its peer.
func (n *replNode) peer() replication.PeerStatus {
	for _, m := range n.agent.Peers().Members {
		return m
	}
	return replication.PeerStatus{}
}

// counter sums a counter family of n's metrics.
func (n *replNode) counter(name string) float64 {
	fams, _ := n.reg.Gather()
	var sum float64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// secondLoopback returns 127.0.0.2 if this host can bind it, else
// 127.0.0.1.
func secondLoopback() string {
	if canListen("127.0.0.2") {
		return "127.0.0.2"
	}
	return "127.0.0.1"
}

// pollUntil calls cond every interval until it is true or d passed.
func pollUntil(ctx context.Context, d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

func runReplication(ctx context.Context, e *env, r rec) error {
	p := e.p
	dir, err := os.MkdirTemp("", "gardenstate-bench-tls-")
	if err != nil {
		return err
	}
	defer cleanups.add(func() { os.RemoveAll(dir) })()
	tf, err := makeTLSFiles(dir)
	if err != nil {
		return err
	}
	key := make([]byte, replication.KeySize)
	rand.Read(key)
	cluster := fmt.Sprintf("bench-%d", os.Getpid())
	stallKeys := 16384
	lagKeys := 32768
	opts := segmentOptions(p.replEntries+lagKeys+stallKeys, 1024)

	e.prog.step("starting two agents")
	ipB := secondLoopback()
	if ipB == "127.0.0.1" {
		r.note("127.0.0.2 could not be bound; both agents ran on 127.0.0.1.")
	}
	a, err := startReplNode("bench-a", "127.0.0.1", key, cluster, tf, opts, p.replQueueBytes, nil)
	if err != nil {
		return fmt.Errorf("agent A: %w", err)
	}
	defer a.undo()
	b, err := startReplNode("bench-b", ipB, key, cluster, tf, opts, p.replQueueBytes, []string{a.agent.GossipAddr()})
	if err != nil {
		return fmt.Errorf("agent B: %w", err)
	}
	defer b.undo()
	joined := time.Now()
	if !pollUntil(ctx, 30*time.Second, 5*time.Millisecond, func() bool {
		return a.peer().State == "alive" && b.peer().State == "alive"
	}) {
		return fmt.Errorf("agents did not connect within 30 s: A sees %+v, B sees %+v; logs A: %s; B: %s", a.peer(), b.peer(), a.logs.String(), b.logs.String())
	}
	r.note("The agents found each other and connected in %s.", formatDuration(time.Since(joined)))

	value := make([]byte, 1024)
	rand.Read(value)
	if err := replThroughput(ctx, e, r, a, b, value); err != nil {
		return err
	}
	if err := replLag(ctx, e, r, a, b, value, lagKeys); err != nil {
		return err
	}
	if err := replStall(ctx, e, r, a, b, value, stallKeys); err != nil {
		return err
	}
	for _, n := range []*replNode{a, b} {
		if logs := n.logs.String(); logs != "(empty)" {
			last := logs[bytes.LastIndexByte([]byte(logs), '\n')+1:]
			r.note("Agent %s logged warnings; the last: %s", n.name, last)
		}
	}
	return nil
}

// replThroughput is part (a).
func replThroughput(ctx context.Context, e *env, r rec, a, b *replNode, value []byte) error {
	n := e.p.replEntries
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "t/%012d", i)
	}
	dropped0, gaps0 := a.peer().Dropped, a.counter("gardenstate_replication_feed_gaps_total")
	e.prog.step("throughput: writing %d entries on A", n)
	start := time.Now()
	for _, k := range keys {
		if err := a.seg.Set(k, value, 0); err != nil {
			return fmt.Errorf("set on A: %w", err)
		}
	}
	wrote := time.Since(start)
	e.prog.step("throughput: waiting for %d entries on B", n)
	i := 0
	ok := pollUntil(ctx, 60*time.Second+time.Duration(n)*50*time.Microsecond, 200*time.Microsecond, func() bool {
		for i < n && b.seg.Has(keys[i]) {
			i++
		}
		return i == n
	})
	all := time.Since(start)
	if !ok {
		return fmt.Errorf("only %d of %d entries reached B within %v", i, n, all)
	}
	cs, subj := "(a) replicated 1 KiB writes", "A → B"
	r.add(cs, subj, "entries", unitCount, float64(n))
	r.add(cs, subj, "local write ops/s", unitOps, float64(n)/wrote.Seconds())
	r.add(cs, subj, "all on B after", unitNs, float64(all))
	r.add(cs, subj, "replicated ops/s", unitOps, float64(n)/all.Seconds())
	r.add(cs, subj, "dropped batches", unitCount, float64(a.peer().Dropped-dropped0))
	r.add(cs, subj, "feed gaps", unitCount, a.counter("gardenstate_replication_feed_gaps_total")-gaps0)
	r.ratio(cs, subj, "200k/s target", "replicated ops/s", float64(n)/all.Seconds()/replThroughputTarget, "replicated ops/s ÷ 200k/s")
	return nil
}

// replLag is part (b).
func replLag(ctx context.Context, e *env, r rec, a, b *replNode, value []byte, keySpace int) error {
	rate, dur := e.p.replRate, e.p.replLagRun
	type tailResult struct {
		hist       Hist
		seen       int
		superseded int
		gaps       int
		err        error
	}
	var res tailResult
	stop := make(chan struct{})
	var wg sync.WaitGroup
	from := b.seg.LastSeq() + 1
	var seen atomic.Int64
	wg.Go(func() {
		buf := make([]shm.Change, 512)
		vbuf := make([]byte, 0, 2048)
		for {
			n, next, err := b.seg.ReadChanges(from, buf)
			if errors.Is(err, shm.ErrGap) {
				res.gaps++
			} else if err != nil {
				res.err = err
				return
			}
			for _, c := range buf[:n] {
				if !c.Remote || c.Kind != shm.ChangeSet || !bytes.HasPrefix(c.Key, []byte("l/")) {
					continue
				}
				ent, ok := b.seg.GetEntry(vbuf[:0], c.Key)
				now := time.Now()
				if !ok || ent.Version != c.Version || len(ent.Value) < 8 {
					res.superseded++
					continue
				}
				vbuf = ent.Value[:0]
				res.hist.Record(now.Sub(time.Unix(0, int64(binary.LittleEndian.Uint64(ent.Value)))))
				res.seen++
			}
			seen.Store(int64(res.seen + res.superseded))
			from = next
			if n == 0 {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Microsecond):
				}
			}
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	e.prog.step("lag: %d writes/s on A for %v", rate, dur)
	v := append([]byte(nil), value...)
	written := 0
	start := time.Now()
	for {
		el := time.Since(start)
		if el >= dur || ctx.Err() != nil {
			break
		}
		for target := int(el.Seconds() * float64(rate)); written < target; written++ {
			k := fmt.Appendf(nil, "l/%08d", written%keySpace)
			binary.LittleEndian.PutUint64(v, uint64(time.Now().UnixNano()))
			if err := a.seg.Set(k, v, 0); err != nil {
				return fmt.Errorf("set on A: %w", err)
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	e.prog.step("lag: waiting for the last writes on B")
	lastKey := fmt.Appendf(nil, "l/%08d", (written-1)%keySpace)
	want, _ := a.seg.GetEntry(nil, lastKey)
	arrived := pollUntil(ctx, 30*time.Second, time.Millisecond, func() bool {
		got, ok := b.seg.GetEntry(nil, lastKey)
		return ok && !got.Version.Less(want.Version) && seen.Load() >= int64(written)
	})
	if !arrived {
		r.note("(b): 30 s after the last write, the reader had timed %d of %d writes on B.", seen.Load(), written)
	}
	close(stop)
	wg.Wait()
	if res.err != nil {
		return fmt.Errorf("tailing B: %w", res.err)
	}
	cs, subj := fmt.Sprintf("(b) lag at %d writes/s", rate), "A → B"
	r.add(cs, subj, "writes", unitCount, float64(written))
	r.add(cs, subj, "achieved writes/s", unitOps, float64(written)/elapsed.Seconds())
	r.add(cs, subj, "timed on B", unitCount, float64(res.seen))
	r.latency(cs, subj, &res.hist)
	if miss := written - res.seen; miss > 0 {
		r.note("(b): %d of %d writes were not timed on B (%d were overwritten before the reader got to them, %d ring gaps).", miss, written, res.superseded, res.gaps)
	}
	if p99 := res.hist.Quantile(0.99); p99 > 0 {
		r.ratio(cs, subj, "5 ms target", "p99", float64(replLagTarget)/float64(p99), "5 ms ÷ p99 lag")
	}
	return nil
}

// replStall is part (c).
func replStall(ctx context.Context, e *env, r rec, a, b *replNode, value []byte, keySpace int) error {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	dropped0 := a.peer().Dropped

	e.prog.step("stall: B stops reading, A writes for %v", e.p.replStallRun)
	b.pause.pause()
	resumed := false
	defer func() {
		if !resumed {
			b.pause.resume()
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	var peakQueue int
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			peakQueue = max(peakQueue, a.peer().QueueDepth)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	keys := make([][]byte, keySpace)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "m/%08d", i)
	}
	written := 0
	start := time.Now()
	for time.Since(start) < e.p.replStallRun && ctx.Err() == nil {
		for range 64 {
			if err := a.seg.Set(keys[written%keySpace], value, 0); err != nil {
				close(stop)
				wg.Wait()
				return fmt.Errorf("set on A: %w", err)
			}
			written++
		}
	}
	elapsed := time.Since(start)
	// A's agent is still working through the change ring it fell behind
	// on; every batch it cannot queue is counted as dropped. Measure once
	// the count has stopped moving.
	e.prog.step("stall: waiting for A to work through its change ring")
	last, still := a.peer().Dropped, 0
	if !pollUntil(ctx, 30*time.Second, 20*time.Millisecond, func() bool {
		d := a.peer().Dropped
		if d == last {
			still++
		} else {
			last, still = d, 0
		}
		return still >= 5
	}) {
		r.note("(c): A was still dropping batches 30 s after the writes stopped; the heap was measured then.")
	}
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapAlloc)
	dropped := a.peer().Dropped - dropped0
	runtime.GC()
	runtime.ReadMemStats(&ms)
	afterGC := ms.HeapAlloc

	e.prog.step("stall: B resumes, waiting until it caught up")
	b.pause.resume()
	resumed = true
	t0 := time.Now()
	i := 0
	caught := pollUntil(ctx, e.p.replCatchUp, time.Millisecond, func() bool {
		for i < keySpace {
			ea, okA := a.seg.GetEntry(nil, keys[i])
			eb, okB := b.seg.GetEntry(nil, keys[i])
			if okA && (!okB || eb.Version != ea.Version) {
				return false
			}
			i++
		}
		return true
	})
	catchUp := time.Since(t0)

	cs, subj := "(c) B stops reading", "agent A"
	bytesWritten := float64(written) * float64(len(value))
	r.add(cs, subj, "written", unitBytes, bytesWritten)
	r.add(cs, subj, "write ops/s", unitOps, float64(written)/elapsed.Seconds())
	r.add(cs, subj, "queue bound", unitBytes, float64(e.p.replQueueBytes))
	r.add(cs, subj, "heap before", unitBytes, float64(before))
	r.add(cs, subj, "heap peak", unitBytes, float64(peak))
	r.add(cs, subj, "heap after GC", unitBytes, float64(afterGC))
	r.add(cs, subj, "peak queue (batches)", unitCount, float64(peakQueue))
	r.add(cs, subj, "dropped batches", unitCount, float64(dropped))
	if caught {
		r.add(cs, subj, "B caught up after", unitNs, float64(catchUp))
	} else {
		r.note("(c): B had not caught up %v after resuming (the first %d of %d keys matched A's versions); the harness stopped waiting.",
			catchUp.Round(time.Millisecond), i, keySpace)
	}
	r.note("(c): HeapAlloc counts garbage not collected yet, so the peak is about twice what is live. After a GC, with B still stalled, "+
		"A's heap held %s more than before the stall, against a queue bound of %s (which counts key + value + 32 bytes per entry), "+
		"while %s were written.", formatBytes(float64(afterGC)-float64(before)), formatBytes(float64(e.p.replQueueBytes)), formatBytes(bytesWritten))
	if growth := float64(peak) - float64(before); growth > 0 {
		r.ratio(cs, subj, "bytes written", "heap growth", bytesWritten/growth, "bytes written ÷ heap peak growth")
	}
	return nil
}
