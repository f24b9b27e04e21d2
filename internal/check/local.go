package check

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/course"
)

// localFiles are the files the checker places in a served folder, each
// at an edge of the block framing or of how servers read files.
func localFiles() []*knownFile {
	return []*knownFile{
		{id: "empty", path: "empty.bin", data: []byte{}},
		{id: "one-byte", path: "one-byte.txt", data: []byte("x")},
		{id: "one-block", path: "one-block.txt", data: textBytes(course.MaxBlockPayload)},
		{id: "one-block-plus-one", path: "one-block-plus-one.txt", data: textBytes(course.MaxBlockPayload + 1)},
		{id: "binary", path: "binary.bin", data: binaryBytes()},
		{id: "large", path: "large.txt", data: textBytes(2<<20 + 123)},
	}
}

// textBytes returns n bytes of ASCII lines, different from line to line so
// that a block put in the wrong place shows.
func textBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %06d of the larder check file\n", i)
	}
	return b.Bytes()[:n]
}

// binaryBytes holds every byte value, runs of NULs, CRLFs, lone CRs and
// bytes that are not UTF-8, over four blocks with a short last one: only
// a server that serves files byte for byte serves it intact.
func binaryBytes() []byte {
	var b []byte
	r := rand.New(rand.NewPCG(17, 944))
	for i := range 11 {
		for v := range 256 {
			b = append(b, byte(v))
		}
		b = append(b, "\r\n\r\r\n\n\x00\x00"[:i%8+1]...)
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// placeFiles writes the checker's files into a fresh folder below the
// served folder, and a secret file outside it for the path checks. The
// returned function removes both.
func (s *serverRun) placeFiles() (func(), error) {
	root := s.cfg.Files
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("check: --files: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("check: --files %s is not a folder", root)
	}
	s.dir = "larder-check-" + s.tag
	dir := filepath.Join(root, s.dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("check: --files must be a folder the checker may write to: %w", err)
	}
	outside, err := os.MkdirTemp("", "larder-check-outside-")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("check: a folder for the file outside the served one: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir); os.RemoveAll(outside) }
	fail := func(err error) (func(), error) {
		cleanup()
		return nil, fmt.Errorf("check: placing the checker's files: %w", err)
	}
	s.files = localFiles()
	for _, f := range s.files {
		if err := os.WriteFile(filepath.Join(dir, f.path), f.data, 0o644); err != nil {
			return fail(err)
		}
		f.path = s.dir + "/" + f.path
	}
	s.small, s.medium = s.files[1], s.files[3]
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		return fail(err)
	}
	// The secret outside: its real path, so that a server that follows
	// ".." from its real root reaches it.
	s.secret = []byte("larder check: this file is outside the served folder " + s.tag + "\n")
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, s.secret, 0o644); err != nil {
		return fail(err)
	}
	if s.outside, err = filepath.EvalSymlinks(secret); err != nil {
		return fail(err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fail(err)
	}
	if realRoot, err = filepath.Abs(realRoot); err != nil {
		return fail(err)
	}
	if rel, err := filepath.Rel(realRoot, s.outside); err == nil && !strings.HasPrefix(rel, "..") {
		s.outside = "" // the temporary folder is inside the served one: no outside to test
	}
	if s.outside != "" {
		if err := os.Symlink(s.outside, filepath.Join(dir, "link-out")); err != nil {
			return fail(err)
		}
	}
	s.rootDepth = strings.Count(filepath.ToSlash(realRoot), "/")
	return cleanup, nil
}
