// cookie.go holds session ids and the session cookie: its binary format,
// its MAC, and the Set-Cookie header garden sends.
//
// A cookie value is the URL-safe base64 (no padding) of
//
//	format  1 byte   cookieFormat
//	id     16 bytes  the session id, from crypto/rand
//	time    8 bytes  the session's shm.Version.Time, big endian
//	node    4 bytes  the session's shm.Version.Node, big endian
//	mac    32 bytes  HMAC-SHA256 under the cookie key of the cookie name, a
//	                 NUL and the 29 bytes above
//
// The cookie key is derived from the farm key and the application name.

package garden

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gardenstate/gardenstate/shm"
)

const (
	idSize       = 16 // bytes of randomness in a session id: 128 bits
	cookieFormat = 1
	cookieBody   = 1 + idSize + 8 + 4
	cookieRaw    = cookieBody + sha256.Size
	// cookieLen is the length of an encoded cookie value.
	cookieLen = (cookieRaw*8 + 5) / 6
	// sessionPrefix starts the segment key of every session.
	sessionPrefix = "s/"
	// idLen is the length of a session id string.
	idLen = (idSize*8 + 5) / 6
)

var (
	b64       = base64.RawURLEncoding
	b64Strict = base64.RawURLEncoding.Strict() // one encoding per value
)

// sessionID is the raw form of a session id.
type sessionID [idSize]byte

func newID() sessionID {
	var id sessionID
	rand.Read(id[:]) // never fails (crypto/rand)
	return id
}

// String returns the id as sessions and OnExpire see it: URL-safe base64.
func (id sessionID) String() string { return b64.EncodeToString(id[:]) }

// appendKey appends the segment key of the session to dst.
func (id sessionID) appendKey(dst []byte) []byte {
	dst = append(dst, sessionPrefix...)
	return b64.AppendEncode(dst, id[:])
}

// idFromKey returns the id string of a session's segment key, and false for
// keys that are not sessions.
func idFromKey(key []byte) (string, bool) {
	if len(key) != len(sessionPrefix)+idLen || string(key[:len(sessionPrefix)]) != sessionPrefix {
		return "", false
	}
	return string(key[len(sessionPrefix):]), true
}

// macer computes cookie MACs with pooled HMAC states.
type macer struct {
	prefix []byte // the cookie name and a NUL, bound into every MAC
	pool   sync.Pool
}

// macState is a keyed HMAC and room for a cookie and its MAC, pooled
// together so that checking or making a cookie allocates nothing more than
// its string.
type macState struct {
	h   hash.Hash
	raw [cookieRaw + 2]byte
	sum [sha256.Size]byte
}

func newMacer(key []byte, name string) *macer {
	m := &macer{prefix: append([]byte(name), 0)}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return m
}

// mac returns the MAC of body, in st.sum.
func (m *macer) mac(st *macState, body []byte) []byte {
	st.h.Reset()
	st.h.Write(m.prefix)
	st.h.Write(body)
	return st.h.Sum(st.sum[:0])
}

// cookieData is what a session cookie says.
type cookieData struct {
	id      sessionID
	version shm.Version
}

// encodeCookie returns the cookie value for d.
func encodeCookie(m *macer, d cookieData) string {
	var b strings.Builder
	b.Grow(cookieLen)
	m.appendCookie(&b, d)
	return b.String()
}

// appendCookie writes the cookie value for d to b.
func (m *macer) appendCookie(b *strings.Builder, d cookieData) {
	st := m.pool.Get().(*macState)
	raw := st.raw[:0]
	raw = append(raw, cookieFormat)
	raw = append(raw, d.id[:]...)
	raw = binary.BigEndian.AppendUint64(raw, d.version.Time)
	raw = binary.BigEndian.AppendUint32(raw, d.version.Node)
	raw = append(raw, m.mac(st, raw)...)
	var out [cookieLen]byte
	b64.Encode(out[:], raw)
	b.Write(out[:])
	m.pool.Put(st)
}

// decodeCookie checks and decodes a cookie value. Anything but a value
// encodeCookie made under the same key and name returns errBadCookie.
func decodeCookie(m *macer, value string) (cookieData, error) {
	var d cookieData
	if len(value) != cookieLen {
		return d, errBadCookie
	}
	var src [cookieLen]byte
	copy(src[:], value)
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	raw := st.raw[:]
	n, err := b64Strict.Decode(raw, src[:])
	if err != nil || n != cookieRaw || raw[0] != cookieFormat {
		return d, errBadCookie
	}
	if !hmac.Equal(m.mac(st, raw[:cookieBody]), raw[cookieBody:cookieRaw]) {
		return d, errBadCookie
	}
	copy(d.id[:], raw[1:1+idSize])
	d.version.Time = binary.BigEndian.Uint64(raw[1+idSize:])
	d.version.Node = binary.BigEndian.Uint32(raw[1+idSize+8:])
	return d, nil
}

// setCookie returns the Set-Cookie header that stores the cookie for d
// for maxAge seconds, or, when d is nil, deletes the cookie.
func (st *Store) setCookie(d *cookieData, maxAge int) string {
	var b strings.Builder
	b.Grow(len(st.cookieAttrs) + cookieLen + 40)
	b.WriteString(st.cfg.CookieName)
	b.WriteByte('=')
	if d != nil {
		st.mac.appendCookie(&b, *d)
		b.WriteString("; Max-Age=")
		var n [20]byte
		b.Write(strconv.AppendInt(n[:0], int64(maxAge), 10))
	} else {
		b.WriteString("; Max-Age=0")
	}
	b.WriteString(st.cookieAttrs)
	return b.String()
}

// cookieAttrs returns the attributes every Set-Cookie of c carries.
func cookieAttrs(c *Config) string {
	var b strings.Builder
	b.WriteString("; Path=")
	b.WriteString(c.CookiePath)
	if c.CookieDomain != "" {
		b.WriteString("; Domain=")
		b.WriteString(c.CookieDomain)
	}
	b.WriteString("; HttpOnly")
	if !c.Insecure {
		b.WriteString("; Secure")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	}
	return b.String()
}
