//go:build !linux

// term_other.go stands in for terminal detection where segments do not
// exist (shm needs Linux): nothing is a terminal, so no progress bars.

package main

import "io"

// isTerminal reports false: gardenctl draws no progress bars here.
func isTerminal(io.Writer) bool { return false }
