package check

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// TestMain lets the test binary stand in for a student's client: with
// LARDER_CHECK_TEST_CLIENT set to a fault ("ok" for none) it fetches a
// file as such a client would, with that fault.
func TestMain(m *testing.M) {
	if fault := os.Getenv("LARDER_CHECK_TEST_CLIENT"); fault != "" {
		os.Exit(testClient(fault, os.Args[1], os.Args[2]))
	}
	os.Exit(m.Run())
}

// testClient fetches path from addr and writes the payload to stdout.
// Exit codes as the interop peers': 0 OK, 2 network, 3 a failed check,
// 10+N status N.
func testClient(fault, addr, path string) int {
	has := func(f string) bool { return fault == f }
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req, _ := (&course.Request{Username: "alice", Signature: larder.NewSignature("pw", course.CourseSalt), Body: []byte(path)}).AppendBinary(nil)
	conn.Write(req)
	if has("half-close-wait") {
		conn.(*net.TCPConn).CloseWrite()
		fault = "wait-close" // and then wait for the close, as wait-close does
	}

	blocks := map[uint32][]byte{}
	var arrival [][]byte
	var count uint32
	var status course.Status
	var total []byte
	for count == 0 || uint32(len(blocks)) < count || has("wait-close") {
		var hdr, payload []byte
		switch {
		case has("single-recv"):
			// The handout's reading: one recv for the length, one for the rest.
			four := make([]byte, 4)
			n, err := conn.Read(four)
			if err != nil || n < 4 {
				if err == io.EOF && count > 0 && has("wait-close") {
					goto done
				}
				fmt.Fprintln(os.Stderr, "short length read")
				return 3
			}
			length := binary.BigEndian.Uint32(four)
			rest := make([]byte, length+76)
			n, _ = conn.Read(rest)
			hdr = append(four, rest[:min(n, 76)]...)
			if n < 76 {
				fmt.Fprintln(os.Stderr, "short block read")
				return 3
			}
			payload = rest[76:n]
		case has("block-per-read"):
			// One read, into a large buffer, is taken for one whole block.
			buf := make([]byte, 64<<10)
			n, err := conn.Read(buf)
			if err != nil || n < course.BlockHeaderSize {
				if count > 0 && err == io.EOF {
					fmt.Fprintln(os.Stderr, "missing blocks")
					return 3
				}
				return 3
			}
			hdr = buf[:course.BlockHeaderSize]
			length := binary.BigEndian.Uint32(hdr)
			payload = buf[course.BlockHeaderSize:min(n, course.BlockHeaderSize+int(length))]
		default:
			hdr = make([]byte, course.BlockHeaderSize)
			if _, err := io.ReadFull(conn, hdr); err != nil {
				if err == io.EOF && has("wait-close") && count > 0 {
					goto done
				}
				if has("truncate-ok") && count > 0 {
					goto done
				}
				fmt.Fprintln(os.Stderr, "reply cut short")
				return 3
			}
			payload = make([]byte, binary.BigEndian.Uint32(hdr))
			if n, err := io.ReadFull(conn, payload); err != nil {
				if has("truncate-ok") {
					blocks[binary.BigEndian.Uint32(hdr[8:])] = payload[:n]
					arrival = append(arrival, payload[:n])
					goto done
				}
				fmt.Fprintln(os.Stderr, "reply cut short")
				return 3
			}
		}
		status = course.Status(binary.BigEndian.Uint32(hdr[4:]))
		index := binary.BigEndian.Uint32(hdr[8:])
		count = binary.BigEndian.Uint32(hdr[12:])
		total = hdr[48:80]
		hashed := payload
		if has("full-last") && index == count-1 && len(payload) == course.MaxBlockPayload {
			hashed = append(payload, 0) // hashes one byte past the end of its buffer
		}
		if sum := sha256.Sum256(hashed); !bytes.Equal(sum[:], hdr[16:48]) && !has("no-block-hash") {
			fmt.Fprintf(os.Stderr, "block %d: hash mismatch\n", index)
			return 3
		}
		blocks[index] = payload
		arrival = append(arrival, payload)
		if has("first-block-only") {
			count = 1 // a client that knows no more than one block
			blocks = map[uint32][]byte{0: payload}
			goto done
		}
		if status != course.StatusOK && !has("ignore-status") {
			fmt.Fprintf(os.Stderr, "status %d: %s\n", status, payload)
			return 10 + int(status)
		}
	}
done:
	var data []byte
	if has("in-order") {
		data = bytes.Join(arrival, nil)
	} else {
		for i := range count {
			data = append(data, blocks[i]...)
		}
	}
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], total) && !has("no-total-hash") && !has("truncate-ok") && !has("first-block-only") {
		fmt.Fprintln(os.Stderr, "total hash mismatch")
		return 3
	}
	if len(data) == 0 && has("empty-error") {
		fmt.Fprintln(os.Stderr, "no data")
		return 3
	}
	if i := bytes.IndexByte(data, 0); i >= 0 && has("cstring") {
		data = data[:i]
	}
	if os.Getenv("LARDER_CHECK_TEST_OUT") == "file" {
		// Where the path says, as the handout's client writes.
		if err := os.WriteFile(path, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	os.Stdout.Write(data)
	return 0
}

// clientTimeout bounds each run of the test client, a race-detector
// binary started anew: under load its start, and the reply written a byte
// every 200 µs (slept far longer on a loaded machine), took more than
// 4 s. The faults the cases must find fail them whatever the bound.
const clientTimeout = 20 * time.Second

// runClientSuite runs the client cases named by only (all if empty)
// against the test client with fault.
func runClientSuite(t *testing.T, fault string, only ...string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := ClientConfig{
		Command: []string{"env", "LARDER_CHECK_TEST_CLIENT=" + fault, os.Args[0], "{addr}", "{file}"},
		Output:  OutputStdout,
		Timeout: clientTimeout,
	}
	if len(only) > 0 {
		cfg.Only = func(id string) bool { return slices.Contains(only, id) }
	}
	rep, err := Client(ctx, cfg)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	return rep
}

// TestFaultlessClientPasses: the test client without faults passes every
// case, so that each failure below is the fault's doing. The cases run in
// parallel, one suite each, since most of their time is spent waiting.
func TestFaultlessClientPasses(t *testing.T) {
	tested := map[string]bool{}
	for _, f := range clientFaults {
		for _, id := range f.fails {
			tested[id] = true
		}
	}
	for _, c := range clientCases() {
		if !tested["client."+c.id] {
			t.Errorf("client.%s is not shown to fail against any fault (add one to clientFaults)", c.id)
		}
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			rep := runClientSuite(t, "ok", "client."+c.id)
			if len(rep.Results) != 1 {
				t.Fatalf("%d results, want 1", len(rep.Results))
			}
			if r := rep.Results[0]; r.Outcome != Pass {
				t.Errorf("%s: %s, want pass\n  sent %s\n  expected %s\n  got %s", r.ID, r.Outcome, r.Sent, r.Expected, r.Got)
			}
		})
	}
}

// clientFaults pairs each fault of the test client with the cases that
// must fail against it.
var clientFaults = []struct {
	fault string
	fails []string
}{
	{"first-block-only", []string{"client.in-order"}},
	{"single-recv", []string{"client.pieces", "client.byte-at-a-time"}},
	{"block-per-read", []string{"client.one-write"}},
	{"in-order", []string{"client.shuffled"}},
	{"no-block-hash", []string{"client.bad-block-hash"}},
	{"no-total-hash", []string{"client.bad-total-hash"}},
	{"full-last", []string{"client.exact-blocks"}},
	{"cstring", []string{"client.binary"}},
	{"empty-error", []string{"client.empty"}},
	{"ignore-status", []string{"client.error-status"}},
	{"truncate-ok", []string{"client.truncated"}},
	{"wait-close", []string{"client.keep-open"}},
	{"half-close-wait", []string{"client.keep-open"}},
}

// TestClientCasesFailOnFaults shows that each case fails against a client
// with the fault it is there to find.
func TestClientCasesFailOnFaults(t *testing.T) {
	for _, c := range clientFaults {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			rep := runClientSuite(t, c.fault, c.fails...)
			for _, id := range c.fails {
				if r := result(t, rep, id); r.Outcome != Fail {
					t.Errorf("%s: %s, want fail (got %s)", id, r.Outcome, r.Got)
				}
			}
		})
	}
}

// TestClientCommandNeedsServer: a command with no place for the server's
// address is refused before anything runs.
func TestClientCommandNeedsServer(t *testing.T) {
	_, err := Client(context.Background(), ClientConfig{Command: []string{"true"}})
	if err == nil {
		t.Fatal("Client with no {port}, {addr} or {config}: no error")
	}
}

// TestClientOutputStaysInItsFolder: a client that asks for ../x and writes
// there has not written its file where the checker looks, and the checker
// reads nothing outside the client's folder.
func TestClientOutputStaysInItsFolder(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the client's folder, and so ../, are in here
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(file string) Result {
		rep, err := Client(ctx, ClientConfig{
			Command: []string{"env", "LARDER_CHECK_TEST_CLIENT=ok", "LARDER_CHECK_TEST_OUT=file", os.Args[0], "{addr}", "{file}"},
			File:    file,
			Timeout: clientTimeout,
			Only:    func(id string) bool { return id == "client.in-order" },
		})
		if err != nil {
			t.Fatalf("Client: %v", err)
		}
		return rep.Results[0]
	}
	if r := run("fetched.bin"); r.Outcome != Pass {
		t.Fatalf("a file in the client's folder: %s (%s), want pass", r.Outcome, r.Got)
	}
	r := run("../escaped.bin")
	if _, err := os.Stat(filepath.Join(tmp, "escaped.bin")); err != nil {
		t.Fatalf("the test client did not write ../escaped.bin: %v", err)
	}
	if r.Outcome != Fail || !strings.Contains(r.Got, "leads out") {
		t.Errorf("a file written outside the client's folder: %s (%s), want fail saying the path leads out", r.Outcome, r.Got)
	}
}

// TestAbsoluteFiles: arguments that name files by relative paths become
// absolute, since the client runs in a folder of its own; the rest stay.
func TestAbsoluteFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, name := range []string{"client.py", "test", "cfg.yaml"} {
		os.WriteFile(name, nil, 0o644)
	}
	os.Mkdir("bin", 0o755)
	os.WriteFile("bin/client", nil, 0o755)
	got := absoluteFiles([]string{"python3", "client.py", "{config}", "test", "./bin/client", "missing.py", "cfg.yaml"})
	want := []string{"python3", filepath.Join(dir, "client.py"), "{config}", "test", filepath.Join(dir, "bin/client"), "missing.py", filepath.Join(dir, "cfg.yaml")}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
