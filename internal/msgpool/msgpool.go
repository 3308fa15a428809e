// Package msgpool reuses msgpack encoders and their buffers between
// encodings, for code that encodes often (a session's Set, every
// replication frame).
package msgpool

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Encoder writes into Buf.
type Encoder struct {
	Buf bytes.Buffer
	*msgpack.Encoder
}

// Pool holds Encoders whose buffers stay at most maxKeep bytes.
type Pool struct {
	maxKeep int
	pool    sync.Pool
}

// New returns a pool that keeps buffers of up to maxKeep bytes: a larger
// one, grown by a rare large value, is left to the garbage collector.
func New(maxKeep int) *Pool {
	p := &Pool{maxKeep: maxKeep}
	p.pool.New = func() any {
		e := &Encoder{}
		e.Encoder = msgpack.NewEncoder(&e.Buf)
		return e
	}
	return p
}

// Get returns an Encoder with an empty buffer.
func (p *Pool) Get() *Encoder {
	e := p.pool.Get().(*Encoder)
	e.Buf.Reset()
	return e
}

// Put gives e back; its buffer's bytes may be reused at once.
func (p *Pool) Put(e *Encoder) {
	if e.Buf.Cap() <= p.maxKeep {
		p.pool.Put(e)
	}
}
