// transport.go defines how agents reach each other's data streams: the
// Transport interface, and its TCP implementation with TLS.

package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"time"
)

// Transport opens data streams between agents. Implementations must be safe
// for concurrent use. The streams it returns are already authenticated and
// encrypted (or, for in-memory test networks, need not be).
type Transport interface {
	// Listen starts accepting streams; Addr of the listener is what peers
	// dial.
	Listen() (net.Listener, error)
	// Dial opens a stream to a peer's listener address.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TCPTransport carries streams over TCP, wrapped in TLS 1.3.
type TCPTransport struct {
	// Addr is the address to listen on ("127.0.0.1:0" picks a port).
	Addr string
	// TLS is the configuration for both directions.
	TLS *tls.Config
	// Wrap, when set, wraps every raw TCP connection before TLS (tests use
	// it to capture the bytes on the wire).
	Wrap func(net.Conn) net.Conn
}

type tlsListener struct {
	net.Listener
	t *TCPTransport
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlivePeriod(15 * time.Second)
	}
	if l.t.Wrap != nil {
		c = l.t.Wrap(c)
	}
	return tls.Server(readBuffered(c), l.t.TLS), nil
}

// bufferedConn reads its connection through a buffer. TLS reads a record
// (at most 16 KiB) at a time, in two reads; under load, one read from the
// socket now brings in several records.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func readBuffered(c net.Conn) net.Conn { return bufferedConn{c, bufio.NewReaderSize(c, 128<<10)} }

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Listen implements Transport.
func (t *TCPTransport) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	return tlsListener{l, t}, nil
}

// Dial implements Transport.
func (t *TCPTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if t.Wrap != nil {
		c = t.Wrap(c)
	}
	tc := tls.Client(readBuffered(c), t.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}
