package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/sqlite"
)

// serviceOn opens the files service of b over records, and space #1.
func serviceOn(t *testing.T, b *Backend, records larder.FileStore) *files.Space {
	t.Helper()
	s, err := files.New(files.Config{Backend: b, Records: records})
	must(t, err)
	sp, err := s.Space(1)
	must(t, err)
	t.Cleanup(func() { sp.Close(); s.Close() })
	return sp
}

// TestUploadHashedOnce: an upload to the store is hashed once, by its
// part (which keeps the state for the checkpoint), not again by the
// service: the upload has no hash for the receiver to feed. The part's
// hash decides the commit all the same: a wrong SHA-256 is refused and
// the upload goes; an upload resumed on another server is checked
// against the state its checkpoint kept, so a checkpoint whose state is
// not that of the bytes sent is refused at commit, and the right one
// commits with its record.
func TestUploadHashedOnce(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "larder.db"))
	must(t, err)
	defer db.Close()
	records := sqlite.NewFileStore(db)
	one, two := testBackend(t, cfg), testBackend(t, cfg)
	sp1, sp2 := serviceOn(t, one, records), serviceOn(t, two, records)
	var data []byte
	for i := range 2 {
		data = append(data, fill(MinPartSize, byte('a'+i))...)
	}
	data = append(data, "and the rest"...)
	sum := sha256.Sum256(data)

	u, err := sp1.StartUpload(ctx, "wrong", int64(len(data)), false, false)
	must(t, err)
	if u.Hash != nil {
		t.Fatal("an upload to the store has a hash for the receiver to feed: every byte would be hashed twice")
	}
	_, err = u.Write(data)
	must(t, err)
	bad := sum
	bad[0] ^= 1
	if _, err := u.Commit(ctx, bad, nil, 0, nil); larder.ErrorCode(err) != larder.EINTEGRITY {
		t.Errorf("Commit with a wrong SHA-256: %v; want EINTEGRITY", err)
	}
	u.Close()
	if ps, err := sp1.Parts(); err != nil || len(ps) != 0 {
		t.Errorf("Parts after a commit refused for its SHA-256: %+v, %v; want none (nothing to resume)", ps, err)
	}
	if _, err := sp1.Stat(files.Loc{Path: "wrong"}); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("Stat of an upload refused for its SHA-256: %v; want ENOTFOUND", err)
	}

	// Cut on the first server after one part and a little, resumed on
	// the second.
	begin := func() {
		t.Helper()
		u, err := sp1.StartUpload(ctx, "f", int64(len(data)), false, false)
		must(t, err)
		_, err = u.Write(data[:MinPartSize+10])
		must(t, err)
		must(t, u.Close())
	}
	resume := func() *files.Upload {
		t.Helper()
		u, err := sp2.StartUpload(ctx, "f", int64(len(data)), true, false)
		must(t, err)
		if u.Start != MinPartSize || u.Hash != nil {
			t.Fatalf("the resume on another server starts at %d, with a hash to feed %v; want %d, none", u.Start, u.Hash != nil, MinPartSize)
		}
		_, err = u.Write(data[u.Start:])
		must(t, err)
		return u
	}

	begin()
	// The checkpoint's state is a SHA-256 of other bytes of that length.
	a1, _ := one.Area("#1")
	ps, err := a1.Parts()
	must(t, err)
	if len(ps) != 1 {
		t.Fatalf("Parts after the cut: %+v; want 1", ps)
	}
	key := a1.(*area).uploads + ps[0].ID
	body, err := one.get(key)
	must(t, err)
	var cp checkpoint
	must(t, json.Unmarshal(body, &cp))
	h := sha256.New()
	h.Write(fill(MinPartSize, 'z'))
	cp.State, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
	body, _ = json.Marshal(cp)
	must(t, one.put(key, body, false))
	u = resume()
	if _, err := u.Commit(ctx, sum, nil, 0, nil); larder.ErrorCode(err) != larder.EINTEGRITY {
		t.Errorf("Commit of an upload resumed from a checkpoint whose hash state is not its bytes': %v; want EINTEGRITY", err)
	}
	u.Close()

	begin()
	u = resume()
	defer u.Close()
	if _, err := u.Commit(ctx, sum, nil, 0, nil); err != nil {
		t.Fatalf("Commit of an upload resumed on another server: %v", err)
	}
	rec, err := records.FileByPath(ctx, "#1", "f")
	must(t, err)
	if rec.SHA256 != sum || rec.Size != int64(len(data)) {
		t.Errorf("the record of the resumed upload: %d bytes, SHA-256 %x; want %d, %x", rec.Size, rec.SHA256, len(data), sum)
	}
	o, err := a1.Open("f")
	must(t, err)
	defer o.Close()
	got := make([]byte, len(data))
	if n, err := o.ReadAt(got, 0); n != len(data) || !bytes.Equal(got, data) {
		t.Errorf("the file resumed on another server: %d bytes, %v, equal %v", n, err, bytes.Equal(got, data))
	}
}
