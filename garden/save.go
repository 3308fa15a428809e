// save.go commits a request's changes to the segment: only the keys the
// request changed, applied onto the latest stored version, so concurrent
// requests of one session keep each other's writes to different keys.

package garden

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// maxSaveAttempts bounds the retries of a save that keeps losing the race
// to other writers of the same session.
const maxSaveAttempts = 64

// saveConflicts counts saves that lost a race and retried, for tests.
var saveConflicts atomic.Int64

// save writes s's changes, if any, to the segment. Called with s.mu held.
//
// The write is a compare-and-swap on the version the changes were made
// against: on a conflict it reads the newer record, applies the changed
// keys (and deletions) onto it and tries again. For one key the last
// writer wins.
func (s *Session) save() error {
	st := s.st
	for _, k := range s.destroy {
		st.seg.Delete(k)
	}
	s.destroy = s.destroy[:0]
	if len(s.changes) == 0 && s.renewFrom == nil {
		return nil
	}
	if !s.stored && s.renewFrom == nil && len(s.base) == 0 && !hasSet(s.changes) {
		s.changes = s.changes[:0] // a new session with nothing in it: nothing to store
		return nil
	}

	cur, curVer, created := s.base, s.version, s.created
	if s.renewFrom != nil {
		// The record may have moved on since it was loaded; build on the
		// latest one.
		var err error
		if cur, curVer, created, err = s.reload(s.renewFrom, cur, created); err != nil {
			return s.gone(err)
		}
	}
	rec := recPool.Get().(*[]byte)
	defer func() {
		if cap(*rec) <= maxPooled {
			recPool.Put(rec)
		}
	}()
	var merged []kv
	for attempt := 0; ; attempt++ {
		now := st.now()
		ttl := st.ttl(created, now)
		if ttl <= 0 {
			// The lifetime ended during the request: the session is over.
			s.reset()
			s.expireCookie = s.hadCookie
			return nil
		}
		merged = merge(merged[:0], cur, s.changes)
		*rec = appendRecord((*rec)[:0], created, merged)
		var v shm.Version
		var err error
		if s.renewFrom != nil {
			var absent shm.Version
			v, err = st.seg.Put(s.key, *rec, shm.PutOptions{TTL: ttl, IfVersion: &absent})
			if err == nil {
				v, merged, err = s.retireOld(v, curVer, cur, created, ttl, merged, rec)
			}
		} else {
			v, err = st.seg.Put(s.key, *rec, shm.PutOptions{TTL: ttl, IfVersion: &curVer})
		}
		if err == nil {
			s.version, s.stored, s.created, s.base = v, true, created, merged
			s.changes, s.renewFrom = s.changes[:0], nil
			s.setCookie, s.expireCookie = true, false
			return nil
		}
		if !errors.Is(err, shm.ErrVersionConflict) || s.renewFrom != nil {
			return fmt.Errorf("garden: saving session: %w", err)
		}
		saveConflicts.Add(1)
		if attempt+1 == maxSaveAttempts {
			return ErrContention
		}
		if cur, curVer, created, err = s.reload(s.key, cur, created); err != nil {
			return s.gone(err)
		}
		backoff(attempt)
	}
}

// retireOld deletes the old id of a renewed session, but only at the
// version the new id was built from: a request that wrote to the old id in
// between moved it on, and its change is carried into the new id (with a
// compare-and-swap on the new id's version) before the old one goes.
func (s *Session) retireOld(v, oldVer shm.Version, cur []kv, created int64, ttl time.Duration, merged []kv, rec *[]byte) (shm.Version, []kv, error) {
	st := s.st
	for attempt := 0; attempt < maxSaveAttempts; attempt++ {
		_, err := st.seg.DeleteIf(s.renewFrom, oldVer)
		if !errors.Is(err, shm.ErrVersionConflict) {
			return v, merged, err
		}
		if cur, oldVer, created, err = s.reload(s.renewFrom, cur, created); err != nil {
			return v, merged, nil // the old id is gone already: nothing to carry over
		}
		merged = merge(merged[:0], cur, s.changes)
		*rec = appendRecord((*rec)[:0], created, merged)
		if v, err = st.seg.Put(s.key, *rec, shm.PutOptions{TTL: ttl, IfVersion: &v}); err != nil {
			return v, merged, err
		}
	}
	return v, merged, ErrContention
}

// reload reads the latest record under key for a save to build on. An
// entry that vanished (expired or evicted) gives the zero version and the
// values the request started from; a deleted one gives ErrSessionGone.
func (s *Session) reload(key []byte, cur []kv, created int64) ([]kv, shm.Version, int64, error) {
	e, found := s.st.seg.GetEntry(nil, key) // rare path: a fresh buffer the result may keep
	switch {
	case !found:
		return cur, shm.Version{}, created, nil
	case e.Deleted:
		return nil, shm.Version{}, 0, ErrSessionGone
	}
	c, vals, err := decodeRecord(e.Value, nil)
	if err != nil {
		s.st.log.Warn("garden: stored session does not decode; overwriting it", "err", ErrCorruptSession)
		return nil, e.Version, created, nil
	}
	return vals, e.Version, c, nil
}

// gone handles a save whose session was deleted underneath it: the
// changes are dropped and the cookie removed.
func (s *Session) gone(err error) error {
	s.reset()
	s.expireCookie = s.hadCookie
	s.setCookie = false
	return err
}

// recPool holds the buffers records are encoded into.
var recPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// backoff spreads out writers that keep conflicting.
func backoff(attempt int) {
	if attempt < 4 {
		runtime.Gosched()
		return
	}
	d := time.Duration(rand.Int64N(int64(time.Microsecond) << min(attempt-4, 10)))
	time.Sleep(d)
}

// merge appends to dst the values of cur with changes applied.
func merge(dst, cur []kv, changes []change) []kv {
	dst = append(dst, cur...)
	for _, c := range changes {
		i := -1
		for j := range dst {
			if string(dst[j].k) == c.k {
				i = j
				break
			}
		}
		switch {
		case c.del && i >= 0:
			dst = append(dst[:i], dst[i+1:]...)
		case !c.del && i >= 0:
			dst[i].raw = c.raw
		case !c.del:
			dst = append(dst, kv{k: []byte(c.k), raw: c.raw})
		}
	}
	return dst
}

func hasSet(changes []change) bool {
	for _, c := range changes {
		if !c.del {
			return true
		}
	}
	return false
}
