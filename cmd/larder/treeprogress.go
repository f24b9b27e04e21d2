package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// treeDisplay is the one progress display of a recursive command: a
// single line for the whole tree (files done of all, bytes, rate, time
// left, and the file last started), redrawn in place on a terminal, with
// the notes of skipped and failed files printed above it; and the
// summary at the end. On anything but a terminal it draws nothing, and
// prints the notes and the summary only.
type treeDisplay struct {
	mu      sync.Mutex
	w       io.Writer
	live    bool // a terminal: draw the line
	columns func() int
	now     func() time.Time
	start   time.Time
	last    time.Time
	drawn   bool

	files, done int   // files to move, and moved or settled
	total, got  int64 // bytes to move, and moved
	current     string
	// lastCols and lastWidth are the terminal's width when the line
	// was drawn, and the line's: see reflowUp.
	lastCols, lastWidth int
}

func newTreeDisplay(env *Env, now func() time.Time) *treeDisplay {
	d := &treeDisplay{w: env.Stderr, now: now, start: now()}
	if _, ok := terminalFd(env.Stderr); ok {
		d.live, d.columns = true, terminalColumns(env.Stderr)
	}
	return d
}

// plan sets what there is to move.
func (d *treeDisplay) plan(files int, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files, d.total = files, bytes
	d.start = d.now()
	d.redraw(true)
}

// started names the file whose transfer starts.
func (d *treeDisplay) started(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.current = name
	d.redraw(false)
}

// add counts n bytes moved; n is negative to take back those of a
// transfer that starts again.
func (d *treeDisplay) add(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got += n
	d.redraw(false)
}

// settled counts a file done with, whatever the outcome; skipped bytes
// are taken off what there is to move.
func (d *treeDisplay) settled(skipped int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done++
	d.total -= skipped
	d.redraw(d.done == d.files)
}

// note prints a line above the display.
func (d *treeDisplay) note(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.erase()
	fmt.Fprintf(d.w, "larder: "+format+"\n", args...)
	d.redraw(true)
}

// close removes the display's line, leaving the screen to the summary.
func (d *treeDisplay) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.erase()
	d.live = false
}

func (d *treeDisplay) erase() {
	if d.drawn {
		fmt.Fprint(d.w, reflowUp(d.lastWidth, d.lastCols, terminalWidth(d.columns))+"\r\x1b[K")
		d.drawn = false
	}
}

// redraw draws the line, at most ten times a second unless forced.
func (d *treeDisplay) redraw(force bool) {
	if !d.live {
		return
	}
	now := d.now()
	if !force && now.Sub(d.last) < 100*time.Millisecond {
		return
	}
	d.last = now
	cols := terminalWidth(d.columns)
	frac := 1.0
	switch {
	case d.total > 0:
		frac = min(max(float64(d.got)/float64(d.total), 0), 1)
	case d.files > 0:
		// Nothing to move but files to settle (rm, empty files).
		frac = float64(d.done) / float64(d.files)
	}
	const cells = 16
	n := int(frac * cells)
	bar := strings.Repeat("=", n)
	if n < cells {
		bar += ">" + strings.Repeat(" ", cells-n-1)
	}
	count := fmt.Sprintf("%d/%d", d.done, d.files)
	pct := fmt.Sprintf("%3d%%", int(frac*100))
	rate, left := "", ""
	if s := now.Sub(d.start).Seconds(); s > 0.5 && d.got > 0 {
		perSecond := float64(d.got) / s
		rate = formatBytes(int64(perSecond)) + "/s"
		if d.got < d.total {
			left = formatLeft(time.Duration(float64(d.total-d.got)/perSecond*float64(time.Second))) + " left"
		}
	}
	sizes := formatBytes(d.got) + " / " + formatBytes(d.total)
	if d.total == 0 {
		sizes = ""
	}
	line := fitLine(lineRoom(cols), d.current, []lineLayout{
		{count, strings.TrimSpace(pct + " [" + bar + "] " + sizes), rate, left},
		{count, pct + " " + sizes, rate},
		{count, pct},
		{pct},
	})
	up := ""
	if d.drawn {
		up = reflowUp(d.lastWidth, d.lastCols, cols)
	}
	d.lastCols, d.lastWidth = cols, displayWidth(line)
	fmt.Fprintf(d.w, "%s\r%s\x1b[K", up, line)
	d.drawn = true
}

// elapsed returns the time since the plan was set.
func (d *treeDisplay) elapsed() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.now().Sub(d.start)
}
