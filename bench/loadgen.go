// loadgen.go is the http suite's load generator, written with net/http: a
// fixed number of users, each with its own session cookie and its own
// connection (kept alive, or a new one per request), sending the same
// request for a fixed time and timing every response.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// loadSpec is one load run.
type loadSpec struct {
	base      string // http://host:port
	method    string
	path      string
	body      string // form-encoded, may be empty
	conc      int
	dur       time.Duration
	keepAlive bool
	// setup makes a user's session before the timed run (one request,
	// untimed) and returns its cookie.
	setup func(ctx context.Context, c *http.Client) (string, error)
}

// loadResult is what a run observed.
type loadResult struct {
	requests uint64
	errors   uint64
	elapsed  time.Duration
	hist     Hist
	firstErr string
}

func (r *loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests-r.errors) / r.elapsed.Seconds() // answered with 200 OK
}

// sourceAddrs reports whether connections can come from 127.0.1.x: with a
// new connection per request, spreading them over source addresses keeps
// the loopback from running out of ports held in TIME_WAIT.
func sourceAddrs() bool { return canListen("127.0.1.1") }

// canListen reports whether this host can listen on ip.
func canListen(ip string) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// newClient is one user's client: one connection at a time.
func newClient(i int, keepAlive, spread bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !keepAlive && spread {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%250))}
	}
	tr := &http.Transport{
		DialContext: d.DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
		DisableCompression: true, ResponseHeaderTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// cookieOf returns the name=value of the response's last Set-Cookie.
func cookieOf(resp *http.Response) string {
	vs := resp.Header.Values("Set-Cookie")
	if len(vs) == 0 {
		return ""
	}
	c, _, _ := strings.Cut(vs[len(vs)-1], ";")
	return c
}

// doRequest sends one request with cookie and reads the whole answer; it
// returns the cookie to use next.
func doRequest(ctx context.Context, c *http.Client, method, url, body, cookie string) (string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return cookie, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return cookie, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return cookie, err
	}
	if resp.StatusCode != http.StatusOK {
		return cookie, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if nc := cookieOf(resp); nc != "" {
		cookie = nc
	}
	return cookie, nil
}

// runLoad runs spec: every user sets up its session, then all start
// together and send requests until the time is up.
func runLoad(ctx context.Context, spec loadSpec) (*loadResult, error) {
	spread := !spec.keepAlive && sourceAddrs()
	type user struct {
		c      *http.Client
		cookie string
		res    loadResult
	}
	users := make([]*user, spec.conc)
	for i := range users {
		u := &user{c: newClient(i, spec.keepAlive, spread)}
		if spec.setup != nil {
			var err error
			if u.cookie, err = spec.setup(ctx, u.c); err != nil {
				return nil, fmt.Errorf("session setup: %w", err)
			}
		}
		users[i] = u
	}
	defer func() {
		for _, u := range users {
			u.c.CloseIdleConnections()
		}
	}()
	url := spec.base + spec.path
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(spec.dur)
	for _, u := range users {
		wg.Go(func() {
			for {
				t0 := time.Now()
				if !t0.Before(end) || runCtx.Err() != nil {
					return
				}
				cookie, err := doRequest(runCtx, u.c, spec.method, url, spec.body, u.cookie)
				u.res.hist.Record(time.Since(t0))
				u.res.requests++
				if err != nil {
					u.res.errors++
					if u.res.firstErr == "" {
						u.res.firstErr = err.Error()
					}
					continue
				}
				u.cookie = cookie
			}
		})
	}
	wg.Wait()
	out := &loadResult{elapsed: time.Since(start)}
	for _, u := range users {
		out.requests += u.res.requests
		out.errors += u.res.errors
		out.hist.Merge(&u.res.hist)
		if out.firstErr == "" {
			out.firstErr = u.res.firstErr
		}
	}
	return out, ctx.Err()
}
