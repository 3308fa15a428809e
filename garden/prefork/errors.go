// errors.go holds every sentinel error the prefork package returns.

package prefork

import "errors"

var (
	// ErrBadConfig is returned by Run when a Config field is out of range.
	ErrBadConfig = errors.New("prefork: bad config")

	// ErrWorkerFailed is returned by Run when a worker's first start fails:
	// it exited, or did not report ready within ReadyTimeout.
	ErrWorkerFailed = errors.New("prefork: worker failed to start")

	// ErrNotWorker is returned by a worker's Run when the process was
	// started with the worker environment but without the parent's file
	// descriptors or parent (it was not started by Run).
	ErrNotWorker = errors.New("prefork: worker environment without a parent")

	// ErrUnsupportedPlatform is returned by Run on anything but Linux.
	ErrUnsupportedPlatform = errors.New("prefork: unsupported platform (needs Linux)")
)
