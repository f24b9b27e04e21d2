package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/lnp"
)

// TestCrashConsistency kills "larder serve" with SIGKILL at random
// instants of an LNP/1 put (of a new file, and over an existing one), mv
// (of a file, and of a folder holding files) and rm (of a file, and of a
// folder with its files), starts it again on the same data folder, and
// checks that what the server shows over LNP/1, what is on disk and what
// is recorded in the database agree, usage and quota included:
//
//   - every file the test knows of is whole or absent, in one of the
//     states the interrupted operation passes through (never a mix of two,
//     never a state before a step the server acknowledged), alike in the
//     listing, stat and get, in the space's folder on disk, and in the
//     file records;
//   - the usage whoami reports, and the records' usage, are the bytes and
//     files of the space's tree on disk;
//   - with a quota of exactly that usage plus P bytes, an upload of P+1
//     bytes is refused and one of P bytes is taken.
//
// The operations, their files and the delays are drawn from a seed, which
// every failure names; LARDER_CRASH_SEED repeats a run's choices (not its
// timing).
func TestCrashConsistency(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LARDER_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("LARDER_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (LARDER_CRASH_SEED=%d repeats its choices)", seed, seed)
	c := &crashTest{
		t:     t,
		seed:  seed,
		rng:   rand.New(rand.NewPCG(seed, 0x1a2de6)),
		data:  t.TempDir(),
		files: t.TempDir(),
		sig:   larder.NewSignature("crash password", "crash-salt"),
		state: &fsState{files: map[string]*content{}, dirs: map[string]bool{}},
		seen:  map[string]bool{probeName: true},
		est:   map[string]time.Duration{},
	}
	c.setUp()
	for c.round = 1; c.round <= rounds; c.round++ {
		c.start()
		c.prepare()
		c.crash()
	}
	t.Logf("%d rounds; kills by operation: %v", rounds, c.kills)
}

// How many files the test keeps, at most, and their sizes.
const (
	probeName   = "quota-probe.bin"
	maxFiles    = 14
	bigMin      = 2 << 20
	bigSpread   = 1 << 20
	smallMin    = 16 << 10
	smallSpread = 240 << 10
)

// crashTest is the state of TestCrashConsistency: the server's folders,
// what the test knows is in the user's space, and the round it is in.
type crashTest struct {
	t           *testing.T
	seed        uint64
	rng         *rand.Rand
	data, files string
	sig         larder.Signature
	srv         *crashServer
	key         string // the space's key in the file records
	tree        string // the space's tree on disk

	state *fsState
	seen  map[string]bool          // every path a file of the space ever had
	est   map[string]time.Duration // how long each kind of operation takes, un-killed
	kills map[string]int
	round int
	what  string // what the round did, for failures
}

// content is a file's bytes and their SHA-256.
type content struct {
	data []byte
	sum  [32]byte
}

// fsState is what the user's space holds: files by slash-separated path
// (no leading slash), and folders.
type fsState struct {
	files map[string]*content
	dirs  map[string]bool
}

func (s *fsState) clone() *fsState {
	c := &fsState{files: make(map[string]*content, len(s.files)), dirs: make(map[string]bool, len(s.dirs))}
	for p, f := range s.files {
		c.files[p] = f
	}
	for d := range s.dirs {
		c.dirs[d] = true
	}
	return c
}

func (s *fsState) tree() *tree {
	t := &tree{files: map[string]fileView{}, dirs: map[string]bool{}}
	for p, f := range s.files {
		t.files[p] = fileView{size: int64(len(f.data)), sum: f.sum}
	}
	for d := range s.dirs {
		t.dirs[d] = true
	}
	return t
}

// tree is a space as one of its three views shows it: the server over
// LNP/1, the disk, or (files only) the records.
type tree struct {
	files map[string]fileView
	dirs  map[string]bool
}

type fileView struct {
	size int64
	sum  [32]byte // zero if the view does not know it
}

func (v fileView) String() string {
	if v.sum == ([32]byte{}) {
		return fmt.Sprintf("%d bytes, SHA-256 not known", v.size)
	}
	return fmt.Sprintf("%d bytes, SHA-256 %x", v.size, v.sum[:6])
}

func (t *tree) usage() larder.Usage {
	var u larder.Usage
	for _, f := range t.files {
		u.Bytes += f.size
		u.Files++
	}
	return u
}

// diff lists how got differs from want, "" if it does not.
func (got *tree) diff(want *tree) string {
	var d []string
	for _, p := range pathsOf(want.files, got.files) {
		w, inWant := want.files[p]
		g, inGot := got.files[p]
		switch {
		case !inGot:
			d = append(d, fmt.Sprintf("%s: absent, want %v", p, w))
		case !inWant:
			d = append(d, fmt.Sprintf("%s: %v, want absent", p, g))
		case g != w:
			d = append(d, fmt.Sprintf("%s: %v, want %v", p, g, w))
		}
	}
	for _, p := range pathsOf(want.dirs, got.dirs) {
		if want.dirs[p] != got.dirs[p] {
			d = append(d, fmt.Sprintf("folder %s: present %v, want %v", p, got.dirs[p], want.dirs[p]))
		}
	}
	return strings.Join(d, "; ")
}

// pathsOf returns the keys of ms, sorted, each once.
func pathsOf[V any](ms ...map[string]V) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// failf ends the test with what happened in the round.
func (c *crashTest) failf(format string, args ...any) {
	c.t.Helper()
	msg := fmt.Sprintf(format, args...)
	log := ""
	if c.srv != nil {
		log = "\nthe server's log (last run):\n" + tail(c.srv.stderr.String(), 4000)
	}
	c.t.Fatalf("round %d, seed %d (LARDER_CRASH_SEED=%d repeats it): %s\n%s%s", c.round, c.seed, c.seed, c.what, msg, log)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// crashStep is one request of an operation: atomic on a correct server.
type crashStep struct {
	desc  string
	do    func(ctx context.Context, s *client.Session) error
	apply func(st *fsState)
}

// setUp starts the server, registers the user, fills the space with each
// kind of operation once (which measures how long each takes), and checks
// the result as after a crash.
func (c *crashTest) setUp() {
	c.what = "setting up"
	c.start()
	if r := rawExchange(c.t, c.srv.course, "alice", c.sig, ""); r.status != course.StatusOK {
		c.failf("register alice: status %v: %s", r.status, r.payload)
	}
	c.ensure("dira", "dirb")
	for _, kind := range []string{"put new", "put over", "mv file", "mv folder", "rm file", "rm folder"} {
		c.ensure("dirc")
		steps := c.opOf(kind)
		c.what = "setting up: " + kind
		s := c.session()
		start := time.Now()
		for _, st := range steps {
			if err := st.do(c.ctx(), s); err != nil {
				c.failf("%s: %v", st.desc, err)
			}
			st.apply(c.state)
		}
		c.est[kind] = time.Since(start)
		s.Close()
	}
	c.t.Logf("un-killed durations: %v", c.est)
	c.stop()

	db := c.openDB()
	u, err := sqlite.NewUserStore(db).UserByName(c.ctx(), "alice")
	db.Close()
	if err != nil {
		c.failf("alice's account: %v", err)
	}
	c.key = larder.SpaceOf(u.ID)
	// DATA/spaces/id-N/files is the tree of account N (docs/OPERATIONS.md).
	c.tree = filepath.Join(c.data, "spaces", "id-"+strconv.FormatInt(u.ID, 10), "files")
	c.kills = map[string]int{}
	c.what = "after setting up, without a crash"
	c.check([]*fsState{c.state}, 0)
}

// ensure makes each folder of names that is missing, with two or three
// small files in it.
func (c *crashTest) ensure(names ...string) {
	s := c.session()
	defer s.Close()
	for _, d := range names {
		if c.state.dirs[d] {
			continue
		}
		if err := s.Mkdir(c.ctx(), "/"+d); err != nil {
			c.failf("setting up: mkdir /%s: %v", d, err)
		}
		c.state.dirs[d] = true
		for i := range 2 + c.rng.IntN(2) {
			p := fmt.Sprintf("%s/s%d-%d.bin", d, c.round, i)
			f := c.newContent(smallMin + c.rng.IntN(smallSpread))
			if err := put(c.ctx(), s, p, f, false); err != nil {
				c.failf("setting up: put /%s: %v", p, err)
			}
			c.state.files[p] = f
			c.seen[p] = true
		}
	}
}

// prepare makes sure, without a crash, that each kind of operation has
// something to work on.
func (c *crashTest) prepare() {
	c.what = "preparing the round"
	var dirs []string
	for d := range c.state.dirs {
		dirs = append(dirs, d)
	}
	if len(dirs) < 2 && len(c.state.files) < maxFiles {
		c.ensure(fmt.Sprintf("dir%d", c.round))
	}
	if len(c.topFiles()) == 0 {
		s := c.session()
		p := fmt.Sprintf("t%d.bin", c.round)
		f := c.newContent(bigMin + c.rng.IntN(bigSpread))
		if err := put(c.ctx(), s, p, f, false); err != nil {
			c.failf("put /%s: %v", p, err)
		}
		s.Close()
		c.state.files[p] = f
		c.seen[p] = true
	}
}

func (c *crashTest) topFiles() []string {
	var top []string
	for p := range c.state.files {
		if !strings.Contains(p, "/") {
			top = append(top, p)
		}
	}
	slices.Sort(top)
	return top
}

// crash runs an operation of a random kind on a logged-in session, kills
// the server with SIGKILL after a random delay from its first request (up
// to 1.3 times a running estimate of how long the operation takes
// un-killed, so that most kills land inside it), and checks the server
// started again.
func (c *crashTest) crash() {
	// Puts twice as often: they have the most steps inside.
	kinds := []string{"put new", "put new", "put over", "put over", "mv file", "mv folder", "rm folder", "rm file"}
	if len(c.state.files) >= maxFiles {
		kinds = kinds[2:]
	}
	var kind string
	var steps []crashStep
	for kind == "" || steps == nil {
		kind = kinds[c.rng.IntN(len(kinds))]
		steps = c.opOf(kind)
	}
	// States[i] is the space after steps[:i].
	states := []*fsState{c.state}
	for _, st := range steps {
		next := states[len(states)-1].clone()
		st.apply(next)
		states = append(states, next)
	}
	var descs []string
	for _, st := range steps {
		descs = append(descs, st.desc)
	}
	delay := time.Duration(c.rng.Float64() * 1.3 * float64(c.est[kind]))
	c.what = fmt.Sprintf("%s (%s), SIGKILL %v after its first request", kind, strings.Join(descs, ", then "), delay)

	s := c.session()
	type result struct {
		acked int
		err   error
		took  time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var r result
		for _, st := range steps {
			if r.err = st.do(c.ctx(), s); r.err != nil {
				break
			}
			r.acked++
		}
		r.took = time.Since(start)
		done <- r
	}()
	var r result
	finished := false
	select {
	case r = <-done:
		finished = true
		// Done before the delay: kill now, while it is idle.
	case <-time.After(delay):
	}
	c.srv.kill()
	if !finished {
		select {
		case r = <-done:
		case <-time.After(2 * time.Minute):
			c.failf("the operation did not end within 2 minutes of the kill")
		}
	}
	s.Close()
	if le := (*client.LNPError)(nil); errors.As(r.err, &le) || finished && r.err != nil {
		// A refusal is the server's answer, not the kill's doing.
		c.failf("%s failed: %v", steps[r.acked].desc, r.err)
	}
	if r.err == nil {
		// Learn how long the operation takes on this machine now.
		c.est[kind] = (c.est[kind] + r.took) / 2
	}
	c.kills[kind]++
	c.what += fmt.Sprintf("; %d of %d steps acknowledged", r.acked, len(steps))
	if r.err != nil {
		c.what += fmt.Sprintf(" (the next failed: %v)", r.err)
	}
	c.check(states, r.acked)
}

// opOf returns the steps of an operation of kind on the current state, or
// nil if the state has nothing for it.
func (c *crashTest) opOf(kind string) []crashStep {
	files := pathsOf(c.state.files)
	dirs := pathsOf(c.state.dirs)
	pick := func(list []string) string { return list[c.rng.IntN(len(list))] }
	// A new name, at the top or in a folder.
	newPath := func(prefix string) string {
		dir, name := "", fmt.Sprintf("%s%d.bin", prefix, c.round)
		if len(dirs) > 0 && c.rng.IntN(2) == 0 {
			dir = pick(dirs) + "/"
		}
		for c.state.files[dir+name] != nil {
			name = "x" + name
		}
		return dir + name
	}
	switch kind {
	case "put new":
		p := newPath("n")
		f := c.newContent(bigMin + c.rng.IntN(bigSpread))
		c.seen[p] = true
		return []crashStep{c.putStep(p, f, false)}
	case "put over":
		if len(files) == 0 {
			return nil
		}
		p := pick(files)
		size := len(c.state.files[p].data) // same size half the time
		if c.rng.IntN(2) == 0 {
			size = bigMin + c.rng.IntN(bigSpread)
		}
		return []crashStep{c.putStep(p, c.newContent(size), true)}
	case "mv file":
		if len(files) == 0 {
			return nil
		}
		from, to := pick(files), newPath("m")
		c.seen[to] = true
		return []crashStep{{
			desc: fmt.Sprintf("mv /%s /%s", from, to),
			do:   func(ctx context.Context, s *client.Session) error { return s.Rename(ctx, "/"+from, "/"+to, false) },
			apply: func(st *fsState) {
				st.files[to] = st.files[from]
				delete(st.files, from)
			},
		}}
	case "mv folder":
		if len(dirs) == 0 {
			return nil
		}
		from := pick(dirs)
		to := fmt.Sprintf("mv%d", c.round)
		for p := range c.state.files {
			if rest, ok := strings.CutPrefix(p, from+"/"); ok {
				c.seen[to+"/"+rest] = true
			}
		}
		return []crashStep{{
			desc: fmt.Sprintf("mv /%s /%s (%d files)", from, to, len(c.filesIn(from))),
			do:   func(ctx context.Context, s *client.Session) error { return s.Rename(ctx, "/"+from, "/"+to, false) },
			apply: func(st *fsState) {
				for p, f := range st.files {
					if rest, ok := strings.CutPrefix(p, from+"/"); ok {
						delete(st.files, p)
						st.files[to+"/"+rest] = f
					}
				}
				delete(st.dirs, from)
				st.dirs[to] = true
			},
		}}
	case "rm file":
		if len(files) == 0 {
			return nil
		}
		p := pick(files)
		return []crashStep{c.rmStep(p, false)}
	case "rm folder":
		if len(dirs) == 0 {
			return nil
		}
		d := pick(dirs)
		var steps []crashStep
		for _, p := range c.filesIn(d) {
			steps = append(steps, c.rmStep(p, false))
		}
		return append(steps, c.rmStep(d, true))
	}
	panic("unknown kind " + kind)
}

// filesIn returns the files of folder d (the test makes no sub-folders).
func (c *crashTest) filesIn(d string) []string {
	var in []string
	for p := range c.state.files {
		if strings.HasPrefix(p, d+"/") {
			in = append(in, p)
		}
	}
	slices.Sort(in)
	return in
}

func (c *crashTest) putStep(p string, f *content, overwrite bool) crashStep {
	desc := fmt.Sprintf("put /%s (%d bytes)", p, len(f.data))
	if overwrite {
		desc = fmt.Sprintf("put -f /%s (%d bytes over %d)", p, len(f.data), len(c.state.files[p].data))
	}
	return crashStep{
		desc:  desc,
		do:    func(ctx context.Context, s *client.Session) error { return put(ctx, s, p, f, overwrite) },
		apply: func(st *fsState) { st.files[p] = f },
	}
}

func (c *crashTest) rmStep(p string, dir bool) crashStep {
	return crashStep{
		desc: "rm /" + p,
		do:   func(ctx context.Context, s *client.Session) error { return s.Delete(ctx, "/"+p) },
		apply: func(st *fsState) {
			if dir {
				delete(st.dirs, p)
			} else {
				delete(st.files, p)
			}
		},
	}
}

func put(ctx context.Context, s *client.Session, p string, f *content, overwrite bool) error {
	// Resume, as larder put does by default.
	_, err := s.Put(ctx, "/"+p, bytes.NewReader(f.data), int64(len(f.data)), client.PutOptions{Overwrite: overwrite, Resume: true})
	return err
}

func (c *crashTest) newContent(n int) *content {
	var seed [32]byte
	for i := range 4 {
		v := c.rng.Uint64()
		for j := range 8 {
			seed[8*i+j] = byte(v >> (8 * j))
		}
	}
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return &content{data: b, sum: sha256.Sum256(b)}
}

// ctx is the context of requests and checks: the test's. A session gives
// up on a server silent for a minute.
func (c *crashTest) ctx() context.Context { return c.t.Context() }

// check starts the server on the data folder and checks that its
// listing, the disk and the records all show one of states, at or after
// states[acked], and that usage and quota agree with the disk. It leaves
// the server stopped, and makes that state the test's.
//
// The server runs with quotas that the largest of states, plus one file of
// a random size, fills exactly: once the listing tells which state the
// space is in, an upload that fills the quota exactly must be taken, and
// one of a byte more refused.
func (c *crashTest) check(states []*fsState, acked int) {
	c.t.Helper()
	var most larder.Usage
	for _, st := range states[acked:] {
		u := st.tree().usage()
		most.Bytes, most.Files = max(most.Bytes, u.Bytes), max(most.Files, u.Files)
	}
	quota := larder.Quota{Bytes: most.Bytes + 1 + c.rng.Int64N(256<<10), Files: most.Files + 1}
	c.start("--quota-bytes", strconv.FormatInt(quota.Bytes, 10), "--quota-files", strconv.FormatInt(quota.Files, 10))
	s := c.session()
	shown, err := c.listSpace(s)
	if err != nil {
		c.failf("after the restart, listing the space: %v", err)
	}
	at := -1
	for i := acked; i < len(states); i++ {
		if shown.diff(states[i].tree()) == "" {
			at = i
			break
		}
	}
	if at < 0 {
		var why []string
		for i := acked; i < len(states); i++ {
			why = append(why, fmt.Sprintf("after %d steps: %s", i, shown.diff(states[i].tree())))
		}
		s.Close()
		c.failf("after the restart, LNP/1 lists a space that is no state the operation passes through (from the last acknowledged one):\n  %s\n%s",
			strings.Join(why, "\n  "), c.evidence(states))
	}
	want := states[at]

	// Stat and get each file the operation touched, and one other.
	var touched []string
	for p, f := range want.files {
		if states[0].files[p] != f || states[len(states)-1].files[p] != f {
			touched = append(touched, p)
		}
	}
	if all := pathsOf(want.files); len(all) > 0 {
		touched = append(touched, all[c.rng.IntN(len(all))])
	}
	slices.Sort(touched)
	for _, p := range slices.Compact(touched) {
		f := want.files[p]
		e, err := s.Stat(c.ctx(), "/"+p)
		if err != nil {
			c.failf("after the restart (the space as after %d steps), stat /%s: %v", at, p, err)
		}
		if got, w := (fileView{size: int64(e.Size), sum: e.SHA256}), (fileView{size: int64(len(f.data)), sum: f.sum}); e.Dir || got != w {
			c.failf("after the restart, stat /%s: got %v (folder %v), want %v", p, got, e.Dir, w)
		}
		var b bytes.Buffer
		if _, err := s.Get(c.ctx(), "/"+p, 0, &b, nil); err != nil {
			c.failf("after the restart, get /%s: %v", p, err)
		}
		if got := sha256.Sum256(b.Bytes()); got != f.sum {
			c.failf("after the restart, get /%s: got %d bytes of SHA-256 %x, want %d bytes of %x", p, b.Len(), got[:6], len(f.data), f.sum[:6])
		}
	}

	// Unfinished uploads hold their size against the quota; cancelled,
	// the space holds its files alone.
	if _, err := s.Cancel(c.ctx(), ""); err != nil {
		c.failf("after the restart, cancel unfinished uploads: %v", err)
	}
	if parts, err := s.Parts(c.ctx()); err != nil || len(parts) > 0 {
		c.failf("after the restart and a cancel of every unfinished upload, parts: got %+v, %v; want none", parts, err)
	}
	who, err := s.Whoami(c.ctx())
	if err != nil {
		c.failf("after the restart, whoami: %v", err)
	}
	s.Close()
	u := want.tree().usage()
	fit := int(quota.Bytes - u.Bytes)
	probe := c.newContent(fit + 1)
	tooBig := c.probe(probe)
	fits := c.probe(probe.prefix(fit))
	c.stop()

	onDisk, err := c.diskSpace()
	if err != nil {
		c.failf("reading the space's tree on disk: %v", err)
	}
	var bad []string
	if d := onDisk.diff(want.tree()); d != "" {
		bad = append(bad, "the disk disagrees with what LNP/1 lists: "+d)
	}
	du := onDisk.usage()
	if got := (larder.Usage{Bytes: int64(who.BytesUsed), Files: int64(who.FilesUsed)}); got != du {
		bad = append(bad, fmt.Sprintf("whoami reports a usage of %d bytes in %d files; the disk holds %d bytes in %d files", got.Bytes, got.Files, du.Bytes, du.Files))
	}

	if le := (*client.LNPError)(nil); !errors.As(tooBig, &le) || le.Status != lnp.StatusQuotaExceeded {
		bad = append(bad, fmt.Sprintf("with a quota of %d bytes and %d files, an upload of %d bytes got %v, want QUOTA_EXCEEDED", quota.Bytes, quota.Files, fit+1, tooBig))
	}
	if fits != nil {
		bad = append(bad, fmt.Sprintf("with a quota of %d bytes and %d files, an upload of %d bytes, which fits, got %v", quota.Bytes, quota.Files, fit, fits))
	}

	db := c.openDB()
	defer db.Close()
	store := sqlite.NewFileStore(db)
	if u, err := store.SpaceUsage(c.ctx(), c.key); err != nil || u != du {
		bad = append(bad, fmt.Sprintf("the records' usage of the space is %d bytes in %d files (%v); the disk holds %d bytes in %d files", u.Bytes, u.Files, err, du.Bytes, du.Files))
	}
	paths := append(pathsOf(c.seen), pathsOf(want.files)...)
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		rec, err := store.FileByPath(c.ctx(), c.key, p)
		f := want.files[p]
		switch {
		case f == nil && larder.ErrorCode(err) == larder.ENOTFOUND:
		case f == nil && err == nil:
			bad = append(bad, fmt.Sprintf("record of %s: %v, and no such file", p, fileView{rec.Size, rec.SHA256}))
		case f != nil && err == nil && (rec.Size != int64(len(f.data)) || rec.SHA256 != f.sum):
			bad = append(bad, fmt.Sprintf("record of %s: %v, want %v", p, fileView{rec.Size, rec.SHA256}, fileView{int64(len(f.data)), f.sum}))
		case f != nil && err != nil:
			bad = append(bad, fmt.Sprintf("record of %s: %v, want %v", p, err, fileView{int64(len(f.data)), f.sum}))
		case err != nil && larder.ErrorCode(err) != larder.ENOTFOUND:
			bad = append(bad, fmt.Sprintf("record of %s: %v", p, err))
		}
	}
	if len(bad) > 0 {
		c.failf("after the restart, LNP/1 lists the space as after %d steps, but:\n  %s", at, strings.Join(bad, "\n  "))
	}
	c.state = want
}

// evidence stops the server and says what the disk and the records hold
// at each path that the states do not agree on.
func (c *crashTest) evidence(states []*fsState) string {
	var paths []string
	for _, st := range states {
		for p, f := range st.files {
			for _, other := range states {
				if other.files[p] != f {
					paths = append(paths, p)
				}
			}
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	if err := c.srv.stop(); err != nil {
		return "stopping the server for evidence: " + err.Error()
	}
	onDisk, err := c.diskSpace()
	if err != nil {
		return "reading the disk for evidence: " + err.Error()
	}
	db := c.openDB()
	defer db.Close()
	store := sqlite.NewFileStore(db)
	var lines []string
	for _, p := range paths {
		disk, rec := "absent", "none"
		if f, ok := onDisk.files[p]; ok {
			disk = f.String()
		}
		if r, err := store.FileByPath(c.ctx(), c.key, p); err == nil {
			rec = fileView{r.Size, r.SHA256}.String()
		} else if larder.ErrorCode(err) != larder.ENOTFOUND {
			rec = err.Error()
		}
		lines = append(lines, fmt.Sprintf("%s: on disk %s; record %s", p, disk, rec))
	}
	return "  with the server stopped:\n    " + strings.Join(lines, "\n    ")
}

// probe uploads f as the probe of the quota, in a session of its own,
// and removes it if it was taken.
func (c *crashTest) probe(f *content) error {
	s := c.session()
	defer s.Close()
	err := put(c.ctx(), s, probeName, f, false)
	if err == nil {
		if err := s.Delete(c.ctx(), "/"+probeName); err != nil {
			c.failf("rm /%s: %v", probeName, err)
		}
	}
	return err
}

func (f *content) prefix(n int) *content {
	return &content{data: f.data[:n], sum: sha256.Sum256(f.data[:n])}
}

// listSpace lists the user's space over LNP/1, recursively, without the
// shared area.
func (c *crashTest) listSpace(s *client.Session) (*tree, error) {
	t := &tree{files: map[string]fileView{}, dirs: map[string]bool{}}
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := s.ListAll(c.ctx(), "/"+dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if dir == "" && e.Name == "shared" {
				continue
			}
			p := path.Join(dir, e.Name)
			if !e.Dir {
				t.files[p] = fileView{size: int64(e.Size), sum: e.SHA256}
				continue
			}
			t.dirs[p] = true
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	return t, walk("")
}

// diskSpace reads the space's tree on disk: every regular file with its
// SHA-256, every folder; anything else is an error.
func (c *crashTest) diskSpace() (*tree, error) {
	t := &tree{files: map[string]fileView{}, dirs: map[string]bool{}}
	err := filepath.WalkDir(c.tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.tree, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			t.dirs[rel] = true
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			t.files[rel] = fileView{size: int64(len(b)), sum: sha256.Sum256(b)}
		default:
			return fmt.Errorf("%s is a %v, neither a file nor a folder", p, d.Type())
		}
		return nil
	})
	return t, err
}

func (c *crashTest) openDB() *sqlite.DB {
	db, err := sqlite.Open(c.ctx(), filepath.Join(c.data, "larder.db"))
	if err != nil {
		c.failf("open the database: %v", err)
	}
	return db
}

// session logs alice in over LNP/1.
func (c *crashTest) session() *client.Session {
	c.t.Helper()
	conn, err := net.DialTimeout("tcp", c.srv.lnp, 30*time.Second)
	if err != nil {
		c.failf("dial LNP/1: %v", err)
	}
	s, err := client.NewSession(c.ctx(), conn, "alice", c.sig, client.SessionOptions{})
	if err != nil {
		c.failf("log in over LNP/1: %v", err)
	}
	return s
}

func (c *crashTest) start(args ...string) {
	c.t.Helper()
	var err error
	if c.srv, err = startCrashServer(c.t, c.data, c.files, args...); err != nil {
		c.failf("start the server: %v", err)
	}
}

func (c *crashTest) stop() {
	c.t.Helper()
	if err := c.srv.stop(); err != nil {
		c.failf("stop the server with SIGTERM: %v", err)
	}
}

// crashServer is "larder serve" as a child process on given folders, so
// that it can be killed and started again on them. LNP/1 is in plaintext:
// TLS changes nothing that is kept.
type crashServer struct {
	cmd         *exec.Cmd
	course, lnp string
	stderr      *lockedBuffer
	exited      chan struct{}
	err         error
}

var lnpPlainLine = regexp.MustCompile(`native protocol on (127\.0\.0\.1:\d+) IN PLAINTEXT`)

// startCrashServer starts larder serve and waits for it to say where it
// serves both protocols.
func startCrashServer(t *testing.T, data, files string, args ...string) (*crashServer, error) {
	return startServerArgs(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--insecure-plaintext-native",
		"--data", data, "--files", files, "--hash-memory", "64", "--hash-passes", "1",
		"--min-free", "0", "--shutdown-grace", "30s"}, args...))
}

// startServerArgs starts larder with args (serve, and a plaintext native
// protocol) and waits for it to say where it serves both protocols.
func startServerArgs(t *testing.T, args []string) (*crashServer, error) {
	p := &crashServer{stderr: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), "LARDER_TEST_RUN_MAIN=1")
	if os.Getenv("GORACE") == "" {
		// Under -race, each exit would sleep a second first.
		p.cmd.Env = append(p.cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(p.kill)

	type addrs struct{ course, lnp string }
	found := make(chan addrs, 1)
	go func() {
		var a addrs
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				a.course = m[1]
			}
			if m := lnpPlainLine.FindStringSubmatch(sc.Text()); m != nil {
				a.lnp = m[1]
			}
			if a.course != "" && a.lnp != "" {
				found <- a
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-found:
		p.course, p.lnp = a.course, a.lnp
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("larder serve exited (%v) before it served:\n%s", p.err, p.stderr)
	case <-time.After(time.Minute):
		p.kill()
		return nil, fmt.Errorf("larder serve did not say where it serves within a minute:\n%s", p.stderr)
	}
}

// kill kills the server with SIGKILL and waits for it to be gone.
func (p *crashServer) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop stops the server with SIGTERM, and returns an error unless it
// exits with status 0 within a minute.
func (p *crashServer) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("larder serve exited with %v:\n%s", p.err, tail(p.stderr.String(), 4000))
		}
		return nil
	case <-time.After(time.Minute):
		p.kill()
		return fmt.Errorf("larder serve did not exit within a minute of SIGTERM:\n%s", tail(p.stderr.String(), 4000))
	}
}
