package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
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
