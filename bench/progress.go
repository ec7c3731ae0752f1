package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress reports a run as it goes: Status replaces a live status line
// (rewritten in place with \r on a terminal; on anything else, printed as
// a plain line at most once a second), Logf adds a permanent line. A nil
// *Progress reports nothing.
type Progress struct {
	w    io.Writer
	live bool

	mu     sync.Mutex
	shown  int // width of the live line on screen
	lastAt time.Time
}

// NewProgress reports to w; live says whether w is a terminal.
func NewProgress(w io.Writer, live bool) *Progress { return &Progress{w: w, live: live} }

// Status shows the current state of the run.
func (p *Progress) Status(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	line := fmt.Sprintf(format, args...)
	if !p.live {
		if now.Sub(p.lastAt) < time.Second {
			return
		}
		p.lastAt = now
		fmt.Fprintln(p.w, line)
		return
	}
	if now.Sub(p.lastAt) < 100*time.Millisecond {
		return
	}
	p.lastAt = now
	const width = 120
	if n := len([]rune(line)); n > width {
		line = string([]rune(line)[:width-1]) + "…"
	}
	pad := max(0, p.shown-len([]rune(line)))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.shown = len([]rune(line))
}

// Logf adds a line that stays.
func (p *Progress) Logf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.lastAt = time.Time{}
}

// Done clears the live line.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *Progress) clear() {
	if p.live && p.shown > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.shown))
		p.shown = 0
	}
}
