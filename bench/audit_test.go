//go:build linux

package main

import (
	"slices"
	"strings"
	"testing"
)

// TestAuditSetups: the audit scenario measures the bare server by default,
// and another build (--vs) or another sink (--alt-sink) when asked; those
// two are checked as the default sink is (every event delivered).
func TestAuditSetups(t *testing.T) {
	c := newAuditConfig().(*auditConfig)
	names := func(setups []auditSetup) (n []string) {
		for _, s := range setups {
			n = append(n, s.name)
		}
		return n
	}
	if got, want := names(c.setups()), []string{auditOff, auditUp, auditDown, auditBare}; !slices.Equal(got, want) {
		t.Errorf("default setups %v, want %v", got, want)
	}
	c.bare, c.vs, c.altSink = false, "/tmp/other-larder", "nats://127.0.0.1:4222/x"
	setups := c.setups()
	if got, want := names(setups), []string{auditOff, auditUp, auditDown, auditAlt, auditVs}; !slices.Equal(got, want) {
		t.Fatalf("setups with --vs, --alt-sink and --bare=false: %v, want %v", got, want)
	}
	for _, s := range setups[3:] {
		if s.role() != auditUp {
			t.Errorf("%s is checked as %s, want as %s", s.name, s.role(), auditUp)
		}
	}
	if alt := setups[3]; !slices.Equal(alt.flags[:2], []string{"--audit-sink", c.altSink}) || alt.bin != "" {
		t.Errorf("alt runs %q with binary %q, want --audit-sink %s and the scenario's binary", alt.flags, alt.bin, c.altSink)
	}
	if vs := setups[4]; vs.bin != c.vs || !strings.Contains(strings.Join(vs.flags, " "), "--audit-sink db") {
		t.Errorf("vs runs %q with binary %q, want the default sink and %s", vs.flags, vs.bin, c.vs)
	}
}
