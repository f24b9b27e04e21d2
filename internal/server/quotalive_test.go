package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// TestLNPAccountQuotaOpenSessions: an account's own quota, set by another
// process, holds from the next upload of a session already open, and
// exactly for uploads of several sessions at once.
func TestLNPAccountQuotaOpenSessions(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	var sessions []*client.Session
	for range 4 {
		sessions = append(sessions, h.login(t, "alice", sig))
	}
	admin, _ := h.otherStore(t)
	data := randomBytes(1000, 7)
	mustSetQuota(t, admin, "alice", larder.AccountQuota{Bytes: 2500, SetBytes: true})
	_, err := sessions[0].Put(ctx, "big", bytes.NewReader(randomBytes(3000, 1)), 3000, client.PutOptions{})
	wantLNPStatus(t, "3000 bytes over a quota of 2500 set after the login", err, lnp.StatusQuotaExceeded)
	for round := range 5 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Put(ctx, fmt.Sprintf("r%d-%d", round, i), bytes.NewReader(data), int64(len(data)), client.PutOptions{})
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		w, err := sessions[0].Whoami(ctx)
		must(t, err)
		if w.BytesUsed > 2500 {
			t.Fatalf("round %d: %d bytes stored under a quota of 2500 (%d uploads committed)", round, w.BytesUsed, ok)
		}
		for i := range sessions {
			sessions[0].Delete(ctx, fmt.Sprintf("r%d-%d", round, i))
		}
	}
	mustSetQuota(t, admin, "alice", larder.AccountQuota{Bytes: 500, SetBytes: true})
	_, err = sessions[1].Put(ctx, "x", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	wantLNPStatus(t, "1000 bytes over a quota lowered to 500", err, lnp.StatusQuotaExceeded)
}
