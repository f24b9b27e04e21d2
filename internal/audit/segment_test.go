package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// spoolOf leaves a folder of n events in dir, written by a Log without a
// sink, and returns the folder and the events in order.
func spoolOf(t *testing.T, dir string, n int, segSize int64) (string, []larder.Event) {
	t.Helper()
	l := openTest(t, Config{Dir: dir, SegmentSize: segSize}, hooks{})
	var events []larder.Event
	for i := range n {
		e := fullEvent(larder.EventKinds[i%len(larder.EventKinds)], i)
		events = append(events, e)
		l.Record(context.Background(), e)
	}
	closeLog(t, l)
	return l.Dir(), events
}

// records returns the offset and length of each record of a segment.
func records(t *testing.T, path string) (offs, lens []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(headerSize); off < int64(len(b)); {
		n := int64(recHeaderSize + binary.LittleEndian.Uint32(b[off:]))
		offs, lens = append(offs, off), append(lens, n)
		off += n
	}
	return offs, lens
}

// deliverSpool opens a Log with a sink on dir, waits until every other
// folder is gone, closes it and returns what it delivered and its stats.
func deliverSpool(t *testing.T, dir string) ([]larder.Event, Stats) {
	t.Helper()
	sink := newMemSink()
	l := openTest(t, Config{Dir: dir, Sink: sink}, hooks{})
	waitFor(t, "the spool to be delivered", func() bool {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != filepath.Base(l.Dir()) && e.Name() != quarantineName {
				return false
			}
		}
		return true
	})
	closeLog(t, l)
	return sink.events(), l.Stats()
}

func checkEvents(t *testing.T, got, want []larder.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameEvent(got[i], want[i]) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail damages the end of the newest segment as a crash could,
// and checks that the damage is cut, counted, and never taken for events.
func TestTornTail(t *testing.T) {
	const n = 50
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string) (cut int64, lost int)
	}{
		{"partial record", func(t *testing.T, path string) (int64, int) {
			e := fullEvent(larder.EventLogin, 99)
			rec, _ := appendRecord(nil, &e)
			appendFile(t, path, rec[:len(rec)-3])
			return int64(len(rec) - 3), 0
		}},
		{"partial record header", func(t *testing.T, path string) (int64, int) {
			appendFile(t, path, []byte{40, 0, 0})
			return 3, 0
		}},
		{"zeros", func(t *testing.T, path string) (int64, int) {
			appendFile(t, path, make([]byte, 4096))
			return 4096, 0
		}},
		{"flipped byte in the last record", func(t *testing.T, path string) (int64, int) {
			offs, lens := records(t, path)
			last := len(offs) - 1
			flipByte(t, path, offs[last]+lens[last]-1)
			return lens[last], 1
		}},
		{"flipped length of the last record", func(t *testing.T, path string) (int64, int) {
			offs, lens := records(t, path)
			last := len(offs) - 1
			flipByte(t, path, offs[last])
			return lens[last], 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			folder, want := spoolOf(t, dir, n, 0)
			cut, lost := tc.damage(t, segPath(folder, 1))
			got, st := deliverSpool(t, dir)
			checkEvents(t, got, want[:n-lost])
			if st.TornBytes != cut || st.CorruptBytes != 0 {
				t.Errorf("got %d torn bytes and %d corrupt, want %d and 0", st.TornBytes, st.CorruptBytes, cut)
			}
			if _, err := os.Stat(filepath.Join(dir, quarantineName)); err == nil {
				t.Errorf("a torn tail was set aside in quarantine; want it only cut")
			}
		})
	}

	t.Run("segment torn while created", func(t *testing.T) {
		dir := t.TempDir()
		folder, want := spoolOf(t, dir, n, 0)
		os.WriteFile(segPath(folder, 2), []byte("LDRAU"), 0o600)
		got, st := deliverSpool(t, dir)
		checkEvents(t, got, want)
		if st.TornBytes != 5 {
			t.Errorf("got %d torn bytes, want 5", st.TornBytes)
		}
	})

	t.Run("damage longer than a torn write", func(t *testing.T) {
		dir := t.TempDir()
		folder, want := spoolOf(t, dir, 12000, 0) // about 2 MiB in one segment
		offs, _ := records(t, segPath(folder, 1))
		size := fileSize(t, segPath(folder, 1))
		if size-offs[10] <= maxTornTail {
			t.Fatalf("the test needs a segment longer than %d bytes after record 10; it is %d", maxTornTail, size-offs[10])
		}
		flipByte(t, segPath(folder, 1), offs[10]+20)
		got, st := deliverSpool(t, dir)
		checkEvents(t, got, want[:10])
		if st.TornBytes != size-offs[10] {
			t.Errorf("got %d torn bytes, want %d", st.TornBytes, size-offs[10])
		}
		copied := filepath.Join(dir, quarantineName, filepath.Base(folder)+"-"+filepath.Base(segPath(folder, 1)))
		if got := fileSize(t, copied); got != size {
			t.Errorf("got a copy of %d bytes in quarantine, want the whole segment, %d", got, size)
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestBitRot damages a record in the middle of an older segment: the
// events before it are delivered, the segment is set aside, and the
// segments after it are delivered.
func TestBitRot(t *testing.T) {
	dir := t.TempDir()
	folder, want := spoolOf(t, dir, 200, 4<<10)
	seqs, _ := listSegments(folder)
	if len(seqs) < 4 {
		t.Fatalf("got %d segments, want at least 4", len(seqs))
	}
	offs1, _ := records(t, segPath(folder, 1))
	offs2, lens2 := records(t, segPath(folder, 2))
	size2 := fileSize(t, segPath(folder, 2))
	flipByte(t, segPath(folder, 2), offs2[3]+lens2[3]/2) // the fourth record of the second segment
	// And the header of the third.
	flipByte(t, segPath(folder, 3), 2)
	offs3, _ := records(t, segPath(folder, 3))

	got, st := deliverSpool(t, dir)
	inFirst := len(offs1)
	skipped := len(offs2) - 3 + len(offs3)
	wantGot := append(append([]larder.Event(nil), want[:inFirst+3]...), want[inFirst+len(offs2)+len(offs3):]...)
	checkEvents(t, got, wantGot)
	if wantBytes := size2 - offs2[3] + fileSize(t, filepath.Join(dir, quarantineName, filepath.Base(folder)+"-"+filepath.Base(segPath(folder, 3)))); st.CorruptBytes != wantBytes {
		t.Errorf("got %d corrupt bytes, want %d", st.CorruptBytes, wantBytes)
	}
	for _, seq := range []uint64{2, 3} {
		q := filepath.Join(dir, quarantineName, filepath.Base(folder)+"-"+filepath.Base(segPath(folder, seq)))
		if _, err := os.Stat(q); err != nil {
			t.Errorf("segment %d is not in quarantine: %v", seq, err)
		}
	}
	t.Logf("%d events lost to the damage, %d delivered", skipped, len(got))
}

// TestDamageInSegmentBeingWritten damages the own segment after a commit,
// before the deliverer reads it: the events before the damage are
// delivered, the writer is asked to begin a new segment, the damaged one
// is set aside once it is left, and delivery goes on in the new one.
func TestDamageInSegmentBeingWritten(t *testing.T) {
	dir := t.TempDir()
	sink := newMemSink()
	var damage atomic.Bool
	var l *Log
	h := hooks{afterSync: func() {
		if damage.CompareAndSwap(true, false) {
			offs, _ := records(t, segPath(l.Dir(), 1))
			flipByte(t, segPath(l.Dir(), 1), offs[len(offs)-1]+12)
		}
	}}
	l = openTest(t, Config{Dir: dir, Sink: sink, SyncKinds: []larder.EventKind{larder.EventAccount}}, h)
	var want []larder.Event
	for i := range 5 {
		e := fullEvent(larder.EventAccount, i)
		want = append(want, e)
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	damage.Store(true)
	if err := l.Record(context.Background(), fullEvent(larder.EventAccount, 5)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the damage to be found", func() bool { return l.rotate.Load() })
	after := fullEvent(larder.EventAccount, 6)
	if err := l.Record(context.Background(), after); err != nil { // its commit begins a new segment
		t.Fatal(err)
	}
	waitFor(t, "the event after", func() bool { return sink.len() == 6 })
	checkEvents(t, sink.events(), append(want, after))
	q := filepath.Join(dir, quarantineName, filepath.Base(l.Dir())+"-"+filepath.Base(segPath(l.Dir(), 1)))
	offs, lens := records(t, q)
	if st := l.Stats(); len(offs) != 6 || st.CorruptBytes != lens[5] {
		t.Errorf("got %d corrupt bytes and %d records in quarantine, want %d and 6", st.CorruptBytes, len(offs), lens[len(lens)-1])
	}
}

// TestWriteErrors makes the next segment unwritable (a link to /dev/full,
// where every write fails with ENOSPC): the writer retries, sync Records
// wait, and once the disk has room again everything is written. Then it
// makes it unwritable again and closes: Close gives up when its context
// ends, and counts the events it could not write.
func TestWriteErrors(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("needs /dev/full")
	}
	dir := t.TempDir()
	l := openTest(t, Config{Dir: dir, SegmentSize: 4 << 10, SyncKinds: []larder.EventKind{larder.EventAccount}}, hooks{})
	if err := os.Symlink("/dev/full", segPath(l.Dir(), 2)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for l.Stats().WriteErrors == 0 {
		l.Record(context.Background(), fullEvent(larder.EventList, n))
		n++
		if n > 1000 {
			t.Fatal("no write error after 1000 events")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- l.Record(context.Background(), fullEvent(larder.EventAccount, n)) }()
	select {
	case err := <-done:
		t.Fatalf("sync Record returned %v while the spool cannot be written; %+v", err, l.Stats())
	case <-time.After(50 * time.Millisecond):
	}
	if !l.Stats().SpoolFailing {
		t.Error("Stats.SpoolFailing is false while the spool cannot be written")
	}
	os.Remove(segPath(l.Dir(), 2))
	if err := <-done; err != nil {
		t.Fatalf("sync Record once the disk has room: %v", err)
	}
	if l.Stats().SpoolFailing {
		t.Error("Stats.SpoolFailing is still true once the spool was written")
	}
	n++
	if st := l.Stats(); st.Durable != uint64(n) || st.Failed != 0 {
		t.Fatalf("got %d durable and %d failed, want %d and 0", st.Durable, st.Failed, n)
	}

	next := segPath(l.Dir(), uint64(l.Stats().SpoolSegments)+1)
	if err := os.Symlink("/dev/full", next); err != nil {
		t.Fatal(err)
	}
	for errs := l.Stats().WriteErrors; l.Stats().WriteErrors == errs; {
		l.Record(context.Background(), fullEvent(larder.EventList, n))
		n++
		time.Sleep(time.Millisecond)
	}
	go func() { done <- l.Record(context.Background(), fullEvent(larder.EventAccount, n)) }()
	waitFor(t, "the sync Record to be queued", func() bool { return l.Stats().Taken == uint64(n+1) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: got %v, want DeadlineExceeded", err)
	}
	if err := <-done; err == nil {
		t.Errorf("sync Record whose event could not be written: got nil, want an error")
	}
	st := l.Stats()
	if st.Failed == 0 || st.Durable+st.Failed != uint64(n+1) {
		t.Errorf("got %d durable and %d failed, want some failed and a sum of %d", st.Durable, st.Failed, n+1)
	}
	os.Remove(next)
	got, _ := deliverSpool(t, dir)
	if uint64(len(got)) != st.Durable {
		t.Errorf("got %d events delivered from the spool, want the %d durable", len(got), st.Durable)
	}
}

// TestQuarantinePathKeepsEarlierCopies: a name taken in the quarantine
// folder gets a numbered sibling, never the old file's place.
func TestQuarantinePathKeepsEarlierCopies(t *testing.T) {
	qdir := filepath.Join(t.TempDir(), quarantineName)
	var got []string
	for range 3 {
		p, err := quarantinePath(qdir, "w-000000000001.seg")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		got = append(got, filepath.Base(p))
	}
	want := []string{"w-000000000001.seg", "w-000000000001.seg.1", "w-000000000001.seg.2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
