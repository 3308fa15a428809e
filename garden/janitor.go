// janitor.go holds the janitor: the one process per host that sweeps the
// segment for expired entries and calls OnExpire for expired sessions.
//
// Every Store runs a janitor goroutine, but only the one holding an
// exclusive flock on the sidecar file "<segment path>.janitor" works; the
// kernel drops the lock when its process dies, and another process's
// janitor takes over at its next tick. The janitor reads the segment's
// change ring from the cursor kept in the segment's user word 0 (so it
// survives any process) and claims each expiry record by moving the cursor
// past it with a compare-and-swap before calling OnExpire: a janitor that
// dies between the claim and the call loses that call, and no call is ever
// made twice. In a farm, only the host that wrote a session last fires its
// hook (see drain).

package garden

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gardenstate/gardenstate/shm"
)

// JanitorSuffix ends the name of the janitor's lock file, which lives
// beside its segment.
const JanitorSuffix = ".janitor"

// JanitorPath is the janitor's lock file for the segment at segment: a
// file every worker may create, never a segment itself.
func JanitorPath(segment string) string { return segment + JanitorSuffix }

// expiryCursor is the segment user word holding the sequence number of the
// last change record the janitor has handled.
const expiryCursor = 0

type janitor struct {
	st      *Store
	lock    *os.File
	held    bool
	quit    chan struct{}
	done    chan struct{}
	buf     []shm.Change
	stopped sync.Once
}

func startJanitor(st *Store) (*janitor, error) {
	path := JanitorPath(st.cfg.SegmentPath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("garden: janitor lock file: %w", err)
	}
	j := &janitor{st: st, lock: f, quit: make(chan struct{}), done: make(chan struct{}), buf: make([]shm.Change, 256)}
	go j.run()
	return j, nil
}

// stop ends the janitor goroutine and releases the lock.
func (j *janitor) stop() {
	j.stopped.Do(func() {
		close(j.quit)
		<-j.done
		j.lock.Close() // drops the flock
	})
}

func (j *janitor) run() {
	defer close(j.done)
	// The change ring holds a few thousand records, a fraction of a second
	// of a busy host's saves: read it every drainEvery, sweep every
	// JanitorInterval.
	drainEvery := min(j.st.cfg.JanitorInterval, 50*time.Millisecond)
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	var lastTick time.Time
	for {
		if !j.held {
			err := unix.Flock(int(j.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			j.held = err == nil
			if j.held {
				j.st.log.Debug("garden: this process is the janitor", "pid", os.Getpid())
			}
		}
		if j.held {
			var err error
			if time.Since(lastTick) >= j.st.cfg.JanitorInterval {
				lastTick = time.Now()
				err = j.tick()
			} else {
				err = j.drain()
			}
			if errors.Is(err, shm.ErrClosed) {
				return
			}
		}
		select {
		case <-j.quit:
			return
		case <-t.C:
		}
	}
}

func (j *janitor) tick() error {
	st := j.st
	if _, err := st.seg.Sweep(0); err != nil {
		if errors.Is(err, shm.ErrClosed) {
			return err
		}
		st.log.Warn("garden: janitor sweep", "err", err)
	}
	if err := j.drain(); err != nil {
		return err
	}
	return nil
}

// drain reads the change ring from the cursor to its end and calls OnExpire
// for every expired session.
func (j *janitor) drain() error {
	seg := j.st.seg
	cur := seg.Mark(expiryCursor)
	for {
		n, next, err := seg.ReadChanges(cur+1, j.buf)
		if errors.Is(err, shm.ErrGap) {
			j.st.log.Warn("garden: janitor fell behind the change ring; some expiries were not reported",
				"missed", next-(cur+1), "err", err)
			if !seg.CompareAndSwapMark(expiryCursor, cur, next-1) {
				cur = seg.Mark(expiryCursor)
				continue
			}
			cur = next - 1
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		claimed := cur
		for i := range j.buf[:n] {
			c := &j.buf[i]
			if c.Kind != shm.ChangeExpire {
				continue
			}
			// In a farm every host expires its own copy. The hook fires
			// once farm-wide: on the host whose node made the session's
			// last write (its version's node), the host that served the
			// user last. If that host is down at the deadline, no host
			// fires it.
			if c.Version.Node != seg.NodeID() {
				continue
			}
			id, ok := idFromKey(c.Key)
			if !ok {
				continue
			}
			// Claim everything up to and including this record.
			if !seg.CompareAndSwapMark(expiryCursor, claimed, c.Seq) {
				break // another janitor moved the cursor: start again from it
			}
			claimed = c.Seq
			j.expired(id)
		}
		last := j.buf[n-1].Seq
		if claimed != last && seg.Mark(expiryCursor) == claimed {
			seg.CompareAndSwapMark(expiryCursor, claimed, last)
		}
		cur = seg.Mark(expiryCursor)
	}
}

// expired calls OnExpire for id, containing its panics.
func (j *janitor) expired(id string) {
	if j.st.cfg.OnExpire == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			j.st.log.Error("garden: OnExpire panicked", "id", id, "panic", p)
		}
	}()
	j.st.cfg.OnExpire(id)
}
