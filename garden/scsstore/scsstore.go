// scsstore.go implements scs.Store, scs.CtxStore and scs.IterableStore on
// a garden segment.

package scsstore

import (
	"context"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/shm"
)

// prefix starts the segment key of every scs session.
const prefix = "scs/"

// Store is an scs.Store, scs.CtxStore and scs.IterableStore on a garden
// segment. It is safe for concurrent use.
type Store struct {
	seg *shm.Segment
}

var (
	_ scs.Store         = (*Store)(nil)
	_ scs.CtxStore      = (*Store)(nil)
	_ scs.IterableStore = (*Store)(nil)
)

// New returns a Store that keeps scs sessions in the segment of gs. gs
// must stay open while the Store is used.
func New(gs *garden.Store) *Store { return &Store{seg: gs.Segment()} }

func key(token string) []byte { return []byte(prefix + token) }

// Find returns the data of the session token, and false if there is none
// (never saved, expired, deleted, or a token too long to be one of scs's).
func (s *Store) Find(token string) ([]byte, bool, error) {
	b, ok := s.seg.Get(nil, key(token))
	return b, ok, nil
}

// Commit stores the data of the session token until expiry, replacing
// what was there.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl <= 0 {
		return s.Delete(token)
	}
	return s.seg.Set(key(token), b, ttl)
}

// Delete removes the session token; an absent one is not an error.
func (s *Store) Delete(token string) error {
	s.seg.Delete(key(token))
	return nil
}

// All returns the data of every live scs session, by token.
func (s *Store) All() (map[string][]byte, error) {
	all := map[string][]byte{}
	for i := range s.seg.Stripes() {
		err := s.seg.Range(i, func(e shm.Entry) bool {
			if !e.Deleted && strings.HasPrefix(string(e.Key), prefix) {
				all[string(e.Key[len(prefix):])] = e.Value
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return all, nil
}

// FindCtx is Find; the segment never blocks on the network.
func (s *Store) FindCtx(_ context.Context, token string) ([]byte, bool, error) { return s.Find(token) }

// CommitCtx is Commit.
func (s *Store) CommitCtx(_ context.Context, token string, b []byte, expiry time.Time) error {
	return s.Commit(token, b, expiry)
}

// DeleteCtx is Delete.
func (s *Store) DeleteCtx(_ context.Context, token string) error { return s.Delete(token) }

// AllCtx is All.
func (s *Store) AllCtx(_ context.Context) (map[string][]byte, error) { return s.All() }
