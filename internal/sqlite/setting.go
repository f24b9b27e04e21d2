package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/larderfs/larder"
)

// SettingStore keeps settings in the settings table of a DB. It is safe
// for concurrent use, also by several processes on one database file.
type SettingStore struct {
	db *DB
}

var _ larder.SettingStore = (*SettingStore)(nil)

// NewSettingStore returns a SettingStore over db.
func NewSettingStore(db *DB) *SettingStore { return &SettingStore{db: db} }

const (
	settingSQL    = `SELECT value FROM settings WHERE key = ?`
	setSettingSQL = `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
)

// Setting returns the value of key; if it was never set, the error has
// code ENOTFOUND.
func (s *SettingStore) Setting(ctx context.Context, key string) (string, error) {
	if larder.CheckSetting(key, "") != nil {
		return "", larder.SettingNotFound(key)
	}
	stmt, err := s.db.stmt(ctx, true, settingSQL)
	if err != nil {
		return "", fmt.Errorf("sqlite: setting %q: %w", key, err)
	}
	var v string
	err = stmt.QueryRowContext(ctx, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", larder.SettingNotFound(key)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting sets key to value.
func (s *SettingStore) SetSetting(ctx context.Context, key, value string) error {
	if err := larder.CheckSetting(key, value); err != nil {
		return err
	}
	stmt, err := s.db.stmt(ctx, false, setSettingSQL)
	if err == nil {
		_, err = stmt.ExecContext(ctx, key, value, formatTime(time.Now()))
	}
	if err != nil {
		return fmt.Errorf("sqlite: set setting %q: %w", key, err)
	}
	return nil
}
