package garden

// cookie_test.go checks the cookie format: round trips, tampering, and a
// fuzz target for the decoder.

import (
	"strings"
	"testing"

	"github.com/gardenstate/gardenstate/shm"
)

func testMacer() *macer {
	return newMacer(deriveKey(testKey, "test", "session cookie v1"), "garden_session")
}

func TestCookieRoundTrip(t *testing.T) {
	m := testMacer()
	for _, d := range []cookieData{
		{id: newID()},
		{id: newID(), version: shm.Version{Time: 1 << 60, Node: 7}},
		{id: sessionID{}, version: shm.Version{Time: ^uint64(0), Node: ^uint32(0)}},
	} {
		v := encodeCookie(m, d)
		if len(v) != cookieLen || strings.ContainsAny(v, "+/=;, \"") {
			t.Errorf("cookie %q: length %d, want %d, URL-safe", v, len(v), cookieLen)
		}
		got, err := decodeCookie(m, v)
		if err != nil || got != d {
			t.Errorf("decode(encode(%v)) = %v, %v", d, got, err)
		}
	}
}

func TestCookieTampering(t *testing.T) {
	m := testMacer()
	v := encodeCookie(m, cookieData{id: newID(), version: shm.Version{Time: 12345 << 16, Node: 9}})
	// Every change of any one character is caught.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range v {
		for _, c := range alphabet {
			if byte(c) == v[i] {
				continue
			}
			w := v[:i] + string(c) + v[i+1:]
			if _, err := decodeCookie(m, w); err == nil {
				t.Fatalf("changed character %d to %c: accepted", i, c)
			}
		}
	}
	// Another cookie name or key does not accept it.
	if _, err := decodeCookie(newMacer(deriveKey(testKey, "test", "session cookie v1"), "other"), v); err == nil {
		t.Error("cookie accepted under another name")
	}
	if _, err := decodeCookie(newMacer(deriveKey(testKey, "other-app", "session cookie v1"), "garden_session"), v); err == nil {
		t.Error("cookie accepted for another app")
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		s := id.String()
		if len(s) != idLen || seen[s] {
			t.Fatalf("id %q: length %d or repeated", s, len(s))
		}
		seen[s] = true
		got, ok := idFromKey(id.appendKey(nil))
		if !ok || got != s {
			t.Fatalf("idFromKey(%q) = %q, %v", id.appendKey(nil), got, ok)
		}
	}
	for _, k := range []string{"", "s/", "garden/farm-key", "x/AAAAAAAAAAAAAAAAAAAAAA", "s/AAAAAAAAAAAAAAAAAAAAA"} {
		if _, ok := idFromKey([]byte(k)); ok {
			t.Errorf("idFromKey(%q) accepted", k)
		}
	}
}

func FuzzDecodeCookie(f *testing.F) {
	m := testMacer()
	good := encodeCookie(m, cookieData{id: newID(), version: shm.Version{Time: 99 << 16, Node: 3}})
	for _, s := range []string{
		"", "=", good, good[:len(good)-1], good + "=", strings.Repeat("A", cookieLen), strings.Repeat("_", cookieLen),
		"\x00\xff", strings.Repeat("é", cookieLen/2), good[:40] + "!" + good[41:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := decodeCookie(m, v)
		if err != nil {
			if err != errBadCookie {
				t.Fatalf("error %v is not errBadCookie", err)
			}
			return
		}
		// Only a value encodeCookie made decodes, and it re-encodes to itself.
		if again := encodeCookie(m, d); again != v {
			t.Fatalf("decoded %q to %v, which encodes to %q", v, d, again)
		}
	})
}
