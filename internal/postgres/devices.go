package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/larderfs/larder"
)

// DeviceStore keeps device credentials in the devices table of a DB. It
// is safe for concurrent use, also by several processes on one database.
type DeviceStore struct {
	db *DB
}

var _ larder.DeviceStore = (*DeviceStore)(nil)

// NewDeviceStore returns a DeviceStore over db.
func NewDeviceStore(db *DB) *DeviceStore { return &DeviceStore{db: db} }

// foreignKeyViolation is PostgreSQL's SQLSTATE for a row naming a missing
// one.
const foreignKeyViolation = "23503"

const (
	deviceColumns   = `id, user_id, label, credential, created_at, expires_at, last_used`
	insertDeviceSQL = `INSERT INTO devices (id, user_id, label, credential, created_at, expires_at)
		VALUES ($1, $2, $3, $4, now(), $5) RETURNING created_at`
	deviceSQL        = `SELECT ` + deviceColumns + ` FROM devices WHERE user_id = $1 AND id = $2`
	devicesSQL       = `SELECT ` + deviceColumns + ` FROM devices WHERE user_id = $1 ORDER BY created_at, id`
	touchDeviceSQL   = `UPDATE devices SET last_used = $3, credential = CASE WHEN $4 = '' THEN credential ELSE $4 END WHERE user_id = $1 AND id = $2`
	revokeDeviceSQL  = `DELETE FROM devices WHERE user_id = $1 AND id = $2`
	revokeDevicesSQL = `DELETE FROM devices WHERE user_id = $1 AND id <> $2`
)

func deviceNotFound(id [16]byte) error {
	return larder.Errorf(larder.ENOTFOUND, "no such device %x", id)
}

// AddDevice stores d and sets d.CreatedAt.
func (s *DeviceStore) AddDevice(ctx context.Context, d *larder.Device) error {
	var created time.Time
	err := s.db.pool.QueryRow(ctx, insertDeviceSQL, d.ID[:], d.UserID, d.Label, d.Credential, d.ExpiresAt).Scan(&created)
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch e.Code {
		case uniqueViolation:
			return larder.Errorf(larder.ECONFLICT, "device %x exists already", d.ID)
		case foreignKeyViolation:
			return larder.Errorf(larder.ENOTFOUND, "no account of id %d", d.UserID)
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: add device: %w", err)
	}
	d.CreatedAt = created
	return nil
}

// Device returns the device id of account userID.
func (s *DeviceStore) Device(ctx context.Context, userID int64, id [16]byte) (*larder.Device, error) {
	d, err := scanDevice(s.db.pool.QueryRow(ctx, deviceSQL, userID, id[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, deviceNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: device: %w", err)
	}
	return d, nil
}

// Devices returns the devices of account userID, oldest first.
func (s *DeviceStore) Devices(ctx context.Context, userID int64) ([]*larder.Device, error) {
	rows, err := s.db.pool.Query(ctx, devicesSQL, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	defer rows.Close()
	var ds []*larder.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: devices: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	return ds, nil
}

// TouchDevice records a login of the device at t, and replaces its
// credential with cred unless cred is "".
func (s *DeviceStore) TouchDevice(ctx context.Context, userID int64, id [16]byte, t time.Time, cred string) error {
	tag, err := s.db.pool.Exec(ctx, touchDeviceSQL, userID, id[:], t, cred)
	return affected(tag, err, "touch device", id)
}

// RevokeDevice removes the device id of account userID.
func (s *DeviceStore) RevokeDevice(ctx context.Context, userID int64, id [16]byte) error {
	tag, err := s.db.pool.Exec(ctx, revokeDeviceSQL, userID, id[:])
	return affected(tag, err, "revoke device", id)
}

// RevokeDevices removes every device of account userID but except.
func (s *DeviceStore) RevokeDevices(ctx context.Context, userID int64, except [16]byte) (int, error) {
	tag, err := s.db.pool.Exec(ctx, revokeDevicesSQL, userID, except[:])
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke devices: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func affected(tag pgconn.CommandTag, err error, op string, id [16]byte) error {
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if tag.RowsAffected() == 0 {
		return deviceNotFound(id)
	}
	return nil
}

func scanDevice(row pgx.Row) (*larder.Device, error) {
	var (
		d    larder.Device
		id   []byte
		used *time.Time
	)
	if err := row.Scan(&id, &d.UserID, &d.Label, &d.Credential, &d.CreatedAt, &d.ExpiresAt, &used); err != nil {
		return nil, err
	}
	if len(id) != 16 {
		return nil, fmt.Errorf("a device id of %d bytes", len(id))
	}
	d.ID = [16]byte(id)
	if used != nil {
		d.LastUsed = *used
	}
	return &d, nil
}
