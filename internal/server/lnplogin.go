package server

import (
	"context"
	"net/netip"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// hello2 serves a HELLO of version 2, the channel-bound login
// (docs/PROTOCOL.md, "Logging in"), and answers WELCOME. It reports
// whether the session goes on.
func (ss *session) hello2(body []byte) bool {
	s, c := ss.s, ss.c
	h, err := lnp.ParseHello2(body)
	if err != nil {
		ss.refuse(lnp.StatusMalformed, "malformed HELLO: "+err.Error(), err)
		return false
	}
	ss.tried = h.User
	hello := append([]byte(nil), body...) // the reader reuses body
	ctx, cancel := context.WithTimeout(s.ctx, ss.c.lim.requestTimeout)
	defer cancel()
	start := time.Now()
	from := remoteIP(c.rwc)
	var u *larder.User
	switch h.Method {
	case lnp.MethodSignature:
		u, err = s.Auth.LoginSignature(ctx, h.User, h.Nonce[:], from, !s.closedSignatures.Load())
		if !ss.loggedIn(ctx, h.User, credSignature, err, start) {
			return false
		}
		// The account has no credential yet (LoginSignature refuses one
		// that has): it must make one now.
		if !ss.verified(lnp.Verified{Renew: true, KDF: kdfOf(s.Auth.Params())}) || !ss.enroll(ctx, u, from) {
			return false
		}
	case lnp.MethodPassword:
		if u = ss.prove(ctx, h, hello, from, start); u == nil {
			return false
		}
	case lnp.MethodRegister, lnp.MethodRegisterLNP:
		if u = ss.register(ctx, h); u == nil {
			return false
		}
	case lnp.MethodDevice:
		if u = ss.proveDevice(ctx, h, hello, from, start); u == nil {
			return false
		}
	}
	ss.features = h.Features & serverFeatures &^ s.WithheldFeatures
	return ss.start(ctx, u, h.MaxBlock, start)
}

// prove runs the challenge and the proof of MethodPassword, and returns
// the account, or nil when the login failed and was answered.
func (ss *session) prove(ctx context.Context, h lnp.Hello2, hello []byte, from netip.Addr, start time.Time) *larder.User {
	s := ss.s
	ch, err := s.Auth.StartLNP(ctx, h.User)
	if err != nil {
		ss.loggedIn(ctx, h.User, credPassword, err, start)
		return nil
	}
	challenge := lnp.Challenge{Nonce: ch.Nonce, Salt: ch.Salt, KDF: kdfOf(ch.KDF)}
	chBody := challenge.AppendBody(nil)
	if ss.w.WriteFrame(lnp.TypeChallenge, chBody) != nil || ss.w.Flush() != nil {
		return nil
	}
	// The client now runs argon2id: a slow machine, or a high policy,
	// may take a few seconds.
	p, binding, ok := ss.readProof()
	if !ok {
		return nil
	}
	res, err := s.Auth.FinishLNP(ctx, ch, lnp.AuthMessage(hello, chBody, binding), p.Proof, from)
	if !ss.loggedIn(ctx, h.User, credPassword, err, start) {
		return nil
	}
	if !ss.verified(lnp.Verified{Signature: res.ServerSignature, Renew: res.Renew, KDF: kdfOf(s.Auth.Params())}) {
		return nil
	}
	if res.Renew && !ss.enroll(ctx, res.User, from) {
		return nil
	}
	return res.User
}

// verified sends VERIFIED. It reports whether that worked.
func (ss *session) verified(m lnp.Verified) bool {
	return ss.w.Write(m) == nil && ss.w.Flush() == nil
}

// enroll reads the client's ENROLL and stores its credential for u. It
// reports whether that worked; if not, the client has been answered.
func (ss *session) enroll(ctx context.Context, u *larder.User, from netip.Addr) bool {
	m, ok := ss.readEnroll()
	if !ok {
		return false
	}
	p := auth.Params{Memory: m.KDF.Memory, Time: m.KDF.Time, Threads: m.KDF.Threads}
	if err := ss.s.Auth.EnrollLNP(ctx, u, m.Salt, p, auth.LNPKeys{StoredKey: m.StoredKey, ServerKey: m.ServerKey}, from); err != nil {
		ss.refuse(statusOf(err), larder.ErrorMessage(err), err)
		return false
	}
	return true
}

// readEnroll reads an ENROLL; a malformed one is answered and ends the
// session.
func (ss *session) readEnroll() (lnp.Enroll, bool) {
	// The client runs argon2id first.
	ss.c.rwc.SetReadDeadline(time.Now().Add(ss.c.lim.requestTimeout))
	t, body, err := ss.r.Next()
	if err == nil && t != lnp.TypeEnroll {
		err = &lnp.ProtocolError{Msg: "a " + t.String() + " frame where an ENROLL was due"}
	}
	var m lnp.Enroll
	if err == nil {
		m, err = lnp.ParseEnroll(body)
	}
	if err != nil {
		ss.refuse(lnp.StatusMalformed, "malformed ENROLL: "+err.Error(), err)
		return m, false
	}
	return m, true
}

// register makes the account of a HELLO of MethodRegister, whose nonce is
// its course signature, or of MethodRegisterLNP, which has none, with the
// credential of the client's ENROLL, and records the registration as the
// course protocol does. It returns the account, or nil when the
// registration failed and was answered.
func (ss *session) register(ctx context.Context, h lnp.Hello2) *larder.User {
	s := ss.s
	ev := larder.Event{Kind: larder.EventRegister, User: h.User, Remote: ss.c.remote}
	fail := func(status lnp.Status, msg string) *larder.User {
		ev.Status, ev.Reason = int(status), msg
		s.record(ctx, ev)
		ss.logRequest("register", &ev, time.Since(ss.c.accepted))
		ss.welcome(lnp.Welcome{Status: status, Message: msg})
		return nil
	}
	if s.closedRegistration.Load() {
		return fail(lnp.StatusDenied, "registration is closed on this server; ask its administrator for an account")
	}
	if err := s.Auth.Available(ctx, h.User); err != nil {
		return fail(statusOf(err), larder.ErrorMessage(err))
	}
	if !ss.verified(lnp.Verified{Renew: true, KDF: kdfOf(s.Auth.Params())}) {
		return nil
	}
	m, ok := ss.readEnroll()
	if !ok {
		return nil
	}
	p := auth.Params{Memory: m.KDF.Memory, Time: m.KDF.Time, Threads: m.KDF.Threads}
	var sig []byte // none: the account logs in over LNP/1 only
	if h.Method == lnp.MethodRegister {
		sig = h.Nonce[:]
	}
	u, err := s.Auth.RegisterLNP(ctx, h.User, sig, m.Salt, p, auth.LNPKeys{StoredKey: m.StoredKey, ServerKey: m.ServerKey})
	if err != nil {
		return fail(statusOf(err), larder.ErrorMessage(err))
	}
	ev.Status = int(lnp.StatusOK)
	s.record(ctx, ev)
	ss.logRequest("register", &ev, time.Since(ss.c.accepted))
	return u
}

// channelBinding returns the TLS exporter of RFC 9266 for c, or nil for a
// plaintext connection (--insecure-plaintext-native), which has nothing
// to bind to. TLS 1.3, which the listener requires, always has one.
func channelBinding(c *conn) ([]byte, error) {
	tc, ok := c.rwc.(tlsConn)
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	return cs.ExportKeyingMaterial(lnp.ChannelBindingLabel, nil, 32)
}

func kdfOf(p auth.Params) lnp.KDF {
	return lnp.KDF{Memory: p.Memory, Time: p.Time, Threads: p.Threads}
}

// readProof reads the PROOF that answers a CHALLENGE, within the request
// timeout, and the TLS channel binding it must be checked with. A
// malformed PROOF, or a connection without a binding, is answered and
// ok is false.
func (ss *session) readProof() (p lnp.Proof, binding []byte, ok bool) {
	ss.c.rwc.SetReadDeadline(time.Now().Add(ss.c.lim.requestTimeout))
	t, body, err := ss.r.Next()
	if err == nil && t != lnp.TypeProof {
		err = &lnp.ProtocolError{Msg: "a " + t.String() + " frame where a PROOF was due"}
	}
	if err == nil {
		p, err = lnp.ParseProof(body)
	}
	if err != nil {
		ss.refuse(lnp.StatusMalformed, "malformed PROOF: "+err.Error(), err)
		return p, nil, false
	}
	binding, err = channelBinding(ss.c)
	if err != nil {
		ss.refuse(lnp.StatusOther, "the TLS connection has no channel binding to log in with", err)
		return p, nil, false
	}
	return p, binding, true
}
