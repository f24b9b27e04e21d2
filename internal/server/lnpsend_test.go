package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// blockSums returns the SHA-256 of each bs-byte block of data.
func blockSums(data []byte, bs int) []byte {
	var sums []byte
	for off := 0; off < len(data); off += bs {
		s := sha256.Sum256(data[off:min(off+bs, len(data))])
		sums = append(sums, s[:]...)
	}
	return sums
}

// TestLNPKnownBlockSums: an upload records its blocks' sums, and a
// download sends them instead of hashing the file again (through
// sendfile without TLS). The client still checks every block, so a file
// corrupted on the server's disk is caught, not served.
func TestLNPKnownBlockSums(t *testing.T) {
	for name, start := range map[string]func(*testing.T, ...func(*server.Server)) *lnpHarness{
		"TLS":       newLNPHarness,
		"plaintext": newPlaintextLNPHarness,
	} {
		t.Run(name, func(t *testing.T) {
			h := start(t)
			ctx := context.Background()
			sig := h.register(t, "alice", "pw")
			s := h.login(t, "alice", sig)
			bs := s.BlockSize()
			data := randomBytes(3*bs+1234, 11)
			sum := sha256.Sum256(data)
			if _, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			fs := h.parts.records
			got, err := fs.BlockSums(ctx, sum, int64(len(data)), bs)
			if err != nil {
				t.Fatalf("the upload's block sums: got %v, want them recorded", err)
			}
			if !bytes.Equal(got.Sums, blockSums(data, bs)) {
				t.Fatal("the recorded block sums are not the file's")
			}

			local := filepath.Join(t.TempDir(), "f.bin")
			if _, err := s.GetFile(ctx, "f.bin", local, nil); err != nil {
				t.Fatal(err)
			}
			if back, _ := os.ReadFile(local); !bytes.Equal(back, data) {
				t.Fatal("the download is not the file")
			}

			// Sums that are wrong for block 1: a server that sends the
			// recorded sums without hashing sends a wrong one there.
			wrong := *got
			wrong.Sums = bytes.Clone(got.Sums)
			wrong.Sums[32] ^= 1
			must(t, fs.PutBlockSums(ctx, &wrong))
			_, err = s.Get(ctx, "f.bin", 0, new(bytes.Buffer), nil)
			var ie *client.IntegrityError
			if !errors.As(err, &ie) || ie.Block != 1 {
				t.Fatalf("a download with a wrong recorded sum for block 1: got %v, want an IntegrityError on block 1", err)
			}
			s = h.login(t, "alice", sig) // that session stopped in the middle of the download
			sums, err := s.Sums(ctx, "f.bin", 0, 4)
			if err != nil || len(sums) != 4 || sums[1] != wrong.Sum(1) {
				t.Fatalf("SUMS: got %d sums, %v; want the 4 recorded", len(sums), err)
			}
			// The right sums again, and a block corrupted on the server's
			// disk in a way the server cannot see (its record still says
			// the version the file has, as bit rot would leave it): the
			// client catches it. (A rewrite the server can see is served
			// whole, hashed again: TestLNPRewriteSameSizeAndTime.)
			must(t, fs.PutBlockSums(ctx, got))
			h.corruptUnseen(t, "f.bin", data, 2*bs+7)
			_, err = s.Get(ctx, "f.bin", 0, new(bytes.Buffer), nil)
			if !errors.As(err, &ie) || ie.Block != 2 {
				t.Fatalf("a download of a file corrupted on disk: got %v, want an IntegrityError on block 2", err)
			}
		})
	}
}

// TestLNPFirstDownloadRecordsBlockSums: a file placed in the shared
// area by other means is hashed block by block at its first download, and
// its sums are recorded for the next; a download from an offset inside a
// block does without them.
func TestLNPFirstDownloadRecordsBlockSums(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	bs := s.BlockSize()
	data := randomBytes(2*bs+99, 12)
	must(t, os.WriteFile(filepath.Join(h.files, "placed.bin"), data, 0o644))
	sum := sha256.Sum256(data)
	if _, err := h.parts.records.BlockSums(ctx, sum, int64(len(data)), bs); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("block sums before any download: got %v, want none", err)
	}
	var got bytes.Buffer
	if _, err := s.Get(ctx, "/shared/placed.bin", 0, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("first download: %v", err)
	}
	rec, err := h.parts.records.BlockSums(ctx, sum, int64(len(data)), bs)
	if err != nil || !bytes.Equal(rec.Sums, blockSums(data, bs)) {
		t.Fatalf("block sums after the first download: got %v, want the file's", err)
	}
	got.Reset()
	if _, err := s.Get(ctx, "/shared/placed.bin", int64(bs)+5, &got, nil); err != nil || !bytes.Equal(got.Bytes(), data[bs+5:]) {
		t.Fatalf("download from inside a block: %v", err)
	}
	if _, err := s.Get(ctx, "/shared/placed.bin", 0, &got, nil); err != nil {
		t.Fatalf("second download: %v", err)
	}
}

// TestLNPStats: every LNP/1 request is counted by op and status, and
// the file bytes of transfers both ways.
func TestLNPStats(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	data := randomBytes(3000, 13)
	if _, err := s.Put(ctx, "f.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Get(ctx, "f.bin", 1000, new(bytes.Buffer), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Stat(ctx, "missing"); err == nil {
		t.Fatal("stat of a missing file succeeded")
	}
	// A session counts a request after its reply is sent and before it
	// reads the next, so the answer to one more request means the ones
	// above are all counted.
	if _, err := s.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	st := h.srv.Stats()
	count := func(op string, status lnp.Status) int64 {
		for i := range server.LNPOp(server.NumLNPOps) {
			if i.String() == op {
				return st.LNPRequests[i][status]
			}
		}
		t.Fatalf("no op %q", op)
		return 0
	}
	for _, c := range []struct {
		op     string
		status lnp.Status
		want   int64
	}{
		{"put", lnp.StatusOK, 1}, {"get", lnp.StatusOK, 2}, {"stat", lnp.StatusNotFound, 1}, {"stat", lnp.StatusOK, 0},
	} {
		if got := count(c.op, c.status); got != c.want {
			t.Errorf("%s %v: counted %d, want %d", c.op, c.status, got, c.want)
		}
	}
	if st.LNPBytesReceived != 3000 || st.LNPBytesSent != 4000 {
		t.Errorf("bytes received, sent: %d, %d; want 3000, 4000", st.LNPBytesReceived, st.LNPBytesSent)
	}
}
