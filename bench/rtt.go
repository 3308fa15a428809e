// rtt.go measures the loopback round trip between two processes: this
// binary in the "echo" child mode answers 64-byte messages on 127.0.0.1
// and the harness times one at a time. Every call to a network store
// includes at least one such round trip, and on a machine whose CPUs sit
// idle it is dominated by waking them, so the kv suite shows it beside
// the stores, measured under the same conditions.

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// loopbackRTT times n round trips to an echo child.
func loopbackRTT(n int) (runStats, error) {
	var st runStats
	kid, err := startChild("echo", struct{}{})
	if err != nil {
		return st, err
	}
	defer kid.stop(time.Second)
	addr, err := kid.expect("listening ", 30*time.Second)
	if err != nil {
		return st, err
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return st, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	msg, buf := make([]byte, 64), make([]byte, 64)
	st.hist = &Hist{}
	start := time.Now()
	for range n {
		t := time.Now()
		if _, err := c.Write(msg); err != nil {
			return st, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return st, err
		}
		st.hist.Record(time.Since(t))
		st.calls++
	}
	st.elapsed = time.Since(start)
	return st, nil
}

// echoChild answers 64-byte messages on one connection.
func echoChild([]byte) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo child:", err)
		return 1
	}
	fmt.Printf("listening %s\n", l.Addr())
	c, err := l.Accept()
	l.Close()
	if err != nil {
		return 1
	}
	r := bufio.NewReader(c)
	buf := make([]byte, 64)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0
		}
		if _, err := c.Write(buf); err != nil {
			return 0
		}
	}
}
