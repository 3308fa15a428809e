// main.go reads the flags and runs the parent and the workers.

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gardenstate/gardenstate/garden"
	"github.com/gardenstate/gardenstate/garden/prefork"
)

func main() {
	workers := flag.Int("workers", 4, "worker processes")
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve (port 0: any free port)")
	app := flag.String("app", "webgarden", "application name")
	segment := flag.String("segment", "", "segment file (default /dev/shm/gardenstate-<app>)")
	keyFile := flag.String("key-file", "", "farm key file (default: a host key kept in the segment)")
	farm := flag.String("farm", "", "admin address of the local gardend, for read-your-writes across hosts")
	freshness := flag.Duration("freshness-timeout", 0, "with -farm: how long a request waits for a newer copy from another host (0: garden's default, 100ms)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	cfg := prefork.Config{
		Addr:            *addr,
		Workers:         *workers,
		ShutdownTimeout: 10 * time.Second,
		Logger:          log,
		OnReady: func(a net.Addr) {
			fmt.Printf("webgarden: serving http://%s/ with %d workers (parent pid %d)\n", a, *workers, os.Getpid())
		},
	}
	var store *garden.Store
	err := prefork.Run(context.Background(), cfg, func() (*http.Server, error) {
		gcfg := garden.Config{
			App:         *app,
			SegmentPath: *segment,
			KeyFile:     *keyFile,
			Insecure:    true, // plain HTTP
			Logger:      log,
		}
		if *farm != "" {
			gcfg.Freshness = farmFreshness(*farm, *app)
			gcfg.FreshnessTimeout = *freshness
		}
		var err error
		if store, err = garden.Open(gcfg); err != nil {
			return nil, err
		}
		return &http.Server{Handler: newHandler(store), ReadHeaderTimeout: 10 * time.Second}, nil
	})
	if store != nil {
		store.Close()
	}
	if err != nil {
		log.Error("webgarden", "err", err)
		os.Exit(1)
	}
}
