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

// TestDeleteTreeGoesOn: DeleteTree sends recursive DELETEs while the
// server answers that there is more, and sums what each removed.
func TestDeleteTreeGoesOn(t *testing.T) {
	cc, sc := net.Pipe()
	defer cc.Close()
	done := make(chan []lnp.Delete, 1)
	go func() {
		defer sc.Close()
		var got []lnp.Delete
		defer func() { done <- got }()
		r, w := lnp.NewReader(sc), lnp.NewWriter(sc, 0)
		if _, _, err := r.Next(); err != nil {
			return
		}
		w.Write(lnp.Welcome{Status: lnp.StatusOK, BlockSize: lnp.DefaultBlockSize, Server: "new", Features: lnp.FeatureTreeDelete})
		w.Flush()
		for _, more := range []bool{true, true, false} {
			typ, body, err := r.Next()
			if err != nil {
				return
			}
			m, err := lnp.ParseRequest(typ, body)
			d, _ := m.(lnp.Delete)
			if err != nil || typ != lnp.TypeDelete {
				return
			}
			got = append(got, d)
			w.Write(lnp.Reply{Status: lnp.StatusOK, Body: (&lnp.DeleteReply{Files: 10, Folders: 1, Bytes: 100, More: more}).AppendBody(nil)})
			w.Flush()
		}
	}()
	ctx := context.Background()
	s, err := client.NewSession(ctx, cc, "alice", [32]byte{}, client.SessionOptions{Features: lnp.FeatureTreeDelete})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.DeleteTree(ctx, "big")
	if want := (lnp.DeleteReply{Files: 30, Folders: 3, Bytes: 300}); err != nil || r != want {
		t.Errorf("DeleteTree: got %+v, %v; want %+v", r, err, want)
	}
	cc.Close()
	got := <-done
	if len(got) != 3 {
		t.Fatalf("the server got %d DELETEs, want 3: %+v", len(got), got)
	}
	for _, d := range got {
		if d != (lnp.Delete{Path: "big", Recursive: true}) {
			t.Errorf("a DELETE sent: %+v, want a recursive one of big", d)
		}
	}
}
