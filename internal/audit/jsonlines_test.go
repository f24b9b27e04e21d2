package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
)

func TestJSONLinesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	j, err := OpenJSONLinesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []larder.Event
	for i, k := range larder.EventKinds {
		want = append(want, fullEvent(k, i))
	}
	if err := j.StoreEvents(context.Background(), want[:5]); err != nil {
		t.Fatal(err)
	}
	if err := j.StoreEvents(context.Background(), want[5:]); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []larder.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e larder.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	checkEvents(t, got, want)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v, want 0600", fi.Mode().Perm())
	}
}

// failingWriter takes the first n bytes written to it, then fails.
type failingWriter struct {
	bytes.Buffer
	n int
}

func (w *failingWriter) Write(b []byte) (int, error) {
	if len(b) <= w.n {
		w.n -= len(b)
		return w.Buffer.Write(b)
	}
	k := w.n
	w.Buffer.Write(b[:k])
	w.n = 0
	return k, errors.New("disk full")
}

// TestJSONLinesPartialWrite checks that after a write that failed inside a
// line, the next batch starts on a line of its own.
func TestJSONLinesPartialWrite(t *testing.T) {
	w := &failingWriter{n: 30}
	j := NewJSONLines(w, nil)
	e := fullEvent(larder.EventUpload, 1)
	if err := j.StoreEvents(context.Background(), []larder.Event{e}); err == nil {
		t.Fatal("got no error from a failed write")
	}
	w.n = 1 << 20
	if err := j.StoreEvents(context.Background(), []larder.Event{e}); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(w.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 2 || len(lines[0]) != 30 {
		t.Fatalf("got %d lines, the first of %d bytes; want 2, the first the 30 bytes of the failed write", len(lines), len(lines[0]))
	}
	var back larder.Event
	if err := json.Unmarshal(lines[1], &back); err != nil || !sameEvent(back, e) {
		t.Errorf("second line %s: got %+v, %v; want %+v", lines[1], back, err, e)
	}
}

// TestJSONLinesThroughLog runs the pipeline into a JSON lines file.
func TestJSONLinesThroughLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	j, err := OpenJSONLinesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l := openTest(t, Config{Dir: t.TempDir(), Sink: j}, hooks{})
	for i := range 100 {
		l.Record(context.Background(), fullEvent(larder.EventDownload, i))
	}
	closeLog(t, l)
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte("\n")); n != 100 {
		t.Errorf("got %d lines, want 100", n)
	}
}

// readLines returns the events of the JSON lines file at path, or nil if
// there is none.
func readLines(t *testing.T, path string) []larder.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var evs []larder.Event
	for line := range bytes.Lines(b) {
		var e larder.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// TestJSONLinesFollowsRotation: after logrotate moves the file away, or
// removes it, the next batch goes to a new file at the path, not on into
// the moved file or into a deleted one.
func TestJSONLinesFollowsRotation(t *testing.T) {
	for _, how := range []string{"mv", "rm"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			j, err := OpenJSONLinesFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			ctx := context.Background()
			first, second := fullEvent(larder.EventLogin, 1), fullEvent(larder.EventDownload, 2)
			if err := j.StoreEvents(ctx, []larder.Event{first}); err != nil {
				t.Fatal(err)
			}
			if how == "mv" {
				err = os.Rename(path, path+".1")
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := j.StoreEvents(ctx, []larder.Event{second}); err != nil {
				t.Fatal(err)
			}
			if got := readLines(t, path); len(got) != 1 || !sameEvent(got[0], second) {
				t.Errorf("after %s, the file at the path holds %d events, want the one written since", how, len(got))
			}
			if how == "mv" {
				if got := readLines(t, path+".1"); len(got) != 1 || !sameEvent(got[0], first) {
					t.Errorf("the moved file holds %d events, want the one written before the move", len(got))
				}
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the new file: %v, %v; want mode 0600", fi, err)
			}
			if s := j.Stats(); s.Reopens != 1 {
				t.Errorf("got %d reopens, want 1", s.Reopens)
			}
		})
	}
}

// TestJSONLinesRemovedDuringBatch: a file removed while a batch is being
// written has taken that batch into nothing; the batch is written again
// to a new file at the path, and counted.
func TestJSONLinesRemovedDuringBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	j, err := OpenJSONLinesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	removed := false
	j.beforeWrite = func() {
		if !removed {
			removed = true
			os.Remove(path)
		}
	}
	evs := []larder.Event{fullEvent(larder.EventLogin, 1), fullEvent(larder.EventDownload, 2)}
	if err := j.StoreEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	if len(got) != 2 || !sameEvent(got[0], evs[0]) || !sameEvent(got[1], evs[1]) {
		t.Errorf("the file at the path holds %d events, want the batch of 2", len(got))
	}
	if s := j.Stats(); s.Reopens != 1 || s.Unwritten != 2 {
		t.Errorf("got %+v, want 1 reopen and 2 events unwritten (written into the removed file)", s)
	}
}

// TestJSONLinesReopen: Reopen (on SIGHUP) lets go of a moved file at
// once, before any event comes, and begins a new one at the path.
func TestJSONLinesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	j, err := OpenJSONLinesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := j.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no new file after Reopen: %v", err)
	}
	// A failed reopen (the folder is gone) is an error, and the next
	// batch fails and is counted, to be offered again.
	os.RemoveAll(filepath.Dir(path))
	if err := j.Reopen(); err == nil {
		t.Error("Reopen into a removed folder succeeded")
	}
	if err := j.StoreEvents(context.Background(), []larder.Event{fullEvent(larder.EventLogin, 1)}); err == nil {
		t.Error("a batch into a removed folder succeeded")
	}
	if s := j.Stats(); s.Unwritten != 1 {
		t.Errorf("got %d events unwritten, want 1", s.Unwritten)
	}
}

// TestJSONLinesReopenAfterClose: a SIGHUP that comes during shutdown,
// after the sink is closed, opens nothing.
func TestJSONLinesReopenAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	j, err := OpenJSONLinesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := j.Reopen(); err != nil {
		t.Errorf("Reopen after Close: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reopen after Close made a file: %v", err)
	}
}
