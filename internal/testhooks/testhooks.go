// Package testhooks holds hooks that tests of this module set to stop or
// kill a process at a chosen point inside another package. They are nil in
// every program, where each costs one nil check.
package testhooks

// Shm, when set, is called at named points while package shm holds a
// stripe lock: "written", "advanced", "published" (a write's record is
// complete, in the log, in the index), "reserved" (a change-ring sequence
// is taken but not yet claimed), "relocate-copied", "relocate-repointed"
// and "evicted"; and, holding no lock, at "watermark" (a watermark has
// its log positions and not yet its clock).
var Shm func(point string)

// Replication, when set, is called by package replication at "digest"
// (an inbound stream is about to answer a peer's digest, beside the loop
// that reads the stream) and "keys-compared" (a peer's Keys frame is
// compared and its repairs queued, and the comparison's end is next).
var Replication func(point string)
