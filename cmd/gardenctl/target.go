// target.go picks the segment a command works on (--segment, --app, their
// environment variables) and attaches to it without ever creating one.

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/shm"
)

// segmentPath returns the path of the segment the command should use.
func (a *app) segmentPath() (string, error) {
	switch {
	case a.envConflict:
		return "", usageErrorf("%s and %s are both set: unset one, or give --segment or --app", envSegment, envApp)
	case a.segmentSet && a.appSet:
		return "", usageErrorf("give --segment or --app, not both")
	case a.segmentSet:
		if a.segment == "" {
			return "", usageErrorf("--segment is empty")
		}
		return a.segment, nil
	case a.appSet:
		if a.appName == "" || strings.ContainsRune(a.appName, '/') || a.appName == "." || a.appName == ".." {
			return "", usageErrorf("--app %q is not an application name", a.appName)
		}
		return filepath.Join(a.dir, segmentPrefix+a.appName), nil
	}
	msg := fmt.Sprintf("no segment given: use --segment PATH or --app NAME (or set %s or %s)", envSegment, envApp)
	if names, err := segmentFiles(a.dir); err == nil && len(names) > 0 {
		apps := make([]string, len(names))
		for i, n := range names {
			apps[i] = strings.TrimPrefix(filepath.Base(n), segmentPrefix)
		}
		msg += fmt.Sprintf("; applications with a segment in %s: %s", a.dir, strings.Join(apps, ", "))
	}
	return "", usageErrorf("%s", msg)
}

// segmentFiles lists the files named gardenstate-* in dir, sorted, leaving
// out garden's janitor lock files (<segment>.janitor) and gardend's
// snapshot temporaries, which live beside segments but are not segments.
func segmentFiles(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(globEscape(dir), segmentPrefix+"*"))
	if err != nil {
		return nil, err
	}
	kept := names[:0]
	for _, n := range names {
		if !strings.HasSuffix(n, garden.JanitorSuffix) && !strings.Contains(filepath.Base(n), ".tmp") {
			kept = append(kept, n)
		}
	}
	sort.Strings(kept)
	return kept, nil
}

// globEscape quotes the pattern characters of a literal path.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// openSegment attaches to the chosen segment.
func (a *app) openSegment() (*shm.Segment, error) {
	path, err := a.segmentPath()
	if err != nil {
		return nil, err
	}
	seg, err := attachExisting(path)
	if err != nil {
		return nil, explainOpenError(path, err)
	}
	return seg, nil
}

// attachExisting attaches to the segment at path. shm.Attach never creates
// a segment, so a mistyped path or a segment removed a moment ago is an
// error here, not a new empty segment.
func attachExisting(path string) (*shm.Segment, error) {
	seg, err := shm.Attach(path, nil)
	switch {
	case err == nil:
		return seg, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no segment at %s", path)
	case errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("%s is a directory, not a segment", path)
	}
	return nil, err
}

// explainOpenError adds to shm's reason what it means for an operator.
func explainOpenError(path string, err error) error {
	switch {
	case errors.Is(err, shm.ErrCorrupt):
		return fmt.Errorf("%w (not a usable segment: truncated, damaged, or not a gardenstate segment)", err)
	case errors.Is(err, shm.ErrVersionMismatch):
		return fmt.Errorf("%w (written by a different gardenstate version)", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (segments are mode 0600 by default: run gardenctl as the user the workers run as)", err)
	case errors.Is(err, shm.ErrNoSpace):
		return fmt.Errorf("cannot attach to %s: %w", path, err)
	}
	return err
}

// withSegment opens the chosen segment, runs fn and detaches.
func (a *app) withSegment(fn func(seg *shm.Segment) error) error {
	seg, err := a.openSegment()
	if err != nil {
		return err
	}
	defer seg.Close()
	return fn(seg)
}
