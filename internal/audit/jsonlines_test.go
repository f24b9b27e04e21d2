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
