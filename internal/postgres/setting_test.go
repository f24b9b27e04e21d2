package postgres_test

import (
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/storetest"
)

// TestSettingConformance runs the settings suite, on a new database for
// each test, and on one database through two pools (two servers).
func TestSettingConformance(t *testing.T) {
	storetest.RunSettings(t, func(t *testing.T) larder.SettingStore {
		return postgres.NewSettingStore(open(t, pgtest.URL(t)))
	}, func(t *testing.T) (larder.SettingStore, larder.SettingStore) {
		url := pgtest.URL(t)
		return postgres.NewSettingStore(open(t, url)), postgres.NewSettingStore(open(t, url))
	})
}

// TestDeviceConformance runs the device suite, the second store on a
// second pool (another server).
func TestDeviceConformance(t *testing.T) {
	storetest.RunDevices(t, func(t *testing.T) storetest.DeviceStores {
		url := pgtest.URL(t)
		a := open(t, url)
		return storetest.DeviceStores{Users: postgres.NewUserStore(a), Devices: postgres.NewDeviceStore(a), OtherProcess: postgres.NewDeviceStore(open(t, url))}
	})
}
