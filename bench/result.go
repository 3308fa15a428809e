// result.go defines what a run produces: measurements, ratios between
// measurements of the same run, skipped parts, and the whole report that
// the table, the Markdown report, the plots and -json are made from.

package main

import (
	"fmt"
	"time"
)

// Units of a Measurement.
const (
	unitNs    = "ns"    // a duration in nanoseconds
	unitOps   = "ops/s" // a rate
	unitBytes = "B"     // a size
	unitCount = "count" // a plain number
)

// Measurement is one figure observed in this run.
type Measurement struct {
	Suite   string  `json:"suite"`
	Case    string  `json:"case"`    // what was done: "get 1 KiB", "keep-alive"
	Subject string  `json:"subject"` // who did it: "gardenstate", "redis"
	Metric  string  `json:"metric"`  // "p50", "p99", "ops/s"
	Unit    string  `json:"unit"`
	Value   float64 `json:"value"`
}

// Ratio compares two figures of this run (or a figure with a stated
// target). Every ratio is oriented so that a value above 1 favours the
// subject: a baseline's latency divided by the subject's, the subject's
// throughput divided by the baseline's.
type Ratio struct {
	Suite    string  `json:"suite"`
	Case     string  `json:"case"`
	Subject  string  `json:"subject"`
	Baseline string  `json:"baseline"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	// How says how the ratio was computed, for the reader.
	How string `json:"how"`
}

// Skip is a part of a suite that did not run, and why.
type Skip struct {
	Suite   string `json:"suite"`
	Case    string `json:"case,omitempty"`
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
}

// SuiteResult is everything one suite reported.
type SuiteResult struct {
	Name    string  `json:"name"`
	Title   string  `json:"title"`
	Method  string  `json:"method"` // how it measured, in a few sentences
	Seconds float64 `json:"seconds"`
	// OtherCores is the average number of cores other processes on the
	// machine kept busy while the suite ran; StealCores what the
	// hypervisor took.
	OtherCores   float64       `json:"other_cores"`
	StealCores   float64       `json:"steal_cores"`
	Error        string        `json:"error,omitempty"`
	Measurements []Measurement `json:"measurements"`
	Ratios       []Ratio       `json:"ratios"`
	Skipped      []Skip        `json:"skipped"`
	Notes        []string      `json:"notes"`
	// Plots are the SVG files written for this suite, relative to the
	// report directory.
	Plots []string `json:"plots,omitempty"`
}

// Report is a whole run.
type Report struct {
	Command  string        `json:"command"`
	Started  time.Time     `json:"started"`
	Seconds  float64       `json:"seconds"`
	Quick    bool          `json:"quick"`
	Scale    float64       `json:"scale"`
	Machine  Machine       `json:"machine"`
	Tools    []Tool        `json:"tools"`
	Suites   []SuiteResult `json:"suites"`
	OutDir   string        `json:"out_dir"`
	Warnings []string      `json:"warnings,omitempty"`
}

// rec collects a suite's results as it runs.
type rec struct {
	r *SuiteResult
}

func (c rec) add(cs, subject, metric, unit string, v float64) {
	c.r.Measurements = append(c.r.Measurements, Measurement{Suite: c.r.Name, Case: cs, Subject: subject, Metric: metric, Unit: unit, Value: v})
}

// latency adds the p50, p99 and max of h.
func (c rec) latency(cs, subject string, h *Hist) {
	c.add(cs, subject, "p50", unitNs, float64(h.Quantile(0.50)))
	c.add(cs, subject, "p99", unitNs, float64(h.Quantile(0.99)))
	c.add(cs, subject, "max", unitNs, float64(h.Max()))
}

func (c rec) skip(cs, subject, reason string) {
	c.r.Skipped = append(c.r.Skipped, Skip{Suite: c.r.Name, Case: cs, Subject: subject, Reason: reason})
}

func (c rec) note(format string, args ...any) {
	c.r.Notes = append(c.r.Notes, fmt.Sprintf(format, args...))
}

// get returns a measurement recorded earlier.
func (c rec) get(cs, subject, metric string) (float64, bool) {
	for _, m := range c.r.Measurements {
		if m.Case == cs && m.Subject == subject && m.Metric == metric {
			return m.Value, true
		}
	}
	return 0, false
}

// lowerBetter records baseline ÷ subject for a metric where lower is better
// (latency), if both were measured.
func (c rec) lowerBetter(cs, subject, baseline, metric string) {
	s, ok1 := c.get(cs, subject, metric)
	b, ok2 := c.get(cs, baseline, metric)
	if ok1 && ok2 && s > 0 {
		c.ratio(cs, subject, baseline, metric, b/s, baseline+" ÷ "+subject)
	}
}

// higherBetter records subject ÷ baseline for a metric where higher is
// better (throughput), if both were measured.
func (c rec) higherBetter(cs, subject, baseline, metric string) {
	s, ok1 := c.get(cs, subject, metric)
	b, ok2 := c.get(cs, baseline, metric)
	if ok1 && ok2 && b > 0 {
		c.ratio(cs, subject, baseline, metric, s/b, subject+" ÷ "+baseline)
	}
}

func (c rec) ratio(cs, subject, baseline, metric string, v float64, how string) {
	c.r.Ratios = append(c.r.Ratios, Ratio{Suite: c.r.Name, Case: cs, Subject: subject, Baseline: baseline, Metric: metric, Value: v, How: how})
}
