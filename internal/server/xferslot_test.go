package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// TestLNPRefusedTransferFreesSlotFirst: a transfer refused after it took
// the account's transfer slot (a GET of a missing file, a PUT onto a file
// without overwrite) frees the slot before its answer, as one that ends
// well does: a client that starts its next transfer on another session as
// soon as it has the refusal is not told BUSY by the transfer refused.
func TestLNPRefusedTransferFreesSlotFirst(t *testing.T) {
	h := newLNPHarness(t, func(s *server.Server) { s.MaxTransfersPerUser = 1 })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	a, b := h.login(t, "alice", sig), h.login(t, "alice", sig)
	data := []byte("some bytes")
	if _, err := a.Put(ctx, "there", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		_, err := a.Get(ctx, "missing", 0, new(bytes.Buffer), nil)
		wantLNPStatus(t, "get of a missing file", err, lnp.StatusNotFound)
		if _, err := b.Get(ctx, "there", 0, new(bytes.Buffer), nil); err != nil {
			t.Fatalf("get %d, just after the other session's GET was refused: %v", i, err)
		}
		_, err = b.Put(ctx, "there", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
		wantLNPStatus(t, "put onto a file without overwrite", err, lnp.StatusConflict)
		if _, err := a.Get(ctx, "there", 0, new(bytes.Buffer), nil); err != nil {
			t.Fatalf("get %d, just after the other session's PUT was refused: %v", i, err)
		}
	}
}
