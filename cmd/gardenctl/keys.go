// keys.go prints keys, which are arbitrary bytes, so that they can be read
// and pasted back: printable keys as they are, any other key as a quoted Go
// string with escapes ("\x00\xff").

package main

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// displayKey returns key as printed in tables and accepted by parseKey.
func displayKey(key []byte) string {
	if plainKey(key) {
		return string(key)
	}
	return strconv.Quote(string(key))
}

// plainKey reports whether key can be printed as it is: non-empty, valid
// UTF-8 of printable characters without spaces, not starting with a quote.
func plainKey(key []byte) bool {
	if len(key) == 0 || key[0] == '"' || !utf8.Valid(key) {
		return false
	}
	for _, r := range string(key) {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// parseKey turns a key as displayKey prints it back into bytes: a quoted
// string is unquoted, anything else is taken literally.
func parseKey(s string) ([]byte, error) {
	if len(s) > 0 && s[0] == '"' {
		u, err := strconv.Unquote(s)
		if err != nil {
			return nil, usageErrorf("key %s starts with a quote but is not a valid quoted string (%v)", s, err)
		}
		return []byte(u), nil
	}
	return []byte(s), nil
}
