package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// ServerConfig says which server to check and how.
type ServerConfig struct {
	// Addr is the server's HOST:PORT.
	Addr string
	// Files is the folder the server serves, on this machine, which the
	// checker may write to; "" means the checker relies on the handout's
	// tiny.txt and hamlet.txt being served.
	Files string
	// Profile is ProfileStrict ("" means it) or ProfileReference.
	Profile string
	// Timeout bounds each exchange; zero means 5 seconds.
	Timeout time.Duration
	// Clients is how many clients the many-clients check runs at once;
	// zero means 16.
	Clients int
	// Only, if set, picks the checks to run by their ID. register.new
	// always runs, since the others log in with its account, and so do the
	// retrievals of the handout's files, which the other checks need.
	Only func(id string) bool
}

// serverCheck is one check of a server.
type serverCheck struct {
	id, title string
	required  bool
	why       string
	reference string // how the course's reference server fails it; "" if it passes
	run       func(s *serverRun, ctx context.Context) verdict
}

// verdict is what one check found.
type verdict struct {
	outcome             Outcome
	sent, expected, got string
}

func notApplicable(why string) verdict { return verdict{outcome: NotApplicable, got: why} }

// knownFile is a file the checker knows the bytes of, by its path as the
// server names it.
type knownFile struct {
	id   string // the check's name for it: "empty", "tiny"
	path string
	data []byte
	// absent, in remote mode, says the server answered that it has no
	// such file: the checks that need it do not apply.
	absent bool
}

// serverRun is the state of one run: the account the checker registered,
// and the files it can ask for.
type serverRun struct {
	cfg     ServerConfig
	user    string
	pass    string
	sig     larder.Signature
	userOK  bool // register.new succeeded: the account can log in
	tag     string
	files   []*knownFile
	small   *knownFile // a short file for the checks that need one
	medium  *knownFile // a file of several blocks
	dir     string     // local mode: the checker's folder, relative to the root
	outside string     // local mode: a file outside the served folder, by its real path
	secret  []byte     // its content

	rootDepth int   // local mode: how many folders deep the served folder is
	connErr   error // register.new could not connect
	// filesUnseen counts the checker's files the server said it does
	// not have: --files may not be the folder it serves.
	filesUnseen int
	notCourse   bool // not one block in reply to a registration
}

// handout files and their known hashes.
var (
	tinySHA   = mustHex("76086f6ddd6e6d4066957ec52df60abe1c529008eb4ee10d3c6d1bbcb6f28a01")
	hamletSHA = mustHex("51a36c05e24cb2d28e5d49eef79e91a4848697e0c4e55c79acc204688389deeb")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Server runs the suite against the server cfg names and returns the
// report. It fails only if the checker cannot work at all (the server
// does not accept connections, the folder cannot be written); whatever the
// server gets wrong is in the report.
func Server(ctx context.Context, cfg ServerConfig) (*Report, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileStrict
	}
	if cfg.Profile != ProfileStrict && cfg.Profile != ProfileReference {
		return nil, fmt.Errorf("check: unknown profile %q: want %s or %s", cfg.Profile, ProfileStrict, ProfileReference)
	}
	tag := randomTag(6)
	s := &serverRun{cfg: cfg, tag: tag, user: "chk-" + tag, pass: randomTag(12)}
	s.sig = larder.NewSignature(s.pass, course.CourseSalt)

	rep := &Report{Kind: "server", Target: cfg.Addr, Profile: cfg.Profile}
	if cfg.Files != "" {
		cleanup, err := s.placeFiles()
		if err != nil {
			return nil, err
		}
		defer cleanup()
		rep.Mode = fmt.Sprintf("local: the checker's files in %s", filepath.Join(cfg.Files, s.dir))
	} else {
		s.files = []*knownFile{
			{id: "tiny", path: "tiny.txt"},
			{id: "hamlet", path: "hamlet.txt"},
		}
		s.small, s.medium = s.files[0], s.files[1]
		rep.Mode = "remote: the handout's tiny.txt (30 bytes) and hamlet.txt (196,746 bytes) must be served; --files DIR checks more"
	}

	for _, c := range s.checks() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.Only != nil && !cfg.Only(c.id) && !s.prerequisite(c.id) {
			continue
		}
		v := c.run(s, ctx)
		if c.id == "register.new" && s.connErr != nil {
			// Nothing listens there: forty failures would help nobody.
			return nil, s.connErr
		}
		res := Result{ID: c.id, Title: c.title, Required: c.required, Outcome: v.outcome,
			Sent: v.sent, Expected: v.expected, Got: v.got, Why: c.why, Reference: c.reference}
		if res.Outcome == Fail && c.reference != "" && cfg.Profile == ProfileReference {
			res.Outcome = KnownFailure
		}
		rep.Results = append(rep.Results, res)
	}
	for _, f := range s.files {
		if f.absent {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the server does not serve %s; checks that need it did not apply", f.path))
		}
	}
	if s.notCourse {
		rep.Notes = append(rep.Notes, fmt.Sprintf("not one block came back to a registration: is %s a course-protocol server? Most checks need the account and did not apply", cfg.Addr))
	}
	if s.filesUnseen > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the server said %d of the checker's files do not exist: is %s the folder it serves (for the course's server, the folder it runs in)?", s.filesUnseen, cfg.Files))
	}
	rep.summarize()
	return rep, nil
}

// prerequisite reports whether the check id must run for others to: the
// registration, and the retrievals that learn the handout's files.
func (s *serverRun) prerequisite(id string) bool {
	if id == "register.new" {
		return true
	}
	for _, f := range s.files {
		if f.data == nil && id == "get."+f.id {
			return true
		}
	}
	return false
}

// randomTag returns n random lower-case letters and digits, to keep the
// names of one run apart from earlier runs on a server that remembers.
func randomTag(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// do runs one exchange; a failure to connect becomes the reply's
// description, since a server that stops accepting has failed the check.
func (s *serverRun) do(ctx context.Context, req []byte, mode sendMode) (*reply, string) {
	r, err := exchange(ctx, s.cfg.Addr, req, mode, s.cfg.Timeout)
	if err != nil {
		return nil, err.Error()
	}
	return r, r.describe()
}

// expectStatus is the verdict on a request that must get one well-formed
// reply with status want, and, if payload is non-nil, exactly that
// payload.
func (s *serverRun) expectStatus(ctx context.Context, req []byte, mode sendMode, want course.Status, payload []byte) verdict {
	v := verdict{sent: describeRequest(req), expected: fmt.Sprintf("one reply, status %d %s", want, want)}
	if payload != nil {
		v.expected += fmt.Sprintf(", %d payload bytes with sha256 %s", len(payload), shortHash(payload))
	}
	v.expected += ", then the close"
	r, got := s.do(ctx, req, mode)
	v.got = got
	v.outcome = Fail
	if r != nil && r.complete() && len(r.afterProblems()) == 0 && r.status == want &&
		(payload == nil || bytes.Equal(r.payload, payload)) {
		v.outcome = Pass
	}
	if r != nil && r.complete() && payload != nil && r.status == want && !bytes.Equal(r.payload, payload) {
		v.got += "; " + payloadDiff(r.payload, payload)
	}
	return v
}

// expectRefusal is the verdict on a request that must be refused with one
// well-formed reply whose status is one of want.
func (s *serverRun) expectRefusal(ctx context.Context, req []byte, mode sendMode, want ...course.Status) verdict {
	var names []string
	for _, w := range want {
		names = append(names, fmt.Sprintf("%d %s", w, w))
	}
	v := verdict{sent: describeRequest(req), expected: "one reply, status " + strings.Join(names, " or ") + ", then the close"}
	r, got := s.do(ctx, req, mode)
	v.got, v.outcome = got, Fail
	if r != nil && r.complete() && len(r.afterProblems()) == 0 {
		for _, w := range want {
			if r.status == w {
				v.outcome = Pass
			}
		}
	}
	return v
}

// payloadDiff says where got first differs from want.
func payloadDiff(got, want []byte) string {
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	return fmt.Sprintf("payload differs from the file: %d bytes, want %d; first difference at offset %d (block %d): got %s, want %s",
		len(got), len(want), n, n/course.MaxBlockPayload, hexPrefix(got[n:min(len(got), n+16)], 16), hexPrefix(want[n:min(len(want), n+16)], 16))
}

// needsAccount is why a check that needs the account does not apply.
const needsAccount = "needs the account that register.new could not make"

// fileGet is the check of retrieving f: status 1, the exact bytes, every
// block's hash and the total hash, blocks reassembled by number.
func (s *serverRun) fileGet(ctx context.Context, f *knownFile) verdict {
	if !s.userOK {
		return notApplicable(needsAccount)
	}
	req := request(s.user, s.sig, f.path)
	v := verdict{sent: describeRequest(req)}
	r, got := s.do(ctx, req, sendMode{})
	v.got, v.outcome = got, Fail
	if f.data != nil {
		count, _ := course.BlockCount(int64(len(f.data)))
		v.expected = fmt.Sprintf("status 1 OK in %d block(s), %d bytes with sha256 %s, then the close", count, len(f.data), shortHash(f.data))
	} else {
		v.expected = fmt.Sprintf("status 1 OK, the handout's %s, then the close", f.path)
	}
	if r == nil {
		return v
	}
	if f.data == nil {
		// Remote mode: the handout's file, known by its hash.
		if r.complete() && r.status == course.StatusBadRequest {
			f.absent = true
			return notApplicable(fmt.Sprintf("the server has no %s (%s); put the handout's %s in its folder, or use --files", f.path, got, f.path))
		}
		want := tinySHA
		if f.id == "hamlet" {
			want = hamletSHA
		}
		if r.complete() && len(r.afterProblems()) == 0 && r.status == course.StatusOK {
			if sum := sha256.Sum256(r.payload); bytes.Equal(sum[:], want) {
				f.data = r.payload
				v.outcome = Pass
			} else {
				v.got += "; not the handout's " + f.path + " (different sha256)"
			}
		}
		return v
	}
	switch {
	case r.complete() && len(r.afterProblems()) == 0 && r.status == course.StatusOK && bytes.Equal(r.payload, f.data):
		v.outcome = Pass
	case r.complete() && r.status == course.StatusOK:
		v.got += "; " + payloadDiff(r.payload, f.data)
	case r.complete() && r.status == course.StatusBadRequest:
		s.filesUnseen++
	}
	if len(f.data) == 0 && r.payload != nil && len(r.blocks) != 1 {
		v.outcome = Fail
	}
	return v
}

// needFile returns f, or why a check that needs it does not apply.
func (s *serverRun) needFile(f *knownFile) (string, bool) {
	switch {
	case !s.userOK:
		return needsAccount, false
	case f.absent || f.data == nil:
		return fmt.Sprintf("needs %s, which the server did not serve", f.path), false
	}
	return "", true
}

// probeLogin asks for a file that does not exist as user: status 5 means
// the login worked.
func (s *serverRun) probeLogin(ctx context.Context, user string, sig larder.Signature) (*reply, string) {
	return s.do(ctx, request(user, sig, "larder-check-missing-"+s.tag), sendMode{})
}
