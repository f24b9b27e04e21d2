package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	now := time.Unix(1000, 0)
	var b bytes.Buffer
	p := newProgressBar(&b, func() time.Time { return now })
	now = now.Add(2 * time.Second)
	p.update(5<<20, 20<<20)
	want := "\r 25% [======>                 ] 5.0 MiB / 20.0 MiB  2.5 MiB/s  6s left\x1b[K"
	if got := b.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	b.Reset()
	p.update(20<<20, 20<<20)
	p.done()
	if got := b.String(); !strings.HasPrefix(got, "\r100% [========================] 20.0 MiB / 20.0 MiB") || !strings.HasSuffix(got, "\n") {
		t.Errorf("got %q", got)
	}
	b.Reset()
	p.done()
	if b.Len() != 0 {
		t.Errorf("a second done wrote %q", b.String())
	}

	// A zero-length payload is complete, not a division by zero.
	q := newProgressBar(&b, func() time.Time { return now })
	q.update(0, 0)
	if !strings.Contains(b.String(), "100%") {
		t.Errorf("got %q", b.String())
	}
}

// A resumed transfer's rate counts only what was transferred since.
func TestProgressBarResumed(t *testing.T) {
	now := time.Unix(1000, 0)
	var b bytes.Buffer
	p := newProgressBar(&b, func() time.Time { return now })
	now = now.Add(time.Hour) // verifying the partial file, say
	p.rebase(10 << 20)
	now = now.Add(4 * time.Second)
	p.update(12<<20, 20<<20)
	if got, want := b.String(), " 12.0 MiB / 20.0 MiB  512 KiB/s  16s left\x1b[K"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want it to end with %q", got, want)
	}
}

func TestFormatLeft(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {1400 * time.Millisecond, "1s"}, {59 * time.Second, "59s"},
		{185 * time.Second, "3m05s"}, {2*time.Hour + 7*time.Minute + 30*time.Second, "2h07m"},
	}
	for _, tt := range tests {
		if got := formatLeft(tt.d); got != tt.want {
			t.Errorf("formatLeft(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{150 << 20, "150 MiB"}, {3 << 30, "3.0 GiB"}, {1 << 62, "4.0 EiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestShowProgress(t *testing.T) {
	env, _, _ := testEnv(t, "x:1")
	if showProgress(env, false) {
		t.Error("a progress bar on a stderr that is not a terminal")
	}
}

// TestProgressFits: at any width, the line takes less than the terminal's
// columns (a character in the last one makes some terminals wrap, and a
// wrapped line cannot be redrawn in place), names the file, shortened in
// its middle if need be, as long as there is room for it, and is
// redrawn with the width the terminal has at each redraw.
func TestProgressFits(t *testing.T) {
	now := time.Unix(1000, 0)
	names := []string{"", "f.bin", "a-rather-long-file-name-for-narrow-terminals.bin", "日本語のとても長いファイル名です.txt", "bell\x07.txt"}
	for _, name := range names {
		for cols := 1; cols <= 200; cols++ {
			var b bytes.Buffer
			p := newProgressBar(&b, func() time.Time { return now })
			p.name = name
			p.columns = func() int { return cols }
			now = now.Add(time.Second)
			p.update(3<<20, 20<<20)
			line := strings.TrimSuffix(strings.TrimPrefix(b.String(), "\r"), "\x1b[K")
			if w := displayWidth(line); w > max(cols-3, 1) {
				t.Errorf("%d columns, name %q: a line of %d: %q", cols, name, w, line)
			}
			if strings.Contains(line, "\x07") {
				t.Errorf("the name's control character was drawn: %q", line)
			}
			if cols >= 40 && name != "" && !strings.HasPrefix(line, printable(name)[:3]) {
				t.Errorf("%d columns: %q does not name %q", cols, line, name)
			}
			if cols >= 80 && name == "f.bin" && !strings.Contains(line, "f.bin   15% [===>") {
				t.Errorf("%d columns: %q", cols, line)
			}
		}
	}
	// The width is read at each redraw: a window made narrower.
	var b bytes.Buffer
	cols := 120
	p := newProgressBar(&b, func() time.Time { return now })
	p.name, p.columns = "a-rather-long-file-name-for-narrow-terminals.bin", func() int { return cols }
	p.update(1, 10)
	wide := displayWidth(strings.TrimSuffix(strings.TrimPrefix(b.String(), "\r"), "\x1b[K"))
	cols = 30
	b.Reset()
	p.update(2, 10)
	out := b.String()
	if w := displayWidth(strings.TrimSuffix(out[strings.LastIndex(out, "\r")+1:], "\x1b[K")); w > 27 {
		t.Errorf("after the window shrank to 30 columns, a line of %d: %q", w, out)
	}
	// The wide line, wrapped again over rows by the terminal, is cleared
	// from its first row.
	if want := fmt.Sprintf("\r\x1b[%dA\x1b[J\r", (wide-1)/30); !strings.HasPrefix(out, want) {
		t.Errorf("after the window shrank from 120 to 30 columns: %q, want it to start with %q to clear the %d columns drawn before", out, want, wide)
	}
	// Wider again, or as wide: a carriage return is enough.
	cols = 100
	b.Reset()
	p.update(3, 10)
	if out := b.String(); strings.Contains(out, "\x1b[J") {
		t.Errorf("after the window grew: %q", out)
	}
}

// TestProgressDone: a transfer that completed leaves one final line, put
// and get alike; one that failed leaves none, so that its error starts a
// clean line.
func TestProgressDone(t *testing.T) {
	now := time.Unix(1000, 0)
	var b bytes.Buffer
	p := newProgressBar(&b, func() time.Time { return now })
	p.name = "f.bin"
	now = now.Add(4 * time.Second)
	p.update(8<<20, 8<<20)
	b.Reset()
	p.done()
	if got, want := b.String(), "\rf.bin  8.0 MiB  in 4s  2.0 MiB/s\x1b[K\n"; got != want {
		t.Errorf("done after the end: %q, want %q", got, want)
	}
	b.Reset()
	p = newProgressBar(&b, func() time.Time { return now })
	p.update(1<<20, 8<<20)
	b.Reset()
	p.done()
	if got, want := b.String(), "\r\x1b[K"; got != want {
		t.Errorf("done before the end: %q, want %q", got, want)
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		s    string
		cols int
		want string
	}{
		{"abcdef", 10, "abcdef"}, {"abcdef", 6, "abcdef"}, {"abcdef", 5, "ab…ef"}, {"abcdef", 1, "…"}, {"abcdef", 0, ""},
		{"日本語です", 6, "日…す"},
	} {
		if got := shorten(tt.s, tt.cols); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.s, tt.cols, got, tt.want)
		}
	}
}
