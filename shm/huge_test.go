//go:build linux && (amd64 || arm64)

package shm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gardenstate/gardenstate/internal/testseg"
)

// hugePagesPossible says why a segment in /dev/shm cannot get huge pages
// on this machine, or "" when it can.
func hugePagesPossible() string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return "/dev/shm is not a tmpfs"
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "uname failed"
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	if major < 6 || major == 6 && minor < 1 {
		return fmt.Sprintf("kernel %d.%d has no MADV_COLLAPSE (6.1 or later)", major, minor)
	}
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
	if err != nil {
		return "the kernel has no transparent huge pages"
	}
	if strings.Contains(string(b), "[deny]") {
		return "shmem_enabled is deny"
	}
	return ""
}

func TestHugePages(t *testing.T) {
	if why := hugePagesPossible(); why != "" {
		t.Skip("no huge pages here:", why)
	}
	opts := testOptions()
	s, path := openTest(t, opts)
	// The kernel may fail to find a free 2 MiB page for an extent or two
	// when memory is fragmented: most of the segment is what we ask for.
	huge := s.HugePages()
	t.Logf("creator: %d of %d MiB on huge pages", huge>>20, opts.Size>>20)
	if huge < opts.Size/2 {
		t.Fatalf("creator: %d bytes on huge pages, want most of %d", huge, opts.Size)
	}
	if p := uintptr(unsafe.Pointer(&s.mem[0])); p%hugePage != 0 {
		t.Fatalf("mapped at %#x, not at a 2 MiB boundary", p)
	}
	// Another attach (a second mapping, as another process makes) is
	// aligned too and maps the same huge pages.
	a, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.HugePages(); got != huge {
		t.Fatalf("attacher: %d bytes on huge pages, the creator %d", got, huge)
	}
	big := bytes.Repeat([]byte("v"), 40<<10)
	if err := s.Set([]byte("k"), big, 0); err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Get(nil, []byte("k")); !ok || !bytes.Equal(v, big) {
		t.Fatalf("attacher reads %d bytes, ok=%v", len(v), ok)
	}
	mustVerify(t, a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.HugePages(); got != 0 {
		t.Fatalf("after Close: %d bytes", got)
	}

	// Opted out: 4 KiB pages, unless the system makes every tmpfs page huge.
	b, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
	if strings.Contains(string(b), "[force]") || strings.Contains(string(b), "[always]") {
		return
	}
	o := *opts
	o.NoHugePages = true
	n, err := Open(filepath.Join(testseg.Dir(t), "small"), &o)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := n.HugePages(); got != 0 {
		t.Fatalf("NoHugePages: %d bytes on huge pages", got)
	}
}

// A segment outside tmpfs is mapped where the kernel likes and works the
// same.
func TestSegmentOutsideTmpfs(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary directory is a tmpfs too")
	}
	s, err := Open(filepath.Join(dir, "seg"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.huge || s.HugePages() != 0 {
		t.Fatalf("huge mapping outside tmpfs: %v, %d bytes", s.huge, s.HugePages())
	}
	if err := s.Set([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get(nil, []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A segment whose size is not a whole number of pages is mapped and
// reported whole, and what is left of the aligned reservation past its end
// is given back.
func TestHugeMappingOddSize(t *testing.T) {
	if why := hugePagesPossible(); why != "" {
		t.Skip("no huge pages here:", why)
	}
	opts := testOptions()
	opts.Size += 100
	s, _ := openTest(t, opts)
	if !s.huge {
		t.Fatal("not mapped for huge pages")
	}
	if got := s.HugePages(); got < opts.Size/2 {
		t.Fatalf("%d bytes on huge pages, want most of %d", got, opts.Size)
	}
	end := uint64(uintptr(unsafe.Pointer(&s.mem[0]))) + uint64(pageUp(uintptr(opts.Size)))
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if start, _, ok := vmaRange(line); ok && start == end && strings.Contains(line, " ---p ") {
			t.Fatalf("the reservation past the mapping is still there: %s", line)
		}
	}
}
