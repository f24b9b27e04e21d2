package check

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/larderfs/larder/course"
)

// Output modes of a client: where it puts the file it fetched.
const (
	OutputFile   = "file"   // a file named as the requested path, in its working folder
	OutputStdout = "stdout" // standard output
)

// ClientConfig says which client to check and how.
type ClientConfig struct {
	// Command is the client's command line. Its arguments may hold
	// {host}, {port}, {addr} (HOST:PORT), {config} (a YAML file with
	// server_ip and server_port, as the handout's client reads) and
	// {file} (the path to fetch); one of the first four is required.
	Command []string
	// Output is OutputFile ("" means it) or OutputStdout.
	Output string
	// File is the path the client is told to fetch through {file}; ""
	// means "larder-check.bin".
	File string
	// Profile is ProfileStrict ("" means it) or ProfileReference.
	Profile string
	// Timeout bounds each run of the client; zero means 10 seconds.
	Timeout time.Duration
	// Only, if set, picks the cases to run by their result ID
	// ("client.shuffled").
	Only func(id string) bool
}

// clientCase is one adversarial server behaviour.
type clientCase struct {
	id, title string
	required  bool
	why       string
	reference string // how the course's handout client fails it
	payload   []byte
	status    course.Status // zero means StatusOK
	order     string        // "in order", "shuffled"
	write     string        // "per block", "one write", "pieces", "bytes"
	corrupt   string        // "", "block hash", "total hash", "truncate"
	keepOpen  bool          // hold the connection open after the reply
	// bad says the client must notice something wrong and not present
	// the payload as the file.
	bad bool
}

func clientCases() []clientCase {
	text := textBytes(2*course.MaxBlockPayload + 112)
	return []clientCase{
		{id: "in-order", title: "3 blocks in order, one write each", required: true, payload: text, order: "in order", write: "per block",
			why: "the simplest multi-block reply: full 944-byte blocks and a short last one"},
		{id: "shuffled", title: "3 blocks shuffled", required: true, payload: text, order: "shuffled", write: "per block",
			why: "the reference server shuffles blocks: a client must place each by its number"},
		{id: "pieces", title: "each block written in three pieces", required: true, payload: text, order: "shuffled", write: "pieces",
			why:       "TCP does not keep writes apart: a block can arrive in any number of pieces, and recv returns what has arrived",
			reference: "reads the length with one recv(4) and the rest with one recv: a short read crashes it (struct.error) or fails the block hash"},
		{id: "byte-at-a-time", title: "the reply written one byte at a time", required: true, payload: textBytes(course.MaxBlockPayload + 100), order: "shuffled", write: "bytes",
			why:       "the extreme of the above: a client that loops on recv until it has what it needs works",
			reference: "reads the length with one recv(4) and the rest with one recv: a short read crashes it (struct.error) or fails the block hash"},
		{id: "one-write", title: "all blocks in one write", required: true, payload: textBytes(40 * course.MaxBlockPayload), order: "shuffled", write: "one write",
			why:       "many blocks back to back: a recv can return the end of one block and the start of the next",
			reference: "passes on loopback, where the whole reply is buffered before it reads; on a real network its single recv per block can come up short"},
		{id: "exact-blocks", title: "a file of exactly 2 × 944 bytes", required: true, payload: textBytes(2 * course.MaxBlockPayload), order: "shuffled", write: "per block",
			why: "no short last block: clients that hash past their buffer, or expect one block more, fail here"},
		{id: "binary", title: "a binary file (all byte values, NULs, CR, LF)", required: true, payload: binaryBytes(), order: "shuffled", write: "per block",
			why: "files are bytes: a client that treats the payload as a C string cuts it at the first NUL"},
		{id: "empty", title: "an empty file: one block of length 0", required: true, payload: []byte{}, order: "in order", write: "per block",
			why:       "an empty file is a file: the client writes it, empty, and does not report an error",
			reference: "reports \"Could not retrieve data from server\" and writes nothing"},
		{id: "bad-block-hash", title: "a block whose hash is wrong", required: true, payload: text, order: "shuffled", write: "per block", corrupt: "block hash", bad: true,
			why: "the block hash is there to be checked: a corrupted block must not end up in the file"},
		{id: "bad-total-hash", title: "a wrong total hash", required: true, payload: text, order: "shuffled", write: "per block", corrupt: "total hash", bad: true,
			why:       "the total hash guards the reassembly: a client that checks it and writes the file anyway has not checked it",
			reference: "prints \"Total checksum for all data did not match\" and writes the file anyway"},
		{id: "truncated", title: "a reply cut off in its last block", required: true, payload: text, order: "in order", write: "per block", corrupt: "truncate", bad: true,
			why: "a connection that ends early is a failed transfer, not a shorter file"},
		{id: "error-status", title: "status 5 BAD_REQUEST with a message", required: true, payload: []byte("Requested content does not exist"), status: course.StatusBadRequest, order: "in order", write: "per block", bad: true,
			why: "an error reply's payload is a message, not the file: the client shows it and writes no file"},
		{id: "keep-open", title: "the server keeps the connection open after the last block", required: false, payload: text, order: "shuffled", write: "per block", keepOpen: true,
			why: "the protocol ends a reply with the close, but a client that has every block has the whole reply; one that waits for the close hangs on a server that is slow to close (the handout's client does not wait)"},
	}
}

// ClientCaseIDs returns the IDs of the client cases, in the order they
// run ("client.in-order", ...).
func ClientCaseIDs() []string {
	var ids []string
	for _, c := range clientCases() {
		ids = append(ids, "client."+c.id)
	}
	return ids
}

// Client runs every case against the client cfg names and returns the
// report. It fails only if the checker cannot work at all (no port to
// listen on, a command line without a place for the port).
func Client(ctx context.Context, cfg ClientConfig) (*Report, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Output == "" {
		cfg.Output = OutputFile
	}
	if cfg.File == "" {
		cfg.File = "larder-check.bin"
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileStrict
	}
	switch {
	case len(cfg.Command) == 0:
		return nil, errors.New("check: no client command given")
	case cfg.Output != OutputFile && cfg.Output != OutputStdout:
		return nil, fmt.Errorf("check: unknown output %q: want %s or %s", cfg.Output, OutputFile, OutputStdout)
	case cfg.Profile != ProfileStrict && cfg.Profile != ProfileReference:
		return nil, fmt.Errorf("check: unknown profile %q: want %s or %s", cfg.Profile, ProfileStrict, ProfileReference)
	case !strings.Contains(strings.Join(cfg.Command, " "), "{port}") && !strings.Contains(strings.Join(cfg.Command, " "), "{addr}") &&
		!strings.Contains(strings.Join(cfg.Command, " "), "{config}"):
		return nil, errors.New("check: the client command must say where the server is: put {port}, {addr} or {config} in it")
	}
	cfg.Command = absoluteFiles(cfg.Command)
	rep := &Report{Kind: "client", Target: strings.Join(cfg.Command, " "), Profile: cfg.Profile,
		Mode: fmt.Sprintf("the client's file is read from its %s", map[string]string{OutputFile: "working folder, named as the path it asked for", OutputStdout: "standard output"}[cfg.Output])}
	for _, c := range clientCases() {
		if cfg.Only != nil && !cfg.Only("client."+c.id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := runClientCase(ctx, cfg, c)
		if err != nil {
			return nil, err
		}
		res := Result{ID: "client." + c.id, Title: c.title, Required: c.required, Outcome: v.outcome,
			Sent: v.sent, Expected: v.expected, Got: v.got, Why: c.why, Reference: c.reference}
		if res.Outcome == Fail && c.reference != "" && cfg.Profile == ProfileReference {
			res.Outcome = KnownFailure
		}
		rep.Results = append(rep.Results, res)
	}
	rep.summarize()
	return rep, nil
}

// absoluteFiles returns args with every argument that names an existing
// file or folder by a relative path ("./client", "client.py", "../cfg")
// made absolute: the client runs in a folder of its own, where those paths
// would name nothing. A bare word ("test") is left alone even if a file of
// that name exists, since it is more likely a mode than a path.
func absoluteFiles(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if filepath.IsAbs(a) || strings.Contains(a, "{") || !strings.ContainsAny(a, "/.") {
			continue
		}
		if _, err := os.Stat(a); err != nil {
			continue
		}
		if abs, err := filepath.Abs(a); err == nil {
			out[i] = abs
		}
	}
	return out
}

// encodeReply returns the blocks of c's reply, in c's order and with c's
// corruption.
func encodeReply(c clientCase) [][]byte {
	status := c.status
	if status == 0 {
		status = course.StatusOK
	}
	count, _ := course.BlockCount(int64(len(c.payload)))
	total := sha256.Sum256(c.payload)
	if c.corrupt == "total hash" {
		total[0] ^= 0x80
	}
	var blocks [][]byte
	for i := range count {
		p := c.payload[min(int(i)*course.MaxBlockPayload, len(c.payload)):min(int(i+1)*course.MaxBlockPayload, len(c.payload))]
		h := course.BlockHeader{Length: uint32(len(p)), Status: status, Index: i, Count: count, TotalHash: total, BlockHash: sha256.Sum256(p)}
		if c.corrupt == "block hash" && i == count/2 {
			h.BlockHash[5] ^= 0x01
		}
		b, _ := h.AppendBinary(nil)
		blocks = append(blocks, append(b, p...))
	}
	if c.order == "shuffled" && len(blocks) > 1 {
		// Never the identity: a shuffle that happens to be in order
		// would not test anything.
		for {
			rand.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
			if binaryIndex(blocks[0]) != 0 {
				break
			}
		}
	}
	if c.corrupt == "truncate" {
		last := blocks[len(blocks)-1]
		blocks[len(blocks)-1] = last[:len(last)-len(last)/2]
	}
	return blocks
}

func binaryIndex(block []byte) uint32 {
	return uint32(block[8])<<24 | uint32(block[9])<<16 | uint32(block[10])<<8 | uint32(block[11])
}

// adversary is the server of one case.
type adversary struct {
	c       clientCase
	ln      net.Listener
	hold    chan struct{} // closed when the case ends: held connections close then
	holdFor time.Duration // how long keep-open holds a connection after the reply
	wg      sync.WaitGroup

	mu       sync.Mutex
	requests []string  // what the client sent, described
	paths    []string  // the paths it asked for
	problems []string  // requests that were not well formed
	waited   int       // keep-open: replies after which the client waited for the close
	lastSent time.Time // when the last reply to a retrieval was sent
}

func (a *adversary) serve() {
	defer a.wg.Done()
	for {
		conn, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer conn.Close()
			a.handle(conn)
		}()
	}
}

func (a *adversary) handle(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var raw bytes.Buffer
	req, err := course.ReadRequest(io.TeeReader(conn, &raw))
	a.mu.Lock()
	if err != nil {
		a.problems = append(a.problems, fmt.Sprintf("a request that is not well formed (%v): %s", err, hexPrefix(raw.Bytes(), 52)))
		a.mu.Unlock()
		return
	}
	a.requests = append(a.requests, describeRequest(raw.Bytes()))
	if !req.IsRegister() {
		a.paths = append(a.paths, string(req.Body))
	}
	a.mu.Unlock()
	if req.IsRegister() {
		reply, _ := course.AppendMessage(nil, course.StatusOK, fmt.Sprintf("New user %s registered.", req.Username))
		conn.Write(reply)
	} else {
		a.send(conn)
	}
	if !req.IsRegister() {
		a.mu.Lock()
		a.lastSent = time.Now()
		a.mu.Unlock()
	}
	if a.c.keepOpen && !req.IsRegister() {
		// Did the client close once it had every block, or wait for us?
		// The connection is held either way, so that a client that only
		// shut down its sending side is not let off early.
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, conn); close(closed) }()
		select {
		case <-time.After(a.holdFor):
		case <-a.hold:
		}
		select {
		case <-closed:
		default:
			a.mu.Lock()
			a.waited++
			a.mu.Unlock()
		}
		conn.Close()
		<-closed
		return
	}
	// Close politely: what the client still sends must not turn the
	// close into a reset that destroys the reply.
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
}

func (a *adversary) send(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	blocks := encodeReply(a.c)
	switch a.c.write {
	case "one write":
		conn.Write(bytes.Join(blocks, nil))
	case "pieces":
		for _, b := range blocks {
			for _, p := range [][]byte{b[:3], b[3:50], b[50:]} {
				conn.Write(p)
				time.Sleep(20 * time.Millisecond)
			}
		}
	case "bytes":
		for _, b := range blocks {
			for i := range b {
				conn.Write(b[i : i+1])
				time.Sleep(200 * time.Microsecond)
			}
		}
	default:
		for _, b := range blocks {
			if _, err := conn.Write(b); err != nil {
				return
			}
			time.Sleep(time.Millisecond) // one block per segment, as the reference server sends
		}
	}
}

// runClientCase runs the client once against the adversary of c.
func runClientCase(ctx context.Context, cfg ClientConfig, c clientCase) (verdict, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return verdict{}, fmt.Errorf("check: listening for the client: %w", err)
	}
	// Held long enough to tell a client that waits for the close, and
	// then closed, so that such a client costs seconds, not the timeout.
	holdFor := min(cfg.Timeout/2, 3*time.Second)
	a := &adversary{c: c, ln: ln, hold: make(chan struct{}), holdFor: holdFor}
	a.wg.Add(1)
	go a.serve()
	defer func() { ln.Close(); close(a.hold); a.wg.Wait() }()

	work, err := os.MkdirTemp("", "larder-check-client-")
	if err != nil {
		return verdict{}, fmt.Errorf("check: a working folder for the client: %w", err)
	}
	defer os.RemoveAll(work)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	config := filepath.Join(work, ".larder-check-config.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "server_ip: %s\nserver_port: %s\n", host, port), 0o644); err != nil {
		return verdict{}, fmt.Errorf("check: writing the client's config file: %w", err)
	}
	repl := strings.NewReplacer("{host}", host, "{port}", port, "{addr}", ln.Addr().String(), "{config}", config, "{file}", cfg.File)
	args := make([]string, len(cfg.Command))
	for i, s := range cfg.Command {
		args[i] = repl.Replace(s)
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Dir = work
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedBuffer{b: &stdout, n: maxReply}
	cmd.Stderr = &limitedBuffer{b: &stderr, n: 64 << 10}
	cmd.WaitDelay = time.Second
	start := time.Now()
	runErr := cmd.Run()
	exited := time.Now()
	elapsed := exited.Sub(start)

	v := verdict{outcome: Fail}
	exit := 0
	var ee *exec.ExitError
	switch {
	case runCtx.Err() == context.DeadlineExceeded:
		exit = -1
	case errors.As(runErr, &ee):
		exit = ee.ExitCode()
	case runErr != nil:
		return verdict{}, fmt.Errorf("check: running the client: %w", runErr)
	}

	a.mu.Lock()
	paths, requests, problems, waited := a.paths, a.requests, a.problems, a.waited
	// A client that shuts down its sending side and then waits for the
	// close looks, to the server, like one that closed: its exit tells.
	if c.keepOpen && !a.lastSent.IsZero() && exited.Sub(a.lastSent) >= holdFor && waited == 0 {
		waited = 1
	}
	a.mu.Unlock()
	status := c.status
	if status == 0 {
		status = course.StatusOK
	}
	count, _ := course.BlockCount(int64(len(c.payload)))
	v.sent = fmt.Sprintf("status %d %s, %d bytes in %d block(s), %s, %s", status, status, len(c.payload), count, c.order, c.write)
	if c.corrupt != "" {
		v.sent += ", " + map[string]string{"block hash": "one block's hash wrong", "total hash": "the total hash wrong", "truncate": "the last block cut in half, then the close"}[c.corrupt]
	}
	if c.keepOpen {
		v.sent += fmt.Sprintf(", then the connection held open for %v", holdFor)
	}

	// What the client made of it.
	var outputs [][]byte
	var got []string
	if cfg.Output == OutputStdout {
		outputs = append(outputs, stdout.Bytes())
	} else {
		for _, p := range paths {
			data, err := readOutput(work, p)
			if err == nil {
				outputs = append(outputs, data)
				got = append(got, fmt.Sprintf("%s: %d bytes, sha256 %s", p, len(data), shortHash(data)))
			} else {
				outputs = append(outputs, nil)
				got = append(got, fmt.Sprintf("%s: no file (%v)", p, err))
			}
		}
	}
	switch {
	case exit == -1:
		got = append([]string{fmt.Sprintf("no exit within %v (killed)", cfg.Timeout)}, got...)
	default:
		got = append([]string{fmt.Sprintf("exit status %d after %v", exit, elapsed.Round(10*time.Millisecond))}, got...)
	}
	if cfg.Output == OutputStdout {
		got = append(got, fmt.Sprintf("stdout: %d bytes, sha256 %s", stdout.Len(), shortHash(stdout.Bytes())))
		if c.status == 0 && !c.bad && !bytes.Equal(stdout.Bytes(), c.payload) {
			got = append(got, payloadDiff(stdout.Bytes(), c.payload))
		}
	}
	if len(paths) == 0 {
		got = append(got, "the client asked for no file")
	}
	got = append(got, problems...)
	if s := strings.TrimSpace(stderr.String()); s != "" {
		got = append(got, "stderr ends: "+quoteMessage([]byte(lastLines(s, 1))))
	}
	if len(requests) > 0 {
		got = append(got, fmt.Sprintf("%d request(s), the last: %s", len(requests), requests[len(requests)-1]))
	}
	v.got = strings.Join(got, "; ")

	switch {
	case c.bad:
		v.expected = "the client notices: it exits with a non-zero status, or writes no file; never the payload as the file"
		noticed := exit > 0
		if !noticed && len(paths) > 0 {
			noticed = true
			for _, o := range outputs {
				if len(o) > 0 {
					noticed = false
				}
			}
		}
		if noticed && exit != -1 && len(problems) == 0 {
			v.outcome = Pass
		}
	default:
		v.expected = fmt.Sprintf("exit status 0 and the file, %d bytes with sha256 %s", len(c.payload), shortHash(c.payload))
		if c.keepOpen {
			v.expected += fmt.Sprintf(", the client closing once it has every block, before the server closes %v after the reply", holdFor)
			if waited > 0 {
				v.got += fmt.Sprintf("; the client waited for the close after %d of %d replies", waited, len(paths))
			}
		}
		ok := exit == 0 && len(paths) > 0 && len(problems) == 0 && waited == 0
		for _, o := range outputs {
			if !bytes.Equal(o, c.payload) || (o == nil && cfg.Output == OutputFile) {
				ok = false
			}
		}
		if ok {
			v.outcome = Pass
		}
	}
	return v, nil
}

// readOutput reads the file the client wrote for path in its folder work.
// Only a file inside work counts: a client that asks for ../x or /x and
// writes there has not written its file where a user would look, and the
// checker reads nothing outside the folder it made.
func readOutput(work, path string) ([]byte, error) {
	name := filepath.FromSlash(strings.TrimPrefix(path, "/"))
	if !filepath.IsLocal(name) {
		return nil, errors.New("the path leads out of the client's folder")
	}
	root, err := os.OpenRoot(work)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, errors.Unwrap(err) // the path is in the report already
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxReply))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// limitedBuffer keeps the first n bytes written to it and drops the rest,
// so that a client that prints without end cannot exhaust memory.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
