// seqlock_arm64.go: on arm64 an atomic load is a load-acquire, which does
// not keep the plain loads of a value copy from completing after the
// sequence counter's second load, so a torn copy could pass the sequence
// check. Lock-free reads there also check the record's checksum.

package shm

const verifyReads = true
