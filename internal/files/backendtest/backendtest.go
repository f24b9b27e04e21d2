// Package backendtest is the conformance suite of files.Backend: every
// backend (files.Local always, internal/s3 when a store is reachable)
// runs it, so that the files service finds the same behaviour, the same
// refusals and the same error codes on each.
package backendtest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// Harness makes the backends a run of the suite tests.
type Harness struct {
	// New returns an empty backend with private spaces and a shared
	// area, and a function that puts a file in its shared area, as an
	// operator would (not through the backend: the area is read-only).
	New func(t *testing.T) (files.Backend, func(p string, data []byte))
	// PartSize is the least bytes of an unfinished upload that a resume
	// is sure to keep (a disk keeps every byte: 1).
	PartSize int
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"EmptySpace", testEmptySpace},
		{"UploadAndRead", testUploadAndRead},
		{"EmptyFile", testEmptyFile},
		{"Overwrite", testOverwrite},
		{"OneWinner", testOneWinner},
		{"Folders", testFolders},
		{"RemoveTree", testRemoveTree},
		{"RenameFile", testRenameFile},
		{"RenameFolder", testRenameFolder},
		{"SpacesApart", testSpacesApart},
		{"SharedReadOnly", testSharedReadOnly},
		{"Resume", testResume},
		{"ResumeOtherSize", testResumeOtherSize},
		{"ActiveUploads", testActiveUploads},
		{"StaleUploads", testStaleUploads},
		{"VersionsApart", testVersionsApart},
		{"NamesNotUTF8", testNamesNotUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, h) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode fails t unless err has code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := larder.ErrorCode(err); err == nil || got != code {
		t.Errorf("%s: got %v (code %q), want code %q", what, err, got, code)
	}
}

func space(t *testing.T, b files.Backend, id string) files.Area {
	t.Helper()
	a, err := b.Area(id)
	must(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// put uploads data to p in one go.
func put(t *testing.T, a files.Area, p string, data []byte, overwrite bool) (files.Info, error) {
	t.Helper()
	pt, err := a.StartUpload(p, int64(len(data)), false)
	if err != nil {
		return files.Info{}, err
	}
	defer pt.Close()
	if _, err := pt.Write(data); err != nil {
		return files.Info{}, err
	}
	if _, err := pt.Sync(); err != nil {
		return files.Info{}, err
	}
	in, err := pt.Place(overwrite)
	if err != nil {
		pt.Discard()
	}
	return in, err
}

// read reads all of p by ReadAt, and checks WriteRangeTo on a middle.
func read(t *testing.T, a files.Area, p string) []byte {
	t.Helper()
	o, err := a.Open(p)
	must(t, err)
	defer o.Close()
	in := o.Info()
	got := make([]byte, in.Size)
	if n, err := o.ReadAt(got, 0); n != len(got) || err != nil && err != io.EOF {
		t.Fatalf("ReadAt of %s: %d bytes, %v; want %d", p, n, err, len(got))
	}
	if n, err := o.ReadAt(make([]byte, 1), in.Size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end of %s: %d, %v; want 0, io.EOF", p, n, err)
	}
	if in.Size > 2 {
		var buf bytes.Buffer
		off, n := in.Size/3, in.Size/3+1
		if w, err := o.WriteRangeTo(&buf, off, n); w != n || err != nil {
			t.Fatalf("WriteRangeTo of %s: %d, %v; want %d", p, w, err, n)
		}
		if !bytes.Equal(buf.Bytes(), got[off:off+n]) {
			t.Errorf("WriteRangeTo of %s: not the bytes ReadAt gave", p)
		}
	}
	return got
}

func names(t *testing.T, a files.Area, p string) []string {
	t.Helper()
	l, err := a.List(p)
	must(t, err)
	defer l.Close()
	var out []string
	for {
		ins, err := l.Next(2)
		for _, in := range ins {
			if in.Dir {
				out = append(out, in.Name+"/")
			} else {
				out = append(out, in.Name)
			}
		}
		if err == io.EOF {
			break
		}
		must(t, err)
	}
	slices.Sort(out)
	return out
}

func testEmptySpace(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	in, err := a.Stat("")
	if err != nil || !in.Dir {
		t.Errorf("Stat of the top: %+v, %v; want a folder", in, err)
	}
	if got := names(t, a, ""); len(got) != 0 {
		t.Errorf("a new space lists %q, want nothing", got)
	}
	_, err = a.Stat("none")
	wantCode(t, "Stat of nothing", err, larder.ENOTFOUND)
	_, err = a.Open("none")
	wantCode(t, "Open of nothing", err, larder.ENOTFOUND)
	_, err = a.List("none")
	wantCode(t, "List of nothing", err, larder.ENOTFOUND)
	wantCode(t, "Remove of nothing", a.Remove("none"), larder.ENOTFOUND)
	id, err := b.ID()
	if err != nil || id == "" {
		t.Errorf("ID: %q, %v", id, err)
	}
	if err := a.FinishRename("a", "b"); err != nil {
		t.Errorf("FinishRename with no rename begun: %v", err)
	}
}

func testUploadAndRead(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	data := content(3*h.PartSize+12345, 1)
	placed, err := put(t, a, "a.bin", data, false)
	must(t, err)
	if placed.Size != int64(len(data)) || placed.Dir || placed.Version == "" || placed.Name != "a.bin" {
		t.Errorf("Place: %+v; want a.bin, %d bytes, a version", placed, len(data))
	}
	in, err := a.Stat("a.bin")
	must(t, err)
	if in.Version != placed.Version || in.Size != placed.Size || !in.ModTime.Equal(placed.ModTime) {
		t.Errorf("Stat after Place: %+v, want %+v", in, placed)
	}
	if got := read(t, a, "a.bin"); !bytes.Equal(got, data) {
		t.Errorf("read back: not the bytes uploaded")
	}
	// Readers at once, as two downloads of one file are.
	var wg sync.WaitGroup
	o, err := a.Open("a.bin")
	must(t, err)
	defer o.Close()
	for i := range 4 {
		wg.Go(func() {
			off := int64(i) * int64(len(data)) / 4
			buf := make([]byte, 1000)
			if n, err := o.ReadAt(buf, off); n != len(buf) || err != nil || !bytes.Equal(buf, data[off:off+1000]) {
				t.Errorf("ReadAt at %d, at once with others: %d, %v, or not the bytes", off, n, err)
			}
		})
	}
	wg.Wait()
	if got := names(t, a, ""); !slices.Equal(got, []string{"a.bin"}) {
		t.Errorf("List: %q, want [a.bin]", got)
	}
	_, err = a.List("a.bin")
	wantCode(t, "List of a file", err, larder.EINVALID)
	if ps, err := a.Parts(); err != nil || len(ps) != 0 {
		t.Errorf("Parts after Place: %+v, %v; want none", ps, err)
	}
}

func testEmptyFile(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	in, err := put(t, a, "empty", nil, false)
	must(t, err)
	if in.Size != 0 || in.Dir {
		t.Errorf("an empty file placed: %+v", in)
	}
	if got := read(t, a, "empty"); len(got) != 0 {
		t.Errorf("an empty file reads %d bytes", len(got))
	}
}

func testOverwrite(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	one, two := content(1000, 2), content(1000, 3)
	first, err := put(t, a, "f", one, false)
	must(t, err)
	_, err = put(t, a, "f", two, false)
	wantCode(t, "Place without overwrite on a file", err, larder.ECONFLICT)
	if got := read(t, a, "f"); !bytes.Equal(got, one) {
		t.Errorf("a refused Place changed the file")
	}
	second, err := put(t, a, "f", two, true)
	must(t, err)
	if second.Version == first.Version {
		t.Errorf("the version did not change with the content: %q", first.Version)
	}
	if got := read(t, a, "f"); !bytes.Equal(got, two) {
		t.Errorf("after an overwrite: not the new bytes")
	}
	must(t, a.Mkdir("d"))
	_, err = put(t, a, "d", one, true)
	wantCode(t, "Place over a folder", err, larder.ECONFLICT)
}

// testOneWinner: two uploads of one path, both started before either is
// placed (as on two servers), placed without overwrite: the first wins,
// the second is a conflict and changes nothing.
func testOneWinner(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	var parts []files.Part
	for i := range 2 {
		pt, err := a.StartUpload("same", int64(100+i), false)
		must(t, err)
		defer pt.Close()
		_, err = pt.Write(content(100+i, uint64(10+i)))
		must(t, err)
		_, err = pt.Sync()
		must(t, err)
		parts = append(parts, pt)
	}
	_, err := parts[0].Place(false)
	must(t, err)
	_, err = parts[1].Place(false)
	wantCode(t, "the second Place of one path", err, larder.ECONFLICT)
	if got := read(t, a, "same"); !bytes.Equal(got, content(100, 10)) {
		t.Errorf("after a refused second Place: not the first's bytes")
	}
}

func testFolders(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	must(t, a.Mkdir("d"))
	wantCode(t, "Mkdir of a folder there", a.Mkdir("d"), larder.ECONFLICT)
	wantCode(t, "Mkdir in no folder", a.Mkdir("x/y"), larder.ENOTFOUND)
	wantCode(t, "Mkdir of the top", a.Mkdir(""), larder.ECONFLICT)
	in, err := a.Stat("d")
	if err != nil || !in.Dir || in.Name != "d" {
		t.Errorf("Stat of a new folder: %+v, %v", in, err)
	}
	if got := names(t, a, "d"); len(got) != 0 {
		t.Errorf("a new folder lists %q", got)
	}
	_, err = put(t, a, "d/f", []byte("x"), false)
	must(t, err)
	_, err = put(t, a, "g", []byte("y"), false)
	must(t, err)
	wantCode(t, "Mkdir over a file", a.Mkdir("g"), larder.ECONFLICT)
	_, err = put(t, a, "nofolder/f", []byte("x"), false)
	wantCode(t, "Place in no folder", err, larder.ENOTFOUND)
	must(t, a.Mkdir("d/e"))
	if got := names(t, a, ""); !slices.Equal(got, []string{"d/", "g"}) {
		t.Errorf("List of the top: %q, want [d/ g]", got)
	}
	if got := names(t, a, "d"); !slices.Equal(got, []string{"e/", "f"}) {
		t.Errorf("List of d: %q, want [e/ f]", got)
	}
	wantCode(t, "Remove of a folder not empty", a.Remove("d"), larder.ECONFLICT)
	must(t, a.Remove("d/f"))
	must(t, a.Remove("d/e"))
	must(t, a.Remove("d"))
	_, err = a.Stat("d")
	wantCode(t, "Stat of a folder removed", err, larder.ENOTFOUND)
	wantCode(t, "Remove of the top", a.Remove(""), larder.EINVALID)
}

// testRemoveTree: a folder and everything below it is removed a part at
// a time when it holds more than the most asked for, the deepest first,
// counting what went; the rest of the space stays; a file is removed as
// a tree of one; nothing there is gone; the top is refused.
func testRemoveTree(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	must(t, a.Mkdir("d"))
	must(t, a.Mkdir("d/e"))
	must(t, a.Mkdir("d/e/f"))
	var bytes int64
	for i, p := range []string{"d/1", "d/2", "d/e/3", "d/e/f/4", "d/e/f/5", "keep"} {
		data := content(i+1, uint64(i))
		if p != "keep" {
			bytes += int64(len(data))
		}
		_, err := put(t, a, p, data, false)
		must(t, err)
	}
	var total files.Removed
	for calls := 1; ; calls++ {
		r, gone, err := a.RemoveTree("d", 2)
		must(t, err)
		total.Files, total.Folders, total.Bytes = total.Files+r.Files, total.Folders+r.Folders, total.Bytes+r.Bytes
		if gone {
			break
		}
		if r == (files.Removed{}) || calls > 20 {
			t.Fatalf("RemoveTree call %d: removed %+v and not gone", calls, r)
		}
	}
	if want := (files.Removed{Files: 5, Folders: 3, Bytes: bytes}); total != want {
		t.Errorf("RemoveTree removed %+v, want %+v", total, want)
	}
	_, err := a.Stat("d")
	wantCode(t, "Stat of a tree removed", err, larder.ENOTFOUND)
	if got := names(t, a, ""); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("the top after: %q, want [keep]", got)
	}
	if r, gone, err := a.RemoveTree("d", 2); err != nil || !gone || r != (files.Removed{}) {
		t.Errorf("RemoveTree of nothing: %+v, %v, %v; want gone", r, gone, err)
	}
	if r, gone, err := a.RemoveTree("keep", 2); err != nil || !gone || r != (files.Removed{Files: 1, Bytes: 6}) {
		t.Errorf("RemoveTree of a file: %+v, %v, %v", r, gone, err)
	}
	_, _, err = a.RemoveTree("", 2)
	wantCode(t, "RemoveTree of the top", err, larder.EINVALID)
}

func testRenameFile(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	data := content(2*h.PartSize+1, 4)
	_, err := put(t, a, "a", data, false)
	must(t, err)
	_, err = put(t, a, "b", []byte("b"), false)
	must(t, err)
	must(t, a.Rename("a", "c", false))
	_, err = a.Stat("a")
	wantCode(t, "Stat of a file moved away", err, larder.ENOTFOUND)
	if got := read(t, a, "c"); !bytes.Equal(got, data) {
		t.Errorf("a file moved: not its bytes")
	}
	wantCode(t, "Rename onto a file without overwrite", a.Rename("c", "b", false), larder.ECONFLICT)
	must(t, a.Rename("c", "b", true))
	if got := read(t, a, "b"); !bytes.Equal(got, data) {
		t.Errorf("a file moved over another: not its bytes")
	}
	wantCode(t, "Rename of nothing", a.Rename("none", "x", false), larder.ENOTFOUND)
	wantCode(t, "Rename into no folder", a.Rename("b", "no/x", false), larder.ENOTFOUND)
	wantCode(t, "Rename onto itself", a.Rename("b", "b", true), larder.EINVALID)
	wantCode(t, "Rename of the top", a.Rename("", "x", false), larder.EINVALID)
	if got := names(t, a, ""); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after the renames: %q, want [b]", got)
	}
}

func testRenameFolder(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	must(t, a.Mkdir("d"))
	must(t, a.Mkdir("d/sub"))
	must(t, a.Mkdir("d/empty"))
	files := map[string][]byte{"d/x": content(100, 5), "d/sub/y": content(h.PartSize+7, 6)}
	for p, data := range files {
		_, err := put(t, a, p, data, false)
		must(t, err)
	}
	wantCode(t, "Rename into itself", a.Rename("d", "d/sub/d", false), larder.EINVALID)
	must(t, a.Mkdir("taken"))
	_, err := put(t, a, "taken/f", []byte("f"), false)
	must(t, err)
	wantCode(t, "Rename onto a folder without overwrite", a.Rename("d", "taken", false), larder.ECONFLICT)
	wantCode(t, "Rename onto a folder not empty", a.Rename("d", "taken", true), larder.ECONFLICT)
	must(t, a.Rename("d", "e", false))
	_, err = a.Stat("d")
	wantCode(t, "Stat of a folder moved away", err, larder.ENOTFOUND)
	if got := names(t, a, "e"); !slices.Equal(got, []string{"empty/", "sub/", "x"}) {
		t.Errorf("a folder moved lists %q, want [empty/ sub/ x]", got)
	}
	for p, data := range files {
		if got := read(t, a, "e"+p[1:]); !bytes.Equal(got, data) {
			t.Errorf("%s moved: not its bytes", p)
		}
	}
}

func testSpacesApart(t *testing.T, h Harness) {
	b, seed := h.New(t)
	seed("shared.txt", []byte("shared"))
	one, two := space(t, b, "#1"), space(t, b, "#12")
	_, err := put(t, one, "mine", []byte("one's"), false)
	must(t, err)
	must(t, one.Mkdir("dir"))
	for _, a := range []files.Area{two, space(t, b, "")} {
		for _, p := range []string{"mine", "dir"} {
			_, err := a.Stat(p)
			wantCode(t, "Stat of another space's "+p, err, larder.ENOTFOUND)
		}
	}
	if got := names(t, two, ""); len(got) != 0 {
		t.Errorf("another space lists %q", got)
	}
	if got := names(t, one, ""); !slices.Equal(got, []string{"dir/", "mine"}) {
		t.Errorf("a space lists %q, want [dir/ mine]", got)
	}
	_, err = one.Stat("shared.txt")
	wantCode(t, "Stat of a shared file in a space", err, larder.ENOTFOUND)
	if ps, _ := two.Parts(); len(ps) != 0 {
		t.Errorf("another space's parts: %+v", ps)
	}
	pt, err := one.StartUpload("up", 10, false)
	must(t, err)
	pt.Close()
	if ps, _ := two.Parts(); len(ps) != 0 {
		t.Errorf("an upload in space 1 shows in space 12: %+v", ps)
	}
	if u, _ := two.PartUsage(""); u != (larder.Usage{}) {
		t.Errorf("an upload in space 1 counts in space 12: %+v", u)
	}
}

func testSharedReadOnly(t *testing.T, h Harness) {
	b, seed := h.New(t)
	data := content(h.PartSize+10, 7)
	seed("docs/readme.txt", data)
	seed("top.txt", []byte("top"))
	a := space(t, b, "")
	if got := names(t, a, ""); !slices.Equal(got, []string{"docs/", "top.txt"}) {
		t.Errorf("the shared area lists %q, want [docs/ top.txt]", got)
	}
	if got := read(t, a, "docs/readme.txt"); !bytes.Equal(got, data) {
		t.Errorf("a shared file: not its bytes")
	}
	in, err := a.Stat("docs")
	if err != nil || !in.Dir {
		t.Errorf("Stat of a shared folder: %+v, %v", in, err)
	}
	_, err = a.Open("docs")
	wantCode(t, "Open of a folder", err, larder.EINVALID)
	wantCode(t, "Mkdir in the shared area", a.Mkdir("new"), larder.EFORBIDDEN)
	wantCode(t, "Remove in the shared area", a.Remove("top.txt"), larder.EFORBIDDEN)
	wantCode(t, "Rename in the shared area", a.Rename("top.txt", "x", false), larder.EFORBIDDEN)
	_, _, err = a.RemoveTree("docs", 10)
	wantCode(t, "RemoveTree in the shared area", err, larder.EFORBIDDEN)
	_, err = a.StartUpload("new", 1, false)
	wantCode(t, "StartUpload in the shared area", err, larder.EFORBIDDEN)
	for _, p := range []string{"../top.txt", "docs/../../x", "/../x"} {
		if _, err := a.Stat(p); err == nil {
			t.Errorf("Stat(%q) in the shared area: no error", p)
		}
		if _, err := a.Open(p); err == nil {
			t.Errorf("Open(%q) in the shared area: no error", p)
		}
	}
}

func testResume(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	data := content(2*h.PartSize+500, 8)
	size := int64(len(data))
	pt, err := a.StartUpload("big", size, true)
	must(t, err)
	if pt.Offset() != 0 {
		t.Fatalf("a new upload starts at %d", pt.Offset())
	}
	sent := h.PartSize + 100
	_, err = pt.Write(data[:sent])
	must(t, err)
	id := pt.ID()
	must(t, pt.Close())

	ps, err := a.Parts()
	must(t, err)
	if len(ps) != 1 || ps[0].ID != id || ps[0].Target != "big" || ps[0].Size != size || ps[0].Active ||
		ps[0].Received < int64(h.PartSize) || ps[0].Received > int64(sent) {
		t.Errorf("Parts of an interrupted upload: %+v; want %s of big, size %d, %d to %d received", ps, id, size, h.PartSize, sent)
	}
	if u, err := a.PartUsage(""); err != nil || u != (larder.Usage{Bytes: size, Files: 1}) {
		t.Errorf("PartUsage: %+v, %v; want %d bytes, 1 file", u, err, size)
	}
	if u, err := a.PartUsage(id); err != nil || u != (larder.Usage{}) {
		t.Errorf("PartUsage but the part: %+v, %v; want none", u, err)
	}

	pt, err = a.StartUpload("big", size, true)
	must(t, err)
	defer pt.Close()
	off := pt.Offset()
	if off < int64(h.PartSize) || off > int64(sent) {
		t.Fatalf("a resume starts at %d; want %d to %d", off, h.PartSize, sent)
	}
	hs := sha256.New()
	must(t, pt.HashPrefix(hs))
	if got, want := hs.Sum(nil), sha256.Sum256(data[:off]); !bytes.Equal(got, want[:]) {
		t.Errorf("HashPrefix of a resumed upload: not the SHA-256 of its first %d bytes", off)
	}
	_, err = pt.Write(data[off:])
	must(t, err)
	_, err = pt.Sync()
	must(t, err)
	_, err = pt.Place(false)
	must(t, err)
	if got := read(t, a, "big"); !bytes.Equal(got, data) {
		t.Errorf("a resumed upload: not the bytes")
	}
	if ps, err := a.Parts(); err != nil || len(ps) != 0 {
		t.Errorf("Parts after the resumed upload placed: %+v, %v", ps, err)
	}
}

func testResumeOtherSize(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	pt, err := a.StartUpload("f", int64(2*h.PartSize), false)
	must(t, err)
	_, err = pt.Write(content(h.PartSize+1, 9))
	must(t, err)
	must(t, pt.Close())
	pt, err = a.StartUpload("f", int64(3*h.PartSize), true)
	must(t, err)
	defer pt.Close()
	if pt.Offset() != 0 {
		t.Errorf("a resume of another size starts at %d, want 0", pt.Offset())
	}
}

func testActiveUploads(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	pt, err := a.StartUpload("f", 10, false)
	must(t, err)
	_, err = pt.Write([]byte("12345"))
	must(t, err)
	ps, err := a.Parts()
	must(t, err)
	if len(ps) != 1 || !ps[0].Active {
		t.Errorf("Parts while written: %+v; want one, active", ps)
	}
	_, _, err = a.CancelUploads("f")
	wantCode(t, "CancelUploads of one being written", err, larder.ECONFLICT)
	if n, _ := b.RemoveStaleUploads(time.Now().Add(time.Hour)); n != 0 {
		t.Errorf("RemoveStaleUploads removed %d being written", n)
	}
	must(t, pt.Close())
	_, _, err = a.CancelUploads("other")
	wantCode(t, "CancelUploads of none", err, larder.ENOTFOUND)
	n, _, err := a.CancelUploads("f")
	if err != nil || n != 1 {
		t.Errorf("CancelUploads: %d, %v; want 1", n, err)
	}
	if ps, _ := a.Parts(); len(ps) != 0 {
		t.Errorf("Parts after CancelUploads: %+v", ps)
	}
	pt, err = a.StartUpload("g", 10, false)
	must(t, err)
	must(t, pt.Discard())
	if ps, _ := a.Parts(); len(ps) != 0 {
		t.Errorf("Parts after Discard: %+v", ps)
	}
}

func testStaleUploads(t *testing.T, h Harness) {
	b, _ := h.New(t)
	for _, id := range []string{"#1", "#2"} {
		a := space(t, b, id)
		pt, err := a.StartUpload("f", 10, false)
		must(t, err)
		_, err = pt.Write([]byte("123"))
		must(t, err)
		must(t, pt.Close())
	}
	if n, err := b.RemoveStaleUploads(time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Errorf("RemoveStaleUploads of none stale: %d, %v", n, err)
	}
	if n, err := b.RemoveStaleUploads(time.Now().Add(time.Hour)); n != 2 || err != nil {
		t.Errorf("RemoveStaleUploads: %d, %v; want 2", n, err)
	}
	for _, id := range []string{"#1", "#2"} {
		if ps, _ := space(t, b, id).Parts(); len(ps) != 0 {
			t.Errorf("Parts of %s after RemoveStaleUploads: %+v", id, ps)
		}
	}
}

// testVersionsApart: two files of one content at two paths have two
// versions (hashes are remembered by version: one path's must not stand
// for another's), and a version read by Stat is the one List gives.
func testVersionsApart(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	data := content(5000, 11)
	one, err := put(t, a, "one", data, false)
	must(t, err)
	two, err := put(t, a, "two", data, false)
	must(t, err)
	if one.Version == two.Version {
		t.Errorf("two files of one content have one version %q", one.Version)
	}
	l, err := a.List("")
	must(t, err)
	defer l.Close()
	ins, err := l.Next(10)
	must(t, err)
	for _, in := range ins {
		st, err := a.Stat(in.Name)
		must(t, err)
		if st.Version != in.Version || st.Size != in.Size || !st.ModTime.Equal(in.ModTime) {
			t.Errorf("%s: List says %+v, Stat %+v; want one version, size and time", in.Name, in, st)
		}
	}
}

// testNamesNotUTF8: no name that is not valid UTF-8 is ever made (a
// store may list such a key with U+FFFD in its place, another key): an
// upload, a folder and a rename to one are refused, and nothing is left.
func testNamesNotUTF8(t *testing.T, h Harness) {
	b, _ := h.New(t)
	a := space(t, b, "#1")
	must(t, a.Mkdir("d"))
	pt, err := a.StartUpload("f", 1, false)
	must(t, err)
	_, err = pt.Write([]byte("x"))
	must(t, err)
	_, err = pt.Sync()
	must(t, err)
	_, err = pt.Place(false)
	must(t, err)
	for _, bad := range []string{"a\xffb", "d/\xc3", "\xed\xa0\x80"} {
		if pt, err := a.StartUpload(bad, 1, false); err == nil {
			pt.Discard()
			t.Errorf("StartUpload(%q): no error", bad)
		} else {
			wantCode(t, "StartUpload of a name not UTF-8", err, larder.EINVALID)
		}
		wantCode(t, "Mkdir of a name not UTF-8", a.Mkdir(bad), larder.EINVALID)
		wantCode(t, "Rename to a name not UTF-8", a.Rename("f", bad, false), larder.EINVALID)
	}
	l, err := a.List("")
	must(t, err)
	defer l.Close()
	var names []string
	for {
		ins, err := l.Next(100)
		for _, in := range ins {
			names = append(names, in.Name)
		}
		if err != nil {
			break
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"d", "f"}) {
		t.Errorf("the space after names not UTF-8 were refused: %q; want d, f", names)
	}
	if ps, err := a.Parts(); err != nil || len(ps) != 0 {
		t.Errorf("Parts after names not UTF-8 were refused: %+v, %v; want none", ps, err)
	}
}
