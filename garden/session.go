// session.go defines Session, a request's view of its session: the values
// loaded from the segment with this request's changes on top.

package garden

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/internal/msgpackcheck"
	"github.com/gardenstate/gardenstate/internal/msgpool"
	"github.com/gardenstate/gardenstate/shm"
)

// Session is the session of one request, returned by FromContext. It is
// loaded from the segment on first use and saved by Middleware when the
// response starts (or the handler returns), once, and only if something
// changed. Its methods are safe for concurrent use by the goroutines of a
// request; it must not be used after the request ends (methods then return
// ErrRequestDone).
//
// Values are encoded with msgpack (github.com/vmihailenco/msgpack/v5):
// Get decodes into whatever dst points to, so a value stored as an int can
// be read into an int64 or a float64, and a struct into a struct with the
// same fields or a map[string]any.
type Session struct {
	mu  sync.Mutex
	st  *Store
	req *http.Request

	loaded  bool
	loadErr error // why the session could not be loaded (ErrUnavailable), once loaded
	done    bool

	id      sessionID
	key     []byte      // segment key of id, in keyBuf unless renewed
	stored  bool        // the segment holds a record under key that we built on
	version shm.Version // version of that record
	created int64       // Unix ms
	base    []kv        // the loaded values; raw slices alias buf
	changes []change    // this request's changes, one per key
	scr     *scratch    // pooled buffers holding the loaded record

	hadCookie    bool     // the request carried a session cookie (valid or not)
	renewFrom    []byte   // key of the record RenewID moves away from
	destroy      [][]byte // keys of records Destroy drops
	setCookie    bool     // a record was saved: send the new cookie
	expireCookie bool     // the session ended: delete the cookie

	// Allocated with the session rather than on their own.
	rw         responseWriter
	keyBuf     [len(sessionPrefix) + idLen]byte
	changesBuf [2]change
}

// change is a key this request set (raw) or deleted (del).
type change struct {
	k   string
	raw []byte
	del bool
}

type ctxKey struct{}

// FromContext returns the session of the request whose context is ctx, or
// nil if the request did not pass through Store.Middleware.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// use locks s, loads it if needed and reports whether it may be used. The
// caller unlocks s.mu.
func (s *Session) use() error {
	s.mu.Lock()
	if s.done {
		return ErrRequestDone
	}
	if !s.loaded {
		s.loadErr = s.load()
	}
	return s.loadErr
}

// lookup returns the raw value of k: this request's change, or the loaded
// value.
func (s *Session) lookup(k string) ([]byte, bool) {
	for i := range s.changes {
		if c := &s.changes[i]; c.k == k {
			return c.raw, !c.del
		}
	}
	for i := range s.base {
		if string(s.base[i].k) == k {
			return s.base[i].raw, true
		}
	}
	return nil, false
}

// Get decodes the value of key into dst, which must be a non-nil pointer,
// and reports whether key was present. An absent key leaves dst alone.
func (s *Session) Get(key string, dst any) (bool, error) {
	err := s.use()
	defer s.mu.Unlock()
	if err != nil {
		return false, err
	}
	raw, ok := s.lookup(key)
	if !ok {
		return false, nil
	}
	// The value may have come from another host or a dump file: check its
	// structure before the decoder trusts its lengths and nesting.
	if err := msgpackcheck.Check(raw, maxValueNesting); err != nil {
		return true, fmt.Errorf("garden: Get %q: %w", key, err)
	}
	d := decPool.Get().(*pooledDecoder)
	d.rd.Reset(raw)
	d.dec.Reset(&d.rd)
	err = d.dec.Decode(dst)
	d.rd.Reset(nil)
	decPool.Put(d)
	if err != nil {
		return true, fmt.Errorf("garden: Get %q: %w", key, err)
	}
	return true, nil
}

// maxValueNesting bounds how deep a stored value's containers may nest.
const maxValueNesting = 64

// decPool holds msgpack decoders with their readers, for Get.
var decPool = sync.Pool{New: func() any {
	d := &pooledDecoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}}

type pooledDecoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
}

// encoders hold msgpack encoders with their buffers, for Set.
var encoders = msgpool.New(64 << 10)

// Set stores v under key. v is encoded at once, so it may be changed after
// Set returns; a value msgpack cannot encode is an error and changes
// nothing. Setting a key to the value it already has is not a change.
func (s *Session) Set(key string, v any) error {
	e := encoders.Get()
	defer encoders.Put(e)
	if err := e.Encode(v); err != nil {
		return fmt.Errorf("garden: Set %q: %w", key, err)
	}
	err := s.use()
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	// Only a changed value is copied out of the pooled buffer.
	if old, ok := s.lookup(key); ok && bytes.Equal(old, e.Buf.Bytes()) {
		return nil
	}
	s.change(change{k: key, raw: bytes.Clone(e.Buf.Bytes())})
	return nil
}

// change records c, replacing an earlier change of the same key.
func (s *Session) change(c change) {
	for i := range s.changes {
		if s.changes[i].k == c.k {
			s.changes[i] = c
			return
		}
	}
	s.changes = append(s.changes, c)
}

// Delete removes key from the session. Deleting an absent key is not a
// change.
func (s *Session) Delete(key string) {
	if s.use() == nil {
		if _, ok := s.lookup(key); ok {
			s.change(change{k: key, del: true})
		}
	}
	s.mu.Unlock()
}

// Keys returns the session's keys, sorted.
func (s *Session) Keys() []string {
	var keys []string
	if s.use() == nil {
		for _, e := range s.base {
			if _, ok := s.lookup(string(e.k)); ok {
				keys = append(keys, string(e.k))
			}
		}
		for _, c := range s.changes {
			if !c.del && !slices.Contains(keys, c.k) {
				keys = append(keys, c.k)
			}
		}
	}
	s.mu.Unlock()
	slices.Sort(keys)
	return keys
}

// ID returns the session's id: 22 characters of URL-safe base64 (128 random
// bits). A session that was not saved yet has an id too, which it keeps
// when it is saved at the end of the request.
func (s *Session) ID() string {
	s.use()
	defer s.mu.Unlock()
	return s.id.String()
}

// IsNew reports whether the session was not found in the segment (no
// cookie, an expired or destroyed session, or a forged cookie) and was not
// saved yet.
func (s *Session) IsNew() bool {
	s.use()
	defer s.mu.Unlock()
	return !s.stored && s.renewFrom == nil
}

// RenewID gives the session a new id and keeps its data; when the request
// ends the data is stored under the new id and the old id is deleted, so a
// cookie an attacker planted before login (session fixation) is worthless
// after it. Call it whenever the user's privileges change, such as at
// login. A concurrent request of the old id that saves after the renewal
// loses its changes (ErrSessionGone).
func (s *Session) RenewID() error {
	err := s.use()
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.stored && s.renewFrom == nil {
		s.renewFrom = s.key
	}
	s.setID(newID())
	s.stored = false
	return nil
}

// Destroy ends the session: when the request ends its record is deleted
// and the cookie removed. Values set after Destroy start a new session,
// with a new id.
func (s *Session) Destroy() error {
	err := s.use()
	defer s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.stored {
		s.destroy = append(s.destroy, s.key)
	}
	if s.renewFrom != nil {
		s.destroy = append(s.destroy, s.renewFrom)
	}
	s.reset()
	s.expireCookie = s.hadCookie || s.setCookie
	s.setCookie = false
	return nil
}

// reset makes s a new, empty session with a new id.
func (s *Session) reset() {
	s.setID(newID())
	s.stored = false
	s.version = shm.Version{}
	s.created = s.st.now().UnixMilli()
	s.base = s.base[:0]
	s.changes = s.changes[:0]
	s.renewFrom = nil
}

func (s *Session) setID(id sessionID) {
	s.id = id
	if s.renewFrom == nil && len(s.destroy) == 0 {
		s.key = id.appendKey(s.keyBuf[:0])
	} else {
		s.key = id.appendKey(nil) // keyBuf still holds the old key
	}
}

// Save saves the session's changes now instead of when the response
// starts, and returns what went wrong, which Middleware would only log:
// ErrSessionGone, ErrContention, or an error of the segment (such as
// shm.ErrTooLarge). The cookie is still set when the response starts.
func (s *Session) Save() error {
	err := s.use()
	defer s.mu.Unlock()
	if err != nil || !s.dirty() {
		return err
	}
	return s.save()
}

// WaitReplicated saves the session now if it changed, then waits until the
// host's gardend reports every change made so far on this host (this
// session's included) delivered to its peers, or ctx ends. Use it where a
// write must survive the loss of this host, for example before confirming
// a payment. On a host without gardend it waits for ctx, so give ctx a
// deadline.
func (s *Session) WaitReplicated(ctx context.Context) error {
	if err := s.Save(); err != nil {
		return err
	}
	seg := s.st.seg
	if err := seg.WaitAcked(ctx, seg.LastSeq()); err != nil {
		return fmt.Errorf("garden: waiting for replication: %w", err)
	}
	return nil
}

// dirty reports whether saving s would change the segment.
func (s *Session) dirty() bool {
	return len(s.changes) > 0 || s.renewFrom != nil || len(s.destroy) > 0
}
