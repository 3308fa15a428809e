// gorillastore.go implements sessions.Store on a garden segment.

package gorillastore

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/gob"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/shm"
)

// Store is a sessions.Store on a garden segment. Its methods are safe for
// concurrent use; change Options only before use.
type Store struct {
	seg    *shm.Segment
	idle   time.Duration
	codecs []securecookie.Codec
	// Options are the defaults of new sessions: Path "/", MaxAge 30 days
	// (gorilla's default), HttpOnly, Secure, SameSite=Lax.
	Options *sessions.Options
}

var _ sessions.Store = (*Store)(nil)

// defaultMaxAge is gorilla's default session age: 30 days.
const defaultMaxAge = 86400 * 30

// New returns a Store keeping sessions in the segment of gs. keyPairs are
// gorilla's hash and block key pairs (see securecookie.CodecsFromPairs);
// without them the cookie is signed with a key derived from the farm key.
// gs must stay open while the Store is used.
func New(gs *garden.Store, keyPairs ...[]byte) *Store {
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{gs.DeriveKey("gorilla/sessions cookie")}
	}
	s := &Store{
		seg:    gs.Segment(),
		idle:   gs.IdleTimeout(),
		codecs: securecookie.CodecsFromPairs(keyPairs...),
		Options: &sessions.Options{
			Path: "/", MaxAge: defaultMaxAge, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
		},
	}
	s.MaxAge(defaultMaxAge)
	return s
}

// MaxAge sets the age of new sessions, and of the cookies the codecs
// accept, in seconds.
func (s *Store) MaxAge(age int) {
	s.Options.MaxAge = age
	for _, c := range s.codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(age)
		}
	}
}

func key(name, id string) []byte { return []byte("gorilla/" + name + "/" + id) }

// Get returns the session called name for the request, from the request's
// registry so that every Get in one request sees the same session.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session called name of the request's cookie, or a new
// one (IsNew) if the cookie is missing, forged, expired or malformed, or its
// session is gone. The error is always nil: a bad cookie is not the
// application's problem.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := *s.Options
	session.Options = &opts
	session.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return session, nil
	}
	var id string
	if securecookie.DecodeMulti(name, c.Value, &id, s.codecs...) != nil || id == "" {
		return session, nil
	}
	b, ok := s.seg.Get(nil, key(name, id))
	if !ok {
		return session, nil
	}
	values := map[any]any{}
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&values) != nil {
		return session, nil
	}
	session.ID, session.Values, session.IsNew = id, values, false
	return session, nil
}

// Save stores the session and sets its cookie; with Options.MaxAge < 0 it
// deletes the session and the cookie.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	name := session.Name()
	if session.Options.MaxAge < 0 {
		if session.ID != "" {
			s.seg.Delete(key(name, session.ID))
		}
		http.SetCookie(w, sessions.NewCookie(name, "", session.Options))
		return nil
	}
	if session.ID == "" {
		var id [24]byte
		rand.Read(id[:])
		session.ID = base64.RawURLEncoding.EncodeToString(id[:])
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(session.Values); err != nil {
		return fmt.Errorf("gorillastore: encoding session %q: %w", name, err)
	}
	ttl := time.Duration(session.Options.MaxAge) * time.Second
	if ttl == 0 {
		ttl = s.idle
	}
	if err := s.seg.Set(key(name, session.ID), buf.Bytes(), ttl); err != nil {
		return fmt.Errorf("gorillastore: saving session %q: %w", name, err)
	}
	encoded, err := securecookie.EncodeMulti(name, session.ID, s.codecs...)
	if err != nil {
		return fmt.Errorf("gorillastore: encoding cookie %q: %w", name, err)
	}
	http.SetCookie(w, sessions.NewCookie(name, encoded, session.Options))
	return nil
}
