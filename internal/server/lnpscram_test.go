package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// cheapKDF lets the client take the harness's cheap policy (cheapHash),
// far below what it accepts by default.
var cheapKDF = lnp.KDF{Memory: 8, Time: 1, Threads: 1}

func cheapLogin() client.LoginOptions { return client.LoginOptions{MinKDF: cheapKDF} }

// tlsConn opens a TLS connection to the server, pinning it on first use.
func (h *lnpHarness) tlsConn(t testing.TB) *tls.Conn {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: new(bytes.Buffer)})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	return conn
}

// loginPassword logs in with the channel-bound login.
func (h *lnpHarness) loginPassword(t testing.TB, user, password string) (*client.Session, error) {
	t.Helper()
	return client.Login(context.Background(), h.tlsConn(t), user, password, cheapLogin())
}

// enroll logs in with the course signature and enrolls the password.
func (h *lnpHarness) enroll(t testing.TB, user string, sig larder.Signature, password string) (*client.Session, error) {
	t.Helper()
	return client.Enroll(context.Background(), h.tlsConn(t), user, sig, password, cheapLogin())
}

func wantBadLogin(t *testing.T, what string, err error) {
	t.Helper()
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != lnp.StatusInvalidLogin || ne.Message != "unknown user or wrong password" {
		t.Fatalf("%s: got %v, want INVALID_LOGIN \"unknown user or wrong password\"", what, err)
	}
}

// TestLNPChannelBoundLogin walks an account made on the course port
// through the migration: the password alone does not open LNP/1 until the
// account is enrolled (with its course signature, once); then the
// password does, and the course signature no longer does, in either
// version of HELLO.
func TestLNPChannelBoundLogin(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	ctx := context.Background()

	_, err := h.loginPassword(t, "alice", "pw")
	wantBadLogin(t, "password login before enrollment", err)

	s, err := h.enroll(t, "alice", sig, "pw")
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.User != "alice" {
		t.Fatalf("whoami after enrolling: %+v, %v", w, err)
	}
	s.Close()
	u, err := h.users.UserByName(ctx, "alice")
	must(t, err)
	if !strings.HasPrefix(u.LNPCredential, "$lnp-scram$v=1$m=64,t=1,p=1$") {
		t.Fatalf("stored credential %q: want an lnp-scram credential at the policy", u.LNPCredential)
	}

	s, err = h.loginPassword(t, "alice", "pw")
	if err != nil {
		t.Fatalf("password login after enrollment: %v", err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.User != "alice" {
		t.Fatalf("whoami: %+v, %v", w, err)
	}
	s.Close()
	if after, _ := h.users.UserByName(ctx, "alice"); after.LNPCredential != u.LNPCredential {
		t.Errorf("a login at the policy changed the credential")
	}

	_, err = h.loginPassword(t, "alice", "wrong")
	wantBadLogin(t, "a wrong password", err)
	_, err = h.dial("alice", sig, 0)
	wantBadLogin(t, "the course signature in a HELLO of version 1 after enrollment", err)
	_, err = h.enroll(t, "alice", sig, "other")
	wantBadLogin(t, "the course signature in a HELLO of version 2 after enrollment", err)

	// The course protocol is unchanged.
	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("course"), 0o644))
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	var got bytes.Buffer
	if _, err := c.Retrieve(ctx, "alice", sig, "f.txt", &got); err != nil || got.String() != "course" {
		t.Fatalf("course retrieve after enrollment: %q, %v", got.String(), err)
	}
}

// TestLNPCourseSignatureReplay is the attack of the issue: a sniffer of
// one plaintext course request takes its bytes 16–48, the signature, and
// sends them as an LNP/1 login from a new connection. Once the account is
// enrolled that is refused; and while the window for signatures is
// closed, it is refused for an account not enrolled too.
func TestLNPCourseSignatureReplay(t *testing.T) {
	h := newLNPHarness(t)
	h.register(t, "alice", "pw")
	// The request as the course client sends it: name, signature, length,
	// path.
	sig := larder.NewSignature("pw", course.CourseSalt)
	req := append(append([]byte("alice"), make([]byte, 11)...), sig[:]...)
	req = append(append(req, 0, 0, 0, 10), "secret.txt"...)
	var sniffed larder.Signature
	copy(sniffed[:], req[16:48])

	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()
	_, err = h.dial("alice", sniffed, 0)
	wantBadLogin(t, "a sniffed course signature, HELLO version 1", err)
	_, err = h.enroll(t, "alice", sniffed, "attacker's")
	wantBadLogin(t, "a sniffed course signature, HELLO version 2", err)

	closed := newLNPHarness(t, func(s *server.Server) { s.CloseSignatureLogins = true })
	closed.register(t, "bob", "pw")
	bobSig := larder.NewSignature("pw", course.CourseSalt)
	_, err = closed.dial("bob", bobSig, 0)
	wantBadLogin(t, "a course signature with the window closed, HELLO version 1", err)
	_, err = closed.enroll(t, "bob", bobSig, "pw")
	wantBadLogin(t, "a course signature with the window closed, HELLO version 2", err)
}

// recorder keeps what a client writes above TLS: what a sniffer who
// could read the traffic, or the server's own logs, would hold.
type recorder struct {
	net.Conn
	mu    sync.Mutex
	wrote bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.wrote.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) ConnectionState() tls.ConnectionState {
	return r.Conn.(*tls.Conn).ConnectionState()
}

// frames splits a recording into its frames.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := lnp.NewReader(bytes.NewReader(b))
	for {
		typ, body, err := r.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		out = append(out, append([]byte{byte(typ)}, body...))
	}
}

// sendFrames sends recorded frames on a new TLS connection and returns
// the server's WELCOME, skipping the frames before it.
func (h *lnpHarness) sendFrames(t *testing.T, recorded [][]byte) lnp.Welcome {
	t.Helper()
	conn := h.tlsConn(t)
	defer conn.Close()
	w := lnp.NewWriter(conn, 0)
	for _, f := range recorded {
		must(t, w.WriteFrame(lnp.Type(f[0]), f[1:]))
	}
	must(t, w.Flush())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := lnp.NewReader(conn)
	for {
		typ, body, err := r.Next()
		if err != nil {
			t.Fatalf("reading the answer to a replay: %v", err)
		}
		if typ == lnp.TypeWelcome {
			wl, err := lnp.ParseWelcome(body)
			must(t, err)
			return wl
		}
	}
}

// TestLNPReplayFromNewConnection: everything a client sent to log in,
// read in the clear above TLS, replayed from a new connection, is refused.
func TestLNPReplayFromNewConnection(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()

	rec := &recorder{Conn: h.tlsConn(t)}
	s, err = client.Login(context.Background(), rec, "alice", "pw", cheapLogin())
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	s.Close()
	sent := frames(t, rec.wrote.Bytes())
	if len(sent) != 2 || lnp.Type(sent[0][0]) != lnp.TypeHello || lnp.Type(sent[1][0]) != lnp.TypeProof {
		t.Fatalf("the client sent %d frames; want HELLO and PROOF", len(sent))
	}
	if bytes.Contains(rec.wrote.Bytes(), sig[:]) || bytes.Contains(rec.wrote.Bytes(), []byte("pw")) {
		t.Fatal("the channel-bound login sent the course signature or the password")
	}
	if w := h.sendFrames(t, sent); w.Status != lnp.StatusInvalidLogin {
		t.Fatalf("replayed HELLO and PROOF: WELCOME %v %q, want INVALID_LOGIN", w.Status, w.Message)
	}
}

// relay is a man in the middle met on first use: it shows the client a
// certificate of its own, which the client pins, and passes every byte
// on over its own TLS connection to the real server, recording what the
// client sends.
type relay struct {
	addr     string
	mu       sync.Mutex
	fromUser bytes.Buffer
	wg       sync.WaitGroup
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	id, err := tlsconf.LoadOrCreate(filepath.Join(t.TempDir(), "evil"))
	must(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", id.ServerConfig())
	must(t, err)
	r := &relay{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := tls.Dial("tcp", target, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			if err != nil {
				c.Close()
				continue
			}
			r.wg.Go(func() {
				io.Copy(up, io.TeeReader(c, writerFunc(func(p []byte) (int, error) {
					r.mu.Lock()
					defer r.mu.Unlock()
					return r.fromUser.Write(p)
				})))
				up.Close()
			})
			r.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	return r
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestLNPRelay: a relay met on first use passes the login on, byte for
// byte, to the real server: the proof is bound to the client's TLS
// connection with the relay, not to the relay's with the server, so the
// server refuses it; and what the relay recorded opens nothing when it is
// replayed either.
func TestLNPRelay(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()
	r := startRelay(t, h.addr)

	known := clientconf.Open(t.TempDir()).KnownServers()
	cfg, err := tlsconf.ClientConfig(r.addr, known, tlsconf.ClientOptions{Warn: new(bytes.Buffer)})
	must(t, err)
	conn, err := tls.Dial("tcp", r.addr, cfg)
	must(t, err)
	_, err = client.Login(context.Background(), conn, "alice", "pw", cheapLogin())
	wantBadLogin(t, "a login through a relay", err)

	r.mu.Lock()
	sent := frames(t, r.fromUser.Bytes())
	r.mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("the relay saw %d frames from the client; want HELLO and PROOF", len(sent))
	}
	if w := h.sendFrames(t, sent); w.Status != lnp.StatusInvalidLogin {
		t.Fatalf("the relay's recording replayed: WELCOME %v %q, want INVALID_LOGIN", w.Status, w.Message)
	}
}

// TestLNPFakeServerFirstUse: a fake server met on first use asks the real
// server for the user's salt and cost, challenges the client with them,
// and gets a proof; it cannot answer with the server's signature, so the
// client refuses it (ErrServerProof), and the proof, sent to the real
// server from a new connection, is refused.
func TestLNPFakeServerFirstUse(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()

	id, err := tlsconf.LoadOrCreate(filepath.Join(t.TempDir(), "fake"))
	must(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", id.ServerConfig())
	must(t, err)
	defer ln.Close()
	captured := make(chan [][]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, w := lnp.NewReader(c), lnp.NewWriter(c, 0)
		_, hello, err := r.Next()
		if err != nil {
			return
		}
		hello = append([]byte(nil), hello...)
		// The real challenge's salt and cost, asked of the real server.
		real := h.tlsConn(t)
		rw, rr := lnp.NewWriter(real, 0), lnp.NewReader(real)
		rw.WriteFrame(lnp.TypeHello, hello)
		rw.Flush()
		_, chBody, _ := rr.Next()
		real.Close()
		ch, _ := lnp.ParseChallenge(chBody)
		w.Write(ch)
		w.Flush()
		_, proof, err := r.Next()
		if err != nil {
			return
		}
		captured <- [][]byte{append([]byte{byte(lnp.TypeHello)}, hello...), append([]byte{byte(lnp.TypeProof)}, proof...)}
		w.Write(lnp.Verified{})
		w.Write(lnp.Welcome{Status: lnp.StatusOK, BlockSize: lnp.DefaultBlockSize})
		w.Flush()
	}()

	known := clientconf.Open(t.TempDir()).KnownServers()
	cfg, err := tlsconf.ClientConfig(ln.Addr().String(), known, tlsconf.ClientOptions{Warn: new(bytes.Buffer)})
	must(t, err)
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	must(t, err)
	if _, err := client.Login(context.Background(), conn, "alice", "pw", cheapLogin()); !errors.Is(err, client.ErrServerProof) {
		t.Fatalf("login to a fake server: got %v, want ErrServerProof", err)
	}
	var sent [][]byte
	select {
	case sent = <-captured:
	case <-time.After(10 * time.Second):
		t.Fatal("the fake server captured no proof")
	}
	if w := h.sendFrames(t, sent); w.Status != lnp.StatusInvalidLogin {
		t.Fatalf("the fake server's capture replayed: WELCOME %v %q, want INVALID_LOGIN", w.Status, w.Message)
	}
}

// challenge sends a HELLO of version 2 for user and returns the CHALLENGE,
// and the WELCOME that a bogus proof gets, with the time each took.
func (h *lnpHarness) challenge(t testing.TB, user string) (lnp.Challenge, lnp.Welcome, time.Duration, time.Duration) {
	t.Helper()
	return h.challengeHello(t, lnp.Hello2{User: user, Method: lnp.MethodPassword, MaxBlock: lnp.DefaultBlockSize})
}

// challengeHello is challenge for the HELLO hello.
func (h *lnpHarness) challengeHello(t testing.TB, hello lnp.Hello2) (lnp.Challenge, lnp.Welcome, time.Duration, time.Duration) {
	t.Helper()
	user := hello.User
	conn := h.tlsConn(t)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	start := time.Now()
	must(t, w.Write(hello))
	must(t, w.Flush())
	typ, body, err := r.Next()
	if err != nil || typ != lnp.TypeChallenge {
		t.Fatalf("HELLO as %s: %v %v, want a CHALLENGE", user, typ, err)
	}
	dChallenge := time.Since(start)
	ch, err := lnp.ParseChallenge(body)
	must(t, err)
	start = time.Now()
	must(t, w.Write(lnp.Proof{}))
	must(t, w.Flush())
	typ, body, err = r.Next()
	if err != nil || typ != lnp.TypeWelcome {
		t.Fatalf("PROOF as %s: %v %v, want a WELCOME", user, typ, err)
	}
	dProof := time.Since(start)
	wl, err := lnp.ParseWelcome(body)
	must(t, err)
	return ch, wl, dChallenge, dProof
}

// TestLNPNoEnumeration: a name without an account, an account not
// enrolled yet and an enrolled one get challenges of one shape (a 16-byte
// salt, stable for the name, and the policy's cost) and one answer to a
// wrong proof; and the time of neither step tells them apart.
func TestLNPNoEnumeration(t *testing.T) {
	// No throttle: the test makes hundreds of wrong logins on purpose.
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "unthrottled.db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	h := newLNPHarness(t, func(s *server.Server) {
		s.Auth = auth.New(sqlite.NewUserStore(db), auth.NewHasher(cheapHash, nil, 0), auth.NewCache(0, 0), nil)
	})
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()
	h.register(t, "bob", "pw")

	names := []string{"alice", "bob", "nobody"}
	first := map[string]lnp.Challenge{}
	for _, name := range names {
		ch, wl, _, _ := h.challenge(t, name)
		again, _, _, _ := h.challenge(t, name)
		if !bytes.Equal(ch.Salt, again.Salt) || ch.KDF != again.KDF {
			t.Errorf("%s: two challenges with salt %x %v, then %x %v; want the same", name, ch.Salt, ch.KDF, again.Salt, again.KDF)
		}
		if len(ch.Salt) != auth.LNPSaltLen || ch.KDF != (lnp.KDF{Memory: cheapHash.Memory, Time: cheapHash.Time, Threads: cheapHash.Threads}) {
			t.Errorf("%s: challenge with a %d-byte salt at %v; want %d bytes at the policy", name, len(ch.Salt), ch.KDF, auth.LNPSaltLen)
		}
		if wl.Status != lnp.StatusInvalidLogin || wl.Message != "unknown user or wrong password" {
			t.Errorf("%s: a wrong proof is answered %v %q", name, wl.Status, wl.Message)
		}
		first[name] = ch
	}
	if bytes.Equal(first["bob"].Salt, first["nobody"].Salt) {
		t.Error("two names without a credential get the same salt")
	}

	// Timing: the lower quartiles, which an attacker would compare (the
	// noise of a loaded machine only adds), must agree within 60 µs:
	// without the server's care a name that does not exist was answered
	// 160 µs later than one that does.
	steps := []string{"HELLO to CHALLENGE", "PROOF to WELCOME"}
	timedAlike(t, names, steps, func(lo time.Duration) time.Duration { return 60 * time.Microsecond },
		func(name string) []time.Duration {
			_, _, dc, dp := h.challenge(t, name)
			return []time.Duration{dc, dp}
		})
}

// timedAlike times exchange, which returns the time of each of its steps,
// for each name in rounds, in an order shuffled each round so that the
// machine's load falls on each alike, and fails t if the names' lower
// quartiles of a step differ by more than within(the lowest). Other work
// on a shared machine can part them for a while, so a difference is
// measured again, up to three times in all: one the server makes is
// there every time.
func timedAlike(t *testing.T, names, steps []string, within func(lo time.Duration) time.Duration, exchange func(name string) []time.Duration) {
	t.Helper()
	const rounds, tries = 200, 3
	for try := 1; ; try++ {
		times := make(map[string][][]time.Duration)
		order := slices.Clone(names)
		for range rounds {
			mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, name := range order {
				d := exchange(name)
				if times[name] == nil {
					times[name] = make([][]time.Duration, len(steps))
				}
				for i := range steps {
					times[name][i] = append(times[name][i], d[i])
				}
			}
		}
		var apart []string
		for i, step := range steps {
			var qs []time.Duration
			for _, name := range names {
				qs = append(qs, quartile(times[name][i]))
			}
			lo, hi := slices.Min(qs), slices.Max(qs)
			line := fmt.Sprintf("%s: lower quartiles %v of %v", step, qs, names)
			t.Logf("try %d: %s", try, line)
			if hi-lo > within(lo) {
				apart = append(apart, fmt.Sprintf("%s differ by %v", line, hi-lo))
			}
		}
		if len(apart) == 0 {
			return
		}
		if try == tries {
			t.Errorf("in each of %d tries the names were told apart; the last: %s", tries, strings.Join(apart, "; "))
			return
		}
	}
}

// quartile returns the lower quartile of d.
func quartile(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/4]
}

// TestLNPRenewAtPolicy: an account whose credential is below the policy
// gets VERIFIED with Renew at its next login, and the client's fresh
// credential, at the policy, replaces it; the session goes on.
func TestLNPRenewAtPolicy(t *testing.T) {
	h := newLNPHarness(t)
	h.register(t, "alice", "pw")
	ctx := context.Background()
	weak := auth.Params{Memory: 32, Time: 1, Threads: 1}
	salt := []byte("0123456789abcdef")
	keys := lnp.DeriveKeys(lnp.SaltedKey("pw", salt, lnp.KDF{Memory: 32, Time: 1, Threads: 1}))
	v, err := auth.NewHasher(cheapHash, nil, 1).SealLNP("alice", salt, weak, auth.LNPKeys{StoredKey: keys.StoredKey, ServerKey: keys.ServerKey})
	must(t, err)
	u, err := h.users.UserByName(ctx, "alice")
	must(t, err)
	must(t, h.users.SetLNPCredential(ctx, "alice", u.ID, 0, "", v))
	before, _ := h.users.UserByName(ctx, "alice")

	s, err := h.loginPassword(t, "alice", "pw")
	if err != nil {
		t.Fatalf("login at m=32: %v", err)
	}
	if _, err := s.Whoami(ctx); err != nil {
		t.Fatalf("whoami after the renewal: %v", err)
	}
	s.Close()
	u, _ = h.users.UserByName(ctx, "alice")
	if !strings.HasPrefix(u.LNPCredential, "$lnp-scram$v=1$m=64,t=1,p=1$") || u.CredentialGen != before.CredentialGen {
		t.Fatalf("after the login: credential %q, generation %d; want one at m=64, generation %d", u.LNPCredential, u.CredentialGen, before.CredentialGen)
	}
	s, err = h.loginPassword(t, "alice", "pw")
	if err != nil {
		t.Fatalf("login with the renewed credential: %v", err)
	}
	s.Close()
}

// TestLNPClientRefusesCheapKDF: a server (or an impostor) that asks for
// less argon2id than the client accepts gets no proof.
func TestLNPClientRefusesCheapKDF(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	must(t, err)
	s.Close()
	rec := &recorder{Conn: h.tlsConn(t)}
	_, err = client.Login(context.Background(), rec, "alice", "pw", client.LoginOptions{})
	if err == nil || !strings.Contains(err.Error(), "below the least this client accepts") {
		t.Fatalf("login to a server asking for m=64,t=1: got %v, want a refusal", err)
	}
	if sent := frames(t, rec.wrote.Bytes()); len(sent) != 1 {
		t.Fatalf("the client sent %d frames; want only the HELLO", len(sent))
	}
}

// TestLNPRegister: an account made over LNP/1 logs in at once, has its
// LNP/1 credential and, for the course protocol, the signature it was
// made with; a taken name is CONFLICT, and closed registration is
// respected.
func TestLNPRegister(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	sig := larder.NewSignature("pw", course.CourseSalt)
	s, err := client.Register(ctx, h.tlsConn(t), "carol", sig, "pw", cheapLogin())
	if err != nil {
		t.Fatalf("register over LNP/1: %v", err)
	}
	if w, err := s.Whoami(ctx); err != nil || w.User != "carol" {
		t.Fatalf("whoami after registering: %+v, %v", w, err)
	}
	s.Close()
	if u, err := h.users.UserByName(ctx, "carol"); err != nil || u.LNPCredential == "" {
		t.Fatalf("the account made over LNP/1: %+v, %v; want one with an LNP/1 credential", u, err)
	}
	s, err = h.loginPassword(t, "carol", "pw")
	if err != nil {
		t.Fatalf("password login after registering: %v", err)
	}
	s.Close()
	_, err = h.dial("carol", sig, 0)
	wantBadLogin(t, "the course signature of an account made over LNP/1", err)
	must(t, os.WriteFile(filepath.Join(h.files, "f.txt"), []byte("course"), 0o644))
	c, err := client.Dial(ctx, h.courseAddr)
	must(t, err)
	defer c.Close()
	var got bytes.Buffer
	if _, err := c.Retrieve(ctx, "carol", sig, "f.txt", &got); err != nil || got.String() != "course" {
		t.Fatalf("course retrieve of an account made over LNP/1: %q, %v", got.String(), err)
	}

	_, err = client.Register(ctx, h.tlsConn(t), "carol", sig, "other", cheapLogin())
	wantLNPStatus(t, "registering a taken name", err, lnp.StatusConflict)
	_, err = client.Register(ctx, h.tlsConn(t), "a/b\u202e", sig, "pw", cheapLogin())
	wantLNPStatus(t, "registering a name that does not show as itself", err, lnp.StatusBadRequest)

	closed := newLNPHarness(t, func(s *server.Server) { s.ClosedRegistration = true })
	_, err = client.Register(ctx, closed.tlsConn(t), "dave", sig, "pw", cheapLogin())
	var ne *client.LNPError
	if !errors.As(err, &ne) || ne.Status != lnp.StatusDenied || !strings.Contains(ne.Message, "registration is closed") {
		t.Fatalf("registering with registration closed: got %v, want DENIED saying it is closed", err)
	}
	if _, err := closed.users.UserByName(ctx, "dave"); larder.ErrorCode(err) != larder.ENOTFOUND {
		t.Fatalf("registration closed, yet dave: %v", err)
	}
}

// enrollAcross begins an enrollment of alice, registered with the
// password "old", with her course signature; runs change on another
// handle of the store once the server has answered VERIFIED; then sends
// the ENROLL of the old password and returns the WELCOME it gets.
func (h *lnpHarness) enrollAcross(t *testing.T, change func(users *sqlite.UserStore)) lnp.Welcome {
	t.Helper()
	sig := h.register(t, "alice", "old")
	conn := h.tlsConn(t)
	defer conn.Close()
	w, r := lnp.NewWriter(conn, 4096), lnp.NewReader(conn)
	must(t, w.Write(lnp.Hello2{User: "alice", Method: lnp.MethodSignature, Nonce: sig, MaxBlock: lnp.DefaultBlockSize}))
	must(t, w.Flush())
	typ, body, err := r.Next()
	must(t, err)
	v, err := lnp.ParseVerified(body)
	if typ != lnp.TypeVerified || err != nil || !v.Renew {
		t.Fatalf("HELLO with the signature: got %v %+v (%v), want VERIFIED with renew", typ, v, err)
	}

	users, _ := h.otherStore(t)
	change(users)

	salt := []byte("0123456789abcdef")
	keys := lnp.DeriveKeys(lnp.SaltedKey("old", salt, v.KDF))
	must(t, w.Write(lnp.Enroll{Salt: salt, KDF: v.KDF, StoredKey: keys.StoredKey, ServerKey: keys.ServerKey}))
	must(t, w.Flush())
	typ, body, err = r.Next()
	must(t, err)
	wel, err := lnp.ParseWelcome(body)
	if typ != lnp.TypeWelcome || err != nil {
		t.Fatalf("ENROLL: got %v %+v (%v), want WELCOME", typ, wel, err)
	}
	return wel
}

// TestLNPEnrollAcrossPasswordChange: an enrollment begun with the old
// signature whose ENROLL arrives after an administrator reset the
// password stores nothing: the old password must not go on opening LNP/1
// (nor lock the new one out of it by making the account enrolled).
func TestLNPEnrollAcrossPasswordChange(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	wel := h.enrollAcross(t, func(users *sqlite.UserStore) {
		u, err := users.UserByName(ctx, "alice")
		must(t, err)
		must(t, users.ReplaceVerifier(ctx, "alice", u.Verifier, "an administrator's reset"))
	})
	if wel.Status != lnp.StatusConflict {
		t.Fatalf("ENROLL after the reset: got WELCOME %+v, want CONFLICT", wel)
	}
	if u, err := h.users.UserByName(ctx, "alice"); err != nil || u.LNPCredential != "" {
		t.Fatalf("after the refused ENROLL: credential %q (%v), want none", u.LNPCredential, err)
	}
	_, err := h.loginPassword(t, "alice", "old")
	wantBadLogin(t, "the old password after the reset", err)
}

// TestLNPLoginKeptKey logs in with a salted key kept from an earlier
// login (LoginOptions.SaltedKey), as a client that pays argon2id once
// does: the hook gets the account's salt and cost, and its key opens the
// account; a key derived from another password does not.
func TestLNPLoginKeptKey(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	s, err := h.enroll(t, "alice", sig, "pw")
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	s.Close()

	var calls int
	var salt []byte
	var kdf lnp.KDF
	keep := func(password string) func(string, []byte, lnp.KDF) [32]byte {
		return func(_ string, st []byte, k lnp.KDF) [32]byte {
			calls++
			salt, kdf = append([]byte(nil), st...), k
			return lnp.SaltedKey(password, st, k)
		}
	}
	opts := cheapLogin()
	opts.SaltedKey = keep("pw")
	// The password given to Login is not what logs in: the hook's key is.
	s, err = client.Login(context.Background(), h.tlsConn(t), "alice", "not the password", opts)
	if err != nil {
		t.Fatalf("login with the kept key: %v", err)
	}
	s.Close()
	if calls != 1 || len(salt) < lnp.MinSaltSize || kdf.Memory != cheapHash.Memory || kdf.Time != cheapHash.Time {
		t.Fatalf("hook called %d times with salt %x, cost %v; want once with the account's salt and cost %v", calls, salt, kdf, cheapHash)
	}

	opts.SaltedKey = keep("other")
	_, err = client.Login(context.Background(), h.tlsConn(t), "alice", "pw", opts)
	wantBadLogin(t, "login with a key of another password", err)
}

// TestLNPEnrollAcrossReregistration: an enrollment begun by an account
// whose ENROLL arrives after the account was deleted and its name
// registered again stores nothing on the new account: the new one starts
// at the same credential generation, with no credential either, and must
// not get the old password's (which would open it to the old owner, and
// lock its own owner out of LNP/1).
func TestLNPEnrollAcrossReregistration(t *testing.T) {
	h := newLNPHarness(t)
	ctx := context.Background()
	var old *larder.User
	wel := h.enrollAcross(t, func(users *sqlite.UserStore) {
		var err error
		old, err = users.UserByName(ctx, "alice")
		must(t, err)
		must(t, users.DeleteUser(ctx, "alice"))
		must(t, users.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "someone else's"}))
	})
	if wel.Status == lnp.StatusOK {
		t.Errorf("ENROLL after the account was made again: got WELCOME %+v, want a refusal", wel)
	}
	u, err := h.users.UserByName(ctx, "alice")
	must(t, err)
	if u.ID == old.ID {
		t.Fatalf("the new alice has the old one's id %d", u.ID)
	}
	if u.LNPCredential != "" {
		t.Errorf("the new alice got the old one's LNP/1 credential %q", u.LNPCredential)
	}
	_, err = h.loginPassword(t, "alice", "old")
	wantBadLogin(t, "the old alice's password on the new alice", err)
}
