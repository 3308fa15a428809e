// report.go writes a run's Markdown report, report.md, with the machine,
// every suite's method, tables, ratios and notes, and its plots beside it.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func writeReport(rep *Report) error {
	if err := os.MkdirAll(rep.OutDir, 0o755); err != nil {
		return err
	}
	for i := range rep.Suites {
		if err := writePlots(&rep.Suites[i], rep.OutDir); err != nil {
			rep.Warnings = append(rep.Warnings, err.Error())
		}
	}
	return os.WriteFile(filepath.Join(rep.OutDir, "report.md"), []byte(reportMarkdown(rep)), 0o644)
}

func reportMarkdown(rep *Report) string {
	var b strings.Builder
	b.WriteString("# gardenstate benchmarks\n\n")
	fmt.Fprintf(&b, "Made by `%s` on %s in %s.\n\n", rep.Command, rep.Started.Format("2006-01-02 15:04 MST"), time.Duration(rep.Seconds*float64(time.Second)).Round(time.Second))
	b.WriteString("Every figure below was measured in this run on this machine; every ratio compares two figures of this run ")
	b.WriteString("(or one figure with a stated target) and is oriented so that a value above 1 favours the first one named.\n\n")
	b.WriteString("## Machine\n\n")
	b.WriteString(machineTable(rep).Markdown())
	b.WriteString("\n")
	for _, w := range rep.Warnings {
		fmt.Fprintf(&b, "> Warning: %s\n\n", w)
	}
	for i := range rep.Suites {
		r := &rep.Suites[i]
		fmt.Fprintf(&b, "## %s — %s\n\n", r.Name, r.Title)
		fmt.Fprintf(&b, "%s\n\nIt took %.1f s, while other processes kept %.2f cores busy on average.\n\n", r.Method, r.Seconds, r.OtherCores)
		if r.Error != "" {
			fmt.Fprintf(&b, "**Failed:** %s\n\n", r.Error)
		}
		for _, t := range measurementTables(r) {
			b.WriteString(t.Markdown())
			b.WriteString("\n")
		}
		if len(r.Ratios) > 0 {
			b.WriteString(ratioLegend(r) + "\n\n")
			b.WriteString(ratioTable(r).Markdown())
			b.WriteString("\n")
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if len(r.Notes) > 0 {
			b.WriteString("\n")
		}
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, ".svg"), p)
		}
	}
	return b.String()
}
