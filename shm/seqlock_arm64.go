// seqlock_arm64.go: on arm64 an atomic load is a load-acquire, which does
// not keep the plain loads of a value copy from completing after the
// sequence counter's second load, so a torn copy could pass the sequence
// check. Lock-free reads there also check the record's checksum; whole
// stripe copies, which have no one checksum to check, put a fence before
// the second load.

package shm

import "sync/atomic"

const verifyReads = true

// fenceWord is the word loadFence adds to: process-local, and touched once
// per stripe copy, so it costs no contention worth measuring.
var fenceWord atomic.Uint32

// loadFence makes every load before it complete before any atomic load
// after it. An atomic add here is a store-release (LDADDAL, or an
// LDAXR/STLXR pair), which waits for the earlier loads, and a later
// load-acquire is not performed before an earlier store-release.
func loadFence() { fenceWord.Add(1) }
