package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/larderfs/larder"
)

// SettingStore keeps settings in the settings table of a DB, shared by
// every server on the database. It is safe for concurrent use.
type SettingStore struct {
	db *DB
}

var _ larder.SettingStore = (*SettingStore)(nil)

// NewSettingStore returns a SettingStore over db.
func NewSettingStore(db *DB) *SettingStore { return &SettingStore{db: db} }

const (
	settingSQL    = `SELECT value FROM settings WHERE key = $1`
	setSettingSQL = `INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
)

// Setting returns the value of key; if it was never set, the error has
// code ENOTFOUND.
func (s *SettingStore) Setting(ctx context.Context, key string) (string, error) {
	if larder.CheckSetting(key, "") != nil {
		return "", larder.SettingNotFound(key)
	}
	var v string
	err := s.db.pool.QueryRow(ctx, settingSQL, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", larder.SettingNotFound(key)
	}
	if err != nil {
		return "", fmt.Errorf("postgres: setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting sets key to value.
func (s *SettingStore) SetSetting(ctx context.Context, key, value string) error {
	if err := larder.CheckSetting(key, value); err != nil {
		return err
	}
	if _, err := s.db.pool.Exec(ctx, setSettingSQL, key, value); err != nil {
		return fmt.Errorf("postgres: set setting %q: %w", key, err)
	}
	return nil
}
