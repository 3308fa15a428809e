// wrk.go runs wrk against the http suite's servers as a second opinion on
// the net/http load generator: keep-alive connections cycling through
// sessions made beforehand, and a parser for wrk's report.

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what wrk reported.
type wrkResult struct {
	requests  float64 // total requests
	rate      float64 // Requests/sec
	p50, p99  time.Duration
	max       time.Duration
	non2xx    float64
	sockErrs  float64
	hasLatDis bool
}

// wrkScript is a Lua script that sends method path with body and cycles
// each thread through the cookies, starting at a different place.
func wrkScript(method, path, body string, cookies []string) string {
	var b strings.Builder
	b.WriteString("local cookies = {\n")
	for _, c := range cookies {
		fmt.Fprintf(&b, "  %q,\n", c)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "local method, path, body = %q, %q, %q\n", method, path, body)
	b.WriteString(`local n = 0
function setup(thread)
  thread:set("offset", n * 7919)
  n = n + 1
end
local i = 0
function init(args)
  i = offset or 0
end
function request()
  i = i + 1
  local headers = { ["Cookie"] = cookies[(i % #cookies) + 1] }
  if body ~= "" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format(method, path, headers, body)
  end
  return wrk.format(method, path, headers)
end
`)
	return b.String()
}

// runWrk runs wrk for dur with conc connections over threads threads.
func runWrk(ctx context.Context, bin, url, script string, threads, conc int, dur time.Duration) (wrkResult, string, error) {
	dir, err := os.MkdirTemp("", "gardenstate-bench-wrk-")
	if err != nil {
		return wrkResult{}, "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bench.lua")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return wrkResult{}, "", err
	}
	secs := max(1, int(math.Round(dur.Seconds())))
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conc),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "--latency", "-s", path, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, string(out), fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	res, err := parseWrk(string(out))
	return res, string(out), err
}

var (
	wrkReqSec   = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkTotal    = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkLatency  = regexp.MustCompile(`(?m)^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s*(50|99)(?:\.0+)?%\s+(\S+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErrs = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's report (run with --latency).
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkReqSec.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output has no Requests/sec line: %q", out)
	}
	r.rate, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkLatency.FindStringSubmatch(out); m != nil {
		r.max, _ = parseWrkDuration(m[3])
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := parseWrkDuration(m[2])
		if err != nil {
			return r, err
		}
		r.hasLatDis = true
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkSockErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseFloat(s, 64)
			r.sockErrs += n
		}
	}
	return r, nil
}

// parseWrkDuration reads wrk's "812.00us", "1.23ms", "2.00s", "1.50m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk duration %q: %w", s, err)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk duration %q: unknown unit", s)
}
