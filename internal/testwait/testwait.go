// Package testwait is how tests of this module wait for something to
// happen: they poll a condition against a deadline rather than sleep for a
// guessed time.
package testwait

import (
	"testing"
	"time"
)

// For calls cond until it returns true, failing the test if that has not
// happened within d. what names the condition in the failure.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}
