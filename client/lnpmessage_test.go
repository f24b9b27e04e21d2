package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// TestLNPMessagesCleaned: the messages of an LNP/1 server's WELCOME and
// REPLY are made printable, as the course protocol's are, so that a
// hostile server cannot move the terminal's cursor or retitle its window
// through an error message.
func TestLNPMessagesCleaned(t *testing.T) {
	const evil = "bad\x1b[2J\x1b]0;pwned\x07 thing\u202e"
	for _, stage := range []string{"welcome", "reply"} {
		t.Run(stage, func(t *testing.T) {
			cc, sc := net.Pipe()
			defer cc.Close()
			go func() {
				defer sc.Close()
				r, w := lnp.NewReader(sc), lnp.NewWriter(sc, 4096)
				if _, _, err := r.Next(); err != nil {
					return
				}
				welcome := lnp.Welcome{Status: lnp.StatusOK, BlockSize: lnp.MinBlockSize, Server: "x"}
				if stage == "welcome" {
					welcome.Status, welcome.Message = lnp.StatusInvalidLogin, evil
				}
				w.Write(welcome)
				w.Flush()
				if stage == "reply" {
					if _, _, err := r.Next(); err != nil {
						return
					}
					w.Write(lnp.Reply{Status: lnp.StatusNotFound, Message: evil})
					w.Flush()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := NewSession(ctx, cc, "alice", larder.Signature{}, SessionOptions{})
			if err == nil {
				_, err = s.Whoami(ctx)
			}
			var le *LNPError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want an *LNPError", err)
			}
			if strings.ContainsAny(le.Message, "\x1b\x07\u202e") || !strings.Contains(le.Message, "thing") {
				t.Errorf("message %q: want it printable, with its text", le.Message)
			}
		})
	}
}
