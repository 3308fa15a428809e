// main.go starts the harness (or, in a child process, the child's mode)
// and turns Ctrl-C into a clean stop: the suites are cancelled, and if
// they do not return promptly everything is cleaned up and the process
// exits.

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nbench: interrupted; cleaning up")
		cancel()
		select {
		case <-sigs:
		case <-time.After(10 * time.Second):
		}
		// The suites did not return in time, or a second signal came.
		cleanups.runAll()
		sweepSegments()
		os.Exit(130)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
