// progress.go shows what the harness is doing while suites run: one line on
// stderr, rewritten in place on a terminal and printed line by line
// otherwise.

package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports the running suite and step. Safe for concurrent use.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	start   time.Time
	prefix  string
	last    string
	lastLen int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// suite starts suite i of n.
func (p *progress) suite(i, n int, name string) {
	p.mu.Lock()
	p.prefix = fmt.Sprintf("[%d/%d %s]", i, n, name)
	p.mu.Unlock()
	p.step("starting")
}

// step says what the suite does now.
func (p *progress) step(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf("%s %s (%s elapsed)", p.prefix, fmt.Sprintf(format, args...), time.Since(p.start).Round(time.Second))
	if msg == p.last {
		return
	}
	p.last = msg
	if p.tty {
		pad := ""
		if n := len(msg); n < p.lastLen {
			pad = strings.Repeat(" ", p.lastLen-n)
		}
		fmt.Fprintf(p.w, "\r%s%s", msg, pad)
		p.lastLen = len(msg)
		return
	}
	fmt.Fprintln(p.w, msg)
}

// done ends the progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLine()
}

// clearLine blanks the progress line, reporting whether there was one;
// called with p.mu held.
func (p *progress) clearLine() bool {
	shown := p.tty && p.lastLen > 0
	if shown {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
	}
	p.lastLen = 0
	return shown
}

// warn prints a line that stays.
func (p *progress) warn(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clearLine() {
		p.last = "" // shown again by the next step
	}
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
}
