// progress.go draws a one-line progress bar on stderr for long dumps and
// loads, only when stderr is a terminal: scripts and logs get no escape
// sequences.

package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressEvery bounds how often the bar is redrawn.
const progressEvery = 100 * time.Millisecond

// progressWidth is the width of the bar in characters.
const progressWidth = 30

// progress is a bar from 0 to total. A nil or disabled progress draws
// nothing.
type progress struct {
	w     io.Writer
	label string
	total int64
	now   func() time.Time
	last  time.Time
	drawn bool
}

// newProgress returns a bar on a.stderr if it is a terminal, else nil.
func (a *app) newProgress(label string, total int64) *progress {
	if !a.terminal(a.stderr) {
		return nil
	}
	return &progress{w: a.stderr, label: label, total: total, now: time.Now}
}

// set moves the bar to done, with note after it ("1200 entries").
func (p *progress) set(done int64, note string) {
	if p == nil {
		return
	}
	t := p.now()
	if p.drawn && t.Sub(p.last) < progressEvery && done < p.total {
		return
	}
	p.last = t
	p.draw(done, note)
}

func (p *progress) draw(done int64, note string) {
	frac := 1.0
	if p.total > 0 {
		frac = min(max(float64(done)/float64(p.total), 0), 1)
	}
	fill := int(frac * progressWidth)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", progressWidth-fill)
	// \r returns to the start of the line; \x1b[K clears what a longer
	// previous line left.
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %s\x1b[K", p.label, bar, 100*frac, note)
	p.drawn = true
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprintln(p.w)
}
