// segment.go opens, creates and closes segments: the file, its mapping, the
// header check and this process's slot.

package shm

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/edsrzf/mmap-go"

	"github.com/gardenstate/gardenstate/shm/internal/layout"
)

// Segment is one attached segment: a memory-mapped hash table shared with
// every other process that has the same file open. All methods are safe for
// concurrent use by many goroutines in many processes.
type Segment struct {
	path string
	f    *os.File
	fd   int
	mem  []byte
	huge bool // mem is mapped at a 2 MiB boundary (mapHuge)
	h    layout.Header
	opts Options

	slot  uint32 // this process's slot, 1..MaxProcs
	owner uint32 // slot<<20 | generation: the value this Segment writes into lock words

	stripes    []stripe
	stripeMask uint64
	indexMask  uint64

	hlc      *atomic.Uint64
	ringHead *atomic.Uint64
	acked    *atomic.Uint64
	ackWake  *atomic.Uint32
	ringWake *atomic.Uint32
	waiters  *atomic.Uint32

	wall0 int64     // wall clock at attach, unix ns
	mono0 time.Time // the same instant, with its monotonic reading

	// remoteWake is when (ns after mono0) a change applied from a peer last
	// woke the ring's tailers; remoteWakeEvery spaces such wake-ups.
	remoteWake      atomic.Int64
	remoteWakeEvery time.Duration

	closed    atomic.Bool
	misc      atomic.Int64  // operations in flight that are not on one stripe
	sweepNext atomic.Uint64 // the stripe Sweep visits next
}

// stripe is this process's view of one stripe: slices of the mapping and
// atomic views of its control words, computed once at attach.
type stripe struct {
	no    int // the stripe's number
	ctl   []byte
	idx   []byte
	arena []byte

	lock *atomic.Uint32
	seq  *atomic.Uint64

	// inflight counts this process's operations on the stripe, so that
	// Close can wait for them before unmapping. Process-local.
	inflight atomic.Int64
	_        [40]byte
}

// Open attaches to the segment at path, creating it with opts if it does not
// exist (nil opts means defaults). Several processes opening the same new
// path at once end up sharing one segment: the file is fully built under a
// temporary name and then linked into place, so nobody ever attaches to a
// half-built segment.
func Open(path string, opts *Options) (*Segment, error) {
	if !supported {
		return nil, ErrUnsupportedPlatform
	}
	o, ex := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	for range 16 {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			s, err := attach(path, f, o, ex)
			if err != nil {
				f.Close()
				return nil, err
			}
			return s, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("shm: open %s: %w", path, err)
		}
		s, err := create(path, o, ex)
		if err == errLostRace {
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("shm: open %s: file keeps appearing and disappearing", path)
}

// Attach attaches to an existing segment and never creates one: tools that
// inspect segments use it so that a mistyped path or a segment removed a
// moment ago is an error (wrapping os.ErrNotExist), not a new empty segment.
func Attach(path string, opts *Options) (*Segment, error) {
	if !supported {
		return nil, ErrUnsupportedPlatform
	}
	o, ex := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: attach %s: %w", path, err)
	}
	s, err := attach(path, f, o, ex)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

var errLostRace = errors.New("another process created the segment first")

func create(path string, o Options, ex explicit) (*Segment, error) {
	var seed [12]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("shm: hash seed: %w", err)
	}
	node := o.NodeID
	for node == 0 {
		var b [4]byte
		rand.Read(b[:])
		node = binary.LittleEndian.Uint32(b[:])
	}
	h, err := layout.Plan(layout.Params{
		Size: uint64(o.Size), Stripes: uint32(o.Stripes), AvgEntry: uint32(o.AvgEntrySize),
		MaxValue: uint32(o.MaxValue), MaxProcs: uint32(o.MaxProcs), RingSize: uint32(o.RingSize),
		HashSeed: binary.LittleEndian.Uint64(seed[:8]), Created: time.Now().UnixNano(), NodeID: node,
		TombstoneTTL: int64(o.TombstoneTTL), App: o.App,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	// Build the file unnamed where the file system allows (a crash leaves
	// nothing behind), else under a temporary name; then link it into
	// place, which fails if another process got there first.
	f, anon, err := openAnon(filepath.Dir(path), uint32(o.Mode.Perm()))
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	tmp := ""
	if !anon {
		tmp = filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.%x.tmp", filepath.Base(path), os.Getpid(), seed[8:]))
		if f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, o.Mode.Perm()); err != nil {
			return nil, fmt.Errorf("shm: create %s: %w", path, err)
		}
		defer os.Remove(tmp)
	}
	fail := func(err error) (*Segment, error) {
		f.Close()
		return nil, err
	}
	if err := f.Chmod(o.Mode.Perm()); err != nil { // not subject to the umask
		return fail(fmt.Errorf("shm: create %s: %w", path, err))
	}
	if err := fallocate(int(f.Fd()), o.Size); err != nil {
		if _, serr := os.Stat(path); serr == nil {
			f.Close()
			return nil, errLostRace // another creator won and took the space: attach to its segment
		}
		if errors.Is(err, ErrNoSpace) {
			return fail(fmt.Errorf("%w: cannot reserve %d bytes for %s (is %s full?)", ErrNoSpace, o.Size, path, filepath.Dir(path)))
		}
		return fail(fmt.Errorf("shm: reserve %d bytes for %s: %w", o.Size, path, err))
	}
	m, huge, err := mapFile(f, int(o.Size))
	if err != nil {
		return fail(fmt.Errorf("shm: map %s: %w", path, err))
	}
	if huge && !o.NoHugePages {
		collapse(m) // before any other process can map the file
	}
	// A fresh file is all zeros, which is a valid empty state for every
	// stripe, slot and ring record. Only the header needs writing.
	layout.Encode(m, h)
	atomic64(m, layout.HdrRingHead).Store(1)
	if err := unmapFile(m, huge); err != nil {
		return fail(fmt.Errorf("shm: unmap %s: %w", path, err))
	}
	if anon {
		err = linkAnon(f, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		f.Close()
		if isExist(err) {
			return nil, errLostRace
		}
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	s, err := attach(path, f, o, ex)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func attach(path string, f *os.File, o Options, ex explicit) (*Segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	size := fi.Size()
	if size < layout.HeaderSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, too short for a segment header (%d bytes)", ErrCorrupt, path, size, layout.HeaderSize)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%w: %s: %d bytes do not fit the address space", ErrCorrupt, path, size)
	}
	m, huge, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: %w", path, err)
	}
	h, err := layout.Decode(m, uint64(size))
	if err != nil {
		unmapFile(m, huge)
		if errors.Is(err, layout.ErrVersion) {
			return nil, fmt.Errorf("%w: %s: %v", ErrVersionMismatch, path, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if err := checkLayout(h, o, ex); err != nil {
		unmapFile(m, huge)
		return nil, fmt.Errorf("%w: %s: %v", ErrLayoutMismatch, path, err)
	}
	s := &Segment{
		path: path, f: f, fd: int(f.Fd()), mem: m, huge: huge, h: h, opts: o,
		stripeMask: uint64(h.Stripes - 1), indexMask: uint64(h.IndexSlots - 1),
		hlc:      atomic64(m, layout.HdrHLC),
		ringHead: atomic64(m, layout.HdrRingHead),
		acked:    atomic64(m, layout.HdrAcked),
		ackWake:  atomic32(m, layout.HdrAckedWake),
		ringWake: atomic32(m, layout.HdrRingWake),
		waiters:  atomic32(m, layout.HdrRingWaiters),
	}
	s.mono0 = time.Now()
	s.wall0 = s.mono0.UnixNano()
	s.remoteWakeEvery = 50 * time.Microsecond
	s.remoteWake.Store(-int64(s.remoteWakeEvery))
	s.stripes = make([]stripe, h.Stripes)
	idxLen := uint64(h.IndexSlots) * layout.IndexSlotSize
	for i := range s.stripes {
		st := &s.stripes[i]
		st.no = i
		c := h.StripesOff + uint64(i)*layout.StripeSize
		st.ctl = m[c : c+layout.StripeSize : c+layout.StripeSize]
		x := h.IndexOff + uint64(i)*idxLen
		st.idx = m[x : x+idxLen : x+idxLen]
		a := h.ArenaOff + uint64(i)*h.ArenaSize
		st.arena = m[a : a+h.ArenaSize : a+h.ArenaSize]
		st.lock = atomic32(st.ctl, layout.StLock)
		st.seq = atomic64(st.ctl, layout.StSeq)
	}
	prefault(int(f.Fd()), m)
	if err := s.takeSlot(); err != nil {
		unmapFile(m, huge)
		return nil, fmt.Errorf("shm: %s: %w", path, err)
	}
	return s, nil
}

// checkLayout compares the explicitly set options with an existing header.
func checkLayout(h layout.Header, o Options, ex explicit) error {
	type field struct {
		set       bool
		name      string
		have, ask any
	}
	fields := []field{
		{ex.size, "Size", int64(h.FileSize), o.Size},
		{ex.maxValue, "MaxValue", int(h.MaxValue), o.MaxValue},
		{ex.stripes, "Stripes", int(h.Stripes), o.Stripes},
		{ex.procs, "MaxProcs", int(h.MaxProcs), o.MaxProcs},
		{ex.ring, "RingSize", int(h.RingSize), o.RingSize},
		{ex.app, "App", h.App, o.App},
		{ex.tomb, "TombstoneTTL", time.Duration(h.TombstoneTTL), o.TombstoneTTL},
	}
	for _, f := range fields {
		if f.set && f.have != f.ask {
			return fmt.Errorf("%s: segment has %v, options ask for %v", f.name, f.have, f.ask)
		}
	}
	return nil
}

func (s *Segment) slotOff(slot uint32) uint64 {
	return s.h.SlotsOff + uint64(slot)*layout.SlotSize
}

// takeSlot claims the first free process slot: the one whose lock byte no
// live process holds an OFD lock on. The lock is ours until the file is
// closed or the process dies, whichever comes first.
func (s *Segment) takeSlot() error {
	for slot := uint32(1); slot <= s.h.MaxProcs; slot++ {
		ok, err := ofdTryLock(s.fd, int64(s.slotOff(slot)+layout.SlotLockByte))
		if err != nil {
			return fmt.Errorf("lock process slot %d: %w", slot, err)
		}
		if !ok {
			continue
		}
		gen := atomic32(s.mem, s.slotOff(slot)+layout.SlotGen).Add(1) & genMask
		if gen == 0 {
			gen = atomic32(s.mem, s.slotOff(slot)+layout.SlotGen).Add(1) & genMask
		}
		atomic32(s.mem, s.slotOff(slot)+layout.SlotPID).Store(uint32(os.Getpid()))
		atomic64(s.mem, s.slotOff(slot)+layout.SlotAttached).Store(uint64(time.Now().UnixNano()))
		s.slot = slot
		s.owner = slot<<slotShift | gen
		return nil
	}
	return fmt.Errorf("%w: all %d process slots are in use", ErrNoSpace, s.h.MaxProcs)
}

// Close detaches from the segment after every operation of this process on
// it has finished. The segment itself stays: other processes keep using it,
// and a later Open attaches again. Close is idempotent.
func (s *Segment) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for i := range s.stripes {
		for s.stripes[i].inflight.Load() != 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	for s.misc.Load() != 0 {
		time.Sleep(100 * time.Microsecond)
	}
	atomic32(s.mem, s.slotOff(s.slot)+layout.SlotPID).Store(0)
	err := unmapFile(s.mem, s.huge)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mapFile maps the first size bytes of f read-write and shared: on tmpfs
// at a 2 MiB boundary, so that huge pages can back it (huge is true), and
// elsewhere wherever the kernel puts it.
func mapFile(f *os.File, size int) (mem []byte, huge bool, err error) {
	if mem, huge, err = mapHuge(int(f.Fd()), size); huge || err != nil {
		return mem, huge, err
	}
	m, err := mmap.MapRegion(f, size, mmap.RDWR, 0, 0)
	return m, false, err
}

// unmapFile undoes mapFile.
func unmapFile(mem []byte, huge bool) error {
	if huge {
		return unmapHuge(mem)
	}
	m := mmap.MMap(mem)
	return m.Unmap()
}

// DefaultPath is where an application's segment lives unless configured
// otherwise: every process of the host (garden workers, gardend, gardenctl)
// must agree on it.
func DefaultPath(app string) string { return "/dev/shm/gardenstate-" + app }

// Path returns the segment's file name.
func (s *Segment) Path() string { return s.path }

// Remove deletes the segment file at path. Processes that have it open keep
// their mapping; new Opens create a fresh segment.
func Remove(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// enter marks an operation on st in flight; it fails once Close has begun.
func (s *Segment) enter(st *stripe) bool {
	st.inflight.Add(1)
	if s.closed.Load() {
		st.inflight.Add(-1)
		return false
	}
	return true
}

func (st *stripe) exit() { st.inflight.Add(-1) }

// enterMisc is enter for operations not confined to one stripe.
func (s *Segment) enterMisc() bool {
	s.misc.Add(1)
	if s.closed.Load() {
		s.misc.Add(-1)
		return false
	}
	return true
}

func (s *Segment) exitMisc() { s.misc.Add(-1) }
