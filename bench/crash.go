// crash.go is the crash suite: a child process writes one key in a tight
// loop and is SIGKILLed at a random moment, often while it holds the
// key's stripe lock; the harness then times its own Set of the same key,
// which has to wait for the kernel to finish the child and, if the lock
// was held, take it over. The child is this binary in the "crash" mode.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

var crashSuite = suite{
	name:  "crash",
	title: "Killing a writer: how long others stall",
	method: func(p params) string {
		return fmt.Sprintf("%d times: start a child process that attaches to the segment and Sets one 1 KiB key in a tight loop; "+
			"while it runs, Set the same key from the harness for a random 1–10 ms (contended Sets); SIGKILL the child and at once "+
			"time the harness's next Set of that key (the stall: it includes the kernel tearing the child down and, when the child died "+
			"holding the stripe lock, the takeover and repair of the stripe). Uncontended Sets of the key, with no child, are the baseline. "+
			"The segment's Takeovers counter says how many kills hit a held lock; read before each kill and after the Set, it also "+
			"sorts the stalls into kills that did and did not hit a held lock.", p.crashKills)
	},
	run: runCrash,
}

// crashConfig configures a crash child.
type crashConfig struct {
	Segment string `json:"segment"`
	Key     string `json:"key"`
	Size    int    `json:"size"`
}

func runCrash(ctx context.Context, e *env, r rec) error {
	path, remove := segmentPath("crash")
	defer remove()
	seg, err := shm.Open(path, &shm.Options{Size: 16 << 20, MaxValue: 64 << 10})
	if err != nil {
		return err
	}
	defer seg.Close()
	const key = "crash/hot"
	value := make([]byte, 1024)
	k := []byte(key)
	if err := seg.Set(k, value, 0); err != nil {
		return err
	}

	e.prog.step("baseline: %d uncontended Sets", e.p.crashBaseline)
	var base Hist
	for range e.p.crashBaseline {
		t := time.Now()
		if err := seg.Set(k, value, 0); err != nil {
			return err
		}
		base.Record(time.Since(t))
	}

	before := seg.Stats()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	var stall, stallHeld, stallFree, contended, reap Hist
	var failed int
	var lastErr error
	for i := range e.p.crashKills {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i%10 == 0 {
			e.prog.step("kill %d of %d", i+1, e.p.crashKills)
		}
		kid, err := startChild("crash", crashConfig{Segment: path, Key: key, Size: len(value)})
		if err != nil {
			return err
		}
		if _, err := kid.expect("ready", 30*time.Second); err != nil {
			kid.stop(time.Second)
			return err
		}
		run := time.Duration(1+rng.IntN(10)) * time.Millisecond
		for end := time.Now().Add(run); time.Now().Before(end); {
			t := time.Now()
			err := seg.Set(k, value, 0)
			contended.Record(time.Since(t))
			if err != nil {
				failed++
				lastErr = err
			}
		}
		tk := seg.Stats().Takeovers
		kid.cmd.Process.Signal(syscall.SIGKILL)
		t := time.Now()
		err = seg.Set(k, value, 0)
		d := time.Since(t)
		stall.Record(d)
		if seg.Stats().Takeovers > tk {
			stallHeld.Record(d)
		} else {
			stallFree.Record(d)
		}
		if err != nil {
			failed++
			lastErr = err
		}
		if !kid.wait(10 * time.Second) {
			kid.stop(0)
			return fmt.Errorf("killed child did not exit within 10 s")
		}
		reap.Record(time.Since(t))
		kid.stop(0)
	}
	after := seg.Stats()

	r.latency("Set of the key", "uncontended (no child)", &base)
	r.latency("Set of the key", "contended (child writing it)", &contended)
	r.latency("Set of the key", "first Set after SIGKILL", &stall)
	if stallHeld.Count() > 0 {
		r.latency("Set of the key", "… when the child held the lock", &stallHeld)
	}
	if stallFree.Count() > 0 {
		r.latency("Set of the key", "… when it did not", &stallFree)
	}
	r.latency("Set of the key", "SIGKILL to child reaped", &reap)
	kills := float64(e.p.crashKills)
	takeovers := float64(after.Takeovers - before.Takeovers)
	r.add("kills", "segment counters", "kills", unitCount, kills)
	r.add("kills", "segment counters", "takeovers", unitCount, takeovers)
	r.add("kills", "segment counters", "repairs", unitCount, float64(after.Repairs-before.Repairs))
	r.add("kills", "segment counters", "records dropped", unitCount, float64(after.Dropped-before.Dropped))
	r.add("kills", "segment counters", "lock timeouts", unitCount, float64(after.LockTimeouts-before.LockTimeouts))
	r.note("%.0f of %.0f kills (%.0f%%) hit the child while it held the stripe lock (Takeovers).", takeovers, kills, 100*takeovers/kills)
	if failed > 0 {
		r.note("%d Sets by the harness failed; the last error: %v.", failed, lastErr)
	}
	if v, ok := seg.Get(nil, k); !ok || len(v) != len(value) {
		r.note("After the kills the key read back as found=%v with %d bytes.", ok, len(v))
	}
	return nil
}

// crashChild attaches to the segment, Sets the key once, says "ready" and
// then Sets it in a tight loop until it is killed.
func crashChild(config []byte) int {
	var c crashConfig
	if !readChildConfig(config, &c) {
		return 2
	}
	seg, err := shm.Attach(c.Segment, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	k, v := []byte(c.Key), make([]byte, c.Size)
	if err := seg.Set(k, v, 0); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	fmt.Println("ready")
	for i := uint64(0); ; i++ {
		v[0] = byte(i)
		seg.Set(k, v, 0)
	}
}
