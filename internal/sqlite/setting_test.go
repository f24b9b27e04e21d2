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

// TestDeviceConformance runs the device suite, the second store on a
// second handle of the same file (another process).
func TestDeviceConformance(t *testing.T) {
	storetest.RunDevices(t, func(t *testing.T) storetest.DeviceStores {
		path := filepath.Join(t.TempDir(), "larder.db")
		a, b := open(t, path), open(t, path)
		t.Cleanup(func() { a.Close(); b.Close() })
		return storetest.DeviceStores{Users: sqlite.NewUserStore(a), Devices: sqlite.NewDeviceStore(a), OtherProcess: sqlite.NewDeviceStore(b)}
	})
}
