package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
	"golang.org/x/text/width"
)

// barWidth is the number of cells in the progress bar.
const barWidth = 24

// defaultColumns is the width assumed when the terminal's is unknown.
const defaultColumns = 80

// progressBar draws a one-line transfer report, redrawn in place with a
// carriage return: the file's name, percent, a bar, bytes transferred and
// expected, the average rate and the time left at that rate. The line is
// made to fit the terminal's width as it is at each redraw (a resized
// window included), dropping the bar, then the time left, then the rest,
// and shortening the name in its middle, so that it never wraps: a
// wrapped line cannot be redrawn in place, and leaves a trail. It is
// meant for a terminal only; see showProgress.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	start time.Time
	base  int64 // bytes there at start, which the rate does not count
	drawn bool
	// name is the file shown; "" for none.
	name string
	// columns returns the terminal's width now; nil or 0 means
	// defaultColumns.
	columns func() int
	// received and expected are as of the last update.
	received, expected int64
	// lastCols and lastWidth are the terminal's width when the line
	// was drawn, and the line's.
	lastCols, lastWidth int
}

func newProgressBar(w io.Writer, now func() time.Time) *progressBar {
	return &progressBar{w: w, now: now, start: now(), columns: terminalColumns(w)}
}

// terminalColumns returns a function that reads the width of the
// terminal w, or nil if w is not one. Reading it at each redraw, ten
// times a second at most, follows a resized window without a SIGWINCH
// handler.
func terminalColumns(w io.Writer) func() int {
	fd, ok := terminalFd(w)
	if !ok {
		return nil
	}
	return func() int {
		if cols, _, err := term.GetSize(fd); err == nil {
			return cols
		}
		return 0
	}
}

// lineRoom returns the columns a progress line may take in a terminal of
// cols: a character in the last column makes some terminals wrap, and the
// terminal's own echo of Ctrl-C ("^C") takes two more after the line; a
// line wrapped by either could not be cleared from its first row.
func lineRoom(cols int) int { return max(cols-3, 1) }

// terminalWidth returns columns(), or defaultColumns if that is unknown.
func terminalWidth(columns func() int) int {
	if columns != nil {
		if cols := columns(); cols > 0 {
			return cols
		}
	}
	return defaultColumns
}

// reflowUp returns what takes the cursor back to the first row of a line
// of width columns, drawn when the terminal had was columns, now that it
// has cols, and clears the rows below: a terminal made narrower than such
// a line (tmux, VTE, iTerm2, kitty and most others) wraps it again over
// several rows, the cursor on the last, where a carriage return alone
// would leave the first rows behind. It is "" if the terminal did not
// shrink below the line.
func reflowUp(width, was, cols int) string {
	if was <= cols || width <= cols {
		return ""
	}
	return fmt.Sprintf("\r\x1b[%dA\x1b[J", (width-1)/cols)
}

// begin returns what starts a redraw of the line at the terminal's
// width now, cols, and notes the width of the line drawn, which the
// caller writes after it.
func (p *progressBar) begin(cols int, line string) string {
	up := ""
	if p.drawn {
		up = reflowUp(p.lastWidth, p.lastCols, cols)
	}
	p.lastCols, p.lastWidth = cols, displayWidth(line)
	return up + "\r"
}

// rebase restarts the rate's clock now, at received bytes: those of a
// transfer that resumes were not transferred now.
func (p *progressBar) rebase(received int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base, p.start = received, p.now()
}

// update redraws the bar. It has the signature of client.Client.Progress,
// which already limits how often it is called.
func (p *progressBar) update(received, expected int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received, p.expected = received, expected
	frac := 1.0
	if expected > 0 {
		frac = min(float64(received)/float64(expected), 1)
	}
	cells := int(frac * barWidth)
	bar := strings.Repeat("=", cells)
	if cells < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-cells-1)
	}
	rate, left := "-", ""
	if d := p.now().Sub(p.start).Seconds(); d > 0 && received > p.base {
		perSecond := float64(received-p.base) / d
		rate = formatBytes(int64(perSecond)) + "/s"
		if received < expected {
			left = formatLeft(time.Duration(float64(expected-received)/perSecond*float64(time.Second))) + " left"
		}
	}
	pct := fmt.Sprintf("%3d%%", int(frac*100))
	sizes := formatBytes(received) + " / " + formatBytes(expected)
	cols := terminalWidth(p.columns)
	line := fitLine(lineRoom(cols), p.name, []lineLayout{
		{pct + " [" + bar + "] " + sizes, rate, left},
		{pct + " " + sizes, rate},
		{pct + " " + formatBytes(received)},
		{pct},
	})
	// \x1b[K clears what a longer previous line left behind.
	fmt.Fprintf(p.w, "%s%s\x1b[K", p.begin(cols, line), line)
	p.drawn = true
}

// done ends the bar: a transfer that completed leaves one line, the name,
// size, time and rate, as scp does; one that did not leaves none, so that
// the error said next starts a clean line.
func (p *progressBar) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.drawn {
		return
	}
	cols := terminalWidth(p.columns)
	if p.received < p.expected || p.expected < 0 {
		fmt.Fprint(p.w, p.begin(cols, "")+"\x1b[K")
		p.drawn = false
		return
	}
	d := p.now().Sub(p.start)
	rate := ""
	if s := d.Seconds(); s > 0 && p.received > p.base {
		rate = formatBytes(int64(float64(p.received-p.base)/s)) + "/s"
	}
	line := fitLine(lineRoom(cols), p.name, []lineLayout{
		{formatBytes(p.received), "in " + formatLeft(d), rate},
		{formatBytes(p.received)},
	})
	fmt.Fprintf(p.w, "%s%s\x1b[K\n", p.begin(cols, line), line)
	p.drawn = false
}

// clear removes the bar's line, if one is drawn, so that a message can be
// printed; the next update draws it again.
func (p *progressBar) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, p.begin(terminalWidth(p.columns), "")+"\x1b[K")
		p.drawn = false
	}
}

// A lineLayout is one way of drawing a progress line, its fields in
// order; empty ones are left out.
type lineLayout [5]string

// fitLine returns the line of the first layout that fits in cols columns
// with name (shortened in the middle if need be, to no less than
// minName columns) in front, or the last layout, cut to fit, if none
// does.
func fitLine(cols int, name string, layouts []lineLayout) string {
	const minName = 12
	if name != "" {
		name = printable(name)
	}
	for _, l := range layouts {
		tail := joinFields(l)
		if name == "" {
			if displayWidth(tail) <= cols {
				return tail
			}
			continue
		}
		room := cols - displayWidth(tail) - 2
		if room >= min(displayWidth(name), minName) {
			return shorten(name, room) + "  " + tail
		}
	}
	tail := joinFields(layouts[len(layouts)-1])
	if name != "" {
		if room := cols - displayWidth(tail) - 2; room > 0 {
			return shorten(name, room) + "  " + tail
		}
	}
	return shorten(tail, cols)
}

func joinFields(l lineLayout) string {
	var fields []string
	for _, f := range l {
		if f != "" {
			fields = append(fields, f)
		}
	}
	// Two spaces apart, as the fields hold single spaces themselves.
	return strings.Join(fields, "  ")
}

// displayWidth is the number of columns s takes on a terminal: two for
// East Asian wide characters.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// shorten returns s in at most cols columns, with its middle replaced by
// "…" if it is longer: both ends of a path say the most.
func shorten(s string, cols int) string {
	if displayWidth(s) <= cols {
		return s
	}
	if cols <= 0 {
		return ""
	}
	if cols == 1 {
		return "…"
	}
	runes := []rune(s)
	headCols := (cols - 1) / 2
	tailCols := cols - 1 - headCols
	var head, tail []rune
	w := 0
	for _, r := range runes {
		rw := displayWidth(string(r))
		if w+rw > headCols {
			break
		}
		head, w = append(head, r), w+rw
	}
	w = 0
	for i := len(runes) - 1; i >= 0; i-- {
		rw := displayWidth(string(runes[i]))
		if w+rw > tailCols {
			break
		}
		tail, w = append([]rune{runes[i]}, tail...), w+rw
	}
	out := string(head) + "…" + string(tail)
	if !utf8.ValidString(out) {
		return "…"
	}
	return out
}

// formatBytes renders n in binary units with three significant digits.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	f := "%.1f %ciB"
	if v >= 100 {
		f = "%.0f %ciB"
	}
	return fmt.Sprintf(f, v, "KMGTPE"[i])
}

// formatLeft renders a time left to the second: "42s", "3m05s", "2h07m".
func formatLeft(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

// showProgress reports whether get should draw a progress bar: only on a
// terminal stderr, and not when the payload itself goes to that terminal,
// where the two would mix.
func showProgress(env *Env, toStdout bool) bool {
	if _, ok := terminalFd(env.Stderr); !ok {
		return false
	}
	if toStdout {
		if _, ok := terminalFd(env.Stdout); ok {
			return false
		}
	}
	return true
}
