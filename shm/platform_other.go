//go:build !(linux && (amd64 || arm64))

// platform_other.go stands in for platform_linux.go where the segment cannot
// work: Open returns ErrUnsupportedPlatform before any of these is called.

package shm

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

const supported = false

func fallocate(int, int64) error                      { return ErrUnsupportedPlatform }
func ofdTryLock(int, int64) (bool, error)             { return false, ErrUnsupportedPlatform }
func ofdHeld(int, int64) (bool, error)                { return false, ErrUnsupportedPlatform }
func futexWait(*atomic.Uint32, uint32, time.Duration) {}
func futexWake(*atomic.Uint32, int)                   {}
func isExist(err error) bool                          { return errors.Is(err, os.ErrExist) }

func openAnon(string, uint32) (*os.File, bool, error) { return nil, false, ErrUnsupportedPlatform }
func linkAnon(*os.File, string) error                 { return ErrUnsupportedPlatform }

func prefault(int, []byte) {}

func mapHuge(int, int) ([]byte, bool, error) { return nil, false, nil }
func unmapHuge([]byte) error                 { return ErrUnsupportedPlatform }
func collapse([]byte)                        {}
func pmdMapped([]byte) int64                 { return 0 }
