package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit: the unit shipped in dist/ is what OPERATIONS.md says:
// Type=notify (larder speaks sd_notify), reload by SIGHUP, writes only to
// the data folder the example configuration names, started with that
// configuration; and systemd itself, where installed, finds nothing wrong
// with it.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "dist", "larder.service"))
	must(t, err)
	unit := string(b)
	for _, want := range []string{
		"\nType=notify\n",
		"\nExecReload=/bin/kill -HUP $MAINPID\n",
		"\nExecStart=/usr/local/bin/larder serve --config /etc/larder/larder.toml\n",
		"\nProtectSystem=strict\n",
		"\nReadWritePaths=/var/lib/larder\n",
		"\nNoNewPrivileges=true\n",
		"\nUser=larder\n",
		"\nWatchdogSec=",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("dist/larder.service lacks %q", strings.TrimSpace(want))
		}
	}
	conf, err := os.ReadFile(filepath.Join("..", "..", "dist", "larder.toml"))
	must(t, err)
	if !strings.Contains(string(conf), "\ndata = \"/var/lib/larder\"\n") {
		t.Error("dist/larder.toml does not put the data folder where the unit lets larder write")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit's syntax is not checked by systemd")
	}
	self, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "larder.service")
	must(t, os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/larder", self)), 0o644))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
