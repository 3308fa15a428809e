// store.go defines Store, which ties a segment, the farm key and the
// janitor together, and the buffers its sessions share.

package garden

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// Store keeps the sessions of one application in a segment shared by every
// worker process of the host. Open one per process and use its Middleware;
// all methods are safe for concurrent use.
type Store struct {
	cfg         Config
	seg         *shm.Segment
	farm        []byte
	hostKey     bool // the farm key is the host key kept in the segment
	mac         *macer
	cookieAttrs string // Path, Domain, HttpOnly, Secure, SameSite of the Set-Cookie header
	log         *slog.Logger
	touchAfter  time.Duration
	jan         *janitor
	scratch     sync.Pool // *scratch
	closeOnce   sync.Once
	closeErr    error
}

// Open attaches to the application's segment (creating it if needed),
// finds the farm key (storing a host key in the segment if none is
// configured and the segment has none yet), and starts the janitor, which
// creates the lock file "<SegmentPath>.janitor" if it is missing. It fails if cfg is invalid,
// the segment cannot be opened (or belongs to another application or
// layout), or the farm key cannot be read.
func Open(cfg Config) (*Store, error) {
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	var o shm.Options
	if c.SegmentOptions != nil {
		o = *c.SegmentOptions
	}
	o.App = c.App
	if c.SegmentSize != 0 {
		o.Size = c.SegmentSize
	}
	seg, err := shm.Open(c.SegmentPath, &o)
	if err != nil {
		return nil, err
	}
	farm, host, err := farmKey(&c, seg)
	if err != nil {
		seg.Close()
		return nil, err
	}
	st := &Store{
		cfg:         c,
		seg:         seg,
		farm:        farm,
		hostKey:     host,
		mac:         newMacer(deriveKey(farm, c.App, "session cookie v1"), c.CookieName),
		log:         c.Logger,
		touchAfter:  min(time.Minute, c.IdleTimeout/10),
		cookieAttrs: cookieAttrs(&c),
	}
	if host {
		st.log.Debug("garden: no farm key configured; using the host key kept in the segment", "segment", c.SegmentPath)
	}
	st.jan, err = startJanitor(st)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return st, nil
}

// Close stops the janitor and detaches from the segment. Sessions in use by
// requests still running fail to save (and say so in the log). The segment
// file stays, with every session in it.
func (st *Store) Close() error {
	st.closeOnce.Do(func() {
		st.jan.stop()
		st.closeErr = st.seg.Close()
	})
	return st.closeErr
}

// Segment returns the store's segment, for adapters and tools that keep
// their own entries next to the sessions. Session records are under keys
// starting with "s/", and keys starting with "garden/" are reserved.
func (st *Store) Segment() *shm.Segment { return st.seg }

// DeriveKey returns a 32-byte key for purpose, derived from the farm key
// and the application name, so that adapters can sign their own cookies
// with a key that every host of the farm shares.
func (st *Store) DeriveKey(purpose string) []byte {
	return deriveKey(st.farm, st.cfg.App, "adapter: "+purpose)
}

// IdleTimeout returns the configured idle timeout, for adapters.
func (st *Store) IdleTimeout() time.Duration { return st.cfg.IdleTimeout }

func (st *Store) now() time.Time { return time.Now() }

// ttlCookie returns how long the cookie of a session created at created
// (Unix ms) should live: to the end of its lifetime.
func (st *Store) ttlCookie(created int64) time.Duration {
	return max(time.Second, time.UnixMilli(created).Add(st.cfg.Lifetime).Sub(st.now()))
}

// scratch holds the buffers a session loads into, pooled across requests.
type scratch struct {
	rec  []byte // the stored record
	vals []kv   // its values, aliasing rec
}

// maxPooled is the largest record buffer kept in the pool.
const maxPooled = 256 << 10

func (st *Store) getScratch() *scratch {
	if b, ok := st.scratch.Get().(*scratch); ok {
		return b
	}
	return &scratch{rec: make([]byte, 0, 4<<10), vals: make([]kv, 0, 16)}
}

func (st *Store) putScratch(b *scratch) {
	if cap(b.rec) > maxPooled {
		return
	}
	clear(b.vals[:cap(b.vals)]) // drop references into rec
	b.rec, b.vals = b.rec[:0], b.vals[:0]
	st.scratch.Put(b)
}
