// pause.go wraps a network connection so that its reads can be paused and
// resumed: the replication suite uses it to make an agent stop reading its
// data streams while membership keeps it alive.

package main

import (
	"net"
	"sync"
)

// pauser pauses the reads of every connection it wrapped. Safe for
// concurrent use.
type pauser struct {
	mu sync.Mutex
	ch chan struct{} // open while paused; nil when reads flow
}

func (p *pauser) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
}

func (p *pauser) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
}

func (p *pauser) wait() {
	p.mu.Lock()
	ch := p.ch
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// wrap returns c with reads that wait while p is paused. A read already
// blocked in c when the pause starts still returns what arrives next.
func (p *pauser) wrap(c net.Conn) net.Conn { return &pausedConn{Conn: c, p: p} }

type pausedConn struct {
	net.Conn
	p *pauser
}

func (c *pausedConn) Read(b []byte) (int, error) {
	c.p.wait()
	return c.Conn.Read(b)
}
