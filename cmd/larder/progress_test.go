package main

import (
	"bytes"
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
