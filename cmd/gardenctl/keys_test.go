package main

// keys_test.go checks that every key prints in a form that reads back to
// the same bytes.

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestDisplayKey(t *testing.T) {
	cases := map[string]string{
		"sess-abc":     "sess-abc",
		"Xy3kq9_-":     "Xy3kq9_-",
		"héllo":        "héllo",
		"":             `""`,
		"a b":          `"a b"`,
		"\x00\xff":     `"\x00\xff"`,
		`"quoted"`:     `"\"quoted\""`,
		"tab\there":    `"tab\there"`,
		"back\\slash":  `back\slash`,
		"\u200bhidden": `"\u200bhidden"`,
	}
	for in, want := range cases {
		if got := displayKey([]byte(in)); got != want {
			t.Errorf("displayKey(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		k := make([]byte, rng.IntN(12))
		for i := range k {
			k[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				k[i] = 'a' + byte(rng.IntN(26))
			}
		}
		back, err := parseKey(displayKey(k))
		if err != nil || !bytes.Equal(back, k) {
			t.Fatalf("key %q printed as %s reads back as %q (%v)", k, displayKey(k), back, err)
		}
	}
}
