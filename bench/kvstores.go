// kvstores.go puts the stores the kv suite compares behind one small
// interface: a gardenstate segment, a Go map behind a sync.RWMutex, Redis
// (go-redis) and memcached (gomemcache).

package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/gardenstate/gardenstate/shm"
)

// kvStore is a byte key-value store under test. Get appends the value to
// dst; every implementation copies the value out, as a session read must.
// Safe for concurrent use.
type kvStore interface {
	Get(dst, key []byte) ([]byte, bool, error)
	Set(key, value []byte) error
	// Load stores many pairs quickly (pipelined where the store can).
	Load(keys [][]byte, value []byte) error
}

// Subjects of the kv and procs suites.
const (
	subjGarden    = "gardenstate"
	subjMap       = "map+RWMutex"
	subjRedis     = "redis"
	subjMemcached = "memcached"
)

// segmentOptions sizes a segment for keys values of valSize bytes: twice
// the records' size, since a stripe keeps a quarter of its arena free and
// stripes fill unevenly, with at least 64 keys per stripe on average so
// that the unevenness stays small. The index is sized for records of this
// size.
func segmentOptions(keys, valSize int) *shm.Options {
	rec := (56 + 16 + valSize + 7) &^ 7 // record header, key, value, aligned
	size := int64(keys)*int64(2*rec+16) + 32<<20
	size = (size + 1<<20 - 1) &^ (1<<20 - 1)
	stripes := 1024
	for stripes > 16 && keys/stripes < 64 {
		stripes /= 2
	}
	return &shm.Options{Size: size, MaxValue: max(valSize, 16<<10), AvgEntrySize: max(64, rec), Stripes: stripes}
}

// shmStore is a gardenstate segment.
type shmStore struct{ seg *shm.Segment }

func (s shmStore) Get(dst, key []byte) ([]byte, bool, error) {
	v, ok := s.seg.Get(dst, key)
	return v, ok, nil
}

func (s shmStore) Set(key, value []byte) error { return s.seg.Set(key, value, 0) }

func (s shmStore) Load(keys [][]byte, value []byte) error {
	for _, k := range keys {
		if err := s.seg.Set(k, value, 0); err != nil {
			return err
		}
	}
	return nil
}

// mapStore is what a single process would use: a map behind a
// sync.RWMutex. Values are copied in and out, like the segment's.
type mapStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newMapStore(keys int) *mapStore { return &mapStore{m: make(map[string][]byte, keys)} }

func (s *mapStore) Get(dst, key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	v, ok := s.m[string(key)]
	dst = append(dst, v...)
	s.mu.RUnlock()
	return dst, ok, nil
}

func (s *mapStore) Set(key, value []byte) error {
	v := append([]byte(nil), value...)
	s.mu.Lock()
	s.m[string(key)] = v
	s.mu.Unlock()
	return nil
}

func (s *mapStore) Load(keys [][]byte, value []byte) error {
	for _, k := range keys {
		s.Set(k, value)
	}
	return nil
}

// redisStore talks to a redis-server through go-redis's connection pool.
type redisStore struct{ c *redis.Client }

func newRedisStore(addr string, conns int) redisStore {
	return redisStore{redis.NewClient(&redis.Options{Addr: addr, PoolSize: conns, MinIdleConns: conns,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})}
}

func (s redisStore) Get(dst, key []byte) ([]byte, bool, error) {
	v, err := s.c.Get(context.Background(), string(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, err
	}
	return append(dst, v...), true, nil
}

func (s redisStore) Set(key, value []byte) error {
	return s.c.Set(context.Background(), string(key), value, 0).Err()
}

func (s redisStore) Load(keys [][]byte, value []byte) error {
	ctx := context.Background()
	for i := 0; i < len(keys); i += 1000 {
		pipe := s.c.Pipeline()
		for _, k := range keys[i:min(i+1000, len(keys))] {
			pipe.Set(ctx, string(k), value, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// memcachedStore talks to memcached through gomemcache.
type memcachedStore struct{ c *memcache.Client }

func newMemcachedStore(addr string, conns int) memcachedStore {
	c := memcache.New(addr)
	c.MaxIdleConns = conns
	c.Timeout = 10 * time.Second
	return memcachedStore{c}
}

func (s memcachedStore) Get(dst, key []byte) ([]byte, bool, error) {
	it, err := s.c.Get(string(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, err
	}
	return append(dst, it.Value...), true, nil
}

func (s memcachedStore) Set(key, value []byte) error {
	return s.c.Set(&memcache.Item{Key: string(key), Value: value})
}

// Load sets from 16 goroutines: gomemcache has no pipelining.
func (s memcachedStore) Load(keys [][]byte, value []byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < len(keys); i += 16 {
				if err := s.Set(keys[i], value); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
