package main

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/larderfs/larder/course"
)

// TestGetStdoutBadWhole: a download to stdout whose blocks each pass their
// checks but whose whole file does not match the hash the server sent has
// its bytes on stdout already, where a pipeline may have read them: the
// exit code is integrity's, and the message says that what was written
// is not the file (rather than that nothing that failed was kept).
func TestGetStdoutBadWhole(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 500)
	var b bytes.Buffer
	w := course.NewWriter(&b)
	w.WritePayload(course.StatusOK, bytes.NewReader(data), int64(len(data)), sha256.Sum256([]byte("another file")),
		func(i uint32) uint32 { return i })
	w.Flush()
	reply := b.Bytes()
	srv := startServer(t, func(*course.Request) []byte { return reply })
	env, stdout, stderr := testEnv(t, srv.addr)
	err := run(env, "get", "--salt", testSalt, "f", "-o", "-")
	if code := ExitCode(err); code != exitIntegrity {
		t.Errorf("exit code %d (%v), want %d", code, err, exitIntegrity)
	}
	if stdout.Len() == 0 {
		t.Fatalf("nothing on stdout: the test's blocks were refused before the whole file's check")
	}
	msg := err.Error() + stderr.String()
	if !strings.Contains(msg, "written to stdout") || !strings.Contains(msg, "not the file") {
		t.Errorf("the error: %q; want it to say that what was written to stdout is not the file", msg)
	}
}
