package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
)

// TestLowerPolicyNeverWeakensHashes: logins must never weaken a hash. A
// server started with a policy below the recorded one is refused unless
// --hash-lower-policy says it is meant; with it, a login leaves a
// stronger hash alone, and raises only a hash's weaker parameters.
// calibrate says when its proposal is below the recorded policy.
func TestLowerPolicyNeverWeakensHashes(t *testing.T) {
	strong := auth.Params{Memory: 256, Time: 2, Threads: 1}
	l := startLarder(t, withHash(strong))
	l.put(t, "f.txt", []byte("olga's"))
	olga := larder.NewSignature("olga's password", "salt-o")
	register(t, l, "olga", olga)
	l.shutdown()

	weak := auth.Params{Memory: 64, Time: 1, Threads: 1}
	cfg := l.cfg
	cfg.Hash = weak
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.Open(ctx)
	if err == nil {
		m.Close()
	}
	wantErrorSaying(t, "serve with a policy below the recorded one", err,
		"m=64,t=1,p=1 is weaker than argon2id m=256,t=2,p=1", "--hash-lower-policy")

	l = l.restart(t, withHash(weak), func(c *ServeConfig) { c.LowerHashPolicy = true })
	wantFetch(t, l, "olga", olga, "f.txt", "olga's")
	wantHashes(t, l, map[string]string{"olga": "argon2id m=256,t=2,p=1 pepper=p1 [current]"}) // no rehash due
	wantHashesSummary(t, l, []string{
		"1 above policy argon2id m=256,t=2,p=1 pepper=p1",
		"1 accounts; the policy is argon2id m=64,t=1,p=1 with pepper p1",
	})

	// Stronger in memory, weaker in passes: only the passes rise.
	l = l.restart(t, withHash(auth.Params{Memory: 64, Time: 3, Threads: 1}))
	wantFetch(t, l, "olga", olga, "f.txt", "olga's")
	wantHashes(t, l, map[string]string{"olga": "argon2id m=256,t=3,p=1 pepper=p1 [current]"})
	wantHashesSummary(t, l, []string{
		"1 above policy argon2id m=256,t=3,p=1 pepper=p1",
		"1 accounts; the policy is argon2id m=64,t=3,p=1 with pepper p1",
	})

	// calibrate proposes at most 8 MiB here: less memory than a recorded
	// policy of 16 MiB.
	l = l.restart(t, withHash(auth.Params{Memory: 16384, Time: 1, Threads: 1}))
	l.shutdown()
	out, _, err := runLarder(t, "", "admin", "calibrate", "--target", "5ms", "--max-memory", "8192", "--data", l.data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "warning: the proposal has less memory (") || !strings.Contains(out, "< 16384 KiB) than the servers' recorded policy argon2id m=16384,t=1,p=1") ||
		!strings.Contains(out, "stored hashes are never lowered") {
		t.Errorf("admin calibrate below the recorded policy printed\n%s\nwant a warning naming it", out)
	}
	// Where no server recorded a policy, it creates nothing.
	empty := t.TempDir()
	if _, _, err := runLarder(t, "", "admin", "calibrate", "--target", "5ms", "--max-memory", "8192", "--data", empty); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("admin calibrate created %v in an empty data folder", names)
	}
}
