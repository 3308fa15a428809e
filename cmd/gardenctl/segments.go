// segments.go implements "gardenctl segments": every segment file in a
// directory with its application, size, fill, format and processes.

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// segmentRow is one file of the listing. A file that is not a usable
// segment has Error set and no summary.
type segmentRow struct {
	Path     string `json:"path"`
	FileSize int64  `json:"file_size"`
	*SegmentSummary
	Error string `json:"error,omitempty"`
}

type SegmentSummary struct {
	App           string `json:"app"`
	FormatVersion int    `json:"format_version"`
	// Entries counts tombstones too, as the segment does; the table shows
	// live entries and tombstones apart.
	Entries    uint64     `json:"entries"`
	Tombstones uint64     `json:"tombstones"`
	BytesLive  uint64     `json:"bytes_live"`
	BytesTotal uint64     `json:"bytes_total"`
	Fill       float64    `json:"fill"`
	Procs      []procInfo `json:"procs"`
}

func (a *app) segmentsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "segments",
		Short: "List the segments in /dev/shm (or --dir)",
		Long: `List the files named gardenstate-* in /dev/shm (or --dir): for each, its
application, file size, entries and tombstones (deleted keys remembered
for replication), fill (arena bytes held by them), format version and how
many processes are attached (gardenctl itself not counted). A file that is
not a usable segment is listed with the reason.

In --json, entries counts tombstones too, as the segment does.`,
		Example: `  gardenctl segments
  gardenctl segments --dir /run/gardenstate --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := listSegments(cmd.Context(), a.dir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(a.stdout, "no segments in %s\n", a.dir)
				return nil
			}
			return printSegments(a, rows)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// listSegments attaches to every segment file in dir in turn.
func listSegments(ctx context.Context, dir string) ([]segmentRow, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cannot list segments: %w", err)
	}
	names, err := segmentFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list segments in %s: %w", dir, err)
	}
	rows := []segmentRow{}
	for _, path := range names {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		rows = append(rows, describeSegment(path))
	}
	return rows, nil
}

func describeSegment(path string) segmentRow {
	row := segmentRow{Path: path}
	if fi, err := os.Stat(path); err == nil {
		row.FileSize = fi.Size()
	}
	seg, err := attachExisting(path)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	defer seg.Close()
	info, st := seg.Info(), seg.Stats()
	procs, err := attachedProcs(seg)
	if err != nil {
		row.Error = fmt.Sprintf("cannot list processes: %v", err)
		return row
	}
	row.SegmentSummary = &SegmentSummary{
		App: info.App, FormatVersion: info.FormatVersion,
		Entries: st.Entries, Tombstones: st.Tombstones,
		BytesLive: st.BytesLive, BytesTotal: st.BytesTotal, Fill: ratio(st.BytesLive, st.BytesTotal),
		Procs: procs,
	}
	return row
}

func printSegments(a *app, rows []segmentRow) error {
	problems := false
	for _, r := range rows {
		problems = problems || r.Error != ""
	}
	tw := newTable(a.stdout)
	head := "SEGMENT\tAPP\tSIZE\tENTRIES\tTOMBSTONES\tFILL\tFORMAT\tPROCS"
	if problems {
		head += "\tPROBLEM"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		name := filepath.Base(r.Path)
		if r.SegmentSummary == nil {
			// The path is in the first column already.
			problem := strings.ReplaceAll(r.Error, r.Path+": ", "")
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\t-\t-\t-\t%s\n", name, sizeIEC(r.FileSize), problem)
			continue
		}
		s := r.SegmentSummary
		app := s.App
		if app == "" {
			app = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s", name, app, sizeIEC(r.FileSize), s.Entries-s.Tombstones,
			s.Tombstones, percent(s.BytesLive, s.BytesTotal), s.FormatVersion, strconv.Itoa(len(s.Procs)))
		if problems {
			line += "\t"
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
