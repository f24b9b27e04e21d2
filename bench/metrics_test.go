//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParsePromText(t *testing.T) {
	in := `# HELP larder_audit_events_not_taken_total Audit events refused.
# TYPE larder_audit_events_not_taken_total counter
larder_audit_events_not_taken_total{reason="closed"} 0
larder_audit_events_not_taken_total{reason="queue_full"} 2
larder_audit_events_not_taken_total{reason="spool_full"} 3
larder_audit_events_taken_total 1.234567e+06
larder_audit_spool_bytes 4096 1700000000000
larder_course_requests_total{op="retrieve",status="a } b"} 7

larder_connections_open 1
`
	sums, err := parsePromText(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"larder_audit_events_not_taken_total": 5,
		"larder_audit_events_taken_total":     1234567,
		"larder_audit_spool_bytes":            4096,
		"larder_course_requests_total":        7,
		"larder_connections_open":             1,
	} {
		if got := sums[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	c := auditCountersOf(sums)
	if !c.exported || c.notTaken != 5 || c.taken != 1234567 || c.spoolBytes != 4096 || c.connsOpen != 1 {
		t.Errorf("auditCountersOf = %+v", c)
	}
	if auditCountersOf(map[string]float64{"larder_connections_open": 0}).exported {
		t.Error("exported without larder_audit_events_taken_total")
	}
	for _, bad := range []string{"larder_x{a=\"b\" 1\n", "larder_x\n", "larder_x one\n"} {
		if _, err := parsePromText(strings.NewReader(bad)); err == nil {
			t.Errorf("parsePromText(%q): no error", bad)
		}
	}
}

func TestSettled(t *testing.T) {
	base := auditCounters{exported: true, taken: 100, durable: 100, delivered: 100}
	tests := []struct {
		setup     string
		cur, prev auditCounters
		want      bool
	}{
		{auditUp, base, base, true},
		{auditUp, auditCounters{exported: true, taken: 100, durable: 100, delivered: 90}, base, false},
		{auditUp, auditCounters{exported: true, taken: 100, durable: 99, delivered: 99}, base, false},
		{auditDown, auditCounters{exported: true, taken: 100, durable: 100}, base, true},
		{auditDown, auditCounters{exported: true, taken: 100, durable: 98}, base, false},
		{auditDown, auditCounters{exported: true, taken: 101, durable: 101}, base, false}, // still moving
		{auditOff, auditCounters{}, auditCounters{}, true},
		{auditOff, auditCounters{connsOpen: 1}, auditCounters{}, false},
	}
	for i, tt := range tests {
		if got := settled(tt.setup, tt.cur, tt.prev); got != tt.want {
			t.Errorf("%d: settled(%s, %+v, %+v) = %v, want %v", i, tt.setup, tt.cur, tt.prev, got, tt.want)
		}
	}
}

func TestAuditRoundCheck(t *testing.T) {
	round := func(delivered, notTaken float64) auditRound {
		var r auditRound
		r.load.ok = 10
		r.before = auditCounters{exported: true, taken: 5, delivered: 5}
		r.after = auditCounters{exported: true, taken: 45, delivered: 5 + delivered, notTaken: notTaken}
		return r
	}
	tests := []struct {
		setup string
		r     auditRound
		ok    bool
	}{
		{auditUp, round(40, 0), true},
		{auditUp, round(39, 0), false},
		{auditUp, round(40, 1), false},
		{auditDown, round(0, 0), true},
		{auditDown, round(1, 0), false},
		{auditOff, auditRound{}, true},
		{auditOff, round(0, 0), false}, // audit metrics with the trail off
	}
	for i, tt := range tests {
		if err := tt.r.check(tt.setup); (err == nil) != tt.ok {
			t.Errorf("%d: check(%s) = %v, want ok %v", i, tt.setup, err, tt.ok)
		}
	}
	// An answered retrieval leaves 2 events, its login and its download:
	// 20 retrievals with 40 events are whole, 21 are not.
	whole := round(40, 0)
	whole.load.ok = 20
	if err := whole.check(auditUp); err != nil {
		t.Errorf("check refused 2 events per retrieval: %v", err)
	}
	short := round(40, 0)
	short.load.ok = 21 // 42 events wanted, 40 recorded
	if short.check(auditUp) == nil {
		t.Error("check accepted fewer than 2 events per retrieval")
	}
}
