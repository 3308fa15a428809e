// Package farmkey reads the farm key: the one secret every host of a farm
// shares, 32 random bytes written as standard base64 on one line (as
// `openssl rand -base64 32` or `gardend keygen` print it). garden and
// replication both read it, and wrap these errors in their own.
package farmkey

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// Size is the size of a farm key in bytes.
const Size = 32

// Parse decodes a farm key; white space around it is ignored. Its errors
// say what is wrong, for the caller to wrap.
func Parse(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return nil, fmt.Errorf("empty")
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %v", err)
	}
	if len(k) != Size {
		return nil, fmt.Errorf("%d bytes, need %d", len(k), Size)
	}
	return k, nil
}

// Read reads and parses a farm key file; errors name the file.
func Read(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}
