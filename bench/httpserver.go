// httpserver.go is the server the http suite loads: this binary in the
// "httpserver" child mode runs garden/prefork with N workers, each serving
// one handler that reads and increments a counter in a session padded to
// about 1 KiB. Only where the session lives changes between variants:
// nowhere (-store none), a garden segment (garden), or Redis (redis).

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/garden/prefork"
)

// Session stores of the HTTP server.
const (
	storeNone   = "none"
	storeGarden = "garden"
	storeRedis  = "redis"
)

// httpServerConfig configures the server child.
type httpServerConfig struct {
	Store     string `json:"store"`
	Workers   int    `json:"workers"`
	Segment   string `json:"segment"`    // garden
	RedisAddr string `json:"redis_addr"` // redis
	PadBytes  int    `json:"pad_bytes"`
}

// sessionValues is what the handler uses of a session: the methods of
// *garden.Session it needs, which every variant provides.
type sessionValues interface {
	Get(key string, dst any) (bool, error)
	Set(key string, v any) error
}

// counterHandler is the one handler of every variant: it reads the
// session's counter, stores the padding in a new session, increments the
// counter and answers it as JSON.
func counterHandler(pad []byte, session func(*http.Request) sessionValues) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session(r)
		var n int64
		found, err := s.Get("count", &n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !found {
			if err := s.Set("pad", pad); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		n++
		if err := s.Set("count", n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"count\":%d}\n", n)
	})
}

// noSession is the "no sessions" variant: nothing is kept.
type noSession struct{}

func (noSession) Get(string, any) (bool, error) { return false, nil }
func (noSession) Set(string, any) error         { return nil }

// newServerHandler builds the handler of one worker and what to close
// when the worker stops.
func newServerHandler(c httpServerConfig, log *slog.Logger) (http.Handler, func(), error) {
	pad := make([]byte, c.PadBytes)
	for i := range pad {
		pad[i] = byte('a' + i%26)
	}
	mux := http.NewServeMux()
	switch c.Store {
	case storeNone:
		mux.Handle("POST /incr", counterHandler(pad, func(*http.Request) sessionValues { return noSession{} }))
		return mux, func() {}, nil
	case storeGarden:
		st, err := garden.Open(garden.Config{App: "bench-http", SegmentPath: c.Segment, Insecure: true, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		mux.Handle("POST /incr", counterHandler(pad, func(r *http.Request) sessionValues { return garden.FromContext(r.Context()) }))
		return st.Middleware(mux), func() { st.Close() }, nil
	case storeRedis:
		rc := redis.NewClient(&redis.Options{Addr: c.RedisAddr, PoolSize: 256})
		rs := &redisSessions{c: rc, cookie: "bench_session", ttl: 20 * time.Minute, log: log}
		mux.Handle("POST /incr", counterHandler(pad, func(r *http.Request) sessionValues { return redisFromContext(r.Context()) }))
		return rs.Middleware(mux), func() { rc.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", c.Store)
}

// httpServerChild runs the prefork parent (which prints "listening ADDR"
// once every worker is ready) or, in a worker, one worker.
func httpServerChild(config []byte) int {
	var c httpServerConfig
	if !readChildConfig(config, &c) {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var closeFn func()
	err := prefork.Run(context.Background(), prefork.Config{
		Addr: "127.0.0.1:0", Workers: c.Workers, ShutdownTimeout: 5 * time.Second, Logger: log,
		OnReady: func(a net.Addr) { fmt.Printf("listening %s\n", a) },
	}, func() (*http.Server, error) {
		h, closer, err := newServerHandler(c, log)
		if err != nil {
			return nil, err
		}
		closeFn = closer
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, nil
	})
	if closeFn != nil {
		closeFn()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "http server:", err)
		return 1
	}
	return 0
}
