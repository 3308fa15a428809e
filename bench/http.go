// http.go is the http suite: the webgarden example, and one counter
// handler served by garden/prefork with sessions in a garden segment, with
// no sessions, and with sessions in Redis, each loaded by the net/http
// load generator (keep-alive and a new connection per request) and by wrk
// when it is installed.

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Subjects of the http suite.
const (
	subjWebgarden = "webgarden example"
	subjGardenSrv = "garden sessions"
	subjNoSess    = "no sessions"
	subjRedisSess = "redis sessions"
)

// Cases of the http suite.
const (
	caseKeepAlive = "keep-alive (net/http)"
	caseNewConn   = "new connection each (net/http)"
	caseWrk       = "keep-alive (wrk)"
)

var httpSuite = suite{
	name:  "http",
	title: "HTTP: a web garden with and without sessions, and with Redis sessions",
	method: func(p params) string {
		return fmt.Sprintf("Every server runs %d worker processes with garden/prefork on 127.0.0.1. The examples/webgarden program (built with go build) "+
			"is sent POST /api/incr?k=count after each user stored a %d-byte note in its session. The other three are one program (this binary "+
			"in a hidden mode) with one handler that reads the session's counter, increments it and answers it as JSON; each session also holds "+
			"%d bytes of padding. Only the session store differs: a garden segment (garden.Store middleware), none at all, or Redis (the session "+
			"as one msgpack blob under the cookie's id: one GET and one SET per request). The load generator runs %d users, each with its own "+
			"session cookie (made by one untimed request) and its own connection, for %v per case; latency is from sending the request to "+
			"reading the whole answer. wrk, when installed, runs the same %d connections for %v cycling through %d sessions. The load generator "+
			"and the servers share this machine's %d cores.",
			p.httpWorkers, p.sessionBytes, p.sessionBytes, p.httpConc, p.httpRun, p.httpConc, max(time.Second, p.httpRun.Round(time.Second)),
			p.wrkSessions, runtimeCores())
	},
	run: runHTTP,
}

// httpTarget is a started server and how to load it.
type httpTarget struct {
	base   string
	method string
	path   string
	body   string
	setup  func(ctx context.Context, c *http.Client) (string, error)
	stop   func()
}

func runHTTP(ctx context.Context, e *env, r rec) error {
	p := e.p
	pad := strings.Repeat("n", p.sessionBytes)

	var redisAddr string
	redisBin, redisOK := usable(e.tools, "redis-server")
	if redisOK {
		e.prog.step("starting redis-server")
		d, err := startRedis(redisBin)
		if err != nil {
			return err
		}
		defer d.stop(5 * time.Second)
		redisAddr = d.addr
	}
	wrkBin, wrkOK := usable(e.tools, "wrk")

	subjects := []struct {
		name  string
		start func() (*httpTarget, error)
	}{
		{subjWebgarden, func() (*httpTarget, error) { return startWebgarden(e, r, pad) }},
		{subjGardenSrv, func() (*httpTarget, error) { return startBenchServer(e, r, subjGardenSrv, storeGarden, "") }},
		{subjNoSess, func() (*httpTarget, error) { return startBenchServer(e, r, subjNoSess, storeNone, "") }},
		{subjRedisSess, func() (*httpTarget, error) {
			if !redisOK {
				return nil, errSkip(redisBin)
			}
			return startBenchServer(e, r, subjRedisSess, storeRedis, redisAddr)
		}},
	}
	for _, s := range subjects {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.prog.step("%s: starting", s.name)
		t, err := s.start()
		if reason, ok := skipped(err); ok {
			for _, cs := range []string{caseKeepAlive, caseNewConn, caseWrk} {
				r.skip(cs, s.name, reason)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		err = loadTarget(ctx, e, r, s.name, t, wrkBin, wrkOK)
		t.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	for _, cs := range []string{caseKeepAlive, caseNewConn, caseWrk} {
		r.higherBetter(cs, subjGardenSrv, subjNoSess, "req/s")
		r.higherBetter(cs, subjGardenSrv, subjRedisSess, "req/s")
		r.lowerBetter(cs, subjGardenSrv, subjRedisSess, "p99")
		r.higherBetter(cs, subjWebgarden, subjNoSess, "req/s")
	}
	return nil
}

// loadTarget runs every case against one server.
func loadTarget(ctx context.Context, e *env, r rec, name string, t *httpTarget, wrkBin string, wrkOK bool) error {
	for _, c := range []struct {
		cs        string
		keepAlive bool
	}{{caseKeepAlive, true}, {caseNewConn, false}} {
		e.prog.step("%s: %s, %d users for %v", name, c.cs, e.p.httpConc, e.p.httpRun)
		res, err := runLoad(ctx, loadSpec{base: t.base, method: t.method, path: t.path, body: t.body,
			conc: e.p.httpConc, dur: e.p.httpRun, keepAlive: c.keepAlive, setup: t.setup})
		if err != nil {
			return err
		}
		r.add(c.cs, name, "req/s", unitOps, res.rate())
		r.latency(c.cs, name, &res.hist)
		r.add(c.cs, name, "errors", unitCount, float64(res.errors))
		if res.errors > 0 {
			r.note("%s, %s: %d of %d requests failed; first: %s", name, c.cs, res.errors, res.requests, res.firstErr)
		}
	}
	if !wrkOK {
		r.skip(caseWrk, name, wrkBin)
		return nil
	}
	e.prog.step("%s: wrk", name)
	client := newClient(0, true, false)
	defer client.CloseIdleConnections()
	cookies := make([]string, e.p.wrkSessions)
	for i := range cookies {
		c, err := t.setup(ctx, client)
		if err != nil {
			return fmt.Errorf("sessions for wrk: %w", err)
		}
		cookies[i] = c
	}
	res, out, err := runWrk(ctx, wrkBin, t.base+t.path, wrkScript(t.method, t.path, t.body, cookies),
		min(2, runtimeCores()), e.p.httpConc, e.p.httpRun)
	if err != nil {
		return err
	}
	r.add(caseWrk, name, "req/s", unitOps, res.rate)
	if res.hasLatDis {
		r.add(caseWrk, name, "p50", unitNs, float64(res.p50))
		r.add(caseWrk, name, "p99", unitNs, float64(res.p99))
	}
	r.add(caseWrk, name, "max", unitNs, float64(res.max))
	r.add(caseWrk, name, "errors", unitCount, res.non2xx+res.sockErrs)
	if res.non2xx+res.sockErrs > 0 {
		r.note("%s, wrk: %.0f non-2xx answers and %.0f socket errors of %.0f requests. wrk said:\n\n```\n%s\n```", name, res.non2xx, res.sockErrs, res.requests, strings.TrimSpace(out))
	}
	return nil
}

// startBenchServer runs this binary's HTTP server with store.
func startBenchServer(e *env, r rec, name, store, redisAddr string) (*httpTarget, error) {
	seg, remove := segmentPath("http-" + store)
	kid, err := startChild("httpserver", httpServerConfig{Store: store, Workers: e.p.httpWorkers, Segment: seg, RedisAddr: redisAddr, PadBytes: e.p.sessionBytes})
	if err != nil {
		remove()
		return nil, err
	}
	addr, stop, err := serving(r, name, kid, remove, "listening ")
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	return &httpTarget{base: base, method: "POST", path: "/incr", stop: stop,
		setup: func(ctx context.Context, c *http.Client) (string, error) {
			return doRequest(ctx, c, "POST", base+"/incr", "", "")
		}}, nil
}

// serving waits for p, a server the report calls name, to print a line
// starting with ready, and returns the rest of the line and the function
// that stops p, runs cleanup and notes p's warnings. If the line does not
// come, p is stopped.
func serving(r rec, name string, p *proc, cleanup func(), ready string) (string, func(), error) {
	stop := func() {
		p.stop(15 * time.Second)
		cleanup()
		noteWarnings(r, name, p.stderr.String())
	}
	line, err := p.expect(ready, 60*time.Second)
	if err != nil {
		stop()
		return "", nil, err
	}
	return line, stop, nil
}

// startWebgarden builds examples/webgarden and runs it.
func startWebgarden(e *env, r rec, pad string) (*httpTarget, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errSkip("go toolchain not found")
	}
	root := moduleRoot()
	if root == "" {
		return nil, errSkip("run inside the gardenstate module to build it")
	}
	dir, err := os.MkdirTemp("", "gardenstate-bench-webgarden-")
	if err != nil {
		return nil, err
	}
	rmDir := cleanups.add(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "webgarden")
	e.prog.step("%s: go build", subjWebgarden)
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, goBin, "build", "-o", bin, "./examples/webgarden")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		rmDir()
		r.note("go build ./examples/webgarden failed: %v: %s", err, strings.TrimSpace(string(out)))
		return nil, errSkip("go build failed (see notes)")
	}
	seg, remove := segmentPath("webgarden")
	p, err := startProc("webgarden", exec.Command(bin, "-workers", fmt.Sprint(e.p.httpWorkers), "-addr", "127.0.0.1:0", "-segment", seg, "-app", "bench-webgarden"))
	if err != nil {
		remove()
		rmDir()
		return nil, err
	}
	line, stop, err := serving(r, subjWebgarden, p, func() { remove(); rmDir() }, "webgarden: serving ")
	if err != nil {
		return nil, err
	}
	u, _, _ := strings.Cut(line, " ")
	base := strings.TrimSuffix(u, "/")
	form := url.Values{"note": {pad}}.Encode()
	return &httpTarget{base: base, method: "POST", path: "/api/incr?k=count", stop: stop,
		setup: func(ctx context.Context, c *http.Client) (string, error) {
			return doRequest(ctx, c, "POST", base+"/api/session", form, "")
		}}, nil
}

var logMsg = regexp.MustCompile(`level=(WARN|ERROR) msg="((?:[^"\\]|\\.)*)"`)

// noteWarnings notes the warnings and errors a server logged (from the
// tail of its stderr that was kept), each message once with its count.
func noteWarnings(r rec, name, stderr string) {
	counts := map[string]int{}
	var order []string
	for _, m := range logMsg.FindAllStringSubmatch(stderr, -1) {
		k := m[1] + ": " + m[2]
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	if len(order) == 0 {
		return
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%q ×%d", k, counts[k]))
	}
	r.note("%s logged (in the last 16 KiB of its stderr): %s.", name, strings.Join(parts, "; "))
}
