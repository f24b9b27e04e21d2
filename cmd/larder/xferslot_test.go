package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/larderfs/larder/client"
)

// TestTransferSlotFreedBeforeReply: the server frees an account's
// transfer slot before it answers the transfer's end, so that a client
// that starts its next transfer on another session as soon as one ends
// is not told BUSY by its own finished transfer.
func TestTransferSlotFreedBeforeReply(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.MaxTransfersPerUser = 1 })
	env := loggedIn(t, l)
	ctx := context.Background()
	var sessions [2]*lnpSession
	for i := range sessions {
		_, s, err := lnpFlagsFor(t, env).connect(ctx, env)
		must(t, err)
		defer s.Close()
		sessions[i] = s
	}
	data := randomData(10_000, 1)
	for i := range 300 {
		s := sessions[i%2]
		name := fmt.Sprintf("/f%d", i%10)
		if _, err := s.Put(ctx, name, bytes.NewReader(data), int64(len(data)), client.PutOptions{Overwrite: true}); err != nil {
			t.Fatalf("put %d, just after the other session's transfer ended: %v", i, err)
		}
		s = sessions[(i+1)%2]
		if _, err := s.Get(ctx, name, 0, new(bytes.Buffer), nil); err != nil {
			t.Fatalf("get %d, just after the other session's transfer ended: %v", i, err)
		}
	}
}
