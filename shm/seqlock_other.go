//go:build !arm64

// seqlock_other.go: on amd64 loads are not reordered with other loads, so
// the sequence check alone proves a lock-free copy whole.

package shm

const verifyReads = false

// loadFence is needed only on arm64 (seqlock_arm64.go).
func loadFence() {}
