//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseMemStatus(t *testing.T) {
	status := "Name:\tlarder\nVmPeak:\t 1000 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t   512 kB\nRssFile:\t   256 kB\nThreads:\t5\n"
	m, err := parseMemStatus([]byte(status))
	want := memStatus{rss: 1 << 20, hwm: 2 << 20, anon: 512 << 10, file: 256 << 10}
	if err != nil || m != want {
		t.Errorf("parseMemStatus = %+v, %v; want %+v", m, err, want)
	}
	if _, err := parseMemStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("parseMemStatus without VmRSS succeeded")
	}
	if _, err := parseMemStatus([]byte("VmRSS:\tlots\n")); err == nil {
		t.Error("parseMemStatus of a bad VmRSS succeeded")
	}
}

func TestParseGCTrace(t *testing.T) {
	log := strings.Join([]string{
		"larder: serving /x on 127.0.0.1:1 (data in /y)",
		"gc 1 @0.010s 2%: 0.015+1.2+0.003 ms clock, 0.031+0.5/1.0/0+0.007 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P",
		`time=2026-11-22T18:00:00Z level=WARN msg=request status=6`,
		"gc 2 @0.500s 5%: 0.2+3+0.01 ms clock, 0.4+1/2/0+0.02 ms cpu, 80->95->40 MB, 82 MB goal, 1 MB stacks, 0 MB globals, 2 P",
		"gc 3 @0.900s 5%: 0.2+3+0.01 ms clock, 0.4+1/2/0+0.02 ms cpu, 60->61->45 MB, 90 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)",
	}, "\n")
	got := parseGCTrace(strings.NewReader(log))
	want := gcTrace{cycles: 3, maxHeap: 95 << 20, maxLive: 45 << 20, maxGoal: 90 << 20, maxStacks: 1 << 20}
	if got != want {
		t.Errorf("parseGCTrace = %+v, want %+v", got, want)
	}
}
