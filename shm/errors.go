// errors.go holds every sentinel error the shm package returns.

package shm

import "errors"

var (
	// ErrTooLarge is returned when a key is longer than 255 bytes or a value
	// is larger than the segment's MaxValue.
	ErrTooLarge = errors.New("shm: key or value too large")

	// ErrNoSpace is returned by Open when the file system cannot reserve the
	// segment's space (a full /dev/shm), and when every process slot of the
	// segment is taken.
	ErrNoSpace = errors.New("shm: no space")

	// ErrVersionMismatch is returned by Open when the file is a segment of a
	// format version this build does not read. The message names both.
	ErrVersionMismatch = errors.New("shm: segment format version mismatch")

	// ErrLayoutMismatch is returned by Open when an existing segment's
	// layout (size, stripes, maximum value, application) differs from what
	// the Options ask for. The message names the field and both values.
	ErrLayoutMismatch = errors.New("shm: segment layout mismatch")

	// ErrCorrupt is returned by Open when the file is truncated, is not a
	// segment, or has a header that fails validation, and by Verify for
	// every inconsistency it finds. The message names what is wrong.
	ErrCorrupt = errors.New("shm: segment corrupt")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("shm: segment closed")

	// ErrUnsupportedPlatform is returned by Open on anything but Linux on
	// amd64 or arm64: the segment needs futexes and OFD locks.
	ErrUnsupportedPlatform = errors.New("shm: unsupported platform (needs linux/amd64 or linux/arm64)")

	// ErrLockTimeout is returned when a stripe lock could not be taken
	// within Options.LockTimeout because a live process holds it (a
	// stopped process, or one stuck in a very long operation). Nothing was
	// changed.
	ErrLockTimeout = errors.New("shm: timed out waiting for stripe lock")

	// ErrVersionConflict is returned by Put with IfVersion when the stored
	// version is not the expected one. Nothing was changed.
	ErrVersionConflict = errors.New("shm: version conflict")

	// ErrGap is returned by ReadChanges when records between the requested
	// sequence and the oldest one still in the ring were overwritten: the
	// reader fell behind and must rescan the segment.
	ErrGap = errors.New("shm: change ring gap")

	// ErrBadOptions is returned by Open when Options are out of range.
	ErrBadOptions = errors.New("shm: bad options")
)
