// procs.go is the procs suite: 1, 2 and 4 processes on one segment doing a
// 90/10 Get/Set mix, their combined throughput, and its ratio to one
// process. The workers are this binary run again in the "procs" child mode.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

var procsSuite = suite{
	name:  "procs",
	title: "Processes sharing one segment",
	method: func(p params) string {
		return fmt.Sprintf("A segment in %s is preloaded with %d keys of 1 KiB. Then 1, 2 and 4 worker processes (this binary re-run as children) "+
			"attach to it, wait for a common start, and each runs a 90%% Get / 10%% Set mix on uniformly random keys from one goroutine for %v. "+
			"Throughput is the sum of the workers' calls over their run time; the ratio is against one process. This machine has %d cores, "+
			"so beyond that many processes the workers share cores.",
			shmDir(), p.procsKeys, p.procsRun, runtimeCores())
	},
	run: runProcs,
}

// procsConfig configures a procs child.
type procsConfig struct {
	Segment   string        `json:"segment"`
	Keys      int           `json:"keys"`
	ValueSize int           `json:"value_size"`
	Run       time.Duration `json:"run"`
	Seed      uint64        `json:"seed"`
	SetPct    int           `json:"set_pct"`
}

// procsReport is what a procs child prints when done.
type procsReport struct {
	Gets    uint64        `json:"gets"`
	Sets    uint64        `json:"sets"`
	Misses  uint64        `json:"misses"`
	Errors  uint64        `json:"errors"`
	Elapsed time.Duration `json:"elapsed"`
}

func procsKey(i int) []byte { return fmt.Appendf(nil, "pr/%013d", i) }

func runProcs(ctx context.Context, e *env, r rec) error {
	const size = 1024
	path, remove := segmentPath("procs")
	defer remove()
	seg, err := shm.Open(path, segmentOptions(e.p.procsKeys, size))
	if err != nil {
		return err
	}
	defer seg.Close()
	e.prog.step("loading %d keys", e.p.procsKeys)
	value := make([]byte, size)
	for i := range e.p.procsKeys {
		if err := seg.Set(procsKey(i), value, 0); err != nil {
			return err
		}
	}
	var base float64
	for _, n := range e.p.procsCounts {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.prog.step("%d process(es)", n)
		rate, rep, err := procsRun(e, path, n)
		if err != nil {
			return fmt.Errorf("%d processes: %w", n, err)
		}
		cs := "90/10 get/set 1 KiB"
		subject := fmt.Sprintf("%d process", n)
		if n > 1 {
			subject += "es"
		}
		r.add(cs, subject, "ops/s", unitOps, rate)
		r.add(cs, subject, "ops/s per process", unitOps, rate/float64(n))
		if n == 1 {
			base = rate
		} else if base > 0 {
			r.ratio(cs, subject, "1 process", "ops/s", rate/base, subject+" ÷ 1 process")
		}
		if rep.Misses > 0 || rep.Errors > 0 {
			r.note("%s: %d Gets missed and %d calls failed.", subject, rep.Misses, rep.Errors)
		}
	}
	if st := seg.Stats(); st.ForcedEvictions > 0 {
		r.note("The segment evicted %d live entries: it was too small.", st.ForcedEvictions)
	}
	return nil
}

// procsRun runs n children at once and returns their combined rate.
func procsRun(e *env, path string, n int) (float64, procsReport, error) {
	var kids []*proc
	defer func() {
		for _, k := range kids {
			k.stop(time.Second)
		}
	}()
	for i := range n {
		k, err := startChild("procs", procsConfig{Segment: path, Keys: e.p.procsKeys, ValueSize: 1024, Run: e.p.procsRun, Seed: uint64(i + 1), SetPct: 10})
		if err != nil {
			return 0, procsReport{}, err
		}
		kids = append(kids, k)
	}
	for _, k := range kids {
		if _, err := k.expect("ready", 30*time.Second); err != nil {
			return 0, procsReport{}, err
		}
	}
	for _, k := range kids {
		fmt.Fprintln(k.stdin, "go")
	}
	var sum procsReport
	var rate float64
	for _, k := range kids {
		line, err := k.expect("result ", e.p.procsRun+30*time.Second)
		if err != nil {
			return 0, sum, err
		}
		var rep procsReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return 0, sum, fmt.Errorf("child result %q: %w", line, err)
		}
		rate += float64(rep.Gets+rep.Sets) / rep.Elapsed.Seconds()
		sum.Gets += rep.Gets
		sum.Sets += rep.Sets
		sum.Misses += rep.Misses
		sum.Errors += rep.Errors
	}
	return rate, sum, nil
}

// procsChild is a worker of the procs suite: it attaches, says "ready",
// waits for "go" on stdin, runs the mix and prints "result {json}".
func procsChild(config []byte) int {
	var c procsConfig
	if !readChildConfig(config, &c) {
		return 2
	}
	seg, err := shm.Attach(c.Segment, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "procs child:", err)
		return 1
	}
	defer seg.Close()
	keys := make([][]byte, c.Keys)
	for i := range keys {
		keys[i] = procsKey(i)
	}
	value := make([]byte, c.ValueSize)
	buf := make([]byte, 0, c.ValueSize)
	fmt.Println("ready")
	var line string
	if _, err := fmt.Scanln(&line); err != nil || strings.TrimSpace(line) != "go" {
		fmt.Fprintln(os.Stderr, "procs child: expected go, got", line, err)
		return 1
	}
	rng := rand.New(rand.NewPCG(c.Seed, 3))
	var rep procsReport
	start := time.Now()
	end := start.Add(c.Run)
	for {
		for range 256 {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(100) < c.SetPct {
				if seg.Set(k, value, 0) != nil {
					rep.Errors++
				}
				rep.Sets++
				continue
			}
			var ok bool
			if buf, ok = seg.Get(buf[:0], k); !ok {
				rep.Misses++
			}
			rep.Gets++
		}
		if now := time.Now(); now.After(end) {
			rep.Elapsed = now.Sub(start)
			break
		}
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("result %s\n", b)
	return 0
}
