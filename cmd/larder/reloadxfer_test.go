package main

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
)

// TestReloadDuringTransfers: a storm of reloads that change the limits,
// timeouts, quotas and hash policy while LNP/1 uploads and downloads
// run drops no transfer: each completes, whole, under settings that
// allow it either way.
func TestReloadDuringTransfers(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.InsecurePlaintextLNP = true })
	sig := larder.NewSignature("pw", "salt")
	if _, err := l.main.srv.Auth.Register(t.Context(), "alice", sig[:]); err != nil {
		t.Fatal(err)
	}
	data := randomData(3<<20, 5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := range 2 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", l.lnpAddr())
			if err != nil {
				t.Error(err)
				return
			}
			s, err := client.NewSession(t.Context(), conn, "alice", sig, client.SessionOptions{})
			if err != nil {
				t.Errorf("session: %v", err)
				return
			}
			defer s.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("/w%d-%d", w, i%3)
				if _, err := s.Put(t.Context(), name, bytes.NewReader(data), int64(len(data)), client.PutOptions{Overwrite: true}); err != nil {
					t.Errorf("put %s during the reloads: %v", name, err)
					return
				}
				var got bytes.Buffer
				if _, err := s.Get(t.Context(), name, 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
					t.Errorf("get %s during the reloads: %v (%d bytes)", name, err, got.Len())
					return
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	base := l.main.Config
	for i := range 30 {
		next := base
		next.LowerHashPolicy = true
		if i%2 == 1 {
			next.RequestTimeout, next.WriteTimeout, next.LNPIdleTimeout = 5*time.Second, 5*time.Second, 20*time.Second
			next.Hash.Memory = 128
			next.MaxTransfersPerUser, next.MaxSessionsPerUser = 2, 3
			next.Quota = larder.Quota{Bytes: 64 << 20, Files: 20}
		}
		l.main.ReloadConfig(next, nil)
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if done == 0 {
		t.Error("no transfer completed during the reloads")
	}
	t.Logf("%d uploads and downloads completed across 30 reloads", done)
}
