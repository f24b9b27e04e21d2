package larder

import (
	"context"
	"time"
)

// Device is a device credential: what lets one client machine log in to
// LNP/1 without the password, through the same channel-bound proof (see
// docs/PROTOCOL.md, "Logging in with a device credential"). The client
// keeps a random secret; the store keeps only the keys derived from it,
// sealed with the pepper, as for LNPCredential.
type Device struct {
	// ID names the device: 16 random bytes, unique in the store.
	ID [16]byte
	// UserID is the account's ID: a device never moves to an account
	// registered again under a deleted one's name.
	UserID int64
	// Label is what its owner called it ("laptop"), for listings.
	Label string
	// Credential is the sealed keys, as internal/auth stores them
	// ("$lnp-device$...").
	Credential string
	CreatedAt  time.Time
	// ExpiresAt is when the device stops logging in.
	ExpiresAt time.Time
	// LastUsed is its last login; zero for none yet.
	LastUsed time.Time
}

// MaxDeviceLabel is the longest label a device may have, in bytes.
const MaxDeviceLabel = 64

// DeviceStore keeps device credentials. internal/sqlite and
// internal/postgres implement it, and internal/storetest holds the
// conformance suite both pass. Every change is seen at once by every
// process sharing the store: a device revoked by an administrator's
// command stops logging in, and its sessions end, at once.
type DeviceStore interface {
	// AddDevice stores d (its CreatedAt is set here). An ID taken
	// already fails with code ECONFLICT.
	AddDevice(ctx context.Context, d *Device) error

	// Device returns the device id of account userID; ENOTFOUND if there
	// is none (or it is another account's).
	Device(ctx context.Context, userID int64, id [16]byte) (*Device, error)

	// Devices returns the devices of account userID, oldest first.
	Devices(ctx context.Context, userID int64) ([]*Device, error)

	// TouchDevice records a login of the device at t, and replaces its
	// credential with cred if cred is not "" (sealed again with a newer
	// pepper). ENOTFOUND if the device is gone.
	TouchDevice(ctx context.Context, userID int64, id [16]byte, t time.Time, cred string) error

	// RevokeDevice removes the device id of account userID; ENOTFOUND if
	// there is none.
	RevokeDevice(ctx context.Context, userID int64, id [16]byte) error

	// RevokeDevices removes every device of account userID but except
	// (a zero ID keeps none), and returns how many it removed.
	RevokeDevices(ctx context.Context, userID int64, except [16]byte) (int, error)
}
