// This file encapsulates usage of unsafe: atomic views of words inside the
// mapping. Every offset passed here comes from the validated layout and is
// aligned for the type (layout_test.go pins that), and &mem[off] is bounds
// checked, so a bad offset panics in the caller's tests rather than touching
// memory outside the mapping.

package shm

import (
	"sync/atomic"
	"unsafe"
)

// atomic32 views the 4-byte-aligned word at mem[off] as an atomic uint32.
func atomic32(mem []byte, off uint64) *atomic.Uint32 {
	_ = mem[off+3]
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// atomic64 views the 8-byte-aligned word at mem[off] as an atomic uint64.
// The mapping is page aligned, so an 8-aligned offset is an 8-aligned
// address, as 64-bit atomics need.
func atomic64(mem []byte, off uint64) *atomic.Uint64 {
	_ = mem[off+7]
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}
