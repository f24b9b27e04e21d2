package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/larderfs/larder/internal/clientconf"
)

// ClientOptions says how a client trusts servers. The zero value pins each
// server's certificate on first use.
type ClientOptions struct {
	// CAFile, if set, names a file of PEM certificates of the authorities
	// trusted to issue server certificates. A server's cert.pem, made by
	// LoadOrCreate, may serve as its own authority: its names are
	// localhost, 127.0.0.1, ::1 and the server's host name.
	CAFile string
	// SystemRoots makes the client trust the system's authorities, as
	// browsers do (as well as CAFile's, if both are set).
	SystemRoots bool
	// Warn receives the note, one line, that the client writes when it
	// pins a server's certificate on first use. Nil means os.Stderr.
	Warn io.Writer
}

// ClientConfig returns a TLS configuration for a client of the server at
// addr, "HOST:PORT" (an IPv6 host in brackets). It speaks TLS 1.3 only and
// sends HOST as the server name.
//
// With opts.CAFile or opts.SystemRoots set, the server's certificate is
// verified the usual way: a chain to a trusted authority, valid now, naming
// HOST. known is not used and may be nil.
//
// Otherwise the certificate is pinned in known: the chain, names and dates
// are not checked; what is checked is that the certificate's fingerprint is
// the one known pins for addr. If known pins none, the handshake pins this
// one and writes a note to opts.Warn with the fingerprint, for the user to
// compare with the one the server printed. If known pins another, the
// handshake fails with a *CertChangedError; callers tell it apart with
// errors.AsType[*tlsconf.CertChangedError](err).
func ClientConfig(addr string, known *clientconf.KnownServers, opts ClientOptions) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: server address %q: want HOST:PORT: %w", addr, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: host}
	if opts.CAFile != "" || opts.SystemRoots {
		if cfg.RootCAs, err = rootPool(opts); err != nil {
			return nil, err
		}
		return cfg, nil
	}

	if known == nil {
		return nil, errors.New("tlsconf: no known-servers file to pin the server's certificate in, and no certificate authority to verify it with")
	}
	warn := opts.Warn
	if warn == nil {
		warn = os.Stderr
	}
	// The pin replaces the usual verification, which a self-signed
	// certificate cannot pass.
	cfg.InsecureSkipVerify = true
	// VerifyConnection runs on every handshake, resumed ones included.
	// It runs before the server has proved that it holds the
	// certificate's key (TLS 1.3's CertificateVerify), so a first
	// contact can pin a certificate whose handshake then fails. That
	// grants nothing: whoever answers a first contact could as well
	// present a certificate of their own, with its key; that is the
	// trust on first use accepts.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tlsconf: the server sent no certificate")
		}
		got := Fingerprint(cs.PeerCertificates[0].Raw)
		pinned, ok, err := known.Lookup(addr)
		switch {
		case err != nil:
			return err
		case ok && pinned == got:
			return nil
		case ok:
			return &CertChangedError{Addr: addr, Pinned: pinned, Got: got, File: known.Path()}
		}
		if err := known.Record(addr, got); err != nil {
			return certChanged(addr, err)
		}
		fmt.Fprintf(warn, "larder: first connection to %s: pinned its certificate %s in %s; check that the server printed the same fingerprint\n",
			addr, got, known.Path())
		return nil
	}
	return cfg, nil
}

// certChanged returns err, an error of recording a pin, as a
// *CertChangedError if another client pinned another certificate for the
// server between the lookup and the record.
func certChanged(addr string, err error) error {
	if c, ok := errors.AsType[*clientconf.PinConflictError](err); ok {
		return &CertChangedError{Addr: addr, Pinned: c.Pinned, Got: c.Got, File: c.File}
	}
	return err
}

// rootPool returns the authorities that opts trusts.
func rootPool(opts ClientOptions) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if opts.SystemRoots {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("tlsconf: the system's certificate authorities: %w", err)
		}
	}
	if opts.CAFile != "" {
		pemBytes, err := readFile(opts.CAFile)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tlsconf: CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	return pool, nil
}

// A CertChangedError reports a server whose certificate is not the one
// pinned for its address: someone may be intercepting the connection, or
// the server may have a new key.
type CertChangedError struct {
	Addr   string // the server, "HOST:PORT" with the host in lower case
	Pinned string // the fingerprint pinned for Addr
	Got    string // the fingerprint of the certificate the server presented
	File   string // the known-servers file that holds the pin
}

// Error returns a warning in the manner of ssh's: what changed, what it may
// mean, and what to do if the change is expected.
func (e *CertChangedError) Error() string {
	return fmt.Sprintf(`tlsconf: the certificate of server %s has changed
  pinned: %s
  now:    %s
Someone could be intercepting the connection (a man-in-the-middle attack), or
the server could have a new key, if its data folder's key was lost or
replaced. Refusing to connect. Ask the server's administrator for the
fingerprint it printed at start-up; if you are sure the change is expected,
remove the line for %s from %s ('larder known-servers rm %s' does) and
connect again.`,
		e.Addr, e.Pinned, e.Got, e.Addr, e.File, e.Addr)
}
