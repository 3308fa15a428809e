// flags.go reads the command line: which suites, how long, where the
// report goes.

package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// options are the parsed flags.
type options struct {
	suites  []string
	quick   bool
	jsonOut string
	outDir  string
	scale   float64
	without []string
}

// listFlag is a flag that may be repeated and holds comma-separated items.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var suites, without listFlag
	fs.Var(&suites, "suite", "suite to run: "+strings.Join(suiteNames(), ", ")+" (repeatable or comma-separated; default all)")
	fs.BoolVar(&o.quick, "quick", false, "shorter runs and fewer keys: the whole run in under a minute")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.outDir, "out", "", "directory for report.md and the plots (default bench/results/<timestamp>)")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every count and duration by this (the smoke test uses a small one)")
	fs.Var(&without, "without", "treat these tools as not installed: "+strings.Join(toolNames, ", ")+" (comma-separated)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench [flags]\n\nMeasures gardenstate against the alternatives in one run; see the package documentation.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, s := range suites {
		if !slices.Contains(suiteNames(), s) {
			return o, fmt.Errorf("unknown suite %q (have %s)", s, strings.Join(suiteNames(), ", "))
		}
		if !slices.Contains(o.suites, s) {
			o.suites = append(o.suites, s)
		}
	}
	for _, t := range without {
		if !slices.Contains(toolNames, t) {
			return o, fmt.Errorf("-without: unknown tool %q (have %s)", t, strings.Join(toolNames, ", "))
		}
	}
	o.without = without
	if o.scale <= 0 || o.scale > 100 {
		return o, fmt.Errorf("-scale %v: must be in (0, 100]", o.scale)
	}
	return o, nil
}
