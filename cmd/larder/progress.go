package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// barWidth is the number of cells in the progress bar.
const barWidth = 24

// progressBar draws a one-line transfer report, redrawn in place with a
// carriage return: percent, a bar, bytes transferred and expected, the
// average rate and the time left at that rate. It is meant for a terminal
// only; see showProgress.
type progressBar struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	base  int64 // bytes there at start, which the rate does not count
	drawn bool
}

func newProgressBar(w io.Writer, now func() time.Time) *progressBar {
	return &progressBar{w: w, now: now, start: now()}
}

// rebase restarts the rate's clock now, at received bytes: those of a
// transfer that resumes were not transferred now.
func (p *progressBar) rebase(received int64) { p.base, p.start = received, p.now() }

// update redraws the bar. It has the signature of client.Client.Progress,
// which already limits how often it is called.
func (p *progressBar) update(received, expected int64) {
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
			left = "  " + formatLeft(time.Duration(float64(expected-received)/perSecond*float64(time.Second))) + " left"
		}
	}
	// \x1b[K clears what a longer previous line left behind.
	fmt.Fprintf(p.w, "\r%3d%% [%s] %s / %s  %s%s\x1b[K",
		int(frac*100), bar, formatBytes(received), formatBytes(expected), rate, left)
	p.drawn = true
}

// done ends the bar's line, if one was drawn.
func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
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
