package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/files/backendtest"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// TestLNPDeleteTree: a session granted FeatureTreeDelete removes a folder
// and everything in it with one DELETE, which answers the counts, drops
// the usage by what went and is audited as one event with them; the top
// of the space and the shared area are refused; a session not granted it
// that sends the field gets BAD_REQUEST and the tree stays; a session
// that offers nothing gets the exchange of before.
func TestLNPDeleteTree(t *testing.T) {
	var out syncBuffer
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(&out, nil)})
	must(t, err)
	h := newLNPHarness(t, func(s *server.Server) { s.Audit = trail })
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.dialFeatures(t, "alice", sig, lnp.FeatureTreeDelete)
	if s.Features() != lnp.FeatureTreeDelete {
		t.Fatalf("features granted: %b, want bit 2", s.Features())
	}
	must(t, s.Mkdir(ctx, "d"))
	must(t, s.Mkdir(ctx, "d/e"))
	for _, p := range []string{"keep.txt", "d/a.txt", "d/e/b.txt", "d/e/c.txt"} {
		data := []byte("content of " + p)
		if _, err := s.Put(ctx, p, bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Whoami(ctx)
	must(t, err)

	// Not granted: refused, and nothing removed.
	w, r := h.rawSession(t, "alice", sig)
	must(t, w.Write(lnp.Delete{Path: "d", Recursive: true}))
	must(t, w.Flush())
	_, body, err := r.Next()
	must(t, err)
	rep, err := lnp.ParseReply(body)
	if err != nil || rep.Status != lnp.StatusBadRequest || !strings.Contains(rep.Message, "feature bit 2") {
		t.Errorf("a recursive DELETE not negotiated: got %+v, %v; want BAD_REQUEST naming the feature", rep, err)
	}
	if _, err := s.Stat(ctx, "d/e/c.txt"); err != nil {
		t.Errorf("after the refusal: %v, want the tree there", err)
	}
	plain := h.login(t, "alice", sig)
	if _, err := plain.DeleteTree(ctx, "d"); !errors.Is(err, client.ErrNotGranted) {
		t.Errorf("DeleteTree on a session offering nothing: %v, want ErrNotGranted", err)
	}
	wantLNPStatus(t, "a plain DELETE of a folder that is not empty", plain.Delete(ctx, "d"), lnp.StatusConflict)

	for _, bad := range []struct {
		path   string
		status lnp.Status
	}{{"", lnp.StatusBadRequest}, {"/", lnp.StatusBadRequest}, {"shared", lnp.StatusDenied}, {"/shared/x", lnp.StatusDenied}, {"missing", lnp.StatusNotFound}} {
		_, err := s.DeleteTree(ctx, bad.path)
		wantLNPStatus(t, "a recursive DELETE of "+bad.path, err, bad.status)
	}

	got, err := s.DeleteTree(ctx, "/d")
	want := lnp.DeleteReply{Files: 3, Folders: 2, Bytes: uint64(len("content of d/a.txt") + 2*len("content of d/e/b.txt"))}
	if err != nil || got != want {
		t.Fatalf("DeleteTree d: got %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.Stat(ctx, "d"); err == nil {
		t.Error("d is still there")
	}
	after, err := s.Whoami(ctx)
	must(t, err)
	if after.FilesUsed != before.FilesUsed-3 || after.BytesUsed != before.BytesUsed-want.Bytes {
		t.Errorf("usage: %+v before, %+v after; want 3 files and %d bytes fewer", before, after, want.Bytes)
	}
	if files, _ := filepath.Glob(filepath.Join(h.spaces, "*", "files", "d")); len(files) != 0 {
		t.Errorf("on disk after: %v", files)
	}
	// A file is removed too, as by a DELETE.
	if got, err := s.DeleteTree(ctx, "keep.txt"); err != nil || got.Files != 1 || got.Folders != 0 {
		t.Errorf("DeleteTree of a file: %+v, %v", got, err)
	}

	s.Close()
	plain.Close()
	h.srv.Close()
	h.srv.Wait()
	must(t, trail.Close(ctx))
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var e larder.Event
		must(t, json.Unmarshal([]byte(line), &e))
		if e.Kind == larder.EventDelete && e.Path == "/d" && e.Status == int(lnp.StatusOK) {
			found = found || e.Bytes == int64(want.Bytes) && e.Reason == "recursive: 3 files, 2 folders removed"
		}
	}
	if !found {
		t.Errorf("no delete event of /d with its counts in:\n%s", out.String())
	}
}

// TestLNPTreeBeingRemovedReason: a change refused because its tree's
// removal is not finished is CONFLICT with ReasonBeingRemoved to a session
// granted FeatureReasons, and the CONFLICT of before, with no reason
// field, to one that did not offer it; another CONFLICT (a file there)
// has no reason.
func TestLNPTreeBeingRemovedReason(t *testing.T) {
	var failing atomic.Bool
	h := newLNPHarnessFiles(t, func(p *fileParts) {
		p.wrap = func(b files.Backend) files.Backend { return backendtest.FailingRemovals{Backend: b, Failing: &failing} }
	})
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	s := h.dialFeatures(t, "alice", sig, lnp.FeatureTreeDelete|lnp.FeatureReasons)
	if s.Features() != lnp.FeatureTreeDelete|lnp.FeatureReasons {
		t.Fatalf("features granted: %b, want bits 2 and 3", s.Features())
	}
	old := h.dialFeatures(t, "alice", sig, lnp.FeatureTreeDelete)
	must(t, s.Mkdir(ctx, "d"))
	for _, p := range []string{"d/a.txt", "d/b.txt", "top.txt"} {
		if _, err := s.Put(ctx, p, strings.NewReader("x"), 1, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "top.txt", strings.NewReader("y"), 1, client.PutOptions{}); conflictReason(t, "a put over a file", err) != lnp.ReasonNone {
		t.Errorf("a put over a file: %v, want no reason", err)
	}
	failing.Store(true)
	if _, err := s.DeleteTree(ctx, "d"); err == nil {
		t.Fatal("DeleteTree with the disk failing: no error")
	}
	failing.Store(false)
	for name, sess := range map[string]*client.Session{"granted": s, "not offered": old} {
		want := lnp.ReasonBeingRemoved
		if sess == old {
			want = lnp.ReasonNone
		}
		for what, err := range map[string]error{
			"put into it": func() error {
				_, err := sess.Put(ctx, "d/new.txt", strings.NewReader("n"), 1, client.PutOptions{})
				return err
			}(),
			"rename into it": sess.Rename(ctx, "top.txt", "d/top.txt", true),
			"delete in it":   sess.Delete(ctx, "d/a.txt"),
			"mkdir in it":    sess.Mkdir(ctx, "d/e"),
		} {
			if got := conflictReason(t, name+": "+what, err); got != want {
				t.Errorf("%s: %s: reason %d, want %d", name, what, got, want)
			}
		}
	}
	if _, err := s.DeleteTree(ctx, "d"); err != nil {
		t.Fatalf("DeleteTree again: %v", err)
	}
	must(t, s.Mkdir(ctx, "d"))
}

// conflictReason returns the reason of err, which must be a CONFLICT.
func conflictReason(t *testing.T, what string, err error) lnp.Reason {
	t.Helper()
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != lnp.StatusConflict {
		t.Errorf("%s: %v, want CONFLICT", what, err)
		return lnp.ReasonNone
	}
	return ne.Reason
}
