//go:build linux && (amd64 || arm64)

// platform_linux.go wraps the Linux system calls the segment needs: space
// reservation, OFD byte locks for process liveness, and shared futexes.

package shm

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

// fallocate reserves size bytes for fd, so that a full file system is an
// error now and not a SIGBUS on first touch of a page later.
func fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENOSPC || err == unix.EFBIG || err == unix.EDQUOT {
			return ErrNoSpace
		}
		return err
	}
}

// ofdTryLock takes a write OFD lock on one byte without waiting. It reports
// false when another open file description holds a lock there.
func ofdTryLock(fd int, off int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
		switch err {
		case nil:
			return true, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EACCES:
			return false, nil
		}
		return false, err
	}
}

// ofdHeld reports whether an open file description other than fd's holds a
// lock on the byte. F_OFD_GETLK never reports fd's own locks.
func ofdHeld(fd int, off int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		return lk.Type != unix.F_UNLCK, nil
	}
}

const (
	futexWaitOp = 0 // FUTEX_WAIT, without FUTEX_PRIVATE_FLAG: the word is shared between processes
	futexWakeOp = 1 // FUTEX_WAKE
)

// futexWait sleeps while *addr == val, for at most d. Spurious wake-ups are
// possible; callers re-check their condition.
func futexWait(addr *atomic.Uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n processes sleeping on addr.
func futexWake(addr *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(n), 0, 0, 0)
}

// isExist reports whether err says a link target exists.
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// openAnon creates an unnamed file in dir (O_TMPFILE): if the process dies
// before linkAnon gives it a name, the kernel frees it, so a crash during
// creation leaves nothing behind in /dev/shm. ok is false when the file
// system does not support it.
func openAnon(dir string, mode uint32) (f *os.File, ok bool, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, mode)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), true, nil
}

// linkAnon gives an unnamed file a name, failing with EEXIST if the name
// is taken.
func linkAnon(f *os.File, path string) error {
	return unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
}

// prefault maps every page of a segment in tmpfs (/dev/shm) into this
// process's page table now, so that the first write to each page does not
// take a page fault in the middle of a locked operation. Only on tmpfs: on
// a disk file system it would dirty every page for writeback. Best effort:
// kernels before 5.14 lack MADV_POPULATE_WRITE, and the segment works
// without it.
func prefault(fd int, mem []byte) {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) == nil && st.Type == unix.TMPFS_MAGIC {
		unix.Madvise(mem, unix.MADV_POPULATE_WRITE)
	}
}
