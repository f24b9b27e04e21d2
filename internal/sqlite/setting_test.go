package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/storetest"
)

// TestSettingConformance runs the settings suite, on a new database file
// for each test, and on one file through two handles (two processes).
func TestSettingConformance(t *testing.T) {
	storetest.RunSettings(t, func(t *testing.T) larder.SettingStore {
		return sqlite.NewSettingStore(openShared(t))
	}, func(t *testing.T) (larder.SettingStore, larder.SettingStore) {
		path := filepath.Join(t.TempDir(), "larder.db")
		a, b := open(t, path), open(t, path)
		t.Cleanup(func() { a.Close(); b.Close() })
		return sqlite.NewSettingStore(a), sqlite.NewSettingStore(b)
	})
}
