package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// dialFeatures logs user in with a HELLO that offers features.
func (h *lnpHarness) dialFeatures(t *testing.T, user string, sig larder.Signature, f lnp.Features) *client.Session {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	s, err := client.NewSession(context.Background(), conn, user, sig, client.SessionOptions{Features: f})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLNPPutKeepsModTime: a session granted FeaturePutTime uploads a
// file with its modification time, to the nanosecond, which the file on
// disk has and STAT, LIST and GET answer; a client that offers no
// features gets the WELCOME of before and the time of the commit.
func TestLNPPutKeepsModTime(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.dialFeatures(t, "alice", sig, lnp.FeaturePutTime|1<<9)
	if s.Features() != lnp.FeaturePutTime {
		t.Fatalf("features granted: got %b, want bit 0 only (bit 9 is none the server knows)", s.Features())
	}
	when := time.Date(2011, 6, 7, 8, 9, 10, 123456789, time.UTC)
	data := []byte("a file from 2011")
	e, err := s.Put(ctx, "old.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{Modified: when})
	if err != nil || !e.Modified.Equal(when) {
		t.Fatalf("put: got %+v, %v; want modified %v", e, err, when)
	}
	if e, err := s.Stat(ctx, "old.txt"); err != nil || !e.Modified.Equal(when) {
		t.Errorf("stat: got %+v, %v; want modified %v", e, err, when)
	}
	list, _, err := s.List(ctx, "", "", 0)
	found := false
	for _, e := range list {
		found = found || e.Name == "old.txt" && e.Modified.Equal(when)
	}
	if err != nil || !found {
		t.Errorf("list: got %+v, %v; want old.txt modified %v", list, err, when)
	}
	if r, err := s.Get(ctx, "old.txt", 0, io.Discard, nil); err != nil || !r.Modified.Equal(when) {
		t.Errorf("get: got %+v, %v; want modified %v", r, err, when)
	}
	files, err := filepath.Glob(filepath.Join(h.spaces, "*", "files", "old.txt"))
	must(t, err)
	if len(files) != 1 {
		t.Fatalf("old.txt on disk: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || !fi.ModTime().Equal(when) {
		t.Errorf("old.txt on disk: modified %v, %v; want %v", fi.ModTime(), err, when)
	}

	// Offering nothing: the server's old WELCOME, and the time is not sent.
	plain := h.login(t, "alice", sig)
	if plain.Features() != 0 {
		t.Errorf("features granted to a client that offered none: %b", plain.Features())
	}
	before := time.Now().Add(-time.Second)
	e, err = plain.Put(ctx, "new.txt", bytes.NewReader(data), int64(len(data)), client.PutOptions{Modified: when})
	if err != nil || e.Modified.Before(before) {
		t.Errorf("put without the feature: got %+v, %v; want the time of the commit", e, err)
	}
}

// TestLNPPutRefusesModTime: a time a session did not negotiate, or that
// no file can have, is BAD_REQUEST before any data, with a reason, and
// the session goes on.
func TestLNPPutRefusesModTime(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")

	w, r := h.rawSession(t, "alice", sig)
	must(t, w.Write(lnp.Put{Path: "a.txt", Size: 1, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}))
	must(t, w.Flush())
	typ, body, err := r.Next()
	must(t, err)
	rep, err := lnp.ParseReply(body)
	if typ != lnp.TypeReply || err != nil || rep.Status != lnp.StatusBadRequest || !strings.Contains(rep.Message, "did not offer") {
		t.Errorf("a PUT with a time not negotiated: got %v %+v %v, want BAD_REQUEST saying so", typ, rep, err)
	}

	s := h.dialFeatures(t, "alice", sig, lnp.FeaturePutTime)
	for _, c := range []struct {
		when time.Time
		msg  string
	}{
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), "before 1970"},
		{time.Now().Add(49 * time.Hour), "more than a day ahead"},
	} {
		_, err := s.Put(ctx, "a.txt", bytes.NewReader([]byte("x")), 1, client.PutOptions{Modified: c.when})
		wantLNPStatus(t, "a PUT modified "+c.when.String(), err, lnp.StatusBadRequest)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("a PUT modified %v: %v, want it to say %q", c.when, err, c.msg)
		}
	}
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("refused PUTs left parts: %v", got)
	}
	if _, err := s.Whoami(ctx); err != nil {
		t.Errorf("the session after the refusals: %v", err)
	}
}
