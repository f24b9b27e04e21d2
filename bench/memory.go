//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file watches a process's memory: its resident set as the kernel
// counts it (/proc/PID/status), sampled while a load runs, and its Go heap
// as the runtime reports it with GODEBUG=gctrace=1, so that a resident set
// above what the work needs can be split into the Go heap and the rest.

// memStatus is a process's memory from /proc/PID/status, in bytes.
type memStatus struct {
	rss  int64 // VmRSS: resident now
	hwm  int64 // VmHWM: the most resident since the process started
	anon int64 // RssAnon: resident anonymous memory (the Go heap, stacks, C allocations)
	file int64 // RssFile: resident file-backed memory (the binary's text and data)
}

func (p *Process) memStatus() (memStatus, error) {
	return readMemStatus(p.PID)
}

func readMemStatus(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	return parseMemStatus(b)
}

// parseMemStatus extracts the memory lines of /proc/PID/status. VmRSS is
// required; the others read as zero on kernels without them.
func parseMemStatus(b []byte) (memStatus, error) {
	var m memStatus
	fields := map[string]*int64{"VmRSS": &m.rss, "VmHWM": &m.hwm, "RssAnon": &m.anon, "RssFile": &m.file}
	seenRSS := false
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		dst, want := fields[k]
		if !ok || !want {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
			return m, fmt.Errorf("bench: %s line %q: %w", k, strings.TrimSpace(line), err)
		}
		*dst = kb << 10
		seenRSS = seenRSS || k == "VmRSS"
	}
	if !seenRSS {
		return m, errors.New("bench: no VmRSS in /proc status")
	}
	return m, nil
}

// rssPeak is the largest resident set seen by an rssSampler, with the
// split of that sample.
type rssPeak struct {
	memStatus
	samples int
}

// rssSampler reads a process's memory at a fixed interval until stopped.
type rssSampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  rssPeak
	err   error
}

// sampleRSS starts sampling the memory of process pid every interval.
func sampleRSS(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			m, err := readMemStatus(pid)
			if err != nil {
				s.err = err
				return
			}
			s.peak.samples++
			if m.rss > s.peak.rss {
				s.peak.memStatus = m
			}
			s.peak.hwm = m.hwm // the kernel's own peak, never lower than a sample
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak.
func (s *rssSampler) stop() (rssPeak, error) {
	close(s.stopc)
	<-s.done
	return s.peak, s.err
}

// gcTrace summarizes the lines that GODEBUG=gctrace=1 makes the Go
// runtime write to standard error, one per garbage collection:
//
//	gc 7 @1.234s 3%: ...clock, ...cpu, 40->45->20 MB, 42 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// The three heap sizes are at the start of the cycle, at its end, and the
// live heap it found; the runtime's "MB" is 2^20 bytes.
type gcTrace struct {
	cycles    int
	maxHeap   int64 // the largest heap at the start or end of a cycle: the heap's peak, to within one cycle's growth
	maxLive   int64 // the largest live heap a cycle found
	maxGoal   int64 // the largest heap goal
	maxStacks int64 // the largest goroutine stack memory the collector scanned
}

var gcLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

// parseGCTrace reads gctrace lines from r, ignoring every other line.
func parseGCTrace(r io.Reader) gcTrace {
	var t gcTrace
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := gcLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		var v [5]int64
		for i := range v {
			v[i], _ = strconv.ParseInt(string(m[i+1]), 10, 64)
			v[i] <<= 20
		}
		t.cycles++
		t.maxHeap = max(t.maxHeap, v[0], v[1])
		t.maxLive = max(t.maxLive, v[2])
		t.maxGoal = max(t.maxGoal, v[3])
		t.maxStacks = max(t.maxStacks, v[4])
	}
	return t
}

// logSize returns the current length of p's log, to read what follows.
func (p *Process) logSize() int64 {
	fi, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// gcTraceSince summarizes the gctrace lines p has written after the first
// off bytes of its log.
func (p *Process) gcTraceSince(off int64) (gcTrace, error) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return gcTrace{}, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return gcTrace{}, err
	}
	return parseGCTrace(f), nil
}

// logRecordsSince counts the lines p has logged after the first off bytes
// of its log, other than gctrace lines, and returns the last of them.
func (p *Process) logRecordsSince(off int64) (int, string) {
	b, err := os.ReadFile(p.logPath)
	if err != nil || off > int64(len(b)) {
		return 0, ""
	}
	n, last := 0, ""
	for line := range bytes.Lines(b[off:]) {
		if !gcLine.Match(line) {
			n++
			last = strings.TrimSpace(string(line))
		}
	}
	return n, last
}
