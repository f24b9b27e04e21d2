package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

const testSalt = "0123456789012345678901234567890123456789012345678901234567890123"

// filesServer serves files by path to alice with password pw and salt
// testSalt, answering like the course protocol says.
func filesServer(t *testing.T, files map[string][]byte) *fakeServer {
	return startServer(t, func(req *course.Request) []byte {
		switch {
		case req.Username != "alice":
			return messageReply(course.StatusUserMissing, "Cannot serve non-registered user '"+req.Username+"'")
		case req.Signature != larder.NewSignature("pw", testSalt):
			return messageReply(course.StatusInvalidLogin, "Signature hashes do not match for alice.")
		}
		data, ok := files[string(req.Body)]
		if !ok {
			return messageReply(course.StatusBadRequest, "Requested content "+string(req.Body)+" does not exist")
		}
		if data == nil {
			return nil // the reference server's answer to an empty file
		}
		return payloadReply(data)
	})
}

// storeSalt records testSalt for alice on server in env's store.
func storeSalt(t *testing.T, env *Env, server string) {
	store, err := saltStore(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Record(server, "alice", testSalt); err != nil {
		t.Fatal(err)
	}
}

// storedSalt returns the salt stored for user on server in env's store,
// and an error if there is none.
func storedSalt(env *Env, server, user string) (string, error) {
	store, err := saltStore(env)
	if err != nil {
		return "", err
	}
	s, ok, err := store.Lookup(server, user)
	if err == nil && !ok {
		err = noSalt(store, server, user)
	}
	return s, err
}

func TestGetToFile(t *testing.T) {
	data := bytes.Repeat([]byte("larder\x00\r\n"), 50_000)
	srv := filesServer(t, map[string][]byte{"notes.txt": data})
	env, stdout, stderr := testEnv(t, srv.addr)
	storeSalt(t, env, srv.addr)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	// Flags after the path, as people type them.
	if err := run(env, "get", "notes.txt", "-o", out); err != nil {
		t.Fatalf("get: %v\n%s", err, stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Errorf("%s holds %d bytes, want %d", out, len(got), len(data))
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout got %d bytes with -o", stdout.Len())
	}
	if string(srv.request(t).Body) != "notes.txt" {
		t.Error("wrong path requested")
	}
	onlyFile(t, dir, "out.txt")
}

// onlyFile checks that dir holds exactly name (or nothing if name is ""):
// no temporary file may be left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{name}; name == "" && len(names) != 0 || name != "" && (len(names) != 1 || names[0] != name) {
		t.Errorf("folder holds %q, want %q", names, want)
	}
}

func TestGetToStdout(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 1000))
	srv := filesServer(t, map[string][]byte{"/a/b": data})
	env, stdout, stderr := testEnv(t, srv.addr)
	if err := run(env, "get", "--salt", testSalt, "/a/b"); err != nil {
		t.Fatalf("get: %v\n%s", err, stderr)
	}
	if !bytes.Equal(stdout.Bytes(), data) {
		t.Errorf("stdout got %d bytes, want %d", stdout.Len(), len(data))
	}
}

// TestGetCorrupt checks that a reply failing its checks leaves no file,
// and an existing file untouched.
func TestGetCorrupt(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 5000)
	reply := payloadReply(data)
	reply[len(reply)-1] ^= 1 // the first block sent is the last; corrupt the last sent
	srv := startServer(t, func(*course.Request) []byte { return reply })
	for _, existing := range []bool{false, true} {
		env, _, _ := testEnv(t, srv.addr)
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		if existing {
			os.WriteFile(out, []byte("old"), 0o644)
		}
		err := run(env, "get", "--salt", testSalt, "f", "-o", out)
		if code := ExitCode(err); code != exitIntegrity {
			t.Errorf("exit code %d (%v), want %d", code, err, exitIntegrity)
		}
		if existing {
			if b, _ := os.ReadFile(out); string(b) != "old" {
				t.Errorf("the existing file was changed to %q", b)
			}
			onlyFile(t, dir, "out")
		} else {
			onlyFile(t, dir, "")
		}
	}
}

func TestGetKeepsMode(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("new")})
	env, _, _ := testEnv(t, srv.addr)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(out, []byte("old content"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := run(env, "get", "--salt", testSalt, "f", "-o", out, "-f"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(out)
	if b, _ := os.ReadFile(out); string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %q mode %04o, want \"new\" mode 0640", b, fi.Mode().Perm())
	}
}

func TestGetFailures(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("x")})
	dir := t.TempDir()
	tests := []struct {
		name string
		vars []string
		args []string
		code int
		msg  string
	}{
		{"no such file", nil, []string{"get", "--salt", testSalt, "nope"}, exitNotFound, "does not exist"},
		{"no such user", []string{"LARDER_USER", "bob"}, []string{"get", "--salt", testSalt, "f"}, exitDenied, "non-registered"},
		{"wrong password", []string{"LARDER_PASSWORD", "wrong"}, []string{"get", "--salt", testSalt, "f"}, exitDenied, "do not match"},
		{"no stored salt", nil, []string{"get", "f"}, exitFailure, "register from this machine"},
		{"no path", nil, []string{"get", "--salt", testSalt}, exitUsage, "one PATH"},
		{"two paths", nil, []string{"get", "--salt", testSalt, "a", "b"}, exitUsage, "one PATH"},
		{"path too long", nil, []string{"get", "--salt", testSalt, strings.Repeat("p", 973)}, exitUsage, "972"},
		{"output is a folder", nil, []string{"get", "--salt", testSalt, "f", "-o", dir}, exitUsage, "is a folder"},
		{"no password", []string{"LARDER_PASSWORD", ""}, []string{"get", "--salt", testSalt, "f"}, exitFailure, "LARDER_PASSWORD"},
		{"nothing listening", []string{"LARDER_SERVER", "127.0.0.1:1"}, []string{"get", "--salt", testSalt, "f"}, exitNetwork, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, _ := testEnv(t, srv.addr, tt.vars...)
			err := run(env, tt.args...)
			if code := ExitCode(err); code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v, want it to mention %q", err, tt.msg)
			}
		})
	}
	onlyFile(t, dir, "")
}

func TestGetPasswordStdin(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("content")})
	env, stdout, _ := testEnv(t, srv.addr, "LARDER_PASSWORD", "wrong")
	env.Stdin = strings.NewReader("pw\n")
	if err := run(env, "get", "--password-stdin", "--salt", testSalt, "f"); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "content" {
		t.Errorf("got %q", stdout)
	}
}
