package client_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// TestServerGrantsNoFeatures: against a server that answers a HELLO
// offering features with the WELCOME of before (one from before features,
// or one that grants none), the session uses none, and its PUT is the PUT
// of before: no time is sent.
func TestServerGrantsNoFeatures(t *testing.T) {
	cc, sc := net.Pipe()
	defer cc.Close()
	type seen struct {
		hello lnp.Hello
		put   lnp.Put
		err   error
	}
	done := make(chan seen, 1)
	go func() {
		defer sc.Close()
		var got seen
		r, w := lnp.NewReader(sc), lnp.NewWriter(sc, 0)
		_, body, err := r.Next()
		if err == nil {
			got.hello, err = lnp.ParseHello(body)
		}
		if err == nil {
			err = w.Write(lnp.Welcome{Status: lnp.StatusOK, BlockSize: lnp.DefaultBlockSize, Server: "old"})
		}
		if err == nil {
			err = w.Flush()
		}
		var typ lnp.Type
		if err == nil {
			typ, body, err = r.Next()
		}
		if err == nil {
			var m lnp.Message
			m, err = lnp.ParseRequest(typ, body)
			got.put, _ = m.(lnp.Put)
		}
		if err == nil {
			err = w.Write(lnp.Reply{Status: lnp.StatusDenied, Message: "not today"})
		}
		if err == nil {
			err = w.Flush()
		}
		got.err = err
		done <- got
	}()
	ctx := context.Background()
	s, err := client.NewSession(ctx, cc, "alice", [32]byte{}, client.SessionOptions{Features: lnp.FeaturePutTime})
	if err != nil {
		t.Fatal(err)
	}
	if s.Features() != 0 {
		t.Errorf("features: got %b, want none", s.Features())
	}
	_, err = s.Put(ctx, "a", bytes.NewReader([]byte("x")), 1, client.PutOptions{Modified: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)})
	if le, ok := err.(*client.LNPError); !ok || le.Status != lnp.StatusDenied {
		t.Errorf("put: got %v, want the server's DENIED", err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.hello.Features != lnp.FeaturePutTime {
		t.Errorf("the HELLO offered %b, want bit 0", got.hello.Features)
	}
	if !got.put.Modified.IsZero() || got.put.Path != "a" {
		t.Errorf("the PUT sent %+v, want one without a time", got.put)
	}
}
