package server

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/lnp"
)

// proveDevice runs the challenge and the proof of MethodDevice, as prove
// does for the password, and returns the account, or nil when the login
// failed and was answered.
func (ss *session) proveDevice(ctx context.Context, h lnp.Hello2, hello []byte, from netip.Addr, start time.Time) *larder.User {
	s := ss.s
	ch, err := s.Auth.StartDevice(ctx, h.User, h.Device)
	if err != nil {
		ss.loggedIn(ctx, h.User, credDevice, err, start)
		return nil
	}
	// The salt is the device's ID and the cost zero: the device's secret
	// is the salted key itself.
	chBody := lnp.Challenge{Nonce: ch.Nonce, Salt: ch.Salt}.AppendBody(nil)
	if ss.w.WriteFrame(lnp.TypeChallenge, chBody) != nil || ss.w.Flush() != nil {
		return nil
	}
	p, binding, ok := ss.readProof()
	if !ok {
		return nil
	}
	res, err := s.Auth.FinishDevice(ctx, ch, lnp.AuthMessage(hello, chBody, binding), p.Proof, from)
	if !ss.loggedIn(ctx, h.User, credDevice, err, start) {
		return nil
	}
	if !ss.verified(lnp.Verified{Signature: res.ServerSignature}) {
		return nil
	}
	ss.device = res.Device
	return res.User
}

// devices serves DEVICE_ADD, DEVICES and DEVICE_REVOKE.
func (ss *session) devices(ctx context.Context, m lnp.Message) bool {
	a := ss.s.Auth
	// The request's event is the audit trail's record of the change.
	ev := larder.Event{Kind: larder.EventAccount}
	switch m := m.(type) {
	case lnp.DeviceAdd:
		// A device adds no device: a stolen secret must not outlive
		// the revocation of the device it was stolen from.
		if ss.device != ([16]byte{}) {
			return ss.done(ctx, ev, larder.Errorf(larder.EFORBIDDEN, "a session logged in with a device credential cannot add one: log in with the password ('larder login')"), nil)
		}
		d, err := a.AddDevice(ctx, ss.user, m.Label, auth.LNPKeys{StoredKey: m.StoredKey, ServerKey: m.ServerKey})
		if err != nil {
			return ss.done(ctx, ev, err, nil)
		}
		r := lnp.DeviceAddReply{ID: d.ID, Expires: d.ExpiresAt}
		ev.Reason = fmt.Sprintf("device added: %s %q, expires %s", auth.DeviceID(d.ID), d.Label, d.ExpiresAt.Format(time.RFC3339))
		return ss.done(ctx, ev, nil, r.AppendBody(nil))
	case lnp.Devices:
		ev.Kind, ev.Reason = larder.EventStat, "devices"
		ds, err := a.ListDevices(ctx, ss.user)
		if err != nil {
			return ss.done(ctx, ev, err, nil)
		}
		var r lnp.DevicesReply
		for _, d := range ds {
			r.Devices = append(r.Devices, lnp.DeviceInfo{ID: d.ID, Label: d.Label, Created: d.CreatedAt,
				Expires: d.ExpiresAt, LastUsed: d.LastUsed, Current: d.ID == ss.device})
		}
		return ss.done(ctx, ev, nil, r.AppendBody(nil))
	case lnp.DeviceRevoke:
		var r lnp.DeviceRevokeReply
		var err error
		if m.Others {
			var n int
			n, err = a.RevokeDevices(ctx, ss.user, m.ID)
			r.Count = uint32(n)
			ev.Reason = fmt.Sprintf("%d devices revoked by their owner", n)
			if m.ID != ([16]byte{}) {
				ev.Reason += ", all but " + auth.DeviceID(m.ID)
			}
		} else {
			err = a.RevokeDevice(ctx, ss.user, m.ID)
			r.Count = 1
			ev.Reason = "device revoked by its owner: " + auth.DeviceID(m.ID)
		}
		if err != nil {
			ev.Reason = "" // the error's message says what failed
		} else {
			ss.s.endDeviceSessions()
		}
		return ss.done(ctx, ev, err, r.AppendBody(nil))
	}
	return false
}

// checkDevice reports whether the device the session logged in with, if
// any, still logs in: a revoked or expired one is an error with code
// EFORBIDDEN, which ends the session as a disabled account does.
func (ss *session) checkDevice(ctx context.Context) error {
	if ss.device == ([16]byte{}) {
		return nil
	}
	err := ss.s.Auth.DeviceStill(ctx, ss.user, ss.device)
	switch larder.ErrorCode(err) {
	case larder.ENOTFOUND:
		return &larder.Error{Code: larder.EFORBIDDEN, Message: "device credential revoked: the session is ended", Err: err}
	case larder.EUNAUTHORIZED:
		return &larder.Error{Code: larder.EFORBIDDEN, Message: "device credential expired: the session is ended; log in again with 'larder login'", Err: err}
	}
	return err
}

// watchDevices, until Close, checks every accountCheckEvery the device of
// each session that logged in with one, and ends the idle sessions of a
// device revoked or expired, in any process (an administrator's command
// works on the store); a session in a transfer is cut by its own watch
// (accountWatch), or ends at its next request.
func (s *Server) watchDevices() {
	t := time.NewTicker(accountCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		s.endDeviceSessions()
	}
}

// endDeviceSessions ends the idle sessions whose device no longer logs in.
func (s *Server) endDeviceSessions() {
	var withDevice []*session
	s.lnp.mu.Lock()
	for _, m := range s.lnp.byUser {
		for ss := range m {
			if ss.device != ([16]byte{}) {
				withDevice = append(withDevice, ss)
			}
		}
	}
	s.lnp.mu.Unlock()
	for _, ss := range withDevice {
		// ss.user is read under the lock, as passwd sets it.
		s.lnp.mu.Lock()
		u := ss.user
		s.lnp.mu.Unlock()
		err := s.Auth.DeviceStill(s.ctx, u, ss.device)
		if c := larder.ErrorCode(err); c != larder.ENOTFOUND && c != larder.EUNAUTHORIZED {
			continue
		}
		s.lnp.mu.Lock()
		ss.ended.Store(true)
		if ss.c.state.Load() == stateReading {
			ss.c.rwc.SetReadDeadline(time.Now())
		}
		s.lnp.mu.Unlock()
	}
}
