// machine.go describes the machine a run happened on: CPU, cores, kernel,
// Go, GOMAXPROCS, transparent huge pages, memory, /dev/shm, and what a
// clock reading costs (every latency sample includes one).

package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Machine is what the report says about the machine.
type Machine struct {
	CPU         string  `json:"cpu"`
	Cores       int     `json:"cores"`
	Kernel      string  `json:"kernel"`
	GoVersion   string  `json:"go_version"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	GOOS        string  `json:"goos"`
	GOARCH      string  `json:"goarch"`
	THP         string  `json:"thp_enabled"`
	THPShmem    string  `json:"thp_shmem_enabled"`
	MemTotal    uint64  `json:"mem_total_bytes"`
	ShmDir      string  `json:"shm_dir"`
	ShmFree     uint64  `json:"shm_free_bytes"`
	ClockReadNs float64 `json:"clock_read_ns"`
}

func describeMachine() Machine {
	m := Machine{
		CPU: cpuModel(), Cores: runtime.NumCPU(), Kernel: kernel(), GoVersion: runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		THP:      readSys("/sys/kernel/mm/transparent_hugepage/enabled"),
		THPShmem: readSys("/sys/kernel/mm/transparent_hugepage/shmem_enabled"),
		ShmDir:   shmDir(), ClockReadNs: clockCost(),
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemTotal = uint64(si.Totalram) * uint64(si.Unit)
	}
	m.ShmFree = freeBytes(m.ShmDir)
	return m
}

func freeBytes(dir string) uint64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return st.Bavail * uint64(st.Bsize)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (strings.TrimSpace(k) == "model name" || strings.TrimSpace(k) == "Model") {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernel() string {
	typ := readSys("/proc/sys/kernel/ostype")
	rel := readSys("/proc/sys/kernel/osrelease")
	return typ + " " + rel
}

// readSys returns a sysfs file's text; for the THP files that is a list
// with the active choice in brackets.
func readSys(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unavailable"
	}
	return strings.TrimSpace(string(b))
}

// clockCost is the median cost of one time.Now/time.Since pair, the
// overhead inside every latency sample.
func clockCost() float64 {
	var h Hist
	for range 20000 {
		t := time.Now()
		h.Record(time.Since(t))
	}
	return float64(h.Quantile(0.5))
}

func runtimeCores() int { return runtime.NumCPU() }
