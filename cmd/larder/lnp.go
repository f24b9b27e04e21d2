package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/clientconf"

	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// defaultLNPServer is the native protocol's port on this machine.
const defaultLNPServer = "127.0.0.1:23457"

// lnpHelp ends the help of every native command.
const lnpHelp = "\n\nThe server, the account and how the server's certificate is trusted come\n" +
	"from the flags, else LARDER_NATIVE_SERVER and LARDER_USER, else the profile\n" +
	"that 'larder login' saved; or from a remote ('larder remote'): a path on the\n" +
	"server NAME:PATH, or --remote NAME (a ':' before any '/' names a remote; write\n" +
	"/a:b for such a path on the server). The password comes from --password-stdin,\n" +
	"else LARDER_PASSWORD, else a prompt."

// lnpFlags are the flags of the commands of the native protocol.
type lnpFlags struct {
	clientFlags
	caFile            string
	systemRoots       bool
	insecurePlaintext bool
	// enrollAlways falls back to enrolling with the course signature even
	// for an account this client knows to be enrolled: 'larder login',
	// after a password reset.
	enrollAlways bool

	set map[string]bool // the flags given on the command line

	// remoteName is --remote; addr is the server it or the arguments
	// named (see addressed), nil for none.
	remoteName string
	addr       *address

	// early is a connection made before the password was asked for, so
	// that a server that cannot be reached, or whose certificate changed,
	// is said first; dialLNP hands it out once, if it is fresh.
	early   net.Conn
	earlyAt time.Time

	// keys are the argon2id keys derived from the password, for the
	// command's further sessions.
	keys saltedKeys
}

// freshFor is how long a connection made before a password prompt is
// used after it: the server gives a new connection its request timeout
// (10 s by default) to send its first request, and a user who took longer
// to type gets a new connection.
const freshFor = 5 * time.Second

// dialFirst connects to t before anything is asked for, so that a server
// that cannot be reached says so first; the login uses the connection if
// it is still fresh. closeEarly closes it if it was not used.
func (f *lnpFlags) dialFirst(ctx context.Context, env *Env, t lnpTarget) error {
	conn, err := f.dialLNP(ctx, env, t)
	if err != nil {
		return err
	}
	f.early, f.earlyAt = conn, time.Now()
	return nil
}

// closeEarly closes the connection of dialFirst if dialLNP did not use it.
func (f *lnpFlags) closeEarly() {
	if f.early != nil {
		f.early.Close()
		f.early = nil
	}
}

// newFlagSet returns the flag set of a native command, as
// clientFlags.newFlagSet does for the course protocol's.
func (f *lnpFlags) newFlagSet(env *Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder %s\n\n%s%s\n\nFlags:\n", synopsis, help, lnpHelp)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.server, "server", "", "`address` of the server's native protocol (default: env LARDER_NATIVE_SERVER,\n"+
		"else the profile's, else "+defaultLNPServer+")")
	f.defineAccount(fs, env)
	f.defineTrust(fs)
	f.defineRemote(fs)
	return fs
}

// defineRemote declares --remote.
func (f *lnpFlags) defineRemote(fs *flag.FlagSet) {
	fs.StringVar(&f.remoteName, "remote", "", "connect to the remote `NAME` ('larder remote list'), as NAME:PATH does")
}

// defineTrust declares the flags that choose how the server is trusted.
func (f *lnpFlags) defineTrust(fs *flag.FlagSet) {
	fs.StringVar(&f.caFile, "ca-file", "", "verify the server's certificate with the authorities in this PEM `file`,\n"+
		"instead of pinning it on first use")
	fs.BoolVar(&f.systemRoots, "system-roots", false, "verify the server's certificate with the system's authorities,\n"+
		"instead of pinning it on first use")
	fs.BoolVar(&f.insecurePlaintext, "insecure-plaintext", false, "speak to a server run with --insecure-plaintext-native, without TLS: the\n"+
		"signature, which logs in as you, and the files travel in the clear")
}

// parse parses args as parseFlags does and notes which flags were given.
func (f *lnpFlags) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	f.set = make(map[string]bool)
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return pos, nil
}

// lnpTarget is where a native command connects, as whom, and how it
// trusts the server.
type lnpTarget struct {
	server string
	user   string
	clientconf.Trust
}

// target resolves the server, the user and the trust from a remote that
// the arguments or --remote named, the flags, the environment and the
// profile, in that order (the flags --user and the trust flags override
// a remote's). Only the profile's own
// server is trusted as the profile says: a plaintext or CA setting made
// for one server never carries over to another, which is pinned.
func (f *lnpFlags) target(env *Env) (lnpTarget, error) {
	if err := f.checkAddress(env); err != nil {
		return lnpTarget{}, err
	}
	prof, err := loadProfile(env)
	if err != nil {
		return lnpTarget{}, err
	}
	var t lnpTarget
	switch {
	case f.addr != nil:
		t.server = f.addr.remote.Server
	case f.set["server"]:
		t.server = f.server
	case env.Getenv("LARDER_NATIVE_SERVER") != "":
		t.server = env.Getenv("LARDER_NATIVE_SERVER")
	case prof != nil:
		t.server = prof.Server
	default:
		t.server = defaultLNPServer
	}
	var err2 error
	if t.server, err2 = serverAddr(t.server, defaultLNPServer); err2 != nil {
		return t, err2
	}
	if f.addr != nil && f.addr.remote.User != "" && !f.set["user"] {
		f.user = f.addr.remote.User
	}
	if f.user == "" && prof != nil {
		f.user = prof.User
	}
	if err := f.resolveUser(); err != nil {
		return t, err
	}
	t.user = f.user

	given, err := f.flagTrust()
	switch {
	case err != nil:
		return t, err
	case given.Mode != "":
		t.Trust = given
	case f.addr != nil && f.addr.remote.Mode != "":
		t.Trust = f.addr.remote.Trust
	case prof != nil && clientconf.ServerKey(prof.Server) == clientconf.ServerKey(t.server):
		t.Trust = prof.Trust
	default:
		t.Trust = clientconf.Trust{Mode: clientconf.TrustPin}
	}
	return t, nil
}

// flagTrust returns the trust that the flags choose: a Mode of "" if
// they choose none.
func (f *lnpFlags) flagTrust() (clientconf.Trust, error) {
	switch {
	case f.insecurePlaintext && (f.caFile != "" || f.systemRoots):
		return clientconf.Trust{}, usageError("--insecure-plaintext goes with neither --ca-file nor --system-roots")
	case f.insecurePlaintext:
		return clientconf.Trust{Mode: clientconf.TrustPlaintext}, nil
	case f.caFile != "" || f.systemRoots:
		t := clientconf.Trust{Mode: clientconf.TrustCA, SystemRoots: f.systemRoots}
		if f.caFile != "" {
			var err error
			if t.CAFile, err = filepath.Abs(f.caFile); err != nil {
				return clientconf.Trust{}, err
			}
		}
		return t, nil
	}
	return clientconf.Trust{}, nil
}

// saltFor returns --salt, or the salt stored for t's server and user.
func (f *lnpFlags) saltFor(env *Env, t lnpTarget) (string, error) {
	if f.salt != "" {
		return f.salt, nil
	}
	store, err := saltStore(env)
	if err != nil {
		return "", err
	}
	s, ok, err := store.Lookup(t.server, t.user)
	if err == nil && !ok && f.addr != nil {
		// A remote pairs its server with a course server, on which the
		// account was likely registered, as login's --course-server.
		s, ok, err = store.Lookup(f.addr.courseServer(), t.user)
	}
	if err == nil && !ok {
		login := "'larder login'"
		if f.addr != nil && f.addr.name != "" {
			login = "'larder login --remote " + f.addr.name + "'"
		}
		return "", fmt.Errorf("%w; or run %s first", noSalt(store, t.server, t.user), login)
	}
	return s, err
}

// lnpSession is a logged-in session of a native command.
type lnpSession struct {
	*client.Session
	target      lnpTarget
	fingerprint string   // of the server's certificate; "" in plaintext
	device      [16]byte // the device credential it logged in with; zero for the password
	cancel      context.CancelFunc
	// reopen opens another session of the account with the credential
	// this one logged in with: for parallel transfers, and to retry
	// after the connection failed. It may be nil (a fresh login, for
	// which it is not needed).
	reopen func(context.Context) (*client.Session, error)
}

// Close ends the session and its context.
func (s *lnpSession) Close() {
	s.Session.Close()
	s.cancel()
}

// connect logs in to the target of f with f's password. The returned
// context carries --timeout; the session's Close cancels it.
func (f *lnpFlags) connect(ctx context.Context, env *Env) (context.Context, *lnpSession, error) {
	t, err := f.target(env)
	if err != nil {
		return nil, nil, err
	}
	dctx, s, ok, refused, err := f.deviceLogin(ctx, env, t)
	if ok || err != nil {
		return dctx, s, err
	}
	if err := f.dialFirst(ctx, env, t); err != nil {
		return nil, nil, err
	}
	defer f.closeEarly()
	password, err := readPassword(ctx, env, f.passwordStdin, t.user+"@"+t.server, false)
	if err != nil {
		return nil, nil, err
	}
	ctx, s, err = f.login(ctx, env, t, password, func() (string, error) { return f.saltFor(env, t) })
	if err == nil && refused {
		// The account takes the password: the device was revoked or
		// has expired.
		fmt.Fprintf(env.Stderr, "larder: the refused device credential of %s on %s is forgotten; 'larder login' saves a new one\n", t.user, t.server)
		forgetDevice(env, t)
	}
	if err == nil {
		s.reopen = f.passwordReopener(env, t, password)
	}
	return ctx, s, err
}

// login connects to t within the connect timeout, sets up TLS as t trusts
// the server, and logs in with the password by the channel-bound login.
// An account that has not logged in that way yet is refused as a wrong
// password is; larder then enrolls it, once, with its course signature
// (the password signed with the salt that salt returns). That signature
// logs in as the account until the enrollment, but it has been sent in
// the clear already, by the registration on the course port that made
// the account; docs/SECURITY.md says how an administrator closes the
// window.
func (f *lnpFlags) login(ctx context.Context, env *Env, t lnpTarget, password string, salt func() (string, error)) (context.Context, *lnpSession, error) {
	cancel := context.CancelFunc(func() {})
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	opts, err := loginOptions(env, f.idleTimeout)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	opts.SaltedKey = f.keys.derive
	s := &lnpSession{target: t, cancel: cancel}
	conn, err := f.dialLNP(ctx, env, t)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	s.fingerprint = fingerprintOf(conn)
	s.Session, err = client.Login(ctx, conn, t.user, password, opts)
	if refusedFeatures(err, opts.Features) {
		opts.Features = 0
		if conn, err = f.dialLNP(ctx, env, t); err == nil {
			s.Session, err = client.Login(ctx, conn, t.user, password, opts)
		}
	}
	if st, ok := lnpStatus(err); ok && st == lnp.StatusInvalidLogin {
		if f.enrollAlways || !knownEnrolled(env, t.server, t.user) {
			s.Session, err = f.enroll(ctx, env, t, password, salt, opts, err)
		} else {
			err = withHint(err, map[lnp.Status]string{
				lnp.StatusInvalidLogin: "if the password was reset or changed elsewhere, 'larder login' enrolls the new one",
			})
		}
	}
	if err != nil {
		cancel()
		return nil, nil, sessionError(err)
	}
	if err := rememberEnrolled(env, t.server, t.user); err != nil {
		fmt.Fprintf(env.Stderr, "larder: warning: cannot note that %s on %s is enrolled (%v): a wrong password will be tried twice\n", t.user, t.server, err)
	}
	return ctx, s, nil
}

// enroll logs in with the course signature and enrolls the account, after
// the channel-bound login was refused with loginErr.
func (f *lnpFlags) enroll(ctx context.Context, env *Env, t lnpTarget, password string, salt func() (string, error), opts client.LoginOptions, loginErr error) (*client.Session, error) {
	s, err := salt()
	if err != nil {
		// Which of the two is wrong, the password or the missing salt,
		// cannot be told; the salt is the one the user can act on.
		return nil, fmt.Errorf("%w; an account that has not logged in to the native protocol since its server began to use channel-bound logins "+
			"enrolls once with its course signature, for which larder needs the salt: %w", loginErr, err)
	}
	conn, err := f.dialLNP(ctx, env, t)
	if err != nil {
		return nil, err
	}
	sess, err := client.Enroll(ctx, conn, t.user, larder.NewSignature(password, s), password, opts)
	if st, ok := lnpStatus(err); ok && st == lnp.StatusInvalidLogin {
		return nil, loginErr
	}
	if err == nil {
		fmt.Fprintf(env.Stderr, "larder: %s on %s is now enrolled for the channel-bound login: from now on the password never leaves this machine, and the course signature no longer opens the native protocol\n", t.user, t.server)
	}
	return sess, err
}

// clientFeatures are the LNP/1 features the client offers: what the
// server grants is used, and nothing else changes with a server that
// grants none.
const clientFeatures = lnp.FeaturePutTime | lnp.FeatureNoBlockHashes | lnp.FeatureTreeDelete | lnp.FeatureReasons

// refusedFeatures reports whether err is the refusal, by a server from
// before LNP/1's features, of a HELLO that offered some (WELCOME
// MALFORMED "malformed HELLO: … bytes left over"): such a server is
// logged in to again, offering none, and serves as it always did.
func refusedFeatures(err error, offered lnp.Features) bool {
	ne, ok := errors.AsType[*client.LNPError](err)
	return ok && offered != 0 && ne.Status == lnp.StatusMalformed && strings.Contains(ne.Message, "left over")
}

// loginOptions returns the options of a channel-bound login: the idle
// timeout (0 means never), and LARDER_MIN_KDF, the least argon2id cost to
// accept from a server, for servers run with a policy below OWASP's
// minimum (tests, small machines).
func loginOptions(env *Env, idle time.Duration) (client.LoginOptions, error) {
	// SessionOptions spells "never" as a negative duration.
	if idle == 0 {
		idle = -1
	}
	opts := client.LoginOptions{SessionOptions: client.SessionOptions{Idle: idle, Features: clientFeatures}}
	if v := env.Getenv("LARDER_MIN_KDF"); v != "" {
		p, err := auth.ParseParams(v)
		if err != nil {
			return opts, fmt.Errorf("LARDER_MIN_KDF=%q: want m=KiB,t=PASSES,p=LANES: %w", v, err)
		}
		opts.MinKDF = lnp.KDF{Memory: p.Memory, Time: p.Time, Threads: p.Threads}
	}
	return opts, nil
}

// mustLoginOptions is loginOptions for a caller that has had them once.
func mustLoginOptions(env *Env, idle time.Duration) client.LoginOptions {
	opts, _ := loginOptions(env, idle)
	return opts
}

// fingerprintOf returns the fingerprint of the certificate of conn's
// server; "" in plaintext.
func fingerprintOf(conn net.Conn) string {
	if tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			return tlsconf.Fingerprint(certs[0].Raw)
		}
	}
	return ""
}

// dialLNP opens the connection, with its TLS handshake done.
func (f *lnpFlags) dialLNP(ctx context.Context, env *Env, t lnpTarget) (net.Conn, error) {
	if conn := f.early; conn != nil {
		f.early = nil
		if time.Since(f.earlyAt) < freshFor {
			return conn, nil
		}
		conn.Close()
	}
	if f.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.connectTimeout)
		defer cancel()
	}
	d := &net.Dialer{}
	if t.Mode == clientconf.TrustPlaintext {
		if host, _, _ := net.SplitHostPort(t.server); !isLoopback(host) {
			fmt.Fprintf(env.Stderr, "larder: warning: no TLS to %s (--insecure-plaintext): anyone on the way can read your files, and your signature, which logs in as you\n", t.server)
		}
		return d.DialContext(ctx, "tcp", t.server)
	}
	opts := tlsconf.ClientOptions{CAFile: t.CAFile, SystemRoots: t.SystemRoots, Warn: env.Stderr}
	var known *clientconf.KnownServers
	if t.Mode == clientconf.TrustPin {
		conf, err := config(env)
		if err != nil {
			return nil, fmt.Errorf("%w, or pass --ca-file or --system-roots", err)
		}
		known = conf.KnownServers()
	}
	cfg, err := tlsconf.ClientConfig(t.server, known, opts)
	if err != nil {
		return nil, err
	}
	conn, err := tlsconf.Dial(ctx, d, t.server, cfg)
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return nil, fmt.Errorf("%w: the server at %s does not speak TLS; if it runs with --insecure-plaintext-native, pass --insecure-plaintext: %w", errNotTLS, t.server, err)
	}
	if err != nil {
		return nil, err // not conn: a nil *tlsconf.Conn is not a nil net.Conn
	}
	return conn, nil
}

// errNotTLS marks a native command's connection to something that does
// not speak TLS: the course port, or a server without TLS.
var errNotTLS = errors.New("not the native protocol's TLS")

// isLoopback reports whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lnpStatus returns the status of a *client.LNPError in err.
func lnpStatus(err error) (lnp.Status, bool) {
	if ne, ok := errors.AsType[*client.LNPError](err); ok {
		return ne.Status, true
	}
	return 0, false
}

// printable returns s as it may be shown on a terminal: quoted, with
// escapes, if it holds anything but printable characters or bytes that are
// not UTF-8, so that a name from the server, or one in the audit trail
// from a client, cannot move the cursor or rewrite what the user sees (a
// bidirectional override is not printable either).
func printable(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// errServerClosed marks an error of a session that the server ended in
// the middle (the idle timeout, a restart, the password changed
// elsewhere): a network failure for the exit code.
var errServerClosed = errors.New("the server closed the connection")

// sessionError words an error of a session for the user: a connection
// that ended is errServerClosed.
func sessionError(err error) error {
	if err == nil || errors.Is(err, client.ErrIntegrity) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", errServerClosed, err)
	}
	return err
}

// lnpCommand is the frame of a native command: its flags and
// arguments, a session, then its work.
type lnpCommand struct {
	name, synopsis, help string
	// flags declares the command's own flags; it may be nil.
	flags func(fs *flag.FlagSet)
	// local is the number of leading positional arguments that are local
	// files; the others are paths on the server, which may name it
	// (NAME:PATH, see addressed).
	local int
	// args checks the positional arguments, and anything local that can
	// fail before the password is asked for.
	args func(pos []string) error
	// run does the command's work in the session s.
	run func(ctx context.Context, s *lnpSession, pos []string) error
}

// main runs c with the command-line args.
func (c *lnpCommand) main(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	fs := f.newFlagSet(env, c.name, c.synopsis, c.help)
	if c.flags != nil {
		c.flags(fs)
	}
	pos, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if pos, err = f.addressed(env, c.name, pos, c.local); err != nil {
		return err
	}
	if err := c.args(pos); err != nil {
		return err
	}
	ctx, s, err := f.connect(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	return sessionError(c.run(ctx, s, pos))
}

// wantArgs returns an args check for between min and max positional
// arguments, named by what.
func wantArgs(name string, min, max int, what string) func([]string) error {
	return func(pos []string) error {
		if len(pos) < min || len(pos) > max {
			return usageError("%s takes %s, got %d arguments", name, what, len(pos))
		}
		return nil
	}
}

// transferMeter draws a progressBar from a session's reports of each
// block, at most ten times a second and once at the end.
type transferMeter struct {
	bar      *progressBar
	total    int64
	received int64
	started  bool
	last     time.Time
	// first, if set, is told of the first report and returns the bytes
	// that were there before it, for a transfer that resumes.
	first func(n int) int64
}

func (m *transferMeter) add(n int) {
	if !m.started {
		m.started = true
		if m.first != nil {
			m.received = m.first(n)
		}
		m.received += int64(n)
		// The rate counts from here: the first report may be the bytes
		// a resumed transfer skips, which took no time.
		m.bar.rebase(m.received)
	} else {
		m.received += int64(n)
	}
	now := m.bar.now()
	if now.Sub(m.last) < 100*time.Millisecond && m.received < m.total {
		return
	}
	m.last = now
	m.bar.update(m.received, m.total)
}
