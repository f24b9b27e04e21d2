package client

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// LoginOptions tunes a channel-bound login.
type LoginOptions struct {
	SessionOptions
	// MinKDF is the least argon2id cost the client accepts from a
	// server: memory at least MinKDF.Memory, passes at least
	// MinKDF.Time, and memory × passes at least MinKDF's. Zero means
	// DefaultMinKDF. A server that asks for less may be an impostor that
	// wants a proof cheap to guess passwords against.
	MinKDF lnp.KDF
	// MaxKDF is the most the client computes; zero means DefaultMaxKDF.
	// A hostile server could otherwise ask for all of the memory.
	MaxKDF lnp.KDF
	// SaltedKey, if set, derives the salted key from the password and the
	// salt and cost of the server's challenge, in place of lnp.SaltedKey
	// (argon2id). A client that logs in often as one account can keep
	// the key it derived and so pay argon2id once: the server sends the
	// same salt and cost until the credential changes. Such a key opens
	// the account as the password does. The cost is checked (MinKDF,
	// MaxKDF) before it is called.
	SaltedKey func(password string, salt []byte, k lnp.KDF) [32]byte
}

// DefaultMinKDF is OWASP's minimum for argon2id, 19 MiB and 2 passes, or
// as much memory × passes with at least 7 MiB (OWASP's equal-strength
// table).
var DefaultMinKDF = lnp.KDF{Memory: 7168, Time: 1, Threads: 1}

const defaultMinWork = 19456 * 2

// DefaultMaxKDF is 1 GiB, 16 passes and 16 lanes.
var DefaultMaxKDF = lnp.KDF{Memory: 1 << 20, Time: 16, Threads: 16}

// ErrServerProof is a server that answered a proof without proving, in
// turn, that it holds the account's credential: not the server the
// account was made on, whatever it said.
var ErrServerProof = errors.New("client: the server did not prove that it holds the account's credential: it may be an impostor")

func (o *LoginOptions) checkKDF(k lnp.KDF) error {
	minK, maxK, work := o.MinKDF, o.MaxKDF, uint64(defaultMinWork)
	if minK == (lnp.KDF{}) {
		minK = DefaultMinKDF
	} else {
		work = uint64(minK.Memory) * uint64(minK.Time)
	}
	if maxK == (lnp.KDF{}) {
		maxK = DefaultMaxKDF
	}
	switch {
	case k.Memory < minK.Memory || k.Time < minK.Time || k.Threads < 1 || uint64(k.Memory)*uint64(k.Time) < work:
		return fmt.Errorf("client: the server asks for argon2id %v, below the least this client accepts (%v, memory × passes at least %d): refusing to send a proof that cheap to guess against", k, minK, work)
	case k.Memory > maxK.Memory || k.Time > maxK.Time || k.Threads > maxK.Threads:
		return fmt.Errorf("client: the server asks for argon2id %v, above the most this client computes (%v)", k, maxK)
	case k.Memory < 8*uint32(k.Threads):
		return fmt.Errorf("client: the server asks for argon2id %v: less than 8 KiB per lane", k)
	}
	return nil
}

// Login logs in over conn, which it owns from then on, with the password:
// the channel-bound login (HELLO version 2). The password never leaves the
// client; the proof sent is bound to this connection's TLS keys and
// nonces, and is of no use on any other. The server proves in turn that it
// holds the account's credential (else ErrServerProof). An account with no
// LNP/1 credential yet is refused as a wrong password is: Enroll makes one.
func Login(ctx context.Context, conn net.Conn, user, password string, opts LoginOptions) (*Session, error) {
	s := newSession(ctx, conn, &opts.SessionOptions)
	if err := s.login(ctx, user, password, &opts); err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	return s, nil
}

// Enroll logs in over conn with the course signature of an account that
// has no LNP/1 credential yet, and gives the server one made from the
// password, after which the signature no longer opens LNP/1 for the
// account. Send the signature only to a server whose certificate is
// trusted already: it logs in as the account until the enrollment.
func Enroll(ctx context.Context, conn net.Conn, user string, sig larder.Signature, password string, opts LoginOptions) (*Session, error) {
	return enrollWith(ctx, conn, lnp.MethodSignature, user, sig, password, opts)
}

// Register makes the account user over conn, which it owns from then on,
// and logs it in: sig is the course signature the account will have on
// the course protocol, and the LNP/1 credential is made from the
// password. A taken name is an *LNPError with status CONFLICT; a server
// whose registration is closed says so with BAD_REQUEST.
func Register(ctx context.Context, conn net.Conn, user string, sig larder.Signature, password string, opts LoginOptions) (*Session, error) {
	return enrollWith(ctx, conn, lnp.MethodRegister, user, sig, password, opts)
}

// RegisterLNP is Register for an account that logs in over LNP/1 only: it
// has no course signature, and no salt to keep.
func RegisterLNP(ctx context.Context, conn net.Conn, user, password string, opts LoginOptions) (*Session, error) {
	return enrollWith(ctx, conn, lnp.MethodRegisterLNP, user, larder.Signature{}, password, opts)
}

func enrollWith(ctx context.Context, conn net.Conn, method lnp.Method, user string, sig larder.Signature, password string, opts LoginOptions) (*Session, error) {
	s := newSession(ctx, conn, &opts.SessionOptions)
	err := s.sendLogin(lnp.Hello2{User: user, Method: method, Nonce: sig, MaxBlock: uint32(opts.MaxBlock), Features: opts.Features})
	var v lnp.Verified
	if err == nil {
		v, err = s.verified(opts.SessionOptions)
	}
	if err == nil && !v.Renew {
		err = &lnp.ProtocolError{Msg: "the server took the signature without asking for a credential"}
	}
	if err == nil {
		err = s.enroll(password, v.KDF, &opts)
	}
	if err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	return s, nil
}

func (s *Session) sendLogin(m lnp.Message) error {
	if err := s.w.Write(m); err != nil {
		return err
	}
	return s.w.Flush()
}

// next reads the next frame of the login: want, or a WELCOME that ends it,
// which is returned as its error (an *LNPError for a refusal).
func (s *Session) next(want lnp.Type, opts SessionOptions) ([]byte, error) {
	t, body, err := s.r.Next()
	switch {
	case err != nil:
		return nil, err
	case t == want:
		return body, nil
	case t == lnp.TypeWelcome:
		if err := s.welcome(body, opts); err != nil {
			return nil, err
		}
		return nil, &lnp.ProtocolError{Msg: "the server said WELCOME OK where a " + want.String() + " was due"}
	}
	return nil, &lnp.ProtocolError{Msg: "a " + t.String() + " frame where a " + want.String() + " was due"}
}

func (s *Session) verified(opts SessionOptions) (lnp.Verified, error) {
	body, err := s.next(lnp.TypeVerified, opts)
	if err != nil {
		return lnp.Verified{}, err
	}
	return lnp.ParseVerified(body)
}

func (s *Session) login(ctx context.Context, user, password string, opts *LoginOptions) error {
	hello := lnp.Hello2{User: user, Method: lnp.MethodPassword, MaxBlock: uint32(opts.MaxBlock), Features: opts.Features}
	rand.Read(hello.Nonce[:])
	helloBody := hello.AppendBody(nil)
	if err := s.w.WriteFrame(lnp.TypeHello, helloBody); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	body, err := s.next(lnp.TypeChallenge, opts.SessionOptions)
	if err != nil {
		return err
	}
	chBody := append([]byte(nil), body...)
	ch, err := lnp.ParseChallenge(chBody)
	if err != nil {
		return err
	}
	if err := opts.checkKDF(ch.KDF); err != nil {
		return err
	}
	binding, err := channelBinding(s.raw)
	if err != nil {
		return err
	}
	derive := lnp.SaltedKey
	if opts.SaltedKey != nil {
		derive = opts.SaltedKey
	}
	keys := lnp.DeriveKeys(derive(password, ch.Salt, ch.KDF))
	am := lnp.AuthMessage(helloBody, chBody, binding)
	if err := s.sendLogin(lnp.Proof{Proof: keys.ClientProof(am)}); err != nil {
		return err
	}
	v, err := s.verified(opts.SessionOptions)
	if err != nil {
		return err
	}
	if want := lnp.ServerSignature(keys.ServerKey, am); !hmac.Equal(v.Signature[:], want[:]) {
		return ErrServerProof
	}
	s.policy = v.KDF
	if v.Renew {
		return s.enroll(password, v.KDF, opts)
	}
	body, err = s.next(lnp.TypeWelcome, opts.SessionOptions)
	if err != nil {
		return err
	}
	return s.welcome(body, opts.SessionOptions)
}

// enroll sends a fresh credential at k, and reads the WELCOME.
func (s *Session) enroll(password string, k lnp.KDF, opts *LoginOptions) error {
	if err := opts.checkKDF(k); err != nil {
		return err
	}
	s.policy = k
	m := lnp.NewCredential(password, k)
	if err := s.sendLogin(m); err != nil {
		return err
	}
	body, err := s.next(lnp.TypeWelcome, opts.SessionOptions)
	if err != nil {
		return err
	}
	return s.welcome(body, opts.SessionOptions)
}

// ChangePassword changes the account's password from old to new in one
// request: the course signatures of both (signed with the account's
// salt; zero for an account that logs in over LNP/1 only, whose login on
// this session proved the old password) and the LNP/1 credential of the
// new password, at the server's policy, so that the account need not
// enroll again. The session must
// have logged in with the password (Login, Enroll, Register), which told
// it the policy; otherwise it is an error and nothing is sent.
func (s *Session) ChangePassword(ctx context.Context, old, new larder.Signature, newPassword string) error {
	if s.policy == (lnp.KDF{}) {
		return errors.New("client: this session did not log in with the password, so it does not know the server's argon2id policy: use Passwd")
	}
	c := lnp.NewCredential(newPassword, s.policy)
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.Passwd{Old: old, New: new, Credential: &c})
	return err
}

// channelBinding returns the TLS exporter of RFC 9266 for conn, or nil
// for a plaintext connection.
func channelBinding(conn net.Conn) ([]byte, error) {
	tc, ok := conn.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial(lnp.ChannelBindingLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("client: no channel binding on this TLS connection: %w", err)
	}
	return b, nil
}
