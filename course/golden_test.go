package course

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/")

// The golden transcripts pin the exact bytes of each frame. They are hex
// dumps, so that a reviewer can read a change to the encoding in a diff.
// Run "go test ./wire -update" to rewrite them after a deliberate change.
func TestGoldenFrames(t *testing.T) {
	sig := larder.NewSignature("password", CourseSalt)
	frames := []struct {
		name  string
		build func(*bytes.Buffer) error
	}{
		{"request-register", func(b *bytes.Buffer) error {
			_, err := (&Request{Username: "alice", Signature: sig}).WriteTo(b)
			return err
		}},
		{"request-retrieve", func(b *bytes.Buffer) error {
			_, err := (&Request{Username: "alice", Signature: sig, Body: []byte("tests/hello.txt")}).WriteTo(b)
			return err
		}},
		{"reply-registered", func(b *bytes.Buffer) error {
			w := NewWriter(b)
			if err := w.WriteMessage(StatusOK, "New user alice registered."); err != nil {
				return err
			}
			return w.Flush()
		}},
		{"reply-empty-file", func(b *bytes.Buffer) error {
			w := NewWriter(b)
			if _, err := w.WritePayload(StatusOK, bytes.NewReader(nil), 0, sha256.Sum256(nil), nil); err != nil {
				return err
			}
			return w.Flush()
		}},
		{"reply-two-blocks", func(b *bytes.Buffer) error {
			data := bytes.Repeat([]byte{0x00, 0xff, '\r', '\n'}, 250) // 1000 bytes: 944 + 56
			w := NewWriter(b)
			if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(len(data)), sha256.Sum256(data), nil); err != nil {
				return err
			}
			return w.Flush()
		}},
	}
	for _, f := range frames {
		t.Run(f.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := f.build(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", f.name+".golden"), b.Bytes())
		})
	}
}

// checkGolden compares got with the hex dump stored at path, or rewrites
// the file under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	dump := hex.Dump(got)
	if *update {
		if err := os.WriteFile(path, []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if dump != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, dump, want)
	}
}
