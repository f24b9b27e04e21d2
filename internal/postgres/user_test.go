package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestReplaceVerifierBehindALock makes ReplaceVerifier's UPDATE wait for the
// row lock of a transaction that changes or deletes the account, then lets
// that transaction commit. The UPDATE then matches nothing although its
// snapshot saw the old verifier: ReplaceVerifier must look again, and
// answer as if it had come after the other transaction.
func TestReplaceVerifierBehindALock(t *testing.T) {
	for _, tc := range []struct {
		name, other, code string
	}{
		{"changed", `UPDATE users SET verifier = 'reset' WHERE name = 'nina'`, larder.ECONFLICT},
		{"deleted", `DELETE FROM users WHERE name = 'nina'`, larder.ENOTFOUND},
		{"only disabled", `UPDATE users SET disabled = true WHERE name = 'nina'`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := openTest(t, pgtest.URL(t))
			s := NewUserStore(db)
			ctx := context.Background()
			if err := s.CreateUser(ctx, &larder.User{Name: "nina", Verifier: "old"}); err != nil {
				t.Fatal(err)
			}
			tx, err := db.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, tc.other); err != nil {
				t.Fatal(err)
			}

			done := make(chan error, 1)
			go func() { done <- s.ReplaceVerifier(ctx, "nina", "old", "new") }()
			waitForLockWait(t, db)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if got := larder.ErrorCode(err); got != tc.code {
					t.Errorf("ReplaceVerifier after the other transaction: got %v (code %q), want code %q", err, got, tc.code)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("ReplaceVerifier still waiting 30s after the other transaction committed")
			}
		})
	}
}

// waitForLockWait returns once some session of db waits for a lock.
func waitForLockWait(t *testing.T, db *DB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := db.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no session waits for the row lock after 30s")
}
