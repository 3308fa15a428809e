// load.go loads a request's session from the segment: the cookie check,
// the read-your-writes wait across hosts, the lifetime check and the
// sliding idle deadline.

package garden

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// load reads the session named by the request's cookie, or starts a new
// one. Whatever is wrong with the cookie or the stored record gives a new
// session; the only failure is a session that cannot be read now
// (ErrUnavailable). Called with s.mu held.
func (s *Session) load() error {
	s.loaded = true
	st := s.st
	now := st.now()
	s.created = now.UnixMilli()
	// A browser may send several cookies of the name (for other paths or
	// domains): take the first that is ours.
	var cd cookieData
	found := false
	for value := range cookieValues(s.req, st.cfg.CookieName) {
		s.hadCookie = true
		if d, err := decodeCookie(st.mac, value); err == nil {
			cd, found = d, true
			break
		}
	}
	if !found {
		if s.hadCookie {
			st.log.Debug("garden: ignoring bad session cookie", "remote", s.req.RemoteAddr)
		}
		s.setID(newID())
		return nil
	}
	key := cd.id.appendKey(s.keyBuf[:0])
	s.scr = st.getScratch()
	e, found, err := st.seg.Lookup(s.scr.rec[:0], key)
	if errors.Is(err, shm.ErrLockTimeout) {
		st.log.Warn("garden: session cannot be read now", "err", err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if st.cfg.Freshness != nil && !cd.version.IsZero() && (!found || e.Version.Less(cd.version)) &&
		now.Before(cd.version.Wall().Add(st.cfg.Lifetime)) {
		// The cookie has seen a newer version than this host holds: another
		// host wrote it and replication has not caught up. Wait a bounded
		// time for it, then serve whatever is here.
		ctx, cancel := context.WithTimeout(s.req.Context(), st.cfg.FreshnessTimeout)
		if err := st.cfg.Freshness(ctx, key, cd.version); err != nil {
			st.log.Debug("garden: freshness wait failed, serving the local copy", "err", err, "want", cd.version)
		}
		cancel()
		if e, found, err = st.seg.Lookup(s.scr.rec[:0], key); errors.Is(err, shm.ErrLockTimeout) {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if found && cap(e.Value) > cap(s.scr.rec) {
		s.scr.rec = e.Value[:0] // keep the grown buffer for the pool
	}
	if !found || e.Deleted {
		s.setID(newID())
		return nil
	}
	created, vals, err := decodeRecord(e.Value, s.scr.vals[:0])
	if cap(vals) > cap(s.scr.vals) {
		s.scr.vals = vals[:0]
	}
	if err != nil {
		st.log.Warn("garden: stored session does not decode; starting a new one", "err", ErrCorruptSession)
		s.setID(newID())
		return nil
	}
	ttl := st.ttl(created, now)
	if ttl <= 0 {
		// Past its lifetime: make the entry expire now, so that the janitor
		// reports it, and start afresh.
		st.seg.Touch(key, time.Nanosecond)
		s.setID(newID())
		return nil
	}
	s.id, s.key, s.stored, s.version, s.created, s.base = cd.id, key, true, e.Version, created, vals
	// Slide the idle deadline, but only when it moved enough to matter, so
	// that reads do not write to the segment on every request.
	if !e.Expires.IsZero() && now.Add(ttl).Sub(e.Expires) > st.touchAfter {
		st.seg.Touch(key, ttl)
	}
	return nil
}

// ttl returns how long a session created at created (Unix ms) may live
// from now: the idle timeout, cut short by the lifetime.
func (st *Store) ttl(created int64, now time.Time) time.Duration {
	left := time.UnixMilli(created).Add(st.cfg.Lifetime).Sub(now)
	return min(st.cfg.IdleTimeout, left)
}

// cookieValues yields the values of the request's cookies called name,
// without the allocations of http.Request.Cookies.
func cookieValues(r *http.Request, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range r.Header["Cookie"] {
			for len(line) > 0 {
				var part string
				part, line, _ = strings.Cut(line, ";")
				k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
				if !ok || k != name {
					continue
				}
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if !yield(v) {
					return
				}
			}
		}
	}
}
