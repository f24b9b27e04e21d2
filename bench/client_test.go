//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

// serveReplies answers each connection on a loopback listener with the
// course reply that carries payload under total (which may be wrong), and
// returns the listener's address.
func serveReplies(t *testing.T, payload []byte, total [32]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 1024)) // the request
				w := course.NewWriter(c)
				if _, err := w.WritePayload(course.StatusOK, bytes.NewReader(payload), int64(len(payload)), total, nil); err == nil {
					w.Flush()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFetchChecked runs the checked course client, on one core and on two,
// against replies whose total hash is right and wrong, of sizes around
// the two-core client's chunk of 64 blocks.
func TestFetchChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, size := range []int{0, 1, course.MaxBlockPayload, totalChunk - 1, totalChunk, totalChunk + 1, 3*totalChunk + 5} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i*7 + i/251)
		}
		f := fileSpec{Path: "f", Size: size, Sum: sha256.Sum256(payload)}
		good := newClient(serveReplies(t, payload, f.Sum), 10*time.Second)
		wrong := f.Sum
		wrong[0] ^= 1
		bad := newClient(serveReplies(t, payload, wrong), 10*time.Second)
		badF := f
		badF.Sum = wrong // the client knows the wrong sum too: only the payload's hash can tell
		for name, fetch := range map[string]func(*client, fileSpec) (int64, error){
			"one core":  func(c *client, f fileSpec) (int64, error) { return c.fetchFramed(ctx, []byte("req"), f) },
			"two cores": func(c *client, f fileSpec) (int64, error) { return c.fetchFramedTwoCores(ctx, []byte("req"), f) },
		} {
			if n, err := fetch(good, f); err != nil || n != int64(size) {
				t.Errorf("%s, %d bytes: got %d, %v; want %d, nil", name, size, n, err, size)
			}
			if _, err := fetch(bad, badF); err == nil || !strings.Contains(err.Error(), "total hash") {
				t.Errorf("%s, %d bytes, wrong total hash: got %v, want a total hash mismatch", name, size, err)
			}
		}
	}
}
