// procs.go describes the processes attached to a segment, gardenctl itself
// left out.

package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// procInfo is one attached process.
type procInfo struct {
	Slot     int     `json:"slot"`
	PID      int     `json:"pid"`
	Command  string  `json:"command,omitempty"`
	Attached *string `json:"attached"`

	attached time.Time
}

// attachedProcs lists the processes attached to seg other than this one.
func attachedProcs(seg *shm.Segment) ([]procInfo, error) {
	ps, err := seg.Procs()
	if err != nil {
		return nil, err
	}
	out := []procInfo{}
	for _, p := range ps {
		if p.Self {
			continue
		}
		out = append(out, procInfo{
			Slot: p.Slot, PID: p.PID, Command: procCommand(p.PID),
			Attached: timeJSON(p.Attached), attached: p.Attached,
		})
	}
	return out, nil
}

// procCommand returns the process's command name, "" if unknown.
func procCommand(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
