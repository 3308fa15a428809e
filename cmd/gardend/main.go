// main.go runs the agent: it opens the segments, restores snapshots, starts
// replication and the admin API, and on SIGTERM leaves and snapshots.

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gardenstate/gardenstate/replication"
	"github.com/gardenstate/gardenstate/shm"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, sigs))
}

// run is gardend; it returns the exit status.
func run(args []string, env func(string) string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	if len(args) > 0 && args[0] == "keygen" {
		return keygen(stdout, stderr)
	}
	o, err := parseFlags(args, env, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gardend: %v\n", err)
		return 2
	}
	log := newLogger(o, stderr)
	fail := func(msg string, args ...any) int {
		log.Error(msg, args...)
		return 1
	}

	key, err := replication.ReadKeyFile(o.keyFile)
	if err != nil {
		return fail("cannot start: farm key", "err", err)
	}
	apps := map[string]*shm.Segment{}
	defer func() {
		for _, s := range apps {
			s.Close()
		}
	}()
	for _, app := range o.apps {
		path := o.segment
		if path == "" {
			path = shm.DefaultPath(app)
		}
		seg, err := shm.Open(path, &shm.Options{App: app, Size: o.segmentSize})
		if err != nil {
			return fail("cannot start: segment", "app", app, "path", path, "err", err)
		}
		apps[app] = seg
		if o.snapshot != "" {
			if err := restoreSnapshot(snapshotPath(o.snapshot, app), app, seg, log); err != nil {
				return fail("cannot start: snapshot", "app", app, "err", err)
			}
		}
	}

	host, port, err := splitHostPort(o.bind)
	if err != nil {
		return fail("cannot start: --bind", "err", err)
	}
	gc := replication.GossipConfig{BindAddr: host, BindPort: port, Join: o.join}
	if o.advertise != "" {
		if gc.AdvertiseAddr, gc.AdvertisePort, err = splitHostPort(o.advertise); err != nil {
			return fail("cannot start: --advertise", "err", err)
		}
	}
	cfg := replication.Config{
		NodeName: o.nodeName, Cluster: o.cluster, Key: key, Apps: apps, Gossip: gc,
		DataAddr: o.data, Logger: log,
	}
	if o.tlsCert != "" {
		if cfg.TLS, err = replication.FileTLS(o.tlsCert, o.tlsKey, o.tlsCA); err != nil {
			return fail("cannot start: TLS", "err", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg

	var adminLn net.Listener
	if o.admin != "" {
		if adminLn, err = net.Listen("tcp", o.admin); err != nil {
			return fail("cannot start: admin address", "addr", o.admin, "err", err)
		}
		defer adminLn.Close()
	}
	agent, err := replication.New(cfg)
	if err != nil {
		return fail("cannot start", "err", err)
	}
	if err := agent.Start(); err != nil {
		return fail("cannot start", "err", err)
	}
	var srv *http.Server
	adminAddr := ""
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
		srv = &http.Server{Handler: agent.AdminHandler(reg), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(adminLn)
	}
	log.Info("gardend running", "gossip", agent.GossipAddr(), "data", agent.DataAddr(), "admin", adminAddr,
		"cluster", o.cluster, "apps", o.apps)

	var tick <-chan time.Time
	if o.snapshot != "" && o.snapEvery > 0 {
		t := time.NewTicker(o.snapEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case s := <-sigs:
			log.Info("shutting down", "signal", s.String())
			status := 0
			if err := agent.Close(o.leave); err != nil {
				log.Warn("leaving the cluster", "err", err)
			}
			if o.snapshot != "" {
				if err := writeSnapshots(o.snapshot, apps, log); err != nil {
					log.Error("final snapshot", "err", err)
					status = 1
				}
			}
			if srv != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				srv.Shutdown(ctx)
				cancel()
			}
			return status
		case <-tick:
			if err := writeSnapshots(o.snapshot, apps, log); err != nil {
				log.Error("snapshot", "err", err)
			}
		}
	}
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q out of range", p)
	}
	return h, port, nil
}

func newLogger(o *options, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(o.logLevel))
	ho := &slog.HandlerOptions{Level: lvl}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// keygen prints a new farm key.
func keygen(stdout, stderr io.Writer) int {
	k := make([]byte, replication.KeySize)
	if _, err := rand.Read(k); err != nil {
		fmt.Fprintf(stderr, "gardend keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(k))
	return 0
}
