package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/lnp"
)

// The stored form of a device credential (larder.Device.Credential):
//
//	$lnp-device$v=1$keyid=B64$B64(sealed)     ("-" for no pepper)
//
// sealed is a 12-byte nonce and AES-256-GCM of StoredKey ‖ ServerKey under
// the key that seals LNP/1 credentials, authenticating the stub, the
// account's name and the device's ID: a copy of the database gives
// nothing to log in with, and a sealed credential moves neither to
// another account nor to another device. The secret the keys derive
// from is 32 random bytes on the client, so there is nothing to guess
// offline even with the pepper.

const (
	deviceScheme  = "lnp-device"
	deviceVersion = "v=1"
	// DefaultDeviceLifetime is how long a device credential logs in, when
	// the server sets no other lifetime.
	DefaultDeviceLifetime = 90 * 24 * time.Hour
)

func deviceStub(keyID []byte) string {
	k := "-"
	if keyID != nil {
		k = "keyid=" + b64.EncodeToString(keyID)
	}
	return "$" + deviceScheme + "$" + deviceVersion + "$" + k
}

func deviceAD(stub, name string, id [16]byte) []byte {
	return []byte(stub + "\x00" + name + "\x00" + string(id[:]))
}

// SealDevice returns the stored form of the device credential id of
// account name, sealed with the current pepper.
func (h *Hasher) SealDevice(name string, id [16]byte, k LNPKeys) (string, error) {
	keyID := h.currentKeyID()
	stub := deviceStub(keyID)
	keys := append(k.StoredKey[:], k.ServerKey[:]...)
	if keyID == nil {
		return stub + "$" + b64.EncodeToString(keys), nil
	}
	aead, err := h.sealer(keyID)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcmNonceLen)
	rand.Read(nonce)
	return stub + "$" + b64.EncodeToString(aead.Seal(nonce, nonce, keys, deviceAD(stub, name, id))), nil
}

// OpenDevice returns the keys of a stored device credential, and whether
// it is sealed with another pepper than the current one. Errors have
// code EINTERNAL.
func (h *Hasher) OpenDevice(name string, id [16]byte, stored string) (LNPKeys, bool, error) {
	fail := func(err error) (LNPKeys, bool, error) {
		return LNPKeys{}, false, &larder.Error{Code: larder.EINTERNAL, Message: "stored device credential is unusable", Err: err}
	}
	f := strings.Split(stored, "$")
	if len(f) != 5 || f[0] != "" || f[1] != deviceScheme || f[2] != deviceVersion {
		return fail(errors.New("auth: not a device credential"))
	}
	var keyID []byte
	if f[3] != "-" {
		k, ok := strings.CutPrefix(f[3], "keyid=")
		var err error
		if keyID, err = b64.DecodeString(k); !ok || err != nil || len(keyID) == 0 {
			return fail(errors.New("auth: a device credential with a bad key ID"))
		}
	}
	sealed, err := b64.DecodeString(f[4])
	if err != nil {
		return fail(fmt.Errorf("auth: device credential: %w", err))
	}
	keys := sealed
	if keyID != nil {
		if len(sealed) != gcmNonceLen+lnpKeysLen+gcmTagLen {
			return fail(errors.New("auth: a sealed device credential of the wrong size"))
		}
		aead, err := h.sealer(keyID)
		if err == nil {
			keys, err = aead.Open(nil, sealed[:gcmNonceLen], sealed[gcmNonceLen:], deviceAD(strings.Join(f[:4], "$"), name, id))
		}
		if err != nil {
			return fail(fmt.Errorf("auth: device credential of %q: %w", name, err))
		}
	}
	if len(keys) != lnpKeysLen {
		return fail(errors.New("auth: device keys of the wrong size"))
	}
	return LNPKeys{StoredKey: [32]byte(keys[:32]), ServerKey: [32]byte(keys[32:])},
		string(keyID) != string(h.currentKeyID()), nil
}

// dummyDevice returns a device credential sealed with the current pepper,
// for StartDevice to open where there is none.
func (h *Hasher) dummyDevice(name string, id [16]byte) string {
	s, _ := h.SealDevice(name, id, LNPKeys{})
	return s
}

// devicePepper returns the ID of the pepper that seals a stored device
// credential; "" for none or an unreadable one.
func devicePepper(stored string) string {
	f := strings.Split(stored, "$")
	if len(f) != 5 || f[0] != "" || f[1] != deviceScheme {
		return ""
	}
	k, ok := strings.CutPrefix(f[3], "keyid=")
	if !ok {
		return ""
	}
	id, err := b64.DecodeString(k)
	if err != nil {
		return ""
	}
	return string(id)
}

// DeviceID formats a device's ID as its owner sees it: 32 hex digits.
func DeviceID(id [16]byte) string { return hex.EncodeToString(id[:]) }

// ParseDeviceID parses what DeviceID prints.
func ParseDeviceID(s string) ([16]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return [16]byte{}, larder.Errorf(larder.EINVALID, "%q is not a device ID: want the 32 hex digits 'larder devices' shows", s)
	}
	return [16]byte(b), nil
}

func (a *Authenticator) devices() (larder.DeviceStore, error) {
	if a.Devices == nil {
		return nil, larder.Errorf(larder.EINVALID, "this server keeps no device credentials")
	}
	return a.Devices, nil
}

// AddDevice keeps a device credential for u, which logged in with its
// password: the keys the client derived from the device's secret. It
// expires after DeviceLifetime. The caller records the event (a
// protocol's request event, an administrator's command).
func (a *Authenticator) AddDevice(ctx context.Context, u *larder.User, label string, k LNPKeys) (*larder.Device, error) {
	ds, err := a.devices()
	if err != nil {
		return nil, err
	}
	if len(label) > larder.MaxDeviceLabel || !utf8.ValidString(label) {
		return nil, larder.Errorf(larder.EINVALID, "a device label must be valid UTF-8 of at most %d bytes", larder.MaxDeviceLabel)
	}
	if err := larder.ValidateNewName("device label", label); err != nil {
		return nil, err
	}
	d := &larder.Device{UserID: u.ID, Label: label, ExpiresAt: time.Now().Add(a.deviceLifetime()).UTC()}
	rand.Read(d.ID[:])
	if d.Credential, err = a.hasher.SealDevice(u.Name, d.ID, k); err != nil {
		return nil, err
	}
	if err := ds.AddDevice(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// SetDeviceLifetime sets DeviceLifetime while a is in use (a server's
// reload), for the device credentials made from then on; those made
// before keep their expiry.
func (a *Authenticator) SetDeviceLifetime(d time.Duration) { a.lifetime.Store(&d) }

// deviceLifetime is how long a device credential made now logs in.
func (a *Authenticator) deviceLifetime() time.Duration {
	d := a.DeviceLifetime
	if p := a.lifetime.Load(); p != nil {
		d = *p
	}
	return cmpDuration(d, DefaultDeviceLifetime)
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// StartDevice begins a login as name with the device id: the challenge
// FinishDevice checks. A name with no account, a device that is not the
// account's, revoked or expired, get a challenge like any other, with
// keys that match no proof; the store's failures are errors.
func (a *Authenticator) StartDevice(ctx context.Context, name string, id [16]byte) (*LNPChallenge, error) {
	c := &LNPChallenge{name: name, Salt: id[:]}
	rand.Read(c.Nonce[:])
	rand.Read(c.keys.StoredKey[:])
	if err := larder.ValidateUsername(name); err != nil {
		return nil, err
	}
	ds, err := a.devices()
	if err != nil {
		return nil, err
	}
	// Every name does the same work, as in StartLNP, so that the time of
	// the challenge does not tell which names exist: two account lookups
	// (one a miss) for a name found, a device lookup (under no account's
	// id, 0, for a name not found), and a device credential opened (a
	// dummy where there is none).
	var uid int64
	u, err := a.store.UserByName(ctx, name)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
	case err != nil:
		return nil, err
	default:
		c.user, uid = u, u.ID
		a.store.UserByName(ctx, name+"\x00")
	}
	stored := a.hasher.dummyDevice(name, id)
	d, err := ds.Device(ctx, uid, id)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
	case err != nil:
		return nil, err
	case c.user != nil:
		stored = d.Credential
	}
	keys, reseal, err := a.hasher.OpenDevice(name, id, stored)
	if c.user == nil || d == nil {
		return c, nil
	}
	if err != nil {
		// Sealed with a pepper retired since, or altered: the device
		// logs in no more, and its owner logs in again with the
		// password, as for a revoked one.
		a.log(slog.LevelWarn, "device credential unusable", "user", name, "device", DeviceID(id), "error", err)
		return c, nil
	}
	c.device, c.reseal, c.keys, c.real = d, reseal, keys, true
	return c, nil
}

// FinishDevice checks the proof of a device login, as FinishLNP does a
// password's, and returns the account. A device past its expiry is
// refused as a wrong proof is (EUNAUTHORIZED), after the proof is
// checked. Every success, and every right proof of an expired device, is
// an audit event.
func (a *Authenticator) FinishDevice(ctx context.Context, c *LNPChallenge, authMessage []byte, proof [32]byte, from netip.Addr) (*LNPResult, error) {
	if err := a.throttleWait(ctx, c.name, from); err != nil {
		return nil, err
	}
	ok := lnp.VerifyProof(c.keys.StoredKey, authMessage, proof) && c.real
	a.stats.checked(!c.real, ok, nil)
	if !ok {
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "no device credential of user %q matches the proof", c.name)
	}
	id := DeviceID(c.device.ID)
	if !time.Now().Before(c.device.ExpiresAt) {
		a.audit(ctx, c.name, from, "device login refused: "+id+" expired at "+c.device.ExpiresAt.UTC().Format(time.RFC3339))
		return nil, larder.Errorf(larder.EUNAUTHORIZED, "device %s of user %q has expired", id, c.name)
	}
	// The account as it is now, as in FinishLNP: it may have been
	// disabled or deleted since the HELLO. Its password may have changed
	// too; a device kept across the change (--keep-devices) still logs
	// in, to the account at its new generation.
	u, err := a.admitNow(ctx, c, from, false)
	if err != nil {
		return nil, err
	}
	var cred string
	if c.reseal {
		if cred, err = a.hasher.SealDevice(u.Name, c.device.ID, c.keys); err != nil {
			a.log(slog.LevelWarn, "device credential not sealed again", "user", u.Name, "device", id, "error", err)
			cred = ""
		}
	}
	if err := a.Devices.TouchDevice(ctx, u.ID, c.device.ID, time.Now(), cred); err != nil {
		// Revoked between the challenge and the proof.
		if larder.ErrorCode(err) == larder.ENOTFOUND {
			return nil, larder.Errorf(larder.EUNAUTHORIZED, "device %s of user %q was revoked", id, c.name)
		}
		return nil, err
	}
	a.audit(ctx, u.Name, from, "device login: "+id)
	// The account's own credential moves to the current pepper too, or a
	// user who logs in only with devices would hold the old pepper back
	// from retirement.
	if u.LNPCredential != "" && a.hasher.LNPNeedsReseal(u.LNPCredential) {
		a.resealUnopened(ctx, u, from)
	}
	return &LNPResult{User: u, Device: c.device.ID, ServerSignature: lnp.ServerSignature(c.keys.ServerKey, authMessage)}, nil
}

// throttleWait asks the throttle whether name may try from from, and
// waits its delay.
func (a *Authenticator) throttleWait(ctx context.Context, name string, from netip.Addr) error {
	d := a.throttle.Attempt(name, from)
	a.stats.throttled(d)
	if d.Refused {
		return d.Err()
	}
	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			a.throttle.Abandoned(name, from)
			return busy(ctx.Err())
		}
	}
	return nil
}

// DeviceStill reports whether the device id, with which u's session
// logged in, still logs in: ENOTFOUND if it was revoked, EUNAUTHORIZED if
// it has expired.
func (a *Authenticator) DeviceStill(ctx context.Context, u *larder.User, id [16]byte) error {
	ds, err := a.devices()
	if err != nil {
		return err
	}
	d, err := ds.Device(ctx, u.ID, id)
	switch {
	case larder.ErrorCode(err) == larder.ENOTFOUND:
		return larder.Errorf(larder.ENOTFOUND, "device %s was revoked", DeviceID(id))
	case err != nil:
		return err
	case !time.Now().Before(d.ExpiresAt):
		return larder.Errorf(larder.EUNAUTHORIZED, "device %s has expired", DeviceID(id))
	}
	return nil
}

// ListDevices returns u's devices, oldest first.
func (a *Authenticator) ListDevices(ctx context.Context, u *larder.User) ([]*larder.Device, error) {
	ds, err := a.devices()
	if err != nil {
		return nil, err
	}
	return ds.Devices(ctx, u.ID)
}

// RevokeDevice removes u's device id (ENOTFOUND if it has none such).
// The caller records the event, as for AddDevice.
func (a *Authenticator) RevokeDevice(ctx context.Context, u *larder.User, id [16]byte) error {
	ds, err := a.devices()
	if err != nil {
		return err
	}
	return ds.RevokeDevice(ctx, u.ID, id)
}

// RevokeDevices removes every device of u but except (none for a zero
// ID), and returns how many.
func (a *Authenticator) RevokeDevices(ctx context.Context, u *larder.User, except [16]byte) (int, error) {
	ds, err := a.devices()
	if err != nil {
		return 0, err
	}
	return ds.RevokeDevices(ctx, u.ID, except)
}
