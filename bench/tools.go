// tools.go finds the external programs the baselines need (redis-server,
// memcached, wrk) and their versions; a program that is missing, or that
// -without names, is reported as not installed.

package main

import (
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Tool is an external program and whether this run could use it.
type Tool struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	// Status is "installed" or "not installed" (with "(-without)" when
	// the flag hid an installed tool).
	Status string `json:"status"`
}

const notInstalled = "not installed"

var toolNames = []string{"redis-server", "memcached", "wrk"}

// findTools looks every tool up on PATH.
func findTools(without []string) map[string]Tool {
	out := map[string]Tool{}
	for _, name := range toolNames {
		t := Tool{Name: name, Status: notInstalled}
		if slices.Contains(without, name) {
			t.Status = notInstalled + " (-without)"
			out[name] = t
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			t.Path, t.Status = p, "installed"
			t.Version = toolVersion(name, p)
		}
		out[name] = t
	}
	return out
}

// usable reports whether tool can be run, and otherwise why not.
func usable(tools map[string]Tool, name string) (string, bool) {
	t := tools[name]
	if t.Path == "" {
		return name + " " + t.Status, false
	}
	return t.Path, true
}

var versionRE = regexp.MustCompile(`\d+\.\d+(\.\d+)?`)

func toolVersion(name, path string) string {
	arg := map[string]string{"redis-server": "--version", "memcached": "-V", "wrk": "-v"}[name]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, arg).CombinedOutput() // wrk -v exits 1
	first, _, _ := strings.Cut(string(out), "\n")
	if v := versionRE.FindString(first); v != "" {
		return v
	}
	return "unknown"
}
