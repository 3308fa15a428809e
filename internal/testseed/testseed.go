// Package testseed gives randomized tests of this module their seed: a new
// one each run, or GARDEN_SEED to replay a failure. The seed is logged.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Seed returns GARDEN_SEED when set, else a fresh seed, and logs it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GARDEN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GARDEN_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (GARDEN_SEED=%d replays)", seed, seed)
	return seed
}
