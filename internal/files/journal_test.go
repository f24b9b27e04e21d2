//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
)

// TestRecoverOwnIntents: of two servers sharing a storage and a database,
// one that starts (and runs Recover) while the other is in the middle of
// an upload leaves the other's intent alone; when the other then dies
// after placing the file and before recording it, its own restart
// replays its intent and records the file. Had the first replayed (and
// removed) the intent, nothing would record the file.
func TestRecoverOwnIntents(t *testing.T) {
	for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	}) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			server := func(owner string, failpoint func(string) error) *Service {
				b, closeBackend := w.newBackend()
				records, closeDB := w.open()
				s, err := New(Config{Backend: b, Records: records, Owner: owner})
				must(t, err)
				s.racy, s.failpoint = 0, failpoint
				t.Cleanup(func() { s.Close(); closeDB(); closeBackend() })
				return s
			}

			journaled, resume := make(chan struct{}), make(chan struct{})
			a := server("a", func(step string) error {
				switch step {
				case "put:intent":
					close(journaled)
					<-resume
				case "put:placed":
					return errors.New("killed")
				}
				return nil
			})
			sp, err := a.Space(1)
			must(t, err)
			defer sp.Close()
			data := []byte("written by server a")
			done := make(chan error, 1)
			go func() { done <- put(ctx, sp, "f.txt", data, false) }()
			<-journaled

			b := server("b", nil)
			if n, err := b.Recover(ctx); n != 0 || err != nil {
				t.Errorf("server b's start, with a's upload in flight: replayed %d, %v; want 0", n, err)
			}
			if ins, err := b.records.Intents(ctx, a.id); err != nil || len(ins) != 1 || ins[0].Backend != a.id+"/a" {
				t.Errorf("the journal after b's start: %+v, %v; want a's intent, under %s/a", ins, err, a.id)
			}
			close(resume)
			if err := <-done; err == nil {
				t.Fatal("a's upload: no error; want it killed after placing the file")
			}

			a2 := server("a", nil)
			if n, err := a2.Recover(ctx); n != 1 || err != nil {
				t.Errorf("a's restart: replayed %d, %v; want its 1 intent", n, err)
			}
			rec, err := a2.records.FileByPath(ctx, "#1", "f.txt")
			if err != nil || rec.SHA256 != sha256.Sum256(data) {
				t.Errorf("the record of the file a placed before it died: %+v, %v; want one of its content", rec, err)
			}
			if d := w.disagreement(a2.records); d != "" {
				t.Errorf("after a's restart, records and files disagree: %s", d)
			}
		})
	}
}

// lostAnswer is a backend whose uploads are placed, but whose Place then
// says the store did not answer: a store that completed an upload after
// the request's deadline.
type lostAnswer struct{ Backend }
type lostAnswerArea struct{ Area }
type lostAnswerPart struct{ Part }

func (b lostAnswer) Area(space string) (Area, error) {
	a, err := b.Backend.Area(space)
	return lostAnswerArea{a}, err
}

func (a lostAnswerArea) StartUpload(p string, size int64, resume bool) (Part, error) {
	pt, err := a.Area.StartUpload(p, size, resume)
	return lostAnswerPart{pt}, err
}

func (pt lostAnswerPart) Place(overwrite bool) (Info, error) {
	if _, err := pt.Part.Place(overwrite); err != nil {
		return Info{}, err
	}
	return Info{}, larder.Errorf(larder.EUNAVAILABLE, "the file store does not answer")
}

// TestPlaceUnanswered: an upload whose placing got no answer from the
// backend (which placed it all the same) keeps its intent, so that the
// next start records the file; removing the intent as if nothing had
// changed would leave the file with no record.
func TestPlaceUnanswered(t *testing.T) {
	for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	}) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			b, closeBackend := w.newBackend()
			records, closeDB := w.open()
			s, err := New(Config{Backend: lostAnswer{b}, Records: records})
			must(t, err)
			sp, err := s.Space(1)
			must(t, err)
			if err := put(ctx, sp, "f.txt", []byte("placed, unanswered"), false); larder.ErrorCode(err) != larder.EUNAVAILABLE {
				t.Fatalf("put: %v, want %s", err, larder.EUNAVAILABLE)
			}
			sp.Close()
			s.Close()
			closeDB()
			closeBackend()

			s2, _ := w.service("")
			if n, err := s2.Recover(ctx); n != 1 || err != nil {
				t.Errorf("the next start: replayed %d, %v; want the put's intent", n, err)
			}
			if d := w.disagreement(s2.records); d != "" {
				t.Errorf("after the next start, records and files disagree: %s", d)
			}
		})
	}
}
