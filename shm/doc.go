// Package shm is a memory-mapped, lock-striped hash table that every process
// on a host can attach to at once: byte keys (up to 255 bytes) to byte
// values (up to Options.MaxValue), each with a version, an expiry deadline
// and a last-access time. It stays correct when any attached process is
// killed at any instruction, holding a lock or not.
//
// # Basics
//
// Open creates the segment file (default size 64 MiB) or attaches to it.
// Get copies a value out without taking any lock; Set, Delete and Touch take
// the lock of one stripe. Every method is safe for concurrent use by many
// goroutines in many processes.
//
//	s, err := shm.Open("/dev/shm/gardenstate-myapp", nil)
//	if err != nil { ... }
//	defer s.Close()
//	s.Set([]byte("k"), []byte("v"), 20*time.Minute)
//	v, ok := s.Get(nil, []byte("k"))
//
// Byte slices passed in may be modified after a method returns; returned
// slices never alias the mapping.
//
// # Layout
//
// The file holds a header (validated at every attach: magic, format
// version, layout, hash seed, application, checksum), a table of process
// slots, the change ring, and the stripes. A key's hash picks its stripe.
// Each stripe has a lock word, a sequence counter, counters on their own
// cache lines, a linear-probing hash index and an arena used as a circular
// log of records: writes append a whole, checksummed record and then
// publish it in the index with a single-word store, so the old value stays
// intact until the new one is complete.
//
// # Crash safety
//
// Stripe locks are futex words owned by (process slot, generation). Each
// attached process holds an OFD lock on its slot's byte of the file; the
// kernel drops it when the process dies. A waiter that finds the owner's
// OFD lock gone takes the stripe over and, if the owner died mid-write,
// rebuilds the stripe's index from its log. Writes that returned are never
// lost; a write interrupted by the kill either happened entirely or not at
// all. A stopped (SIGSTOP) owner is alive: waiters give up after
// Options.LockTimeout with ErrLockTimeout and nothing changed.
//
// # Space
//
// The segment never grows. When a stripe's arena is full, the oldest
// records are reclaimed: expired entries are dropped, recently read ones
// are moved to the head (a second chance, bounded per write), the rest are
// evicted and counted in Stats (ForcedEvictions for live entries). A
// quarter of each arena is kept free so those moves always fit. There is no
// global wipe, ever.
//
// # Replication
//
// Every change appends a record to the change ring (ReadChanges); Apply
// stores an entry made elsewhere if its Version is newer (last writer wins,
// tombstones included); Range copies out one stripe at a time for
// anti-entropy; SetAcked and WaitAcked let a writer wait until the agent
// has shipped its change.
//
// # Caveats
//
// Linux only (amd64, arm64): other platforms get ErrUnsupportedPlatform.
// Truncating the file while processes have it mapped makes them crash with
// SIGBUS, as with any mapping: never resize a segment in place, remove it
// and create a new one. A lock-free reader that keeps racing writers on the
// same stripe falls back to the lock after Options.ReadRetries tries.
package shm
