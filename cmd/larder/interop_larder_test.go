package main

// The course's clients, as re-created in testdata/interop, against larder.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder/course"
)

// peerClientCases are what both peer clients must do against larder: l,
// which sends blocks in order, and a second server that shuffles them as
// the course's server does. The subtests are parallel: each registers its
// own user or only reads alice's files, and alice is registered first.
func peerClientCases(t *testing.T, l *testLarder, run peerClient) {
	text := interopText(60) // 3,300 bytes: 4 blocks
	bin := interopBinary()
	large := interopRandom(1<<20 + 7) // 1,111 blocks
	l.put(t, "notes.txt", []byte("Hello from larder.\nSecond line.\n"))
	l.put(t, "big.txt", text)
	l.put(t, "sub/dir/binary.bin", bin)
	l.put(t, "large.bin", large)
	l.put(t, "empty.txt", nil)

	r := run(t, l.host, l.port, "alice", "s3cret", "")
	if r.code != peerExitOK || !bytes.Contains(r.stdout, []byte("alice")) {
		t.Fatalf("register alice: %v, want exit 0 and a message naming alice", r)
	}

	fetches := []struct {
		name, path string
		want       []byte
	}{
		{"text", "notes.txt", []byte("Hello from larder.\nSecond line.\n")},
		{"leading-slash", "/notes.txt", []byte("Hello from larder.\nSecond line.\n")},
		{"multi-block-text", "big.txt", text},
		{"binary", "sub/dir/binary.bin", bin},
		{"large", "large.bin", large},
		{"empty", "empty.txt", []byte{}}, // larder sends one empty block
	}
	for _, f := range fetches {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, "alice", "s3cret", f.path)
			if r.code != peerExitOK {
				t.Fatalf("got %v, want exit 0", r)
			}
			if !bytes.Equal(r.stdout, f.want) {
				t.Errorf("got %d bytes, want %d bytes exactly as on disk", len(r.stdout), len(f.want))
			}
		})
	}

	t.Run("shuffled", func(t *testing.T) {
		t.Parallel()
		sl := startLarder(t, shuffleBlocks)
		files := map[string][]byte{"big.txt": text, "binary.bin": bin, "large.bin": large}
		for name, data := range files {
			sl.put(t, name, data)
		}
		if r := run(t, sl.host, sl.port, "alice", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("register alice: %v, want exit 0", r)
		}
		for name, want := range files {
			if r := run(t, sl.host, sl.port, "alice", "s3cret", name); r.code != peerExitOK || !bytes.Equal(r.stdout, want) {
				t.Errorf("%s: got %v, want exit 0 and the file's %d bytes", name, r, len(want))
			}
		}
	})
	t.Run("long-username", func(t *testing.T) {
		t.Parallel()
		// The reference: "longer names are cut to 16". Both peers cut
		// the same way, so the long name works as its first 16 bytes.
		const long = "abcdefghijklmnopqrstuvwxyz"
		if r := run(t, l.host, l.port, long, "pw", ""); r.code != peerExitOK || !bytes.Contains(r.stdout, []byte(long[:16])) {
			t.Fatalf("register %s: %v, want exit 0 and a message naming %s", long, r, long[:16])
		}
		if r := run(t, l.host, l.port, long, "pw", "notes.txt"); r.code != peerExitOK {
			t.Errorf("retrieve as %s: %v, want exit 0", long, r)
		}
		if r := run(t, l.host, l.port, long[:16], "pw", ""); r.code != peerExitStatus(course.StatusUserExists) {
			t.Errorf("register %s: %v, want exit %d", long[:16], r, peerExitStatus(course.StatusUserExists))
		}
	})

	refusals := []struct {
		name, user, password, path string
		want                       course.Status
	}{
		{"name-taken", "alice", "another password", "", course.StatusUserExists},
		{"unknown-user", "mallory", "s3cret", "notes.txt", course.StatusUserMissing},
		{"wrong-password", "alice", "S3cret", "notes.txt", course.StatusInvalidLogin},
		{"missing-file", "alice", "s3cret", "no/such/file.txt", course.StatusBadRequest},
		{"directory", "alice", "s3cret", "sub/dir", course.StatusBadRequest},
		{"dot-dot", "alice", "s3cret", "../secret.txt", course.StatusBadRequest},
		{"empty-username/register", "", "s3cret", "", course.StatusBadRequest},
		{"empty-username/retrieve", "", "s3cret", "notes.txt", course.StatusBadRequest},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, c.user, c.password, c.path)
			prefix := fmt.Sprintf("status %d: ", c.want)
			if r.code != peerExitStatus(c.want) || !strings.HasPrefix(r.stderr, prefix) || len(r.stdout) != 0 {
				t.Errorf("got %v, want exit %d, nothing on stdout and stderr starting %q",
					r, peerExitStatus(c.want), prefix)
			}
		})
	}
}

// TestInteropCourseClient runs the course's Python client, as re-created
// from the reference, against larder: registration, byte-exact files of
// every kind (where the reference server itself fails on binary files and
// CRLFs), the empty file, and every refusal with its status.
func TestInteropCourseClient(t *testing.T) {
	run := pythonCourseClient(t)
	peerClientCases(t, startLarder(t), run)
}

// TestInteropStudentClient runs a student's C client, as re-created from
// the reference, against larder: the same cases as the course client, and
// two bugs of real student clients that larder must tolerate: a path sent
// in a fixed 128-byte buffer after a length that counts only the path, and
// a request split over two writes (which the reference server rejects).
func TestInteropStudentClient(t *testing.T) {
	bin := buildStudentClient(t) // compiled once for all subtests
	l := startLarder(t)
	run := func(t *testing.T, host, port, user, password, path string, extra ...string) peerRun {
		t.Helper()
		args := []string{host, port, user, password, course.CourseSalt}
		if path != "" {
			args = append(args, path)
		}
		return runPeer(t, bin, append(args, extra...)...)
	}
	peerClientCases(t, l, run)

	bin2 := interopBinary()
	for _, c := range []struct {
		name  string
		path  string
		want  []byte
		flags []string
	}{
		{"fixed-buffer/text", "notes.txt", []byte("Hello from larder.\nSecond line.\n"), []string{"--fixed-buffer"}},
		{"fixed-buffer/binary", "sub/dir/binary.bin", bin2, []string{"--fixed-buffer"}},
		{"fixed-buffer/empty", "empty.txt", []byte{}, []string{"--fixed-buffer"}},
		{"split/text", "notes.txt", []byte("Hello from larder.\nSecond line.\n"), []string{"--split"}},
		{"split/binary", "sub/dir/binary.bin", bin2, []string{"--split"}},
		{"split+fixed-buffer", "/sub/dir/binary.bin", bin2, []string{"--split", "--fixed-buffer"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, "alice", "s3cret", c.path, c.flags...)
			if r.code != peerExitOK || !bytes.Equal(r.stdout, c.want) {
				t.Errorf("got %v, want exit 0 and the file's %d bytes", r, len(c.want))
			}
		})
	}
	t.Run("fixed-buffer/register", func(t *testing.T) {
		t.Parallel()
		// 128 NUL bytes after a length of 0: still a registration.
		r := run(t, l.host, l.port, "carol", "pw", "", "--fixed-buffer")
		if r.code != peerExitOK {
			t.Fatalf("register: %v, want exit 0", r)
		}
		if r := run(t, l.host, l.port, "carol", "pw", "notes.txt", "--fixed-buffer"); r.code != peerExitOK {
			t.Errorf("retrieve: %v, want exit 0", r)
		}
	})
	t.Run("fixed-buffer/missing-file", func(t *testing.T) {
		t.Parallel()
		r := run(t, l.host, l.port, "alice", "s3cret", "nope.txt", "--fixed-buffer")
		if r.code != peerExitStatus(course.StatusBadRequest) {
			t.Errorf("got %v, want exit %d", r, peerExitStatus(course.StatusBadRequest))
		}
	})
	t.Run("course-client-account", func(t *testing.T) {
		t.Parallel()
		// Registered with the course's Python client, used from C with
		// the course's salt.
		pyClient := pythonCourseClient(t)
		if r := pyClient(t, l.host, l.port, "erin", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("course client register: %v", r)
		}
		r := run(t, l.host, l.port, "erin", "s3cret", "sub/dir/binary.bin")
		if r.code != peerExitOK || !bytes.Equal(r.stdout, bin2) {
			t.Errorf("got %v, want exit 0 and the file's %d bytes", r, len(bin2))
		}
	})
	t.Run("split/register", func(t *testing.T) {
		t.Parallel()
		// A registration has no body: --split has nothing to split.
		r := run(t, l.host, l.port, "bob", "pw", "", "--split")
		if r.code != peerExitOK {
			t.Errorf("got %v, want exit 0", r)
		}
	})
}

// TestInteropSharedAccount uses one account on larder from the course's
// Python client, whose salt is fixed, and from the larder command with
// --salt set to that salt, each registering for the other.
// TestInteropStudentClient does the same with the C client.
func TestInteropSharedAccount(t *testing.T) {
	pyClient := pythonCourseClient(t)
	l := startLarder(t)
	data := interopBinary()
	l.put(t, "shared/data.bin", data)
	cli := newInteropCLI(t, l.addr())

	t.Run("course-client-registers", func(t *testing.T) {
		if r := pyClient(t, l.host, l.port, "erin", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("course client register: %v", r)
		}
		dst := filepath.Join(t.TempDir(), "data.bin")
		_, stderr, err := cli.run(t, "s3cret", "get", "shared/data.bin", "-o", dst, "--user", "erin", "--salt", course.CourseSalt)
		if err != nil {
			t.Fatalf("larder get: %v (stderr %q)", err, stderr)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(data))
		}
	})
	t.Run("cli-registers", func(t *testing.T) {
		_, stderr, err := cli.run(t, "hunter2", "register", "--user", "frank", "--salt", course.CourseSalt)
		if err != nil {
			t.Fatalf("larder register: %v (stderr %q)", err, stderr)
		}
		r := pyClient(t, l.host, l.port, "frank", "hunter2", "shared/data.bin")
		if r.code != peerExitOK || !bytes.Equal(r.stdout, data) {
			t.Errorf("course client get: %v, want exit 0 and the file's %d bytes", r, len(data))
		}
	})
}

// TestInteropSingleRecvClient runs a client that reads each block the way
// the course's handout client does, with one recv(4) and then ONE
// recv(length+76), never looping (testdata/interop/single_recv_client.py),
// many times against larder, in order and shuffled: it works only if every
// block reaches it whole. larder once wrote replies in 64 KiB pieces and
// the handout client failed 19 runs of 20 on hamlet.txt's size. Also: a
// slow reader, whose receive window the server waits for, and a client
// whose MSS is not one block, which larder sends one block per write.
func TestInteropSingleRecvClient(t *testing.T) {
	py := lookPython(t)
	script := peerFile(t, "single_recv_client.py")
	files := []struct {
		name   string
		size   int
		repeat string
	}{
		{"empty", 0, "20"},
		{"one-byte", 1, "20"},
		{"one-block", course.MaxBlockPayload, "20"},
		{"one-block-and-a-byte", course.MaxBlockPayload + 1, "20"},
		// Four blocks or fewer go one per write (whatever the MSS), more
		// in corked writes of up to 64.
		{"four-blocks", 4 * course.MaxBlockPayload, "20"},
		{"four-blocks-and-a-byte", 4*course.MaxBlockPayload + 1, "20"},
		{"hamlet-size", 196_746, "20"},
		{"5MiB", 5 << 20, "3"},
	}
	servers := []struct {
		name string
		l    *testLarder
	}{
		{"in-order", startLarder(t)},
		{"shuffled", startLarder(t, shuffleBlocks)},
	}
	for _, srv := range servers {
		for _, f := range files {
			srv.l.put(t, f.name, interopRandom(f.size))
		}
		if r := runPeer(t, py, "-I", script, srv.l.host, srv.l.port, "alice", "s3cret"); r.code != peerExitOK {
			t.Fatalf("register alice on %s: %v", srv.name, r)
		}
	}
	fetch := func(t *testing.T, l *testLarder, name string, size int, args ...string) {
		t.Helper()
		r := runPeer(t, py, append([]string{"-I", script, l.host, l.port, "alice", "s3cret", name}, args...)...)
		if r.code != peerExitOK || !bytes.Equal(r.stdout, interopRandom(size)) {
			t.Errorf("got %v, want exit 0 and the file's %d bytes, every time", r, size)
		}
	}
	for _, srv := range servers {
		for _, f := range files {
			t.Run(srv.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				fetch(t, srv.l, f.name, f.size, "--repeat", f.repeat)
			})
		}
		t.Run(srv.name+"/slow-reader", func(t *testing.T) {
			t.Parallel()
			fetch(t, srv.l, "5MiB", 5<<20, "--repeat", "2", "--pause-every", "16:2")
		})
		t.Run(srv.name+"/mss-900", func(t *testing.T) {
			t.Parallel()
			fetch(t, srv.l, "hamlet-size", 196_746, "--repeat", "5", "--mss", "900")
		})
	}
}
