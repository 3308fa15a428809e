// dump.go implements "gardenctl dump" and "gardenctl load": export a
// segment's entries to a dump file (see internal/dumpfile for the format)
// and import one, keeping whatever is newer.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gardenstate/gardenstate/internal/dumpfile"
	"github.com/gardenstate/gardenstate/shm"
)

// maxLoadErrors is how many failed entries load names.
const maxLoadErrors = 5

// dumpReport is what dump --json prints.
type dumpReport struct {
	Segment    string `json:"segment"`
	File       string `json:"file"`
	Entries    uint64 `json:"entries"`
	Tombstones uint64 `json:"tombstones"`
	Bytes      int64  `json:"bytes"`
}

// loadReport is what load --json prints.
type loadReport struct {
	Segment string   `json:"segment"`
	File    string   `json:"file"`
	App     string   `json:"dump_app"`
	Source  string   `json:"dump_source"`
	Entries uint64   `json:"entries"`
	Applied uint64   `json:"applied"`
	Skipped uint64   `json:"skipped"`
	Expired uint64   `json:"expired"`
	Failed  uint64   `json:"failed"`
	Errors  []string `json:"errors"`
}

const dumpFormatHelp = `The dump file is "GRDNDUMP" followed by checksummed frames: a header
(format version, application, source segment, node id, time of the dump),
one frame per entry (key, value, version, deadline, tombstone flag, all
msgpack), and an end frame with the entry count, so a file cut short or
damaged is detected before anything is loaded.`

func (a *app) dumpCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dump FILE",
		Short: "Export a segment's entries to a file, for backup or migration",
		Long: `Write every entry of a segment, tombstones included, to FILE ("-" for
stdout), with their versions and deadlines, so that gardenctl load can put
them into this or another segment later. Stripes are copied one at a time
while workers keep serving: the dump is not one instant's snapshot, and
loading it converges by version whatever changed meanwhile.

FILE is created with mode 0600 (it holds sessions) under a temporary name,
and renamed into place only when complete. A progress bar is drawn on
stderr when it is a terminal.

` + dumpFormatHelp,
		Example: `  gardenctl dump --app shop shop.gsdump
  gardenctl dump --app shop - | ssh web2 gardenctl load --app shop -`,
		Args: exactArgs(1, "the file to write (- for stdout)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if file == "-" && a.terminal(a.stdout) {
				return usageErrorf("refusing to write a binary dump to a terminal: give a file name or redirect stdout")
			}
			return a.withSegment(func(seg *shm.Segment) error {
				r, err := a.dump(cmd.Context(), seg, file)
				if err != nil {
					return err
				}
				out := a.stdout
				if file == "-" {
					out = a.stderr
				}
				if asJSON {
					return writeJSON(out, r)
				}
				fmt.Fprintf(out, "dumped %d entries (%d tombstones, %s) from %s to %s\n",
					r.Entries, r.Tombstones, sizeIEC(r.Bytes), r.Segment, r.File)
				return nil
			})
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) dump(ctx context.Context, seg *shm.Segment, file string) (dumpReport, error) {
	r := dumpReport{Segment: seg.Path(), File: file}
	var out io.Writer = a.stdout
	var tmp *os.File
	if file != "-" {
		var err error
		tmp, err = os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.tmp")
		if err != nil {
			return r, fmt.Errorf("cannot create the dump file: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	info := seg.Info()
	w, err := dumpfile.NewWriter(bw, dumpfile.Header{App: info.App, Source: seg.Path(), Node: info.NodeID, Dumped: a.now()})
	if err != nil {
		return r, err
	}
	prog := a.newProgress("dump", int64(seg.Stripes()))
	for i := range seg.Stripes() {
		if ctx.Err() != nil {
			prog.finish()
			return r, fmt.Errorf("%w: no dump written", errInterrupted)
		}
		var werr error
		err := seg.Range(i, func(e shm.Entry) bool {
			if werr = w.Write(e); werr != nil {
				return false
			}
			if e.Deleted {
				r.Tombstones++
			}
			return true
		})
		if err != nil {
			return r, fmt.Errorf("reading stripe %d of %s: %w", i, seg.Path(), err)
		}
		if werr != nil {
			return r, werr
		}
		prog.set(int64(i+1), fmt.Sprintf("%d entries", w.Count()))
	}
	prog.finish()
	if err := w.Close(); err != nil {
		return r, err
	}
	if err := bw.Flush(); err != nil {
		return r, fmt.Errorf("writing %s: %w", file, err)
	}
	r.Entries, r.Bytes = w.Count(), w.Bytes()
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return r, fmt.Errorf("writing %s: %w", file, err)
		}
		if err := tmp.Close(); err != nil {
			return r, fmt.Errorf("writing %s: %w", file, err)
		}
		if err := os.Rename(tmp.Name(), file); err != nil {
			return r, fmt.Errorf("cannot put the dump in place: %w", err)
		}
		tmp = nil
	}
	return r, nil
}

func (a *app) loadCommand() *cobra.Command {
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "load FILE",
		Short: "Import a dump into a segment, keeping newer data already there",
		Long: `Read a dump written by gardenctl dump from FILE ("-" for stdin) and store
its entries in the segment the way replication does (last writer wins by
version): an entry already present with the same or a newer version is
skipped, so loading never overwrites newer data and loading twice changes
nothing. Entries past their deadline are skipped as expired; tombstones
are loaded too, so deleted sessions stay deleted.

The whole file is checked before anything is stored: a file cut short or
damaged is refused with the reason. A dump of another application is
refused unless --force is given. Loaded entries appear in the change ring
as changes applied from elsewhere, like replicated ones. A progress bar is
drawn on stderr when it is a terminal.

Exit status 1 if any entry could not be stored (each is named, up to 5).

` + dumpFormatHelp,
		Example: `  gardenctl load --app shop shop.gsdump
  gardenctl load --app shop-staging --force shop.gsdump`,
		Args: exactArgs(1, "the dump file to read (- for stdin)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			return a.withSegment(func(seg *shm.Segment) error {
				r, err := a.load(cmd.Context(), seg, file, force)
				if err != nil {
					return err
				}
				if asJSON {
					if err := writeJSON(a.stdout, r); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "loaded %s into %s: %d entries, %d applied, %d skipped (same or newer version present), %d expired, %d failed\n",
						r.File, r.Segment, r.Entries, r.Applied, r.Skipped, r.Expired, r.Failed)
				}
				if r.Failed > 0 {
					for _, e := range r.Errors {
						fmt.Fprintf(a.stderr, "gardenctl: %s\n", e)
					}
					return fmt.Errorf("%d entries could not be stored", r.Failed)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "load a dump made from another application's segment")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func (a *app) load(ctx context.Context, seg *shm.Segment, file string, force bool) (loadReport, error) {
	r := loadReport{Segment: seg.Path(), File: file, Errors: []string{}}
	var src io.ReadSeeker
	var size int64
	if file == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return r, fmt.Errorf("reading the dump from stdin: %w", err)
		}
		src, size = bytes.NewReader(data), int64(len(data))
	} else {
		f, err := os.Open(file)
		if err != nil {
			return r, fmt.Errorf("cannot read the dump: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return r, fmt.Errorf("cannot read the dump: %w", err)
		}
		src, size = f, fi.Size()
	}

	// First pass: check the whole file before storing anything.
	h, n, err := a.scanDump(ctx, src, size)
	if errors.Is(err, errInterrupted) {
		return r, fmt.Errorf("%w: nothing was loaded", err)
	}
	if err != nil {
		return r, fmt.Errorf("%s is not a valid dump, nothing was loaded: %w", file, err)
	}
	r.App, r.Source, r.Entries = h.App, h.Source, n
	if app := seg.Info().App; !force && h.App != "" && app != "" && h.App != app {
		return r, usageErrorf("%s is a dump of application %q (from %s), %s holds application %q: give --force to load it anyway",
			file, h.App, h.Source, seg.Path(), app)
	}

	// Second pass: store.
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return r, fmt.Errorf("rereading %s: %w", file, err)
	}
	rd, err := dumpfile.NewReader(bufio.NewReaderSize(src, 1<<20))
	if err != nil {
		return r, fmt.Errorf("rereading %s: %w", file, err)
	}
	now := a.now()
	prog := a.newProgress("load", int64(n))
	for {
		if ctx.Err() != nil {
			prog.finish()
			return r, fmt.Errorf("%w after %d of %d entries (%d applied); loading the file again completes it",
				errInterrupted, rd.Count(), n, r.Applied)
		}
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, fmt.Errorf("%s changed while loading, %d entries were applied: %w", file, r.Applied, err)
		}
		if !e.Expires.IsZero() && !e.Expires.After(now) {
			r.Expired++
			prog.set(int64(rd.Count()), fmt.Sprintf("%d applied", r.Applied))
			continue
		}
		switch changed, err := seg.Apply(e); {
		case err != nil:
			r.Failed++
			if len(r.Errors) < maxLoadErrors {
				r.Errors = append(r.Errors, fmt.Sprintf("entry %s: %v", displayKey(e.Key), err))
			}
		case changed:
			r.Applied++
		default:
			r.Skipped++
		}
		prog.set(int64(rd.Count()), fmt.Sprintf("%d applied", r.Applied))
	}
	prog.finish()
	return r, nil
}

// scanDump reads a whole dump, checking every frame, and returns its header
// and entry count.
func (a *app) scanDump(ctx context.Context, src io.Reader, size int64) (dumpfile.Header, uint64, error) {
	rd, err := dumpfile.NewReader(bufio.NewReaderSize(src, 1<<20))
	if err != nil {
		return dumpfile.Header{}, 0, err
	}
	prog := a.newProgress("check", size)
	defer prog.finish()
	for {
		if ctx.Err() != nil {
			return rd.Header(), 0, errInterrupted
		}
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.Header(), rd.Count(), nil
		}
		if err != nil {
			return rd.Header(), 0, err
		}
		prog.set(rd.Offset(), fmt.Sprintf("%d entries", rd.Count()))
	}
}
