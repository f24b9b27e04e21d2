package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestJSONOutputs: whoami, put, get (both protocols) and admin hashes
// print one JSON object with --json.
func TestJSONOutputs(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := []byte("hello, json")
	sum := sha256.Sum256(data)
	dir := t.TempDir()
	local := writeLocal(t, dir, "j.txt", data)

	out, _ := runOK(t, env, "put", local, "--json")
	var e entryJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Path != "/j.txt" || e.Size != uint64(len(data)) || e.Type != "file" {
		t.Errorf("put --json: %q (%v)", out, err)
	}

	out, _ = runOK(t, env, "get", "/j.txt", "-o", filepath.Join(dir, "back.txt"), "--json")
	var g getJSON
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.Path != "/j.txt" || g.Size != int64(len(data)) ||
		g.SHA256 != hex.EncodeToString(sum[:]) || g.Modified == nil || g.Local != filepath.Join(dir, "back.txt") {
		t.Errorf("get --json: %q (%v)", out, err)
	}

	l.put(t, "c.txt", data)
	out, _ = runOK(t, env, "get", "--course", "c.txt", "-o", filepath.Join(dir, "c.txt"), "--json")
	g = getJSON{}
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.Path != "c.txt" || g.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("course get --json: %q (%v)", out, err)
	}
	wantExit(t, env, exitUsage, []string{"--json"}, "get", "/j.txt", "-o", "-", "--json")

	out, _ = runOK(t, env, "whoami", "--json")
	var w whoamiJSON
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.User != "alice" || w.BytesUsed != uint64(len(data)) ||
		w.FilesUsed != 1 || w.BytesQuota != nil || w.Server != l.lnpAddr() {
		t.Errorf("whoami --json: %q (%v)", out, err)
	}

	out, _, err := l.admin(t, "", "hashes", "--json")
	var h struct {
		Accounts int `json:"accounts"`
		Hashes   []struct {
			Accounts int    `json:"accounts"`
			Hash     string `json:"hash"`
		} `json:"hashes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &h) != nil || h.Accounts != 1 || len(h.Hashes) != 1 || h.Hashes[0].Accounts != 1 {
		t.Errorf("admin hashes --json: %q (%v)", out, err)
	}
}

// TestJSONMoreOutputs: devices, admin user devices, known-servers,
// admin pepper list, version and config show print their one documented
// shape with --json.
func TestJSONMoreOutputs(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)

	out, _ := runOK(t, env, "devices", "--json")
	var mine []myDeviceJSON
	if err := json.Unmarshal([]byte(out), &mine); err != nil || len(mine) != 1 || !mine[0].ThisMachine || mine[0].ID == "" ||
		mine[0].Created.IsZero() || mine[0].Expires.IsZero() {
		t.Errorf("devices --json: %q (%v)", out, err)
	}
	out, _, err := l.admin(t, "", "user", "devices", "alice", "--json")
	var theirs []deviceJSON
	if err != nil || json.Unmarshal([]byte(out), &theirs) != nil || len(theirs) != 1 || theirs[0].ID != mine[0].ID {
		t.Errorf("admin user devices alice --json: %q (%v)", out, err)
	}

	out, _ = runOK(t, env, "known-servers", "--json")
	var pins []pinJSON
	if err := json.Unmarshal([]byte(out), &pins); err != nil || len(pins) != 1 || pins[0].Server != l.lnpAddr() || !strings.HasPrefix(pins[0].Fingerprint, "SHA256:") {
		t.Errorf("known-servers --json: %q (%v)", out, err)
	}
	wantExit(t, env, exitUsage, []string{"--json goes with list"}, "known-servers", "rm", l.lnpAddr(), "--json")

	out, _, err = l.admin(t, "", "pepper", "list", "--json")
	var peppers []pepperJSON
	if err != nil || json.Unmarshal([]byte(out), &peppers) != nil || len(peppers) == 0 || !peppers[0].Current || !peppers[0].InFile {
		t.Errorf("admin pepper list --json: %q (%v)", out, err)
	}

	out, _ = runOK(t, env, "version", "--json")
	var v versionJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version --json: %q (%v)", out, err)
	}

	out, _ = runOK(t, env, "config", "show", "--json", "--max-conns", "7", "--log-format", "json")
	var c configJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("config show --json: %q (%v)", out, err)
	}
	got := map[string]settingJSON{}
	for _, s := range c.Settings {
		got[s.Key] = s
	}
	if s := got["max-conns"]; s.Value != float64(7) || s.From != "command line" || !s.Known {
		t.Errorf("config show --json: max-conns is %+v", s)
	}
	if s := got["log-format"]; s.Value != "json" {
		t.Errorf("config show --json: log-format is %+v", s)
	}
	if _, ok := got["json"]; ok {
		t.Errorf("config show --json lists its own --json as a setting")
	}
}

// TestJSONFlags: every command that prints data has --json. A command
// added to this list's side of the table without it fails here.
func TestJSONFlags(t *testing.T) {
	specs, err := describeAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	printsData := map[string]bool{
		"get": true, "put": true, "ls": true, "stat": true, "whoami": true, "parts": true, "devices": true,
		"remote list": true, "known-servers": true, "config show": true, "version": true,
		"admin user list": true, "admin user devices": true, "admin hashes": true, "admin pepper list": true,
		"admin storage check": true, "audit tail": true, "audit query": true, "check server": true, "check client": true,
	}
	walkSpecs(specs, func(s *cmdSpec) {
		if !printsData[s.name()] {
			return
		}
		delete(printsData, s.name())
		if !slices.ContainsFunc(s.flags, func(f *flag.Flag) bool { return f.Name == "json" }) {
			t.Errorf("larder %s prints data but has no --json", s.name())
		}
	})
	for name := range printsData {
		t.Errorf("no command %q", name)
	}
}
