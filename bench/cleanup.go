// cleanup.go keeps what the harness must undo however it ends: segment
// files in /dev/shm, child processes, temporary directories. Every suite
// registers an undo as it creates something; the undo runs when the suite
// is done with it, and anything left runs on Ctrl-C or at exit.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gardenstate/gardenstate/garden"
)

// cleaner is a set of pending undo functions. Safe for concurrent use.
type cleaner struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

var cleanups = &cleaner{fns: map[int]func(){}}

// add registers f and returns a function that runs f (once) and forgets it.
func (c *cleaner) add(f func()) (undo func()) {
	var once sync.Once
	run := func() { once.Do(f) }
	c.mu.Lock()
	id := c.next
	c.next++
	c.fns[id] = run
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.fns, id)
		c.mu.Unlock()
		run()
	}
}

// runAll runs every pending undo, newest first.
func (c *cleaner) runAll() {
	c.mu.Lock()
	ids := make([]int, 0, len(c.fns))
	for id := range c.fns {
		ids = append(ids, id)
	}
	fns := c.fns
	c.fns = map[int]func(){}
	c.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- {
		// Map order is random: run by descending id.
		best := 0
		for j := range ids {
			if ids[j] > ids[best] {
				best = j
			}
		}
		fns[ids[best]]()
		ids = append(ids[:best], ids[best+1:]...)
	}
}

// shmDir is where segments go: tmpfs, as in production.
func shmDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// segmentPrefix starts the name of every file this process creates in
// shmDir, so that the final sweep finds them all and nobody else's.
func segmentPrefix() string { return fmt.Sprintf("gardenstate-bench-%d-", os.Getpid()) }

// segmentPath returns a fresh segment path for name and registers its
// removal (with garden's janitor lock file beside it).
func segmentPath(name string) (path string, remove func()) {
	path = filepath.Join(shmDir(), segmentPrefix()+name)
	os.Remove(path) // a leftover of this pid from an earlier run
	os.Remove(garden.JanitorPath(path))
	return path, cleanups.add(func() {
		os.Remove(path)
		os.Remove(garden.JanitorPath(path))
	})
}

// sweepSegments removes any file this process left in shmDir, including
// the temporary files shm builds a segment in. It returns what it removed.
func sweepSegments() []string {
	var removed []string
	for _, pat := range []string{segmentPrefix() + "*", "." + segmentPrefix() + "*"} {
		matches, _ := filepath.Glob(filepath.Join(shmDir(), pat))
		for _, m := range matches {
			if os.Remove(m) == nil {
				removed = append(removed, m)
			}
		}
	}
	return removed
}
