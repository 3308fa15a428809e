// verify.go implements "gardenctl verify": a read-only consistency check of
// every stripe, with an exit status scripts can act on.

package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/shm"
)

// verifyReport is what verify --json prints.
type verifyReport struct {
	Path     string   `json:"path"`
	Stripes  int      `json:"stripes"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
	// ProblemCount is how many problems were found: more than listed when
	// shm cut a stripe's list short (its last line then says how many
	// more there are).
	ProblemCount int `json:"problem_count"`
	// Unchecked are stripes that could not be checked (a lock held too
	// long by a live process).
	Unchecked []string `json:"unchecked"`
	// Error says why nothing could be checked.
	Error string `json:"error,omitempty"`
}

func (a *app) verifyCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a segment's consistency without stopping its workers",
		Long: `Check every stripe of a segment: its log of records, their checksums, the
hash index against the log, and the entry, tombstone and byte counts.
Each stripe is checked on a private copy taken between two writes, so
workers keep running; nothing is changed, except that a stripe whose lock
holder died is taken over and repaired first, as any worker would.

Exit status: 0 clean; 1 problems found (listed, up to 20 per stripe and
then how many more; a header that fails validation is one); 2 the
segment could not be checked (no file, no permission, a format version
this gardenctl does not read, stripes whose lock a live process held too
long).`,
		Example: `  gardenctl verify --app shop
  gardenctl verify --app shop --json || page-the-operator`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := a.segmentPath()
			if err != nil {
				return err
			}
			r := verifyReport{Path: path, Problems: []string{}, Unchecked: []string{}}
			seg, err := attachExisting(path)
			if err != nil {
				err = explainOpenError(path, err)
				if errors.Is(err, shm.ErrCorrupt) {
					r.Problems = append(r.Problems, err.Error())
					return a.finishVerify(r, asJSON)
				}
				r.Error = err.Error()
				if asJSON {
					writeJSON(a.stdout, r)
				}
				return &exitError{code: exitUsage, err: fmt.Errorf("could not check: %w", err)}
			}
			defer seg.Close()
			r.Stripes = seg.Stripes()
			for _, e := range flatten(seg.Verify()) {
				if errors.Is(e, shm.ErrCorrupt) {
					r.Problems = append(r.Problems, e.Error())
				} else {
					r.Unchecked = append(r.Unchecked, e.Error())
				}
			}
			return a.finishVerify(r, asJSON)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// finishVerify prints the report and picks the exit status.
func (a *app) finishVerify(r verifyReport, asJSON bool) error {
	r.OK = len(r.Problems) == 0 && len(r.Unchecked) == 0
	r.ProblemCount = countProblems(r.Problems)
	if asJSON {
		if err := writeJSON(a.stdout, r); err != nil {
			return err
		}
	} else {
		switch {
		case r.OK:
			fmt.Fprintf(a.stdout, "%s: %s checked, no problems\n", r.Path, plural(uint64(r.Stripes), "stripe", "stripes"))
		default:
			if len(r.Problems) > 0 {
				fmt.Fprintf(a.stdout, "%s: %s\n", r.Path, plural(uint64(r.ProblemCount), "problem", "problems"))
				for _, p := range r.Problems {
					fmt.Fprintf(a.stdout, "  %s\n", p)
				}
			}
			if len(r.Unchecked) > 0 {
				fmt.Fprintf(a.stdout, "%s: %s could not be checked\n", r.Path, plural(uint64(len(r.Unchecked)), "stripe", "stripes"))
				for _, p := range r.Unchecked {
					fmt.Fprintf(a.stdout, "  %s\n", p)
				}
			}
		}
	}
	switch {
	case len(r.Problems) > 0:
		return silentExit(exitFail)
	case len(r.Unchecked) > 0:
		return silentExit(exitUsage)
	}
	return nil
}

// flatten lists the errors inside an errors.Join, or err alone.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// notListedRE matches the line with which shm ends a stripe's list of
// problems when it has cut it short.
var notListedRE = regexp.MustCompile(`: (\d+) more problems not listed$`)

// countProblems is how many problems the list stands for: one per line,
// and for a line saying how many more were not listed, that many.
func countProblems(problems []string) int {
	n := 0
	for _, p := range problems {
		if m := notListedRE.FindStringSubmatch(p); m != nil {
			if more, err := strconv.Atoi(m[1]); err == nil {
				n += more
				continue
			}
		}
		n++
	}
	return n
}
