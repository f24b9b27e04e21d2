package main

import (
	"context"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestAuditRetentionFlag: --audit-retention takes days, durations and 0.
func TestAuditRetentionFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"0", 0, true},
		{"0d", 0, true},
		{"720h", 720 * time.Hour, true},
		{"-1d", 0, false},
		{"-5h", 0, false},
		{"ninety", 0, false},
	} {
		var got time.Duration
		err := retentionFlag(&got)(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("--audit-retention %s: got %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestServerPrunesAuditTrail: a server deletes the events of its database
// past --audit-retention, and keeps the others.
func TestServerPrunesAuditTrail(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) {
		c.Audit.Retention, c.Audit.pruneInterval = 30*24*time.Hour, 100*time.Millisecond
	})
	ctx := context.Background()
	now := time.Now()
	var evs []larder.Event
	for i := range 10 {
		at := now.Add(-40 * 24 * time.Hour).Add(time.Duration(i) * time.Minute)
		if i >= 6 {
			at = now.Add(-20 * 24 * time.Hour)
		}
		evs = append(evs, larder.Event{ID: larder.NewEventID(at), Time: at, Kind: larder.EventConnClose, Remote: "192.0.2.9:1234", Reason: "old"})
	}
	if err := l.main.accounts.db.events().StoreEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := l.main.accounts.db.events().Events(ctx, larder.EventFilter{Kinds: []larder.EventKind{larder.EventConnClose}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range got {
			if e.Reason == "old" {
				n++
			}
		}
		if n == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the stored events left, want the 4 within the retention", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
