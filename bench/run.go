// run.go is the harness: it reads the flags, describes the machine, runs
// the chosen suites one after the other, prints their tables, and writes
// the report, the plots and the JSON.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// run is the whole harness; it returns the exit status: 0 when every suite
// ran (parts whose tools are not installed are not failures), 1 when one
// failed, 2 for bad flags, 130 when interrupted.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	defer cleanups.runAll()

	started := time.Now()
	rep := &Report{
		Command: strings.TrimSpace("go run ./bench " + strings.Join(args, " ")),
		Started: started, Quick: o.quick, Scale: o.scale, Machine: describeMachine(),
	}
	rep.OutDir = o.outDir
	if rep.OutDir == "" {
		rep.OutDir = filepath.Join(resultsRoot(), started.Format("20060102-150405"))
	}
	tools := findTools(o.without)
	for _, n := range toolNames {
		rep.Tools = append(rep.Tools, tools[n])
	}
	p := newParams(o.quick, o.scale)
	prog := newProgress(stderr)
	e := &env{p: p, tools: tools, prog: prog}

	fmt.Fprint(stdout, machineText(rep))
	var chosen []suite
	for _, s := range allSuites() {
		if len(o.suites) == 0 || slices.Contains(o.suites, s.name) {
			chosen = append(chosen, s)
		}
	}
	failed := false
	for i, s := range chosen {
		if ctx.Err() != nil {
			break
		}
		prog.suite(i+1, len(chosen), s.name)
		res := SuiteResult{Name: s.name, Title: s.title, Method: s.method(p)}
		t0, cpu0 := time.Now(), readCPU()
		err := s.run(ctx, e, rec{&res})
		res.Seconds = time.Since(t0).Seconds()
		res.OtherCores, res.StealCores = otherCores(cpu0, readCPU())
		if res.OtherCores+res.StealCores > 0.25 {
			rec{&res}.note("Other processes kept %.2f of this machine's %d cores busy on average while this suite ran (and the hypervisor stole %.2f): "+
				"the figures are lower and noisier than on an idle machine.", res.OtherCores, rep.Machine.Cores, res.StealCores)
		}
		prog.done()
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted: %w", err)
			}
			res.Error = err.Error()
			failed = true
			prog.warn("suite %s failed: %v", s.name, err)
		}
		rep.Suites = append(rep.Suites, res)
		fmt.Fprint(stdout, suiteText(&res))
	}
	cleanups.runAll()
	if left := sweepSegments(); len(left) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("removed segment files left behind: %s", strings.Join(left, ", ")))
	}
	rep.Seconds = time.Since(started).Seconds()

	if err := writeReport(rep); err != nil {
		fmt.Fprintf(stderr, "bench: report: %v\n", err)
		failed = true
	} else {
		fmt.Fprintf(stdout, "\nReport: %s\n", filepath.Join(rep.OutDir, "report.md"))
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "bench: -json: %v\n", err)
			failed = true
		}
	}
	switch {
	case ctx.Err() != nil:
		return 130
	case failed:
		return 1
	}
	return 0
}

// resultsRoot is bench/results of the module the harness runs in, or
// ./results outside it.
func resultsRoot() string {
	if root := moduleRoot(); root != "" {
		return filepath.Join(root, "bench", "results")
	}
	return "results"
}

// moduleRoot is the gardenstate module's directory, found by walking up
// from the working directory to its go.mod; empty outside it.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if strings.HasPrefix(strings.TrimSpace(string(b)), "module github.com/gardenstate/gardenstate\n") {
				return d
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// machineText is the header of the terminal output.
func machineText(rep *Report) string {
	var b strings.Builder
	b.WriteString("gardenstate benchmarks\n\n")
	b.WriteString(machineTable(rep).Text("  "))
	b.WriteString("\n")
	return b.String()
}

func machineTable(rep *Report) Table {
	m := rep.Machine
	t := Table{Header: []string{"", ""}} // no header in the terminal; see Markdown
	add := func(k, v string) { t.Rows = append(t.Rows, []string{k, v}) }
	add("CPU", m.CPU)
	add("cores", fmt.Sprint(m.Cores))
	add("GOMAXPROCS", fmt.Sprint(m.GOMAXPROCS))
	add("kernel", m.Kernel)
	add("Go", m.GoVersion+" "+m.GOOS+"/"+m.GOARCH)
	add("THP enabled", m.THP)
	add("THP shmem_enabled", m.THPShmem)
	add("memory", formatBytes(float64(m.MemTotal)))
	add(m.ShmDir+" free", formatBytes(float64(m.ShmFree)))
	add("one clock reading", formatDuration(time.Duration(m.ClockReadNs))+" (inside every latency sample)")
	for _, tl := range rep.Tools {
		v := tl.Status
		if tl.Path != "" {
			v = tl.Version + " (" + tl.Path + ")"
		}
		add(tl.Name, v)
	}
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	if rep.Scale != 1 {
		mode += fmt.Sprintf(", scale %g", rep.Scale)
	}
	add("run", mode)
	return t
}

// suiteText is one suite's part of the terminal output.
func suiteText(r *SuiteResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== %s: %s (%.1fs; other processes used %.2f cores)\n\n", r.Name, r.Title, r.Seconds, r.OtherCores)
	if r.Error != "" {
		fmt.Fprintf(&b, "  FAILED: %s\n\n", r.Error)
	}
	for _, t := range measurementTables(r) {
		b.WriteString(t.Text("  "))
		b.WriteString("\n")
	}
	if len(r.Ratios) > 0 {
		b.WriteString("  " + ratioLegend(r) + "\n\n")
		b.WriteString(ratioTable(r).Text("  "))
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  * %s\n", n)
	}
	return b.String()
}
