//go:build linux && (amd64 || arm64)

// platform_linux.go wraps the Linux system calls the segment needs: space
// reservation, OFD byte locks for process liveness, and shared futexes.

package shm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// hugePage is the size of a huge page of the page cache on amd64 and arm64
// with 4 KiB base pages (one PMD).
const hugePage = 2 << 20

// mapHuge maps size bytes of a tmpfs file read-write and shared at an
// address that is a multiple of 2 MiB. The kernel maps a huge page of the
// file with one page-table entry only where the address and the file
// offset agree modulo 2 MiB, and an ordinary mmap of a tmpfs file lands
// wherever the address space has room: so reserve 2 MiB more than needed,
// map the file over an aligned part of the reservation, and give back the
// rest. ok is false, and nothing is mapped, when the file is not on tmpfs.
func mapHuge(fd int, size int) (mem []byte, ok bool, err error) {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return nil, false, nil
	}
	span := uintptr(size) + hugePage
	resv, err := unix.MmapPtr(-1, 0, nil, span, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, true, err
	}
	head := -uintptr(resv) & (hugePage - 1)
	at := unsafe.Add(resv, head)
	p, err := unix.MmapPtr(fd, 0, at, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		unix.MunmapPtr(resv, span)
		return nil, true, err
	}
	// The mapping covers whole pages: the reservation's tail starts at the
	// page after the file's last byte.
	mapped := pageUp(uintptr(size))
	if head > 0 {
		err = unix.MunmapPtr(resv, head)
	}
	if tail := span - head - mapped; tail > 0 && err == nil {
		err = unix.MunmapPtr(unsafe.Add(at, mapped), tail)
	}
	if err != nil {
		unix.MunmapPtr(resv, span) // whatever is left of it
		return nil, true, fmt.Errorf("trim the mapping's reservation: %w", err)
	}
	return unsafe.Slice((*byte)(p), size), true, nil
}

func pageUp(n uintptr) uintptr {
	ps := uintptr(os.Getpagesize())
	return (n + ps - 1) &^ (ps - 1)
}

// unmapHuge undoes mapHuge.
func unmapHuge(mem []byte) error {
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem)))
}

// collapse asks the kernel to back mem, a fresh segment no other process
// has mapped yet, with huge pages (MADV_COLLAPSE, Linux 6.1; it works
// whatever /sys/kernel/mm/transparent_hugepage/shmem_enabled says, short
// of "deny"). A session read then costs one TLB entry per 2 MiB instead of
// one per 4 KiB: a random read of a large segment otherwise walks the page
// table twice, for the index slot and for the record. Best effort: the
// segment works the same on 4 KiB pages, and reports which it got
// (HugePages).
func collapse(mem []byte) {
	lo := -uintptr(unsafe.Pointer(unsafe.SliceData(mem))) & (hugePage - 1)
	if uintptr(len(mem)) < lo+hugePage {
		return
	}
	hi := lo + (uintptr(len(mem))-lo)&^(hugePage-1)
	unix.Madvise(mem[lo:hi], unix.MADV_COLLAPSE)
}

// pmdMapped returns how many bytes of mem the kernel maps with huge pages
// in this process, from /proc/self/smaps: the sum of ShmemPmdMapped over
// the mappings that lie inside mem.
func pmdMapped(mem []byte) int64 {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	lo := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem))))
	hi := lo + uint64(pageUp(uintptr(len(mem))))
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if start, end, ok := vmaRange(line); ok {
			in = start >= lo && end <= hi
			continue
		}
		if kb, ok := strings.CutPrefix(line, "ShmemPmdMapped:"); in && ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64)
			total += n << 10
		}
	}
	return total
}

// vmaRange parses the "start-end perms ..." line that opens a mapping's
// entry in /proc/PID/smaps.
func vmaRange(line string) (start, end uint64, ok bool) {
	r, _, found := strings.Cut(line, " ")
	a, b, dash := strings.Cut(r, "-")
	if !found || !dash {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(a, 16, 64)
	end, err2 := strconv.ParseUint(b, 16, 64)
	return start, end, err1 == nil && err2 == nil
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
