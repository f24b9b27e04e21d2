//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// TestProfileSummary: the profiles a scenario's servers leave are merged
// into one per scenario, a second run of it gets a file of its own, the
// raw ones are removed, and the summary names the merged file and the
// functions that took the time.
func TestProfileSummary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to run go tool pprof")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	if err := resetProfiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(raw, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := func(name string) {
		f, err := os.Create(filepath.Join(raw, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Skipf("cannot profile here: %v", err)
		}
		busyHashing(300 * time.Millisecond)
		pprof.StopCPUProfile()
	}

	for run, want := range []string{"rps.pprof", "rps-2.pprof"} {
		profile("rps-1.pprof")
		profile("rps-2.pprof")
		var out bytes.Buffer
		if err := profileSummary(&out, raw, dir, "rps"); err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		merged := filepath.Join(dir, want)
		if _, err := os.Stat(merged); err != nil {
			t.Fatalf("run %d: no merged profile: %v", run+1, err)
		}
		if left, _ := filepath.Glob(filepath.Join(raw, "*.pprof")); len(left) > 0 {
			t.Errorf("run %d: raw profiles left: %v", run+1, left)
		}
		s := out.String()
		for _, w := range []string{"<details>", "2 server process(es)", merged, "busyHashing", "sha256", "</details>"} {
			if !strings.Contains(s, w) {
				t.Errorf("run %d: the summary lacks %q:\n%s", run+1, w, s)
			}
		}
		if strings.Contains(s, "Build ID:") || strings.Contains(s, "Time:") {
			t.Errorf("run %d: the summary keeps pprof's header lines:\n%s", run+1, s)
		}
	}

	// A new comparison starts from an empty folder.
	if err := resetProfiles(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.pprof")); len(left) > 0 {
		t.Errorf("resetProfiles left %v", left)
	}
	var out bytes.Buffer
	if err := profileSummary(&out, raw, dir, "rps"); err == nil {
		t.Error("a summary with no profile to merge succeeded")
	}
}

// busyHashing keeps a core busy for d, for a profile to sample.
func busyHashing(d time.Duration) {
	b := make([]byte, 64<<10)
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := sha256.Sum256(b)
		b[0] = s[0]
	}
}
