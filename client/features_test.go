package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
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

// fakeServer logs a client in over a net.Pipe granting grant, then runs
// serve on the frames; it returns the client's session and a channel
// with serve's error.
func fakeServer(t *testing.T, offer, grant lnp.Features, serve func(r *lnp.Reader, w *lnp.Writer) error) (*client.Session, <-chan error) {
	t.Helper()
	cc, sc := net.Pipe()
	t.Cleanup(func() { cc.Close(); sc.Close() })
	done := make(chan error, 1)
	go func() {
		r, w := lnp.NewReader(sc), lnp.NewWriter(sc, 0)
		r.SetBlockSize(lnp.MinBlockSize)
		_, _, err := r.Next()
		if err == nil {
			err = w.Write(lnp.Welcome{Status: lnp.StatusOK, BlockSize: lnp.MinBlockSize, Server: "fake", Features: grant})
		}
		if err == nil {
			err = w.Flush()
		}
		if err == nil {
			err = serve(r, w)
		}
		done <- err
	}()
	s, err := client.NewSession(context.Background(), cc, "alice", [32]byte{}, client.SessionOptions{MaxBlock: lnp.MinBlockSize, Features: offer})
	if err != nil {
		t.Fatal(err)
	}
	return s, done
}

// serveGet answers one GET with head and blocks of data, each carrying
// the hash hashOf gives it, and END OK.
func serveGet(head lnp.GetReply, data []byte, hashOf func([]byte) [32]byte) func(r *lnp.Reader, w *lnp.Writer) error {
	return func(r *lnp.Reader, w *lnp.Writer) error {
		if _, _, err := r.Next(); err != nil {
			return err
		}
		if err := w.Write(lnp.Reply{Status: lnp.StatusOK, Body: head.AppendBody(nil)}); err != nil {
			return err
		}
		for off := 0; off < len(data); off += lnp.MinBlockSize {
			p := data[off:min(off+lnp.MinBlockSize, len(data))]
			d := lnp.Data{Offset: uint64(off), SHA256: hashOf(p)}
			if err := w.WriteFrameParts(lnp.TypeData, d.AppendHead(nil), p); err != nil {
				return err
			}
		}
		if err := w.Write(lnp.EndStatus{Status: lnp.StatusOK}); err != nil {
			return err
		}
		return w.Flush()
	}
}

func zeroHash([]byte) [32]byte { return [32]byte{} }

// TestNoBlockHashesPut: a session granted FeatureNoBlockHashes sends
// DATA frames with zero hashes and the whole file's SHA-256 at END.
func TestNoBlockHashesPut(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	var hashes [][32]byte
	var end lnp.EndHash
	s, done := fakeServer(t, lnp.FeatureNoBlockHashes, lnp.FeatureNoBlockHashes, func(r *lnp.Reader, w *lnp.Writer) error {
		if _, _, err := r.Next(); err != nil {
			return err
		}
		if err := w.Write(lnp.Reply{Status: lnp.StatusOK, Body: (&lnp.PutReply{}).AppendBody(nil)}); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for {
			typ, body, err := r.Next()
			if err != nil {
				return err
			}
			if typ == lnp.TypeEnd {
				if end, err = lnp.ParseEndHash(body); err != nil {
					return err
				}
				break
			}
			d, err := lnp.ParseData(body)
			if err != nil {
				return err
			}
			hashes = append(hashes, d.SHA256)
		}
		e := lnp.Entry{Name: "a", Size: uint64(len(data)), SHA256: end.SHA256}
		if err := w.Write(lnp.Reply{Status: lnp.StatusOK, Body: lnp.AppendEntry(nil, &e)}); err != nil {
			return err
		}
		return w.Flush()
	})
	if s.Features() != lnp.FeatureNoBlockHashes {
		t.Fatalf("features: got %b, want bit 1", s.Features())
	}
	if _, err := s.Put(context.Background(), "a", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 3 {
		t.Fatalf("%d DATA frames, want 3", len(hashes))
	}
	for i, h := range hashes {
		if h != ([32]byte{}) {
			t.Errorf("block %d carries the hash %x, want zeros", i, h[:4])
		}
	}
	if end.SHA256 != sha256.Sum256(data) {
		t.Errorf("END carries %x, want the file's SHA-256", end.SHA256[:4])
	}
}

// TestNoBlockHashesGet: in a session granted FeatureNoBlockHashes, Get
// from offset 0 checks the whole file against the SHA-256 announced, and
// refuses to start from an offset it could not check. A server that does
// not grant the feature has its blocks checked, zeros refused.
func TestNoBlockHashesGet(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghij"), 1000)
	head := lnp.GetReply{Size: uint64(len(data)), SHA256: sha256.Sum256(data)}
	ctx := context.Background()

	s, done := fakeServer(t, lnp.FeatureNoBlockHashes, lnp.FeatureNoBlockHashes, serveGet(head, data, zeroHash))
	var got bytes.Buffer
	if _, err := s.Get(ctx, "a", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("a good download under bit 1: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	bad := bytes.Clone(data)
	bad[5000] ^= 1
	s, done = fakeServer(t, lnp.FeatureNoBlockHashes, lnp.FeatureNoBlockHashes, serveGet(head, bad, zeroHash))
	_, err := s.Get(ctx, "a", 0, io.Discard, nil)
	var ie *client.IntegrityError
	if !errors.As(err, &ie) || ie.Block != -1 {
		t.Fatalf("a corrupted download under bit 1: got %v, want an IntegrityError on the whole file", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a", 100, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "use Download") {
		t.Fatalf("Get from an offset under bit 1: got %v, want it refused", err)
	}

	// Without bit 1 too, Get from 0 checks the whole file: blocks that
	// match their hashes but not the file announced are refused.
	s, _ = fakeServer(t, 0, 0, serveGet(head, bad, func(p []byte) [32]byte { return sha256.Sum256(p) }))
	if _, err := s.Get(ctx, "a", 0, io.Discard, nil); !errors.As(err, &ie) || ie.Block != -1 {
		t.Fatalf("blocks of another file, without bit 1: got %v, want an IntegrityError on the whole file", err)
	}

	// Offered, not granted: the blocks' hashes are checked, as before.
	s, _ = fakeServer(t, lnp.FeatureNoBlockHashes|lnp.FeaturePutTime, lnp.FeaturePutTime, serveGet(head, data, zeroHash))
	if s.Features() != lnp.FeaturePutTime {
		t.Fatalf("features: got %b, want bit 0 only", s.Features())
	}
	if _, err := s.Get(ctx, "a", 0, io.Discard, nil); !errors.As(err, &ie) || ie.Block != 0 {
		t.Fatalf("zero block hashes from a server not granting bit 1: got %v, want an IntegrityError on block 0", err)
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
