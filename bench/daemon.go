// daemon.go runs the external servers the baselines talk to: redis-server
// and memcached, each on 127.0.0.1 with a port the kernel picked, started
// fresh for the suite and always stopped after it.

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// daemon is a running external server.
type daemon struct {
	*proc
	addr string
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another
// process may take it before the server binds it; startDaemon then tries
// again with a new one.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon starts bin with args(port) on a free port and polls ready
// until it answers, for at most 15 s.
func startDaemon(name, bin string, args func(port int) []string, ready func(addr string) error) (*daemon, error) {
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := startProc(name, exec.Command(bin, args(port)...))
		if err != nil {
			return nil, err
		}
		d := &daemon{proc: p, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		pollUntil(context.Background(), 15*time.Second, 10*time.Millisecond, func() bool {
			last = ready(d.addr)
			return last == nil || p.exited()
		})
		if last == nil {
			return d, nil
		}
		p.stop(time.Second)
		last = fmt.Errorf("%s on %s did not answer: %v; stderr: %s", name, d.addr, last, p.stderr.String())
	}
	return nil, last
}

// startRedis starts a redis-server that keeps nothing on disk.
func startRedis(bin string) (*daemon, error) {
	dir, err := os.MkdirTemp("", "gardenstate-bench-redis-")
	if err != nil {
		return nil, err
	}
	rm := cleanups.add(func() { os.RemoveAll(dir) })
	d, err := startDaemon("redis-server", bin, func(port int) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"}
	}, func(addr string) error {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		rm()
		return nil, err
	}
	prev := d.undo
	d.undo = func() { prev(); rm() }
	return d, nil
}

// startMemcached starts memcached with room for memMiB of items and TCP
// only.
func startMemcached(bin string, memMiB int) (*daemon, error) {
	return startDaemon("memcached", bin, func(port int) []string {
		args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", strconv.Itoa(memMiB), "-t", "4", "-c", "4096"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root") // memcached refuses root without naming a user
		}
		return args
	}, func(addr string) error {
		c := memcache.New(addr)
		c.Timeout = time.Second
		return c.Ping()
	})
}
