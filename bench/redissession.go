// redissession.go is the Redis-backed session store of the http suite's
// "redis" variant, built the way such stores usually are: the session is
// one msgpack blob under its cookie's id, read with one GET on first use
// and written back with one SET (sliding expiry) when the response starts,
// if it changed.

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

// redisSessions is the store. Safe for concurrent use.
type redisSessions struct {
	c      *redis.Client
	cookie string
	ttl    time.Duration
	log    *slog.Logger
}

// redisSession is one request's session: the decoded map of raw msgpack
// values, loaded on first use.
type redisSession struct {
	rs      *redisSessions
	req     *http.Request
	mu      sync.Mutex
	id      string
	loaded  bool
	isNew   bool
	changed bool
	vals    map[string]msgpack.RawMessage
}

type redisCtxKey struct{}

func redisFromContext(ctx context.Context) *redisSession {
	s, _ := ctx.Value(redisCtxKey{}).(*redisSession)
	return s
}

// Middleware gives every request a session and saves it when the response
// starts, setting the cookie for a new session.
func (rs *redisSessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &redisSession{rs: rs}
		if c, err := r.Cookie(rs.cookie); err == nil && len(c.Value) == 32 {
			if _, err := hex.DecodeString(c.Value); err == nil {
				s.id = c.Value
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), redisCtxKey{}, s))
		s.req = r
		sw := &savingWriter{ResponseWriter: w, s: s}
		next.ServeHTTP(sw, r)
		if !sw.started {
			sw.start()
		}
	})
}

func (s *redisSession) load() error {
	if s.loaded {
		return nil
	}
	s.loaded = true
	if s.id != "" {
		blob, err := s.rs.c.Get(s.req.Context(), "sess:"+s.id).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			if err := msgpack.Unmarshal(blob, &s.vals); err == nil {
				return nil
			}
		}
	}
	var b [16]byte
	rand.Read(b[:])
	s.id, s.isNew, s.vals = hex.EncodeToString(b[:]), true, map[string]msgpack.RawMessage{}
	return nil
}

// Get decodes key's value into dst.
func (s *redisSession) Get(key string, dst any) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return false, err
	}
	raw, ok := s.vals[key]
	if !ok {
		return false, nil
	}
	return true, msgpack.Unmarshal(raw, dst)
}

// Set stores v under key.
func (s *redisSession) Set(key string, v any) error {
	raw, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(); err != nil {
		return err
	}
	s.vals[key] = raw
	s.changed = true
	return nil
}

// save writes the session back and returns the cookie to set, if any.
func (s *redisSession) save() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.changed {
		return "", nil
	}
	blob, err := msgpack.Marshal(s.vals)
	if err != nil {
		return "", err
	}
	// Like garden, save even if the client has gone (wrk drops its
	// connections mid-request when its time is up).
	if err := s.rs.c.Set(context.WithoutCancel(s.req.Context()), "sess:"+s.id, blob, s.rs.ttl).Err(); err != nil {
		return "", err
	}
	if !s.isNew {
		return "", nil
	}
	return fmt.Sprintf("%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax", s.rs.cookie, s.id, int(s.rs.ttl.Seconds())), nil
}

// savingWriter saves the session just before the response starts.
type savingWriter struct {
	http.ResponseWriter
	s       *redisSession
	started bool
}

func (w *savingWriter) start() {
	w.started = true
	cookie, err := w.s.save()
	if err != nil {
		w.s.rs.log.Warn("session not saved", "err", err)
	}
	if cookie != "" {
		w.Header().Add("Set-Cookie", cookie)
	}
}

func (w *savingWriter) WriteHeader(code int) {
	if !w.started {
		w.start()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *savingWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.start()
	}
	return w.ResponseWriter.Write(b)
}
