package larder

import (
	"context"
	"strings"
	"unicode/utf8"
)

// SettingStore keeps the few settings that every program working on one
// database must agree on, where each can read them: "larder serve" records
// its password-hash policy (SettingHashPolicy), and the administrator's
// commands hash and judge hashes by it rather than by a guess.
// internal/sqlite and internal/postgres implement it, in the database of
// the accounts.
type SettingStore interface {
	// Setting returns the value of key. If key was never set, the error
	// has code ENOTFOUND.
	Setting(ctx context.Context, key string) (string, error)
	// SetSetting sets key to value, replacing the value it had; it is
	// seen at once by every store on the database. A key or value that
	// CheckSetting refuses is an error with code EINVALID.
	SetSetting(ctx context.Context, key, value string) error
}

// SettingHashPolicy is the key of the argon2id policy of the servers, in
// the notation of PHC strings: "m=19456,t=2,p=1".
const SettingHashPolicy = "hash.policy"

// SettingLNPMockKey is the key of the secret, in standard base64, from
// which the servers derive the salt they show for a name that has no
// LNP/1 credential: shared, so that every server sharing the accounts
// shows a name the same salt.
const SettingLNPMockKey = "lnp.mock_key"

// Limits of a setting.
const (
	MaxSettingKey   = 64
	MaxSettingValue = 4096
)

// CheckSetting checks a setting's key and value, so that every store
// accepts the same ones: a key of 1 to MaxSettingKey bytes, a value of at
// most MaxSettingValue, both UTF-8 without NUL bytes.
func CheckSetting(key, value string) error {
	switch {
	case key == "" || len(key) > MaxSettingKey:
		return Errorf(EINVALID, "setting key is %d bytes long: want 1 to %d", len(key), MaxSettingKey)
	case len(value) > MaxSettingValue:
		return Errorf(EINVALID, "setting %q: value is %d bytes long: the most is %d", key, len(value), MaxSettingValue)
	case !settingText(key) || !settingText(value):
		return Errorf(EINVALID, "setting %q: keys and values are UTF-8 text without NUL bytes", key)
	}
	return nil
}

func settingText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// SettingNotFound is a SettingStore's error for a key never set.
func SettingNotFound(key string) error {
	return Errorf(ENOTFOUND, "no setting %q", key)
}
