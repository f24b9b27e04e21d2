package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/server"
)

// TestSyncDownloadDurableBeforeLastBlock: with every kind synchronous
// (--audit-sync all), a course download's event is durable before the
// client has the whole file. It was recorded after the last block, and a
// SIGKILL in between left clients with the file and the trail without the
// download (2 runs of 4). The client here stops reading once every block
// is in, as the handout client does, and looks at what is durable then;
// afterwards the events must still say what was sent.
func TestSyncDownloadDurableBeforeLastBlock(t *testing.T) {
	var out syncBuffer
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(&out, nil), SyncKinds: larder.EventKinds})
	must(t, err)
	h := newHarness(t, func(s *server.Server) { s.Audit = trail })
	data := make([]byte, 200<<10)
	rand.Read(data)
	h.write(t, "f.bin", data)
	h.register(t, "alice")

	const downloads = 10
	for i := range downloads {
		before := trail.Stats().Durable
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(request("alice", testSig, "f.bin"))
		must(t, err)
		br := course.NewBlockReader(c)
		for n, count := uint32(0), uint32(1); n < count; n++ {
			hdr, _, err := br.ReadBlock()
			must(t, err)
			count = hdr.Count
		}
		// The login and the download, both of sync kinds.
		if got := trail.Stats().Durable - before; got < 2 {
			t.Errorf("download %d: when the client had every block, %d of its events were durable; want 2 (login, download)", i, got)
		}
		c.Close()
	}

	h.srv.Close()
	h.srv.Wait()
	must(t, trail.Close(context.Background()))
	sum := sha256.Sum256(data)
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var e larder.Event
		must(t, json.Unmarshal([]byte(line), &e))
		if e.Kind != larder.EventDownload {
			continue
		}
		n++
		if e.User != "alice" || e.Path != "/shared/f.bin" || e.Bytes != int64(len(data)) || e.SHA256 != sum || e.Status != int(course.StatusOK) || e.Reason != "" {
			t.Errorf("download event %+v; want alice, /shared/f.bin, %d bytes, the file's SHA-256, status 1, no reason", e, len(data))
		}
	}
	if n != downloads {
		t.Errorf("got %d download events, want %d:\n%s", n, downloads, out.String())
	}
}

// TestSyncDownloadWithheldWhenNotDurable: if a download's event is of a
// sync kind and cannot be made durable (here the trail is closed), the
// reply's last block is withheld: the client never has the whole file
// without its event.
func TestSyncDownloadWithheldWhenNotDurable(t *testing.T) {
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), SyncKinds: []larder.EventKind{larder.EventDownload}})
	must(t, err)
	h := newHarness(t, func(s *server.Server) { s.Audit = trail })
	h.write(t, "f.bin", make([]byte, 5*course.MaxBlockPayload))
	h.register(t, "alice")
	must(t, trail.Close(context.Background()))

	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(request("alice", testSig, "f.bin"))
	must(t, err)
	br := course.NewBlockReader(c)
	n := 0
	for {
		if _, _, err := br.ReadBlock(); err != nil {
			break
		}
		n++
	}
	if n != 4 {
		t.Errorf("got %d blocks of 5; want 4, the last withheld", n)
	}
	// The request's log line is written after the connection is closed.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.logs.String(), "the last block withheld: the download event was not recorded"); {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say why the download failed:\n%s", h.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
