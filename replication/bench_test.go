package replication

// Replication benchmarks: two agents on loopback (TCP, TLS from the farm
// key, gossip), 1 KiB writes. Compare runs with benchstat.

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testseg"
	"github.com/gardenstate/gardenstate/internal/testwait"
	"github.com/gardenstate/gardenstate/shm"
)

// benchPair starts two agents on loopback, each with a segment that holds
// at least entries 1 KiB values without evicting (a stripe fills unevenly
// and reclaims space in steps: room for twice the records).
func benchPair(b *testing.B, entries int) (a, c *loopNode) {
	size := max(256<<20, (int64(entries)*2*1120+64<<20)&^(1<<20-1))
	mk := func(name, ip string, join []string) *loopNode {
		seg, err := shm.Open(filepath.Join(testseg.Dir(b), name), &shm.Options{Size: size, MaxValue: 16 << 10})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { seg.Close() })
		ag, err := New(Config{
			NodeName: name, Cluster: "bench", Key: testKey, Apps: map[string]*shm.Segment{"app": seg},
			DataAddr: ip + ":0", Logger: quietLogger(),
			Gossip: GossipConfig{BindAddr: ip, Join: join, RejoinInterval: 200 * time.Millisecond, Fast: true},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := ag.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ag.Close(time.Second) })
		return &loopNode{name: name, seg: seg, agent: ag}
	}
	a = mk("a", "127.0.0.1", nil)
	c = mk("b", "127.0.0.2", []string{a.agent.GossipAddr()})
	testwait.For(b, 20*time.Second, "the agents to connect", func() bool {
		m := a.agent.Peers().Members
		return len(m) == 1 && m[0].State == "alive"
	})
	return a, c
}

// BenchmarkReplicatedWrites: b.N writes of new keys on one agent, as fast
// as one goroutine can, timed until every one is on the other. (Writes to
// the same key faster than the agent reads the change ring would travel
// as one.) ns/op is the cost of one replicated write; writes/s and the
// entries sent per write are reported.
func BenchmarkReplicatedWrites(b *testing.B) {
	a, c := benchPair(b, b.N)
	val := make([]byte, 1024)
	keys := make([][]byte, b.N)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k%d", i)
	}
	sent0 := a.agent.Peers().Members[0].Sent
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	for _, k := range keys {
		if err := a.seg.Set(k, val, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	testwait.For(b, 5*time.Minute, "the writes to arrive", func() bool {
		for i < len(keys) && c.seg.Has(keys[i]) {
			i++
		}
		return i == len(keys)
	})
	b.StopTimer()
	if n := a.seg.Stats().ForcedEvictions + c.seg.Stats().ForcedEvictions; n != 0 {
		b.Fatalf("%d writes do not fit the segments (%d evictions): use a smaller -benchtime", b.N, n)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	b.ReportMetric(float64(a.agent.Peers().Members[0].Sent-sent0)/float64(b.N), "sent/write")
}

// BenchmarkReplicationLag writes at a fixed 20,000 writes/s and measures,
// on the other agent, how long after its write each change arrived. The
// writer writes a burst of 20 every millisecond and the reader waits on the
// other agent's change ring (applied changes wake it at most every 50 µs),
// so neither takes a core from the agents.
func BenchmarkReplicationLag(b *testing.B) {
	const rate, burst = 20000, 20
	a, c := benchPair(b, 50000)
	from := c.seg.LastSeq() + 1
	var lags []time.Duration
	buf := make([]shm.Change, 512)
	var vb []byte
	drain := func() error {
		for {
			n, next, err := c.seg.ReadChanges(from, buf)
			if err != nil {
				return err
			}
			now := time.Now()
			for _, ch := range buf[:n] {
				if ch.Kind != shm.ChangeSet || !ch.Remote {
					continue
				}
				var ok bool
				if vb, ok = c.seg.Get(vb[:0], ch.Key); ok && len(vb) >= 8 {
					lags = append(lags, now.Sub(time.Unix(0, int64(binary.LittleEndian.Uint64(vb)))))
				}
			}
			from = next
			if n < len(buf) {
				return nil
			}
		}
	}
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- drain()
				return
			default:
			}
			c.seg.WaitChanges(from, 10*time.Millisecond)
			if err := drain(); err != nil {
				<-stop
				done <- err
				return
			}
		}
	}()
	val := make([]byte, 1024)
	tick := time.NewTicker(time.Second * burst / rate)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; <-tick.C {
		// What is due by now, whatever the last burst took.
		for due := min(b.N, int(time.Since(start)*rate/time.Second)+burst); i < due; i++ {
			binary.LittleEndian.PutUint64(val, uint64(time.Now().UnixNano()))
			a.seg.Set(fmt.Appendf(nil, "k%d", i%50000), val, time.Hour)
		}
	}
	// Give the last writes time to arrive, then stop the reader. What did
	// not arrive shows in arrived-%.
	last := fmt.Appendf(nil, "k%d", (b.N-1)%50000)
	want, _ := a.seg.GetEntry(nil, last)
	testwait.Until(10*time.Second, func() bool {
		e, ok := c.seg.GetEntry(nil, last)
		return ok && e.Version == want.Version
	})
	close(stop)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if len(lags) == 0 {
		b.Fatal("nothing arrived")
	}
	slices.Sort(lags)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lags[len(lags)/2]), "p50-ms")
	b.ReportMetric(ms(lags[len(lags)*99/100]), "p99-ms")
	b.ReportMetric(ms(lags[len(lags)-1]), "max-ms")
	b.ReportMetric(float64(len(lags))/float64(b.N)*100, "arrived-%")
}
