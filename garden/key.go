// key.go finds the farm key (given, from a file, from the environment, or
// the host key kept in the segment) and derives the keys garden uses from
// it.

package garden

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/gardenstate/gardenstate/internal/farmkey"
	"github.com/gardenstate/gardenstate/shm"
)

// keySize is the size of a farm key in bytes.
const keySize = farmkey.Size

// hostKeyName is the reserved segment key under which the workers of one
// host keep their shared random farm key when none is configured. Session
// keys start with sessionPrefix, so the two never collide.
const hostKeyName = "garden/farm-key"

// ParseKey decodes a farm key: 32 bytes in standard base64 on one line, as
// `openssl rand -base64 32` prints it. Surrounding white space is ignored.
func ParseKey(s string) ([]byte, error) {
	k, err := farmkey.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (make one with `openssl rand -base64 32`)", ErrBadKey, err)
	}
	return k, nil
}

// ReadKeyFile reads a farm key from the file at path (see ParseKey).
func ReadKeyFile(path string) ([]byte, error) {
	k, err := farmkey.Read(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return k, nil
}

// farmKey returns the configured farm key, or the host key of seg, and
// whether it came from the segment.
func farmKey(c *Config, seg *shm.Segment) (key []byte, host bool, err error) {
	switch {
	case len(c.Key) > 0:
		return bytes.Clone(c.Key), false, nil
	case c.KeyFile != "":
		k, err := ReadKeyFile(c.KeyFile)
		return k, false, err
	case c.KeyEnv != "":
		v, ok := os.LookupEnv(c.KeyEnv)
		if !ok {
			return nil, false, fmt.Errorf("%w: environment variable %s is not set", ErrBadKey, c.KeyEnv)
		}
		k, err := ParseKey(v)
		if err != nil {
			return nil, false, fmt.Errorf("%w (in $%s)", err, c.KeyEnv)
		}
		return k, false, nil
	}
	k, err := hostKey(seg)
	return k, true, err
}

// hostKey returns the random key kept in seg under hostKeyName, storing a
// new one if there is none. Every process racing to store one ends up with
// the same key: only a Put onto an absent key succeeds, and the losers read
// the winner's. It is stored pinned, so a full segment never evicts it.
func hostKey(seg *shm.Segment) ([]byte, error) {
	name := []byte(hostKeyName)
	for range 8 {
		if k, ok := seg.Get(nil, name); ok {
			if len(k) != keySize {
				return nil, fmt.Errorf("%w: the host key in the segment has %d bytes, want %d", ErrBadKey, len(k), keySize)
			}
			return k, nil
		}
		k := make([]byte, keySize)
		rand.Read(k)
		var absent shm.Version
		_, err := seg.Put(name, k, shm.PutOptions{IfVersion: &absent, Pin: true})
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, shm.ErrVersionConflict) {
			return nil, fmt.Errorf("garden: storing the host key: %w", err)
		}
	}
	return nil, fmt.Errorf("%w: the host key in the segment keeps changing", ErrBadKey)
}

// deriveKey derives a 32-byte key for purpose from the farm key, bound to
// the application, so that a key leaked from one use says nothing of the
// others.
func deriveKey(farm []byte, app, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, farm, []byte("gardenstate/"+app), purpose, 32)
	if err != nil {
		panic("garden: hkdf: " + err.Error()) // only for lengths hkdf cannot produce
	}
	return k
}
