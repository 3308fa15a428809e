// cpuload.go measures how much CPU other processes used while a suite ran:
// the machine's busy time from /proc/stat minus this process's own and its
// reaped children's (which include every server and worker the suite
// started and stopped), and the time the hypervisor stole. On a shared
// machine this says how far the figures were disturbed.

package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuSnap is a reading of the CPU counters, in seconds.
type cpuSnap struct {
	at    time.Time
	busy  float64 // all CPUs, user + nice + system + irq + softirq
	steal float64
	own   float64 // this process and its reaped children
	ok    bool
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100.0

func readCPU() cpuSnap {
	s := cpuSnap{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	v := func(i int) float64 { x, _ := strconv.ParseFloat(f[i], 64); return x / clockTicks }
	s.busy = v(1) + v(2) + v(3) + v(6) + v(7)
	s.steal = v(8)
	b, err = os.ReadFile("/proc/self/stat")
	if err != nil {
		return s
	}
	st := string(b)
	g := strings.Fields(st[strings.LastIndexByte(st, ')')+2:]) // fields from 3 (state) on
	if len(g) < 15 {
		return s
	}
	w := func(field int) float64 { x, _ := strconv.ParseFloat(g[field-3], 64); return x / clockTicks }
	s.own = w(14) + w(15) + w(16) + w(17) // utime stime cutime cstime
	s.ok = true
	return s
}

// otherCores returns the average number of cores other processes kept
// busy between a and b, and the cores stolen by the hypervisor.
func otherCores(a, b cpuSnap) (other, steal float64) {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return 0, 0
	}
	other = ((b.busy - a.busy) - (b.own - a.own)) / wall
	return max(other, 0), (b.steal - a.steal) / wall
}
