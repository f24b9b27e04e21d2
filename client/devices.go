package client

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"net"

	"github.com/larderfs/larder/lnp"
)

// NewDeviceSecret returns a fresh device secret: 32 random bytes, which
// are the salted key of a device credential.
func NewDeviceSecret() [lnp.DeviceSecretSize]byte {
	var s [lnp.DeviceSecretSize]byte
	rand.Read(s[:])
	return s
}

// AddDevice asks the server to keep a device credential for secret,
// labelled label, and returns its ID and expiry. Only a session logged in
// with the password may: the secret is the caller's to store (0600), as
// it logs in as the account until it expires or is revoked.
func (s *Session) AddDevice(ctx context.Context, label string, secret [lnp.DeviceSecretSize]byte) (lnp.DeviceAddReply, error) {
	defer s.begin(ctx)()
	k := lnp.DeriveKeys(secret)
	body, err := s.call(ctx, lnp.DeviceAdd{Label: label, StoredKey: k.StoredKey, ServerKey: k.ServerKey})
	if err != nil {
		return lnp.DeviceAddReply{}, err
	}
	return lnp.ParseDeviceAddReply(body)
}

// Devices returns the account's device credentials.
func (s *Session) Devices(ctx context.Context) ([]lnp.DeviceInfo, error) {
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.Devices{})
	if err != nil {
		return nil, err
	}
	r, err := lnp.ParseDevicesReply(body)
	return r.Devices, err
}

// RevokeDevice revokes the account's device id.
func (s *Session) RevokeDevice(ctx context.Context, id [16]byte) error {
	defer s.begin(ctx)()
	_, err := s.call(ctx, lnp.DeviceRevoke{ID: id})
	return err
}

// RevokeOtherDevices revokes every device of the account but except
// (every one, for a zero ID), and returns how many.
func (s *Session) RevokeOtherDevices(ctx context.Context, except [16]byte) (int, error) {
	defer s.begin(ctx)()
	body, err := s.call(ctx, lnp.DeviceRevoke{ID: except, Others: true})
	if err != nil {
		return 0, err
	}
	r, err := lnp.ParseDeviceRevokeReply(body)
	return int(r.Count), err
}

// LoginDevice logs in over conn, which it owns from then on, with the
// device credential id whose secret is secret: the channel-bound proof of
// Login, with no password and no argon2id. A device revoked or expired is
// refused as a wrong password is.
func LoginDevice(ctx context.Context, conn net.Conn, user string, id [16]byte, secret [lnp.DeviceSecretSize]byte, opts SessionOptions) (*Session, error) {
	s := newSession(ctx, conn, &opts)
	if err := s.loginDevice(user, id, secret, opts); err != nil {
		conn.Close()
		return nil, s.ioError(ctx, err)
	}
	return s, nil
}

func (s *Session) loginDevice(user string, id [16]byte, secret [lnp.DeviceSecretSize]byte, opts SessionOptions) error {
	hello := lnp.Hello2{User: user, Method: lnp.MethodDevice, MaxBlock: uint32(opts.MaxBlock), Device: id, Features: opts.Features}
	rand.Read(hello.Nonce[:])
	helloBody := hello.AppendBody(nil)
	if err := s.w.WriteFrame(lnp.TypeHello, helloBody); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	body, err := s.next(lnp.TypeChallenge, opts)
	if err != nil {
		return err
	}
	chBody := append([]byte(nil), body...)
	if _, err := lnp.ParseChallenge(chBody); err != nil {
		return err
	}
	binding, err := channelBinding(s.raw)
	if err != nil {
		return err
	}
	keys := lnp.DeriveKeys(secret)
	am := lnp.AuthMessage(helloBody, chBody, binding)
	if err := s.sendLogin(lnp.Proof{Proof: keys.ClientProof(am)}); err != nil {
		return err
	}
	v, err := s.verified(opts)
	if err != nil {
		return err
	}
	if want := lnp.ServerSignature(keys.ServerKey, am); !hmac.Equal(v.Signature[:], want[:]) {
		return ErrServerProof
	}
	body, err = s.next(lnp.TypeWelcome, opts)
	if err != nil {
		return err
	}
	return s.welcome(body, opts)
}
