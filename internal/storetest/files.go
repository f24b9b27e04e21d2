package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// RunFiles runs the conformance suite of larder.FileStore against the
// stores that open returns. It calls open once in each subtest, which must
// return an empty store of its own, closed in t.Cleanup. The subtests run
// in parallel.
//
// Stores keep Modified to the nanosecond: callers compare it with a file's
// time on disk to decide whether the record still holds.
func RunFiles(t *testing.T, open func(t *testing.T) larder.FileStore) {
	tests := []struct {
		name string
		f    func(t *testing.T, s larder.FileStore)
	}{
		{"RoundTrip", testFilesRoundTrip},
		{"OddPaths", testFilesOddPaths},
		{"PutReplaces", testFilesPutReplaces},
		{"NotFound", testFilesNotFound},
		{"Invalid", testFilesInvalid},
		{"Usage", testFilesUsage},
		{"Commit", testFilesCommit},
		{"CommitOverQuota", testFilesCommitOverQuota},
		{"CommitReplaces", testFilesCommitReplaces},
		{"CommitPlaceFails", testFilesCommitPlaceFails},
		{"ConcurrentCommits", func(t *testing.T, s larder.FileStore) { CommitRace(t, s) }},
		{"Delete", testFilesDelete},
		{"DeleteOddNames", testFilesDeleteOddNames},
		{"RenameFile", testFilesRenameFile},
		{"RenameFolder", testFilesRenameFolder},
		{"RenameInvalid", testFilesRenameInvalid},
		{"SpacesApart", testFilesSpacesApart},
		{"DeleteSpace", testFilesDeleteSpace},
		{"ContextCanceled", testFilesContextCanceled},
		{"BlockSums", testBlockSums},
		{"BlockSumsLarge", testBlockSumsLarge},
		{"BlockSumsInvalid", testBlockSumsInvalid},
		{"PruneBlockSums", testPruneBlockSums},
		{"Versions", testFilesVersions},
		{"Intents", testFileIntents},
		{"CountFiles", testCountFiles},
		{"ListFiles", testListFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t))
		})
	}
}

// CommitRace commits 20 distinct files of 10 bytes each to one space at
// once, under a quota of 100 bytes, through stores in turn, which must
// share one empty database (several stores: several servers). Exactly 10
// must succeed, and the others fail with EQUOTA without their place being
// called; no two places may run at once; and the space must then hold 100
// bytes in 10 files, each winner's, as every store reads it.
func CommitRace(t *testing.T, stores ...larder.FileStore) {
	t.Helper()
	const (
		n     = 20
		size  = 10
		quota = 100
	)
	ctx := context.Background()
	var (
		mu                          sync.Mutex // guards the three below
		inPlace, maxInPlace, places int
	)
	place := func() error {
		mu.Lock()
		places++
		inPlace++
		maxInPlace = max(maxInPlace, inPlace)
		mu.Unlock()
		// Long enough for the others to pile up behind the lock.
		time.Sleep(time.Millisecond)
		mu.Lock()
		inPlace--
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			f := newFile("alice", fmt.Sprintf("race/%02d", i), size)
			errs[i] = s.CommitFile(ctx, f, larder.Quota{Bytes: quota}, place)
		})
	}
	close(start)
	wg.Wait()

	var won []string
	for i, err := range errs {
		switch larder.ErrorCode(err) {
		case "":
			won = append(won, fmt.Sprintf("race/%02d", i))
		case larder.EQUOTA:
		default:
			t.Errorf("CommitFile %d of %d at once: got %v, want nil or code %q", i, n, err, larder.EQUOTA)
		}
	}
	if len(won) != quota/size {
		t.Errorf("CommitFiles of %d bytes at once under a quota of %d: %d succeeded, want %d", size, quota, len(won), quota/size)
	}
	if places != len(won) {
		t.Errorf("places called: got %d, want one for each of the %d that succeeded", places, len(won))
	}
	if maxInPlace > 1 {
		t.Errorf("places running at once: got up to %d, want 1: CommitFile does not lock the space", maxInPlace)
	}
	for i, s := range stores {
		if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: int64(len(won)) * size, Files: int64(len(won))}); got != want {
			t.Errorf("store %d: SpaceUsage(alice) after the race: got %+v, want %+v", i, got, want)
		}
		for _, p := range won {
			mustFile(t, s, "alice", p)
		}
	}
}

// fileBase is a time with nanoseconds, in a zone other than UTC: stores
// must keep the instant exactly, and give it back in UTC.
var fileBase = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC-3", -3*3600))

// newFile returns a record of path in space of the given size, with a
// time and a hash that differ from path to path and size to size.
func newFile(space, path string, size int64) *larder.File {
	key := fmt.Sprintf("%s\x00%s\x00%d", space, path, size)
	sum := sha256.Sum256([]byte(key))
	return &larder.File{
		Space:    space,
		Path:     path,
		Size:     size,
		Modified: fileBase.Add(time.Duration(sum[0])*time.Hour + time.Duration(sum[1])*time.Nanosecond),
		SHA256:   sum,
	}
}

func testFilesRoundTrip(t *testing.T, s larder.FileStore) {
	files := []*larder.File{
		newFile("", "notes.txt", 1234),
		newFile("alice", "docs/report.pdf", 1<<40),
		newFile("alice", "empty", 0),
		// Monotonic clock readings and the local zone do not matter,
		// only the instant.
		{Space: "alice", Path: "now", Size: 5, Modified: time.Now()},
		// The ends of what nanoseconds since 1970 in an int64 hold.
		{Space: "alice", Path: "early", Size: 1, Modified: time.Unix(0, math.MinInt64)},
		{Space: "alice", Path: "late", Size: 1, Modified: time.Unix(0, math.MaxInt64)},
		{Space: "alice", Path: "epoch", Size: 1, Modified: time.Unix(0, 0)},
	}
	for _, f := range files {
		mustPut(t, s, f)
	}
	for _, f := range files {
		got := mustFile(t, s, f.Space, f.Path)
		checkFile(t, fmt.Sprintf("FileByPath(%q, %q)", f.Space, f.Path), got, f)
		if got.Modified.Location() != time.UTC {
			t.Errorf("FileByPath(%q, %q): Modified in %v, want UTC", f.Space, f.Path, got.Modified.Location())
		}
	}
}

// oddPaths are distinct paths, compared byte for byte, with characters
// that SQL, LIKE and a collation other than bytes would treat specially.
var oddPaths = []string{
	"日本語/ファイル.txt", "e\u0301", "\u00e9", "Bob", "bob", "bob ", " bob",
	"100%", "100_", "a%b/c", "a_b/c", `back\slash`, `back\\slash`, "it's", `"quoted"`,
	"'; DROP TABLE files; --", "tab\there", "new\nline", "😀/😁", strings.Repeat("long/", 800) + "end",
	"/leading", "trailing/", "a//b", "./x", "../x",
}

func testFilesOddPaths(t *testing.T, s larder.FileStore) {
	for _, p := range oddPaths {
		mustPut(t, s, newFile("alice", p, int64(len(p))))
	}
	for _, p := range oddPaths {
		checkFile(t, fmt.Sprintf("FileByPath(alice, %q)", p), mustFile(t, s, "alice", p), newFile("alice", p, int64(len(p))))
	}
	for _, p := range []string{"BOB", "e", "100", "a%b", "日本語", "😀"} {
		checkCode(t, fmt.Sprintf("FileByPath(alice, %q)", p), fileErr(s, "alice", p), larder.ENOTFOUND)
	}
	var total int64
	for _, p := range oddPaths {
		total += int64(len(p))
	}
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: total, Files: int64(len(oddPaths))}); got != want {
		t.Errorf("SpaceUsage(alice): got %+v, want %+v", got, want)
	}
}

func testFilesPutReplaces(t *testing.T, s larder.FileStore) {
	mustPut(t, s, newFile("", "a.txt", 10))
	mustPut(t, s, newFile("", "b.txt", 20))
	second := newFile("", "a.txt", 30)
	mustPut(t, s, second)
	checkFile(t, "FileByPath(a.txt) after a second PutFile", mustFile(t, s, "", "a.txt"), second)
	checkFile(t, "FileByPath(b.txt), untouched", mustFile(t, s, "", "b.txt"), newFile("", "b.txt", 20))
	if got, want := mustUsage(t, s, ""), (larder.Usage{Bytes: 50, Files: 2}); got != want {
		t.Errorf("SpaceUsage after replacing a record: got %+v, want %+v", got, want)
	}
}

func testFilesNotFound(t *testing.T, s larder.FileStore) {
	mustPut(t, s, newFile("alice", "a/b", 1))
	for _, tc := range []struct{ space, path string }{
		{"alice", "nothing"}, {"alice", "a"}, {"alice", "a/b/c"}, {"alice", "A/b"}, {"alice", "a/b "},
		{"", "a/b"}, {"bob", "a/b"}, {"Alice", "a/b"},
		// Paths that no record can have are not found either.
		{"alice", "a/b\x00"}, {"alice", "\xff"}, {"\xff", "a/b"},
	} {
		err := fileErr(s, tc.space, tc.path)
		checkError(t, fmt.Sprintf("FileByPath(%q, %q)", tc.space, tc.path), err, larder.ENOTFOUND,
			fmt.Sprintf("no record of file %q in space %q", tc.path, tc.space))
	}
}

func testFilesInvalid(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	ok := newFile("alice", "ok", 1)
	mustPut(t, s, ok)
	bad := map[string]*larder.File{
		"an empty path":            {Space: "alice", Path: "", Size: 1, Modified: fileBase},
		"a NUL in the path":        {Space: "alice", Path: "a\x00b", Size: 1, Modified: fileBase},
		"a path that is not text":  {Space: "alice", Path: "caf\xc3", Size: 1, Modified: fileBase},
		"a space that is not text": {Space: "\xff", Path: "a", Size: 1, Modified: fileBase},
		"a negative size":          {Space: "alice", Path: "a", Size: -1, Modified: fileBase},
		"the zero time":            {Space: "alice", Path: "a", Size: 1},
		"a time after 2262":        {Space: "alice", Path: "a", Size: 1, Modified: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	placed := false
	place := func() error { placed = true; return nil }
	for what, f := range bad {
		checkCode(t, "PutFile of "+what, s.PutFile(ctx, f), larder.EINVALID)
		checkCode(t, "CommitFile of "+what, s.CommitFile(ctx, f, larder.Quota{}, place), larder.EINVALID)
	}
	if placed {
		t.Errorf("CommitFile of an invalid record called place, want it refused first")
	}
	checkCode(t, "FileByPath(alice, \"\")", fileErr(s, "alice", ""), larder.EINVALID)
	for _, p := range []string{"", "a\x00", "\xff"} {
		checkCode(t, fmt.Sprintf("DeleteFiles(alice, %q)", p), s.DeleteFiles(ctx, "alice", p), larder.EINVALID)
		checkCode(t, fmt.Sprintf("RenameFiles(alice, %q, ok2)", p), s.RenameFiles(ctx, "alice", p, "ok2"), larder.EINVALID)
		checkCode(t, fmt.Sprintf("RenameFiles(alice, ok, %q)", p), s.RenameFiles(ctx, "alice", "ok", p), larder.EINVALID)
	}
	checkCode(t, "DeleteFiles(\"\\xff\", ok)", s.DeleteFiles(ctx, "\xff", "ok"), larder.EINVALID)
	// Nothing was recorded, and nothing removed: an empty path is not
	// the whole space.
	checkFile(t, "FileByPath(alice, ok) after the refusals", mustFile(t, s, "alice", "ok"), ok)
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 1, Files: 1}); got != want {
		t.Errorf("SpaceUsage(alice) after the refusals: got %+v, want %+v", got, want)
	}
	if got := mustUsage(t, s, "\xff"); got != (larder.Usage{}) {
		t.Errorf("SpaceUsage of a space that is not text: got %+v, want zero", got)
	}
}

func testFilesUsage(t *testing.T, s larder.FileStore) {
	if got := mustUsage(t, s, "alice"); got != (larder.Usage{}) {
		t.Errorf("SpaceUsage of an empty space: got %+v, want zero", got)
	}
	want := larder.Usage{}
	for i := range 30 {
		size := int64(i) * 1_000_003
		mustPut(t, s, newFile("alice", fmt.Sprintf("d%d/f%d", i%4, i), size))
		want.Bytes += size
		want.Files++
	}
	// Sums beyond 32 bits.
	mustPut(t, s, newFile("alice", "big", 5<<40))
	want.Bytes += 5 << 40
	want.Files++
	if got := mustUsage(t, s, "alice"); got != want {
		t.Errorf("SpaceUsage(alice): got %+v, want %+v", got, want)
	}
}

// commit calls s.CommitFile with a place that counts its calls.
func commit(s larder.FileStore, f *larder.File, q larder.Quota, places *int) error {
	return s.CommitFile(context.Background(), f, q, func() error { *places++; return nil })
}

func testFilesCommit(t *testing.T, s larder.FileStore) {
	places := 0
	f := newFile("alice", "up/load.bin", 40)
	if err := commit(s, f, larder.Quota{Bytes: 100, Files: 10}, &places); err != nil {
		t.Fatalf("CommitFile under quota: got %v, want nil", err)
	}
	if places != 1 {
		t.Errorf("places called by CommitFile: got %d, want 1", places)
	}
	checkFile(t, "FileByPath after CommitFile", mustFile(t, s, "alice", "up/load.bin"), f)
	// Reaching a limit exactly is within it; a zero limit is none.
	for i, tc := range []struct {
		size  int64
		quota larder.Quota
	}{
		{60, larder.Quota{Bytes: 100, Files: 2}}, // 100 bytes in 2 files
		{30, larder.Quota{Files: 3}},             // 130 bytes in 3 files
		{20, larder.Quota{Bytes: 150}},           // 150 bytes in 4 files
		{15, larder.Quota{}},                     // 165 bytes in 5 files
	} {
		g := newFile("alice", fmt.Sprintf("g%d", i), tc.size)
		if err := commit(s, g, tc.quota, &places); err != nil {
			t.Errorf("CommitFile(%q, %d bytes) under %+v: got %v, want nil", g.Path, g.Size, tc.quota, err)
		}
	}
	if places != 5 {
		t.Errorf("places called: got %d, want 5", places)
	}
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 165, Files: 5}); got != want {
		t.Errorf("SpaceUsage(alice): got %+v, want %+v", got, want)
	}
}

func testFilesCommitOverQuota(t *testing.T, s larder.FileStore) {
	mustPut(t, s, newFile("alice", "old", 90))
	places := 0
	err := commit(s, newFile("alice", "new", 11), larder.Quota{Bytes: 100}, &places)
	checkError(t, "CommitFile of 11 bytes beside 90 under 100", err, larder.EQUOTA,
		"quota exceeded: with this file the space would hold 101 bytes, over its quota of 100")
	err = commit(s, newFile("alice", "new", 1), larder.Quota{Files: 1}, &places)
	checkError(t, "CommitFile of a second file under a quota of 1 file", err, larder.EQUOTA,
		"quota exceeded: with this file the space would hold 2 files, over its quota of 1")
	// Both exceeded: the bytes are named.
	err = commit(s, newFile("alice", "new", 20), larder.Quota{Bytes: 100, Files: 1}, &places)
	checkError(t, "CommitFile over both limits", err, larder.EQUOTA,
		"quota exceeded: with this file the space would hold 110 bytes, over its quota of 100")
	if places != 0 {
		t.Errorf("places called by CommitFiles over quota: got %d, want 0", places)
	}
	checkCode(t, "FileByPath(alice, new) after the refusals", fileErr(s, "alice", "new"), larder.ENOTFOUND)
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 90, Files: 1}); got != want {
		t.Errorf("SpaceUsage(alice) after the refusals: got %+v, want %+v", got, want)
	}
}

// testFilesCommitReplaces: a file that replaces another counts instead of
// it, not beside it.
func testFilesCommitReplaces(t *testing.T, s larder.FileStore) {
	places := 0
	if err := commit(s, newFile("alice", "f", 10), larder.Quota{Bytes: 12, Files: 1}, &places); err != nil {
		t.Fatalf("CommitFile of 10 bytes under 12: got %v, want nil", err)
	}
	bigger := newFile("alice", "f", 12)
	if err := commit(s, bigger, larder.Quota{Bytes: 12, Files: 1}, &places); err != nil {
		t.Fatalf("CommitFile of 12 bytes over the 10 under 12 bytes and 1 file: got %v, want nil", err)
	}
	checkFile(t, "FileByPath(alice, f) after the replacement", mustFile(t, s, "alice", "f"), bigger)
	err := commit(s, newFile("alice", "f", 13), larder.Quota{Bytes: 12}, &places)
	checkCode(t, "CommitFile of 13 bytes over the 12 under 12", err, larder.EQUOTA)
	checkFile(t, "FileByPath(alice, f) after the refusal", mustFile(t, s, "alice", "f"), bigger)
	if places != 2 {
		t.Errorf("places called: got %d, want 2", places)
	}
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 12, Files: 1}); got != want {
		t.Errorf("SpaceUsage(alice): got %+v, want %+v", got, want)
	}
}

func testFilesCommitPlaceFails(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	old := newFile("alice", "kept", 5)
	mustPut(t, s, old)
	for _, f := range []*larder.File{newFile("alice", "new", 7), newFile("alice", "kept", 8)} {
		for _, placeErr := range []error{
			errors.New("rename: no space left on device"),
			larder.Errorf(larder.ECONFLICT, "%q is a folder", f.Path),
		} {
			err := s.CommitFile(ctx, f, larder.Quota{}, func() error { return placeErr })
			if err != placeErr {
				t.Errorf("CommitFile(%q) whose place fails with %v: got %v, want place's error as it is", f.Path, placeErr, err)
			}
		}
	}
	checkCode(t, "FileByPath(alice, new) after place failed", fileErr(s, "alice", "new"), larder.ENOTFOUND)
	checkFile(t, "FileByPath(alice, kept) after place failed", mustFile(t, s, "alice", "kept"), old)
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 5, Files: 1}); got != want {
		t.Errorf("SpaceUsage(alice) after place failed: got %+v, want %+v", got, want)
	}
	// The space is not left locked.
	places := 0
	if err := commit(s, newFile("alice", "new", 7), larder.Quota{}, &places); err != nil || places != 1 {
		t.Errorf("CommitFile after a failed place: got %v with %d places, want nil with 1", err, places)
	}
}

// folderPaths holds a folder a/b with files at several depths, and
// neighbours of it that a prefix without the slash, or a LIKE pattern,
// would take for its contents: names that sort just before "a/b/" ('-'
// and '.' are below '/') and just after ('0' is next).
var folderPaths = []string{
	"a/b/c", "a/b/d/e", "a/b/d/f/g", "a/b/.hidden", "a/b/0",
	"a", "a/b", "a/b2", "a/b.txt", "a/b-x", "a/b0", "a/bc", "a/c", "a/B/c", "a/b\u00e9", "b/a/b/c", "ab/c",
}

// belowAB are the folderPaths at a/b or below it.
var belowAB = []string{"a/b", "a/b/.hidden", "a/b/0", "a/b/c", "a/b/d/e", "a/b/d/f/g"}

func putAll(t *testing.T, s larder.FileStore, space string, paths []string) {
	t.Helper()
	for i, p := range paths {
		mustPut(t, s, newFile(space, p, int64(i+1)))
	}
}

func testFilesDelete(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	putAll(t, s, "alice", folderPaths)
	putAll(t, s, "bob", folderPaths)
	if err := s.DeleteFiles(ctx, "alice", "a/b"); err != nil {
		t.Fatalf("DeleteFiles(alice, a/b): got %v, want nil", err)
	}
	checkPaths(t, s, "alice", "after DeleteFiles(alice, a/b)", without(folderPaths, belowAB))
	checkPaths(t, s, "bob", "after DeleteFiles(alice, a/b)", folderPaths)

	// Nothing to delete is not an error, even where records are near.
	for _, p := range []string{"a/b", "a/b/c", "nothing", "a/", "a/b/"} {
		if err := s.DeleteFiles(ctx, "alice", p); err != nil {
			t.Errorf("DeleteFiles(alice, %q) with nothing there: got %v, want nil", p, err)
		}
	}
	checkPaths(t, s, "alice", "after DeleteFiles of nothing", without(folderPaths, belowAB))

	// A file, then what remains of the folder above it.
	if err := s.DeleteFiles(ctx, "alice", "a/b2"); err != nil {
		t.Fatalf("DeleteFiles(alice, a/b2): got %v, want nil", err)
	}
	checkCode(t, "FileByPath(alice, a/b2) after DeleteFiles", fileErr(s, "alice", "a/b2"), larder.ENOTFOUND)
	if err := s.DeleteFiles(ctx, "alice", "a"); err != nil {
		t.Fatalf("DeleteFiles(alice, a): got %v, want nil", err)
	}
	checkPaths(t, s, "alice", "after DeleteFiles(alice, a)", []string{"ab/c", "b/a/b/c"})
}

// testFilesDeleteOddNames: folders whose names are LIKE's wildcards and
// escape hold only what is below them.
func testFilesDeleteOddNames(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	paths := []string{"p%/1", "pa/1", "pab/1", "p_/1", "pb/1", `p\/1`, `p\\/1`, "p%%/1", "p/1"}
	putAll(t, s, "", paths)
	for _, p := range []string{"p%", "p_", `p\`} {
		if err := s.DeleteFiles(ctx, "", p); err != nil {
			t.Fatalf("DeleteFiles(%q): got %v, want nil", p, err)
		}
	}
	checkPaths(t, s, "", "after deleting p%, p_ and p\\", []string{"p%%/1", "p/1", `p\\/1`, "pa/1", "pab/1", "pb/1"})
}

func testFilesRenameFile(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	f := newFile("alice", "old name", 10)
	mustPut(t, s, f)
	mustPut(t, s, newFile("alice", "taken", 99))
	mustPut(t, s, newFile("alice", "old name2", 3))
	for _, to := range []string{"new name", "taken", "dir/deeper/moved"} {
		from := f.Path
		if err := s.RenameFiles(ctx, "alice", from, to); err != nil {
			t.Fatalf("RenameFiles(alice, %q, %q): got %v, want nil", from, to, err)
		}
		checkCode(t, fmt.Sprintf("FileByPath(alice, %q) after renaming it", from), fileErr(s, "alice", from), larder.ENOTFOUND)
		want := *f
		want.Path = to
		checkFile(t, fmt.Sprintf("FileByPath(alice, %q) after renaming %q to it", to, from), mustFile(t, s, "alice", to), &want)
		f = &want
	}
	// Renaming a path to itself changes nothing.
	if err := s.RenameFiles(ctx, "alice", f.Path, f.Path); err != nil {
		t.Fatalf("RenameFiles of a path to itself: got %v, want nil", err)
	}
	checkFile(t, "FileByPath after renaming a path to itself", mustFile(t, s, "alice", f.Path), f)
	// "taken" was replaced, so 99 bytes are gone.
	checkPaths(t, s, "alice", "after the renames", []string{"dir/deeper/moved", "old name2"})
	if got, want := mustUsage(t, s, "alice"), (larder.Usage{Bytes: 13, Files: 2}); got != want {
		t.Errorf("SpaceUsage(alice) after the renames: got %+v, want %+v", got, want)
	}
}

func testFilesRenameFolder(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	putAll(t, s, "alice", folderPaths)
	putAll(t, s, "bob", folderPaths)
	// The destination had records of its own, which the rename on disk
	// replaced: a file at it, and files below it.
	mustPut(t, s, newFile("alice", "x/y", 1000))
	mustPut(t, s, newFile("alice", "x/y/old", 1000))
	mustPut(t, s, newFile("alice", "x/y2", 7))
	before := map[string]*larder.File{}
	for _, p := range belowAB {
		before[p] = mustFile(t, s, "alice", p)
	}
	if err := s.RenameFiles(ctx, "alice", "a/b", "x/y"); err != nil {
		t.Fatalf("RenameFiles(alice, a/b, x/y): got %v, want nil", err)
	}
	var moved []string
	for _, p := range belowAB {
		to := "x/y" + strings.TrimPrefix(p, "a/b")
		want := *before[p]
		want.Path = to
		checkFile(t, fmt.Sprintf("FileByPath(alice, %q), moved from %q", to, p), mustFile(t, s, "alice", to), &want)
		moved = append(moved, to)
	}
	checkPaths(t, s, "alice", "after RenameFiles(alice, a/b, x/y)", append(append(without(folderPaths, belowAB), moved...), "x/y2"))
	checkPaths(t, s, "bob", "after RenameFiles(alice, a/b, x/y)", folderPaths)

	// Into a folder with a multibyte name and back under another: the
	// part below the folder is kept byte for byte.
	if err := s.RenameFiles(ctx, "alice", "x/y", "日本/ü"); err != nil {
		t.Fatalf("RenameFiles(alice, x/y, 日本/ü): got %v, want nil", err)
	}
	if err := s.RenameFiles(ctx, "alice", "日本/ü", "a/b"); err != nil {
		t.Fatalf("RenameFiles(alice, 日本/ü, a/b): got %v, want nil", err)
	}
	checkPaths(t, s, "alice", "after renaming the folder back", append(slices.Clone(folderPaths), "x/y2"))

	// A folder with no records: what was at the destination goes all the
	// same, as the disk replaced it.
	if err := s.RenameFiles(ctx, "alice", "nothing/here", "a/b"); err != nil {
		t.Fatalf("RenameFiles(alice, nothing/here, a/b): got %v, want nil", err)
	}
	checkPaths(t, s, "alice", "after renaming nothing over a/b", append(without(folderPaths, belowAB), "x/y2"))
}

func testFilesRenameInvalid(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	putAll(t, s, "alice", folderPaths)
	for _, tc := range []struct{ from, to string }{
		{"a/b", "a/b/c"}, {"a/b", "a/b/new/deeper"}, {"a/b/c", "a/b"}, {"a/b/d/e", "a"},
	} {
		err := s.RenameFiles(ctx, "alice", tc.from, tc.to)
		checkCode(t, fmt.Sprintf("RenameFiles(alice, %q, %q)", tc.from, tc.to), err, larder.EINVALID)
	}
	checkPaths(t, s, "alice", "after the refused renames", folderPaths)
	// Neighbours that only share a prefix are not inside each other.
	if err := s.RenameFiles(ctx, "alice", "a/b", "a/b2"); err != nil {
		t.Fatalf("RenameFiles(alice, a/b, a/b2): got %v, want nil", err)
	}
	if err := s.RenameFiles(ctx, "alice", "a/b2", "a/b"); err != nil {
		t.Fatalf("RenameFiles(alice, a/b2, a/b): got %v, want nil", err)
	}
	// a/b2 was replaced by a/b, then moved back: the old a/b2 is gone.
	checkPaths(t, s, "alice", "after moving a/b to a/b2 and back", without(folderPaths, []string{"a/b2"}))
}

// testFilesSpacesApart: the shared area and each user's space hold records
// of their own, and quotas count only their own space.
func testFilesSpacesApart(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	for _, space := range []string{"", "alice", "Alice", "bob"} {
		mustPut(t, s, newFile(space, "f", 50))
		mustPut(t, s, newFile(space, "d/g", 50))
	}
	places := 0
	if err := commit(s, newFile("alice", "h", 50), larder.Quota{Bytes: 150}, &places); err != nil {
		t.Errorf("CommitFile(alice, h) to 150 bytes under 150, with 100 in each other space: got %v, want nil", err)
	}
	if err := s.DeleteFiles(ctx, "bob", "d"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameFiles(ctx, "", "f", "d/f"); err != nil {
		t.Fatal(err)
	}
	checkPaths(t, s, "", "the shared area", []string{"d/f", "d/g"})
	checkPaths(t, s, "alice", "alice's space", []string{"d/g", "f", "h"})
	checkPaths(t, s, "Alice", "Alice's space", []string{"d/g", "f"})
	checkPaths(t, s, "bob", "bob's space", []string{"f"})
	for space, want := range map[string]larder.Usage{
		"": {Bytes: 100, Files: 2}, "alice": {Bytes: 150, Files: 3}, "Alice": {Bytes: 100, Files: 2},
		"bob": {Bytes: 50, Files: 1}, "carol": {},
	} {
		if got := mustUsage(t, s, space); got != want {
			t.Errorf("SpaceUsage(%q): got %+v, want %+v", space, got, want)
		}
	}
}

// testFilesDeleteSpace: DeleteSpace removes every record of one space,
// says what they held, and touches no other space.
func testFilesDeleteSpace(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	gone, kept := larder.SpaceOf(7), larder.SpaceOf(70)
	for _, space := range []string{"", gone, kept, "#7x"} {
		mustPut(t, s, newFile(space, "f", 50))
		mustPut(t, s, newFile(space, "d/g", 20))
	}
	u, err := s.DeleteSpace(ctx, gone)
	if want := (larder.Usage{Bytes: 70, Files: 2}); err != nil || u != want {
		t.Errorf("DeleteSpace(%q): got %+v, %v; want %+v, nil", gone, u, err, want)
	}
	checkPaths(t, s, gone, "the deleted space", nil)
	for _, space := range []string{"", kept, "#7x"} {
		checkPaths(t, s, space, "space "+space, []string{"d/g", "f"})
	}
	if u, err := s.DeleteSpace(ctx, gone); err != nil || u != (larder.Usage{}) {
		t.Errorf("DeleteSpace(%q) again: got %+v, %v; want nothing, nil", gone, u, err)
	}
	if u, err := s.DeleteSpace(ctx, "no\x00text"); err != nil || u != (larder.Usage{}) {
		t.Errorf("DeleteSpace of a space no store can hold: got %+v, %v; want nothing, nil", u, err)
	}
	_, err = s.DeleteSpace(ctx, "")
	checkCode(t, "DeleteSpace of the shared area", err, larder.EINVALID)
	checkPaths(t, s, "", "the shared area", []string{"d/g", "f"})
}

func testFilesContextCanceled(t *testing.T, s larder.FileStore) {
	f := newFile("alice", "f", 1)
	mustPut(t, s, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	placed := false
	for op, err := range map[string]error{
		"FileByPath":     func() error { _, err := s.FileByPath(ctx, "alice", "f"); return err }(),
		"PutFile":        s.PutFile(ctx, newFile("alice", "g", 1)),
		"CommitFile":     s.CommitFile(ctx, newFile("alice", "h", 1), larder.Quota{}, func() error { placed = true; return nil }),
		"DeleteFiles":    s.DeleteFiles(ctx, "alice", "f"),
		"RenameFiles":    s.RenameFiles(ctx, "alice", "f", "f2"),
		"SpaceUsage":     func() error { _, err := s.SpaceUsage(ctx, "alice"); return err }(),
		"BlockSums":      func() error { _, err := s.BlockSums(ctx, f.SHA256, f.Size, 1); return err }(),
		"PutBlockSums":   s.PutBlockSums(ctx, newBlockSums(f.SHA256, f.Size, 1)),
		"PruneBlockSums": func() error { _, err := s.PruneBlockSums(ctx); return err }(),
	} {
		if err == nil {
			t.Errorf("%s with a canceled context: got nil, want an error", op)
		}
	}
	if placed {
		t.Errorf("CommitFile with a canceled context called place")
	}
	checkPaths(t, s, "alice", "after the canceled calls", []string{"f"})
}

func testBlockSums(t *testing.T, s larder.FileStore) {
	content := sha256.Sum256([]byte("content"))
	const size = 5<<16 + 100
	checkBlockSumsNotFound(t, s, "before any PutBlockSums", content, size, 1<<16)

	records := []*larder.BlockSums{
		newBlockSums(content, size, 1<<16), // 6 blocks, the last short
		newBlockSums(content, size, 1<<20), // one short block
		newBlockSums(content, 6<<16, 1<<16),
		newBlockSums(sha256.Sum256([]byte("other")), size, 1<<16),
		// An empty content has no blocks, so no sums, nil or not.
		newBlockSums(sha256.Sum256(nil), 0, 1<<16),
		{SHA256: sha256.Sum256(nil), Size: 0, BlockSize: 1 << 20},
		// Block sizes beyond 32 bits, where a Go int holds them.
		newBlockSums(content, size, int(min(math.MaxInt, 1<<40))),
	}
	for _, b := range records {
		mustPutBlockSums(t, s, b)
	}
	for _, b := range records {
		checkBlockSums(t, s, "after PutBlockSums", b)
	}

	// A second record of the same content and block size replaces the
	// first, and only it.
	second := newBlockSums(content, size, 1<<16)
	for i := range second.Sums {
		second.Sums[i] ^= 0xff
	}
	mustPutBlockSums(t, s, second)
	checkBlockSums(t, s, "after a second PutBlockSums", second)
	for _, b := range records[1:] {
		checkBlockSums(t, s, "after another's replacement", b)
	}

	// The same SHA-256 with another size, or another block size, is
	// another content's, or another record.
	for _, tc := range []struct {
		size      int64
		blockSize int
	}{
		{size - 1, 1 << 16}, {size + 1, 1 << 16}, {size, 1<<16 + 1}, {size, 1 << 15}, {size, 1},
	} {
		checkBlockSumsNotFound(t, s, "with the same SHA-256", content, tc.size, tc.blockSize)
	}
	checkBlockSumsNotFound(t, s, "of another SHA-256", sha256.Sum256([]byte("never")), size, 1<<16)
}

// testBlockSumsLarge: the most blocks whose sums a store keeps, 8 MiB of
// them, round-trip.
func testBlockSumsLarge(t *testing.T, s larder.FileStore) {
	content := sha256.Sum256([]byte("large"))
	for _, size := range []int64{larder.MaxBlockSums << 20, larder.MaxBlockSums<<20 - 1} {
		b := newBlockSums(content, size, 1<<20)
		if got := b.Blocks(); got != larder.MaxBlockSums {
			t.Fatalf("blocks of 1 MiB in %d bytes: got %d, want %d", size, got, larder.MaxBlockSums)
		}
		mustPutBlockSums(t, s, b)
		checkBlockSums(t, s, "of the most blocks kept", b)
	}
}

func testBlockSumsInvalid(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	content := sha256.Sum256([]byte("content"))
	kept := newBlockSums(content, 100, 10)
	mustPutBlockSums(t, s, kept)

	// withSums returns sums of content with n bytes of sums.
	withSums := func(size int64, blockSize, n int) *larder.BlockSums {
		return &larder.BlockSums{SHA256: content, Size: size, BlockSize: blockSize, Sums: make([]byte, n)}
	}
	bad := map[string]*larder.BlockSums{
		"a block size of 0":                        {SHA256: content, Size: 100, BlockSize: 0},
		"a negative block size":                    {SHA256: content, Size: 100, BlockSize: -10, Sums: make([]byte, 32*10)},
		"a negative size":                          {SHA256: content, Size: -1, BlockSize: 10},
		"one block beyond the most kept":           withSums(larder.MaxBlockSums<<10+1, 1<<10, 32*(larder.MaxBlockSums+1)),
		"no sums for a content":                    withSums(100, 10, 0),
		"nil sums for a content":                   {SHA256: content, Size: 100, BlockSize: 10},
		"one sum short":                            withSums(100, 10, 32*9),
		"one sum over":                             withSums(100, 10, 32*11),
		"one byte short":                           withSums(100, 10, 32*10-1),
		"a sum of 31 bytes for one block":          withSums(10, 10, 31),
		"a sum for an empty content":               withSums(0, 10, 32),
		"the sums of another block size":           withSums(100, 20, 32*10),
		"a short last block's missing sum":         withSums(101, 10, 32*10),
		"sums for a last block not there":          withSums(99, 11, 32*10),
		"the sums of 100 bytes for 1 block":        withSums(1, 100, 32*100),
		"a size whose block count overflows":       {SHA256: content, Size: math.MaxInt64, BlockSize: 2},
		"a block size whose block count overflows": {SHA256: content, Size: 10, BlockSize: math.MaxInt},
	}
	for what, b := range bad {
		checkCode(t, "PutBlockSums of "+what, s.PutBlockSums(ctx, b), larder.EINVALID)
	}
	// Nothing was recorded, and the record of the same key is intact.
	for what, b := range bad {
		if b.BlockSize > 0 && b.Size >= 0 && (b.Size != kept.Size || b.BlockSize != kept.BlockSize) {
			checkBlockSumsNotFound(t, s, "after the refusal of "+what, b.SHA256, b.Size, b.BlockSize)
		}
	}
	checkBlockSums(t, s, "after the refusals", kept)

	// A lookup of what no record can hold.
	for _, tc := range []struct {
		size      int64
		blockSize int
	}{
		{100, 0}, {100, -10}, {-1, 10}, {-1, 0},
	} {
		_, err := s.BlockSums(ctx, content, tc.size, tc.blockSize)
		checkCode(t, fmt.Sprintf("BlockSums(%d bytes, blocks of %d)", tc.size, tc.blockSize), err, larder.EINVALID)
	}
}

// testPruneBlockSums: the sums of a content that some file record has
// (same SHA-256 and size, in any space) are kept, the others removed.
func testPruneBlockSums(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	prune := func(what string, want int64) {
		t.Helper()
		n, err := s.PruneBlockSums(ctx)
		if err != nil {
			t.Fatalf("PruneBlockSums %s: got %v, want nil", what, err)
		}
		if n != want {
			t.Errorf("PruneBlockSums %s: got %d removed, want %d", what, n, want)
		}
	}
	prune("of an empty store", 0)

	shared, own := newFile("", "shared.bin", 2000), newFile("alice", "a/own.bin", 10)
	// The same bytes as bob's, in carol's space: they outlive his.
	bobs := newFile("bob", "copied", 30)
	carols := *bobs
	carols.Space, carols.Path = "carol", "copy"
	gone := newFile("dave", "gone", 40)
	empty := newFile("alice", "empty", 0)
	for _, f := range []*larder.File{shared, own, bobs, &carols, gone, empty} {
		mustPut(t, s, f)
	}
	kept := []*larder.BlockSums{
		newBlockSums(shared.SHA256, shared.Size, 512),
		newBlockSums(shared.SHA256, shared.Size, 1<<20),
		newBlockSums(own.SHA256, own.Size, 4),
		newBlockSums(bobs.SHA256, bobs.Size, 8),
		newBlockSums(empty.SHA256, empty.Size, 8),
	}
	removed := []*larder.BlockSums{
		newBlockSums(gone.SHA256, gone.Size, 8),
		// The SHA-256 of a file with another size, and a size with
		// another SHA-256.
		newBlockSums(own.SHA256, own.Size+1, 4),
		newBlockSums(own.SHA256, own.Size-1, 4),
		newBlockSums(shared.SHA256, 0, 4),
		newBlockSums(sha256.Sum256([]byte("orphan")), own.Size, 4),
	}
	for _, b := range append(slices.Clone(kept), removed...) {
		mustPutBlockSums(t, s, b)
	}
	if err := s.DeleteFiles(ctx, "dave", "gone"); err != nil {
		t.Fatalf("DeleteFiles(dave, gone): got %v, want nil", err)
	}
	if err := s.DeleteFiles(ctx, "bob", "copied"); err != nil {
		t.Fatalf("DeleteFiles(bob, copied): got %v, want nil", err)
	}
	// A rename keeps the content, and so its sums.
	if err := s.RenameFiles(ctx, "alice", "a", "b"); err != nil {
		t.Fatalf("RenameFiles(alice, a, b): got %v, want nil", err)
	}

	prune("after the deletions", int64(len(removed)))
	for _, b := range kept {
		checkBlockSums(t, s, "after PruneBlockSums", b)
	}
	for _, b := range removed {
		checkBlockSumsNotFound(t, s, "after PruneBlockSums", b.SHA256, b.Size, b.BlockSize)
	}
	prune("a second time", 0)

	// The last file of a content goes, and its sums with the next prune.
	if err := s.DeleteFiles(ctx, "carol", "copy"); err != nil {
		t.Fatalf("DeleteFiles(carol, copy): got %v, want nil", err)
	}
	prune("after the last copy went", 1)
	checkBlockSumsNotFound(t, s, "after the last copy went", bobs.SHA256, bobs.Size, 8)
}

// Helpers.

// newBlockSums returns block sums of the content of size bytes with SHA-256
// sum, in blocks of blockSize bytes: random sums, from a generator seeded
// by the content and the block size, so that they differ from one to the
// other and from block to block. Generated rather than hashed, as 8 MiB of
// them would take seconds to hash under the race detector.
func newBlockSums(sum [32]byte, size int64, blockSize int) *larder.BlockSums {
	b := &larder.BlockSums{SHA256: sum, Size: size, BlockSize: blockSize}
	b.Sums = make([]byte, 32*b.Blocks())
	seed := sha256.Sum256(fmt.Appendf(sum[:], "\x00%d", blockSize))
	rand.NewChaCha8(seed).Read(b.Sums)
	return b
}

func mustPutBlockSums(t *testing.T, s larder.FileStore, b *larder.BlockSums) {
	t.Helper()
	if err := s.PutBlockSums(context.Background(), b); err != nil {
		t.Fatalf("PutBlockSums(%x, %d bytes, blocks of %d): got %v, want nil", b.SHA256[:4], b.Size, b.BlockSize, err)
	}
}

// checkBlockSums checks that s holds want, field by field; sums by block,
// naming the first that differs rather than printing megabytes.
func checkBlockSums(t *testing.T, s larder.FileStore, what string, want *larder.BlockSums) {
	t.Helper()
	what = fmt.Sprintf("BlockSums(%x, %d bytes, blocks of %d) %s", want.SHA256[:4], want.Size, want.BlockSize, what)
	got, err := s.BlockSums(context.Background(), want.SHA256, want.Size, want.BlockSize)
	if err != nil {
		t.Errorf("%s: got %v, want nil", what, err)
		return
	}
	var diffs []string
	if got.SHA256 != want.SHA256 {
		diffs = append(diffs, fmt.Sprintf("SHA256: got %x, want %x", got.SHA256, want.SHA256))
	}
	if got.Size != want.Size {
		diffs = append(diffs, fmt.Sprintf("Size: got %d, want %d", got.Size, want.Size))
	}
	if got.BlockSize != want.BlockSize {
		diffs = append(diffs, fmt.Sprintf("BlockSize: got %d, want %d", got.BlockSize, want.BlockSize))
	}
	if len(got.Sums) != len(want.Sums) {
		diffs = append(diffs, fmt.Sprintf("Sums: got %d bytes, want %d", len(got.Sums), len(want.Sums)))
	} else {
		for i := 0; i < len(want.Sums); i += 32 {
			if g, w := got.Sums[i:i+32], want.Sums[i:i+32]; !bytes.Equal(g, w) {
				diffs = append(diffs, fmt.Sprintf("Sums: block %d: got %x, want %x", i/32, g, w))
				break
			}
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

func checkBlockSumsNotFound(t *testing.T, s larder.FileStore, what string, sum [32]byte, size int64, blockSize int) {
	t.Helper()
	_, err := s.BlockSums(context.Background(), sum, size, blockSize)
	checkError(t, fmt.Sprintf("BlockSums(%x, %d bytes, blocks of %d) %s", sum[:4], size, blockSize, what), err, larder.ENOTFOUND,
		larder.ErrorMessage(larder.BlockSumsNotFound(sum, size, blockSize)))
}

func mustPut(t *testing.T, s larder.FileStore, f *larder.File) {
	t.Helper()
	if err := s.PutFile(context.Background(), f); err != nil {
		t.Fatalf("PutFile(%q, %q): got %v, want nil", f.Space, f.Path, err)
	}
}

func mustFile(t *testing.T, s larder.FileStore, space, path string) *larder.File {
	t.Helper()
	f, err := s.FileByPath(context.Background(), space, path)
	if err != nil {
		t.Fatalf("FileByPath(%q, %q): got %v, want nil", space, path, err)
	}
	return f
}

func fileErr(s larder.FileStore, space, path string) error {
	_, err := s.FileByPath(context.Background(), space, path)
	return err
}

func mustUsage(t *testing.T, s larder.FileStore, space string) larder.Usage {
	t.Helper()
	u, err := s.SpaceUsage(context.Background(), space)
	if err != nil {
		t.Fatalf("SpaceUsage(%q): got %v, want nil", space, err)
	}
	return u
}

// checkFile compares records field by field; times as instants, exactly.
func checkFile(t *testing.T, what string, got, want *larder.File) {
	t.Helper()
	var diffs []string
	if got.Space != want.Space {
		diffs = append(diffs, fmt.Sprintf("Space: got %q, want %q", got.Space, want.Space))
	}
	if got.Path != want.Path {
		diffs = append(diffs, fmt.Sprintf("Path: got %q, want %q", got.Path, want.Path))
	}
	if got.Size != want.Size {
		diffs = append(diffs, fmt.Sprintf("Size: got %d, want %d", got.Size, want.Size))
	}
	if !got.Modified.Equal(want.Modified) {
		diffs = append(diffs, fmt.Sprintf("Modified: got %v, want %v", got.Modified, want.Modified))
	}
	if got.Version != want.Version {
		diffs = append(diffs, fmt.Sprintf("Version: got %q, want %q", got.Version, want.Version))
	}
	if got.SHA256 != want.SHA256 {
		diffs = append(diffs, fmt.Sprintf("SHA256: got %x, want %x", got.SHA256, want.SHA256))
	}
	if len(diffs) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

// checkPaths checks that space holds records of exactly want (in any
// order), as FileByPath and SpaceUsage see them: FileByPath finds each, and
// the space holds as many files as want has. The records must have been
// made by putAll or newFile, whose sizes are not checked here.
func checkPaths(t *testing.T, s larder.FileStore, space, what string, want []string) {
	t.Helper()
	var missing []string
	for _, p := range want {
		if err := fileErr(s, space, p); err != nil {
			missing = append(missing, p)
			if larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("%s: FileByPath(%q, %q): got %v, want nil", what, space, p, err)
			}
		}
	}
	u := mustUsage(t, s, space)
	if len(missing) > 0 || u.Files != int64(len(want)) {
		t.Errorf("%s: space %q holds %d files, missing %q; want %d files: %q", what, space, u.Files, missing, len(want), want)
	}
}

// without returns the paths of all that are not in drop, in order.
func without(all, drop []string) []string {
	var kept []string
	for _, p := range all {
		if !slices.Contains(drop, p) {
			kept = append(kept, p)
		}
	}
	return kept
}

// testFilesVersions: a record keeps its Version through PutFile, CommitFile
// and RenameFiles, and a new record of the path replaces it.
func testFilesVersions(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	f := newFile("#1", "v.txt", 10)
	f.Version = "dev:ino:10:123:456"
	mustPut(t, s, f)
	checkFile(t, "a record with a version", mustFile(t, s, f.Space, f.Path), f)

	g := newFile("#1", "c.txt", 20)
	g.Version = "etag \"abc\""
	if err := s.CommitFile(ctx, g, larder.Quota{}, func() error { return nil }); err != nil {
		t.Fatalf("CommitFile: got %v, want nil", err)
	}
	checkFile(t, "a committed record with a version", mustFile(t, s, g.Space, g.Path), g)

	// A version set by place, once the file is in place, is recorded.
	h := newFile("#1", "placed.txt", 30)
	if err := s.CommitFile(ctx, h, larder.Quota{}, func() error { h.Version = "set in place"; return nil }); err != nil {
		t.Fatalf("CommitFile with place setting the version: got %v, want nil", err)
	}
	checkFile(t, "a record whose version place set", mustFile(t, s, h.Space, h.Path), h)
	bad := newFile("#1", "badversion.txt", 30)
	if err := s.CommitFile(ctx, bad, larder.Quota{}, func() error { bad.Version = "nul\x00"; return nil }); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("CommitFile with place setting a version with a NUL byte: got %v, want EINVALID", err)
	}
	if _, err := s.FileByPath(ctx, "#1", "badversion.txt"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Errorf("the record of a commit refused for its version: got %v, want none", err)
	}

	if err := s.RenameFiles(ctx, "#1", "v.txt", "w.txt"); err != nil {
		t.Fatalf("RenameFiles: got %v, want nil", err)
	}
	moved := *f
	moved.Path = "w.txt"
	checkFile(t, "a renamed record", mustFile(t, s, "#1", "w.txt"), &moved)

	unversioned := newFile("#1", "w.txt", 10)
	mustPut(t, s, unversioned)
	checkFile(t, "a record replaced by one without a version", mustFile(t, s, "#1", "w.txt"), unversioned)

	bad = newFile("#1", "bad", 1)
	bad.Version = "nul\x00"
	if err := s.PutFile(ctx, bad); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("PutFile with a version holding a NUL byte: got %v, want EINVALID", err)
	}
}

// testFileIntents: intents are kept per backend, oldest first, with ids
// that grow, until done; done twice is no error. A backend's intents
// include those of the journals below it (BACKEND/NAME), not those of a
// backend whose name only begins with its.
func testFileIntents(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	ins := []*larder.FileIntent{
		{Backend: "disk:a", Op: "put", Space: "#1", Path: "x/y.txt"},
		{Backend: "disk:b", Op: "delete", Space: "#2", Path: "z"},
		{Backend: "disk:a", Op: "rename", Space: "#1", Path: "a", To: "日本/b"},
		{Backend: "s3:x/server-1", Op: "put", Space: "#1", Path: "p"},
		{Backend: "s3:xy/server-1", Op: "put", Space: "#1", Path: "q"},
		{Backend: "s3:x/server-2", Op: "delete", Space: "#1", Path: "r"},
		{Backend: "s3:x_", Op: "delete", Space: "#1", Path: "s"},
	}
	var last int64
	for _, in := range ins {
		if err := s.AddIntent(ctx, in); err != nil {
			t.Fatalf("AddIntent(%+v): got %v, want nil", in, err)
		}
		if in.ID <= last {
			t.Fatalf("AddIntent gave id %d after %d, want a larger one", in.ID, last)
		}
		last = in.ID
	}
	got, err := s.Intents(ctx, "disk:a")
	if err != nil {
		t.Fatalf("Intents: got %v, want nil", err)
	}
	if want := []larder.FileIntent{*ins[0], *ins[2]}; !slices.Equal(got, want) {
		t.Fatalf("Intents(disk:a): got %+v, want %+v", got, want)
	}
	for backend, want := range map[string][]larder.FileIntent{
		"s3:x":          {*ins[3], *ins[5]},
		"s3:x/server-1": {*ins[3]},
		"s3:x/server":   nil,
		"s3:xy":         {*ins[4]},
	} {
		got, err := s.Intents(ctx, backend)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Intents(%s): got %+v, %v; want %+v", backend, got, err, want)
		}
	}
	if err := s.DoneIntent(ctx, ins[0].ID); err != nil {
		t.Fatalf("DoneIntent: got %v, want nil", err)
	}
	if err := s.DoneIntent(ctx, ins[0].ID); err != nil {
		t.Fatalf("DoneIntent of one already done: got %v, want nil", err)
	}
	got, err = s.Intents(ctx, "disk:a")
	if err != nil || !slices.Equal(got, []larder.FileIntent{*ins[2]}) {
		t.Fatalf("Intents(disk:a) after one done: got %+v, %v; want %+v", got, err, *ins[2])
	}
	for _, bad := range []*larder.FileIntent{
		{Backend: "", Op: "put", Path: "p"},
		{Backend: "b", Op: "", Path: "p"},
		{Backend: "b", Op: "put", Path: ""},
		{Backend: "b", Op: "put", Path: "nul\x00"},
		{Backend: "b", Op: "rename", Path: "p", To: "\xff"},
	} {
		if err := s.AddIntent(ctx, bad); larder.ErrorCode(err) != larder.EINVALID {
			t.Errorf("AddIntent(%+v): got %v, want EINVALID", bad, err)
		}
	}
}

// testCountFiles: a path counts its own record and those below it, not
// those beside it that share its prefix, nor another space's.
func testCountFiles(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	for _, f := range []*larder.File{
		newFile("#1", "d", 1), // a file "d" and a folder "d/" cannot both be, but records can
		newFile("#1", "d/a", 10),
		newFile("#1", "d/sub/b", 100),
		newFile("#1", "d.txt", 1000),
		newFile("#1", "d0", 10000),
		newFile("#2", "d/a", 100000),
	} {
		mustPut(t, s, f)
	}
	for _, tt := range []struct {
		space, path string
		want        larder.Usage
	}{
		{"#1", "d", larder.Usage{Bytes: 111, Files: 3}},
		{"#1", "d/sub", larder.Usage{Bytes: 100, Files: 1}},
		{"#1", "d.txt", larder.Usage{Bytes: 1000, Files: 1}},
		{"#1", "none", larder.Usage{}},
		{"#2", "d", larder.Usage{Bytes: 100000, Files: 1}},
		{"#1", "\xff", larder.Usage{}},
	} {
		got, err := s.CountFiles(ctx, tt.space, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("CountFiles(%q, %q): got %+v, %v; want %+v, nil", tt.space, tt.path, got, err, tt.want)
		}
	}
	if _, err := s.CountFiles(ctx, "#1", ""); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("CountFiles with an empty path: got %v, want EINVALID", err)
	}
}

// testListFiles pages through a space's records: in byte order (which
// puts "A" before "a", "a/b" before "a0" and "é" last), each record whole,
// none of another space, and bad pages refused.
func testListFiles(t *testing.T, s larder.FileStore) {
	ctx := context.Background()
	want := []string{"A", "a", "a b", "a/b", "a/b/c", "a0", "z", "é"}
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	put := map[string]*larder.File{}
	for i, p := range shuffled {
		f := newFile("#1", p, int64(i+1))
		f.Version = "v" + p
		mustPut(t, s, f)
		put[p] = f
	}
	putAll(t, s, "#2", []string{"a/b", "b"})

	for _, page := range []int{1, 3, 100} {
		var got []string
		after := ""
		for {
			fs, err := s.ListFiles(ctx, "#1", after, page)
			if err != nil {
				t.Fatalf("ListFiles(#1, %q, %d): %v", after, page, err)
			}
			if len(fs) > page {
				t.Fatalf("ListFiles(#1, %q, %d): got %d records, want at most %d", after, page, len(fs), page)
			}
			for _, f := range fs {
				if put[f.Path] == nil {
					t.Fatalf("ListFiles(#1, %q, %d): listed %q, which was never put", after, page, f.Path)
				}
				checkFile(t, "listed "+f.Path, f, put[f.Path])
				got = append(got, f.Path)
			}
			if len(fs) < page {
				break
			}
			after = fs[len(fs)-1].Path
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: got %q, want %q", page, got, want)
		}
	}
	if fs, err := s.ListFiles(ctx, "#1", "a/b", 2); err != nil || len(fs) != 2 || fs[0].Path != "a/b/c" || fs[1].Path != "a0" {
		t.Errorf("ListFiles(#1, \"a/b\", 2): got %v, %v; want a/b/c, a0", fs, err)
	}
	for _, space := range []string{"#3", "", "bad\xff"} {
		if fs, err := s.ListFiles(ctx, space, "", 10); err != nil || len(fs) != 0 {
			t.Errorf("ListFiles(%q): got %d records, %v; want none", space, len(fs), err)
		}
	}
	for _, bad := range []struct {
		after string
		n     int
	}{{"", 0}, {"", -1}, {"bad\xff", 10}, {"nul\x00", 10}} {
		if _, err := s.ListFiles(ctx, "#1", bad.after, bad.n); larder.ErrorCode(err) != larder.EINVALID {
			t.Errorf("ListFiles(#1, %q, %d): got %v, want code EINVALID", bad.after, bad.n, err)
		}
	}
}
