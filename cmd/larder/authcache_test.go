package main

import (
	"context"
	"strings"
	"testing"
)

// TestServeAuthCacheFlagsPositive: --auth-cache-ttl 0 or --auth-cache-entries
// 0, as one would write to turn the verification cache off, are refused
// with a usage error that says what to do, instead of silently meaning the
// defaults (5 minutes, 10,000 entries) and caching on.
func TestServeAuthCacheFlagsPositive(t *testing.T) {
	for _, flags := range [][]string{
		{"--auth-cache-entries", "0"},
		{"--auth-cache-entries", "-1"},
		{"--auth-cache-ttl", "0s"},
		{"--auth-cache-ttl", "-1m"},
	} {
		// A context already done: should the flags be taken, the server
		// stops at once instead of serving.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		env := &Env{Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, Getenv: func(string) string { return "" }}
		args := append([]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--native-listen", "off"}, flags...)
		err := runServe(ctx, env, args)
		if err == nil || ExitCode(err) != exitUsage || !strings.Contains(err.Error(), flags[0]) || !strings.Contains(err.Error(), "1ns") {
			t.Errorf("serve %s: got %v (exit %d), want a usage error (exit %d) naming %s and saying how to make the cache keep nothing", strings.Join(flags, " "), err, ExitCode(err), exitUsage, flags[0])
		}
	}
}
