package shm

// child_test.go lets tests run parts of themselves as separate processes
// (see internal/childproc): memory mapped from a file is invisible to the
// race detector, so multi-process behaviour is tested with real processes.

import (
	"os"
	"testing"

	"github.com/gardenstate/gardenstate/internal/childproc"
)

var childRoles = map[string]func() int{}

func TestMain(m *testing.M) {
	childproc.Main(childRoles)
	os.Exit(m.Run())
}

type child = childproc.Child

func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	return childproc.Start(t, role, env...)
}

var childFail = childproc.Fail
