package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// TestAuditFileRotation: with --audit-sink jsonl:PATH, log rotation's
// "mv PATH PATH.1", then Main.Reload (what SIGHUP does), lets go of the
// moved file at once, and the events after it go to a new file at PATH.
func TestAuditFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := startLarder(t, func(c *ServeConfig) { c.Audit.Sink = "jsonl:" + path })
	sig := larder.NewSignature("pw", course.CourseSalt)
	register(t, l, "alice", sig)
	waitUntil(t, "alice's registration in the file", func() bool { b, _ := os.ReadFile(path); return strings.Contains(string(b), `"alice"`) })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.main.Reload()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after the reopen, the file at the path: %v, %v; want one of mode 0600", fi, err)
	}
	register(t, l, "bob", sig)
	waitUntil(t, "bob's registration in the new file", func() bool { b, _ := os.ReadFile(path); return strings.Contains(string(b), `"bob"`) })
	if b, _ := os.ReadFile(path + ".1"); strings.Contains(string(b), `"bob"`) {
		t.Errorf("an event after the rotation went into the moved file")
	}
	if s := l.main.audit.stats(); s.SinkReopens != 1 {
		t.Errorf("larder_audit_sink_reopens_total = %d, want 1", s.SinkReopens)
	}
}
