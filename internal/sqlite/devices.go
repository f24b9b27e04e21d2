package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/larderfs/larder"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DeviceStore keeps device credentials in the devices table of a DB. It
// is safe for concurrent use.
type DeviceStore struct {
	db *DB
}

var _ larder.DeviceStore = (*DeviceStore)(nil)

// NewDeviceStore returns a DeviceStore over db.
func NewDeviceStore(db *DB) *DeviceStore { return &DeviceStore{db: db} }

const (
	deviceColumns   = `id, user_id, label, credential, created_at, expires_at, last_used`
	insertDeviceSQL = `INSERT INTO devices (` + deviceColumns + `) VALUES (?, ?, ?, ?, ?, ?, '')`
	deviceSQL       = `SELECT ` + deviceColumns + ` FROM devices WHERE user_id = ? AND id = ?`
	devicesSQL      = `SELECT ` + deviceColumns + ` FROM devices WHERE user_id = ? ORDER BY created_at, id`
	// A cred of '' keeps the credential.
	touchDeviceSQL   = `UPDATE devices SET last_used = ?, credential = CASE WHEN ? = '' THEN credential ELSE ? END WHERE user_id = ? AND id = ?`
	revokeDeviceSQL  = `DELETE FROM devices WHERE user_id = ? AND id = ?`
	revokeDevicesSQL = `DELETE FROM devices WHERE user_id = ? AND id <> ?`
)

func deviceNotFound(id [16]byte) error {
	return larder.Errorf(larder.ENOTFOUND, "no such device %x", id)
}

// AddDevice stores d and sets d.CreatedAt.
func (s *DeviceStore) AddDevice(ctx context.Context, d *larder.Device) error {
	now := time.Now().UTC()
	_, err := s.db.write.ExecContext(ctx, insertDeviceSQL, d.ID[:], d.UserID, d.Label, d.Credential, formatTime(now), formatTime(d.ExpiresAt))
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return larder.Errorf(larder.ECONFLICT, "device %x exists already", d.ID)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return larder.Errorf(larder.ENOTFOUND, "no account of id %d", d.UserID)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: add device: %w", err)
	}
	d.CreatedAt = now
	return nil
}

// Device returns the device id of account userID.
func (s *DeviceStore) Device(ctx context.Context, userID int64, id [16]byte) (*larder.Device, error) {
	d, err := scanDevice(s.db.read.QueryRowContext(ctx, deviceSQL, userID, id[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deviceNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: device: %w", err)
	}
	return d, nil
}

// Devices returns the devices of account userID, oldest first.
func (s *DeviceStore) Devices(ctx context.Context, userID int64) ([]*larder.Device, error) {
	rows, err := s.db.read.QueryContext(ctx, devicesSQL, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	ds, err := collect(rows, scanDevice)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	return ds, nil
}

// TouchDevice records a login of the device at t, and replaces its
// credential with cred unless cred is "".
func (s *DeviceStore) TouchDevice(ctx context.Context, userID int64, id [16]byte, t time.Time, cred string) error {
	res, err := s.db.write.ExecContext(ctx, touchDeviceSQL, formatTime(t), cred, cred, userID, id[:])
	return affected(res, err, "touch device", id)
}

// RevokeDevice removes the device id of account userID.
func (s *DeviceStore) RevokeDevice(ctx context.Context, userID int64, id [16]byte) error {
	res, err := s.db.write.ExecContext(ctx, revokeDeviceSQL, userID, id[:])
	return affected(res, err, "revoke device", id)
}

// RevokeDevices removes every device of account userID but except.
func (s *DeviceStore) RevokeDevices(ctx context.Context, userID int64, except [16]byte) (int, error) {
	res, err := s.db.write.ExecContext(ctx, revokeDevicesSQL, userID, except[:])
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke devices: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func affected(res sql.Result, err error, op string, id [16]byte) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	} else if n == 0 {
		return deviceNotFound(id)
	}
	return nil
}

func scanDevice(row scanner) (*larder.Device, error) {
	var (
		d                      larder.Device
		id                     []byte
		created, expires, used string
	)
	if err := row.Scan(&id, &d.UserID, &d.Label, &d.Credential, &created, &expires, &used); err != nil {
		return nil, err
	}
	if len(id) != 16 {
		return nil, fmt.Errorf("a device id of %d bytes", len(id))
	}
	d.ID = [16]byte(id)
	var err error
	if d.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if d.ExpiresAt, err = parseTime(expires); err != nil {
		return nil, err
	}
	if used != "" {
		if d.LastUsed, err = parseTime(used); err != nil {
			return nil, err
		}
	}
	return &d, nil
}
