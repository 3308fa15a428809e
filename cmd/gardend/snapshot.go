// snapshot.go writes every app's entries to disk and loads them at start,
// so that even a single host keeps its sessions across a reboot. The file
// format is gardenctl's dump format.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gardenstate/gardenstate/internal/dumpfile"
	"github.com/gardenstate/gardenstate/shm"
)

func snapshotPath(base, app string) string { return base + "." + app }

// writeSnapshots writes one file per app, each atomically: a reader sees the
// previous snapshot or the new one, never half of one.
func writeSnapshots(base string, apps map[string]*shm.Segment, log *slog.Logger) error {
	var errs []error
	for app, seg := range apps {
		start := time.Now()
		n, err := writeSnapshot(snapshotPath(base, app), app, seg)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", app, err))
			continue
		}
		log.Info("snapshot written", "app", app, "entries", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

func writeSnapshot(path, app string, seg *shm.Segment) (uint64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := dumpfile.NewWriter(bw, dumpfile.Header{App: app, Source: seg.Path(), Node: seg.NodeID(), Dumped: time.Now()})
	if err != nil {
		return 0, err
	}
	for i := range seg.Stripes() {
		var werr error
		err := seg.Range(i, func(e shm.Entry) bool {
			werr = w.Write(e)
			return werr == nil
		})
		if err = errors.Join(err, werr); err != nil {
			return 0, err
		}
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return w.Count(), os.Rename(f.Name(), path)
}

// restoreSnapshot loads a snapshot into the segment: entries newer in the
// segment win, expired ones are skipped. A missing file is not an error
// (first start); a damaged one is.
func restoreSnapshot(path, app string, seg *shm.Segment, log *slog.Logger) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := dumpfile.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if h := r.Header(); h.App != "" && h.App != app {
		return fmt.Errorf("%s is a snapshot of app %q, not %q", path, h.App, app)
	}
	var applied, skipped int
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w (%d entries restored before it)", path, err, applied)
		}
		ok, err := seg.Apply(e)
		if err != nil {
			return fmt.Errorf("%s: entry %q: %w", path, e.Key, err)
		}
		if ok {
			applied++
		} else {
			skipped++
		}
	}
	log.Info("snapshot restored", "app", app, "path", path, "applied", applied, "skipped", skipped)
	return nil
}
