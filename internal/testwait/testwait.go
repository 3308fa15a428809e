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
	if !Until(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Until calls cond until it returns true or d has passed, and reports
// which: for a wait whose end is measured rather than required.
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
