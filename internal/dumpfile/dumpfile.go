// Package dumpfile reads and writes dump files: a portable copy of a
// segment's entries, written by gardenctl dump and gardend's snapshots, read
// by gardenctl load and at gardend's start, for backup and for moving
// sessions to another segment or host.
//
// # Format
//
// A dump file is the 8 bytes "GRDNDUMP" followed by frames: one header
// frame, one entry frame per entry, and one end frame. Nothing follows the
// end frame. A frame is
//
//	kind    1 byte    'H' header, 'E' entry, 'Z' end
//	length  4 bytes   little-endian length of the body, at most MaxBody
//	crc     4 bytes   little-endian CRC-32C (Castagnoli) of kind and body
//	body    length bytes of msgpack
//
// The header body is a msgpack map with string keys: "format" (integer,
// FormatVersion; required), "app" (string: the segment's application),
// "source" (string: the segment's path), "node" (integer: the segment's
// node id) and "dumped" (integer: Unix nanoseconds). Readers ignore keys
// they do not know, so later versions may add some.
//
// An entry body is a msgpack array of six elements:
//
//	[key bin, value bin, version_time uint, version_node uint, expires int, deleted bool]
//
// version_time and version_node are the entry's shm.Version, expires its
// absolute deadline in Unix nanoseconds (0: never), deleted marks a
// tombstone (whose value is empty). Keys are at most MaxKey bytes.
//
// The end body is a msgpack map {"entries": n}, the number of entry frames;
// a file whose end frame is missing or disagrees was cut short or damaged.
//
// The entries are copies taken one stripe at a time while the segment keeps
// serving, not a snapshot of one instant: replaying them with shm's Apply
// (last writer wins by version) converges whatever order they come in.
package dumpfile

import (
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Magic opens every dump file.
const Magic = "GRDNDUMP"

// FormatVersion is the version of the format written, and the only one read.
const FormatVersion = 1

// MaxKey is the longest key an entry may have (the segment's limit).
const MaxKey = 255

// MaxBody bounds a frame's body: the largest value a segment accepts (1 GiB)
// plus room for the key and the other fields.
const MaxBody = 1<<30 + 1<<12

// Frame kinds.
const (
	kindHeader = 'H'
	kindEntry  = 'E'
	kindEnd    = 'Z'
)

// frameHeaderSize is the kind, length and crc before every body.
const frameHeaderSize = 9

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the checksum stored in a frame: CRC-32C of kind and body.
func frameCRC(kind byte, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, []byte{kind})
	return crc32.Update(c, castagnoli, body)
}

// Header describes where a dump came from.
type Header struct {
	Format int       // FormatVersion
	App    string    // the segment's application, "" if it has none
	Source string    // the segment's path
	Node   uint32    // the segment's node id
	Dumped time.Time // when the dump began
}

// ErrFormat is returned (wrapped in a *FormatError) when the bytes read are
// not a well-formed dump file.
var ErrFormat = errors.New("dump: malformed dump file")

// FormatError says what is wrong with a dump file and where.
type FormatError struct {
	Offset int64 // byte offset in the file where the problem starts
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("dump file invalid at byte %d: %s", e.Offset, e.Msg)
}

// Unwrap makes errors.Is(err, ErrFormat) hold.
func (e *FormatError) Unwrap() error { return ErrFormat }
