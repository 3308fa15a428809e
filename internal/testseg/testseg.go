// Package testseg gives tests and benchmarks a place for segment files.
package testseg

import (
	"os"
	"testing"
)

// Dir is a fresh directory for segments that is removed when t ends: in
// /dev/shm when there is one, where production segments live (tmpfs, huge
// pages), else t's temporary directory.
func Dir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "gardenstate-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
