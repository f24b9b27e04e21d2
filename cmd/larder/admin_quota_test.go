package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestAdminUserQuota sets an account's own quota as an administrator
// does, while the server runs: the user's next upload and whoami follow
// it at once, bound by bound over the server's default, and user list
// shows it with the account's usage and last login.
func TestAdminUserQuota(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Quota.Bytes = 1 << 20 })
	env := loggedIn(t, l)
	dir := t.TempDir()
	big := writeLocal(t, dir, "big.bin", randomData(2<<20, 4))
	small := writeLocal(t, dir, "small.bin", []byte("small"))
	wantExit(t, env, exitQuota, []string{"QUOTA_EXCEEDED"}, "put", big)

	out := adminOK(t, l, "", "user", "quota", "alice", "--bytes", "10MiB")
	if want := "quota of alice: 10.0 MiB / default (bytes / files), on every server from its next upload\n"; out != want {
		t.Errorf("user quota --bytes 10MiB printed %q, want %q", out, want)
	}
	out, _ = runOK(t, env, "whoami")
	if !strings.Contains(out, fmt.Sprintf("quota 10.0 MiB (%d bytes)", 10<<20)) || !strings.Contains(out, "files:  0 used, no quota") {
		t.Errorf("whoami after the account's quota was set printed %q", out)
	}
	runOK(t, env, "put", big)

	users := listUsers(t, l)
	if len(users) != 1 {
		t.Fatalf("user list --json: got %+v, want alice", users)
	}
	u := users[0]
	if u.QuotaBytes == nil || *u.QuotaBytes != 10<<20 || u.QuotaFiles != nil || u.BytesUsed != 2<<20 || u.FilesUsed != 1 || u.LastLogin == nil {
		t.Errorf("user list --json: got %+v, want quota_bytes 10 MiB, quota_files null, 2 MiB in 1 file used, a last login", u)
	}
	out = adminOK(t, l, "", "user", "list")
	if !strings.Contains(out, "10.0 MiB / default") || !strings.Contains(out, "2.0 MiB / 1 file ") || strings.Contains(out, "never") {
		t.Errorf("user list printed\n%s\nwant alice's quota, usage and last login", out)
	}

	adminOK(t, l, "", "user", "quota", "alice", "--files", "1")
	wantExit(t, env, exitQuota, []string{"QUOTA_EXCEEDED", "2 files, over its quota of 1"}, "put", small)
	adminOK(t, l, "", "user", "quota", "alice", "--files", "none", "--bytes", "none")
	runOK(t, env, "put", small)
	if out := adminOK(t, l, "", "user", "quota", "alice"); out != "quota of alice: none / none (bytes / files)\n" {
		t.Errorf("user quota alice printed %q", out)
	}
	adminOK(t, l, "", "user", "quota", "alice", "--default")
	out, _ = runOK(t, env, "whoami")
	if !strings.Contains(out, fmt.Sprintf("quota 1.0 MiB (%d bytes)", 1<<20)) {
		t.Errorf("whoami after --default printed %q, want the server's quota of 1 MiB", out)
	}

	// The mistakes people make.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"alice", "--bytes", "10GB"}, exitUsage, "binary units"},
		{[]string{"alice", "--bytes", "-5"}, exitUsage, "500MiB"},
		{[]string{"alice", "--bytes", "0"}, exitUsage, `"none" for no limit`},
		{[]string{"alice", "--files", "0"}, exitUsage, `"none" for no limit`},
		{[]string{"alice", "--files", "1.5"}, exitUsage, "number of files"},
		{[]string{"alice", "--default", "--files", "3"}, exitUsage, "--default goes with neither"},
		{[]string{"nobody", "--files", "3"}, exitFailure, `no such user "nobody"`},
		{[]string{"--files", "3"}, exitUsage, "one account name"},
	} {
		_, _, err := l.admin(t, "", append([]string{"user", "quota"}, c.args...)...)
		if ExitCode(err) != c.code || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("user quota %q: got %v (exit %d), want exit %d saying %q", c.args, err, ExitCode(err), c.code, c.msg)
		}
	}
	if out := adminOK(t, l, "", "user", "quota", "alice"); out != "quota of alice: default / default (bytes / files)\n" {
		t.Errorf("after refused changes, user quota alice printed %q", out)
	}
}

func TestParseQuotaSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1024", 1024, ""},
		{"10GiB", 10 << 30, ""},
		{"10gib", 10 << 30, ""},
		{"10G", 10 << 30, ""},
		{"1.5GiB", 3 << 29, ""},
		{"512k", 512 << 10, ""},
		{"2TiB", 2 << 40, ""},
		{"10GB", 0, "binary units; write GiB"},
		{"10 MB", 0, "binary units; write MiB"},
		{"0", 0, "want a size"},
		{"-5", 0, "want a size"},
		{"0.1", 0, "want a size"},
		{"lots", 0, "want a size"},
		{"NaNGiB", 0, "want a size"},
		{"1e30", 0, "want a size"},
		{"", 0, "want a size"},
	} {
		got, err := parseQuotaSize(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("parseQuotaSize(%q): got %d, %v; want %d", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseQuotaSize(%q): got %d, %v; want an error saying %q", c.in, got, err, c.err)
		}
	}
}
