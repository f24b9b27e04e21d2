package storetest

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// DeviceStores are what RunDevices tests: a store of accounts and two
// device stores on the same database (two processes, or one twice).
type DeviceStores struct {
	Users        larder.UserStore
	Devices      larder.DeviceStore
	OtherProcess larder.DeviceStore
}

// RunDevices runs the conformance suite of larder.DeviceStore. open is
// called once in each subtest and must return stores on an empty
// database of their own, closed in t.Cleanup. The subtests run in
// parallel.
func RunDevices(t *testing.T, open func(t *testing.T) DeviceStores) {
	ctx := context.Background()
	newUser := func(t *testing.T, s DeviceStores, name string) *larder.User {
		u := &larder.User{Name: name, Verifier: "v-" + name}
		if err := s.Users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	newDevice := func(u *larder.User, label string) *larder.Device {
		d := &larder.Device{UserID: u.ID, Label: label, Credential: "$lnp-device$" + label,
			ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Microsecond)}
		rand.Read(d.ID[:])
		return d
	}
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
		d := newDevice(alice, "laptop ✓")
		if err := s.Devices.AddDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if d.CreatedAt.IsZero() {
			t.Error("AddDevice left CreatedAt zero")
		}
		got, err := s.OtherProcess.Device(ctx, alice.ID, d.ID)
		if err != nil {
			t.Fatalf("Device from the other process: %v", err)
		}
		if got.ID != d.ID || got.UserID != alice.ID || got.Label != d.Label || got.Credential != d.Credential ||
			!got.ExpiresAt.Equal(d.ExpiresAt) || !got.LastUsed.IsZero() || got.CreatedAt.Sub(d.CreatedAt).Abs() > time.Millisecond {
			t.Errorf("Device: got %+v, want %+v", got, d)
		}
		// Another account's ID does not find it.
		if _, err := s.Devices.Device(ctx, bob.ID, d.ID); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("Device of another account: got %v, want code %q", err, larder.ENOTFOUND)
		}
		if err := s.Devices.AddDevice(ctx, &larder.Device{ID: d.ID, UserID: bob.ID, Credential: "x", ExpiresAt: d.ExpiresAt}); larder.ErrorCode(err) != larder.ECONFLICT {
			t.Errorf("AddDevice with a taken ID: got %v, want code %q", err, larder.ECONFLICT)
		}
		if err := s.Devices.AddDevice(ctx, newDevice(&larder.User{ID: 1 << 40}, "ghost")); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("AddDevice for no account: got %v, want code %q", err, larder.ENOTFOUND)
		}
	})
	t.Run("Touch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		alice := newUser(t, s, "alice")
		d := newDevice(alice, "phone")
		if err := s.Devices.AddDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
		if err := s.Devices.TouchDevice(ctx, alice.ID, d.ID, at, ""); err != nil {
			t.Fatal(err)
		}
		got, err := s.OtherProcess.Device(ctx, alice.ID, d.ID)
		if err != nil || !got.LastUsed.Equal(at) || got.Credential != d.Credential {
			t.Fatalf("after TouchDevice(%v, \"\"): got %+v, %v; want LastUsed %v and the credential kept", at, got, err, at)
		}
		if err := s.Devices.TouchDevice(ctx, alice.ID, d.ID, at.Add(time.Second), "resealed"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Devices.Device(ctx, alice.ID, d.ID); got.Credential != "resealed" || !got.LastUsed.Equal(at.Add(time.Second)) {
			t.Errorf("after TouchDevice with a credential: got %+v", got)
		}
		var other [16]byte
		if err := s.Devices.TouchDevice(ctx, alice.ID, other, at, ""); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("TouchDevice of no device: got %v, want code %q", err, larder.ENOTFOUND)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
		var ds []*larder.Device
		for _, l := range []string{"a", "b", "c", "d"} {
			d := newDevice(alice, l)
			if err := s.Devices.AddDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		bobs := newDevice(bob, "bob's")
		if err := s.Devices.AddDevice(ctx, bobs); err != nil {
			t.Fatal(err)
		}
		list, err := s.Devices.Devices(ctx, alice.ID)
		if err != nil || len(list) != 4 {
			t.Fatalf("Devices: got %d, %v; want 4", len(list), err)
		}
		for i, d := range list {
			if d.Label != ds[i].Label {
				t.Errorf("Devices[%d]: got %q, want %q (oldest first)", i, d.Label, ds[i].Label)
			}
		}
		// Bob cannot revoke Alice's device by its ID.
		if err := s.Devices.RevokeDevice(ctx, bob.ID, ds[0].ID); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("RevokeDevice of another's device: got %v, want code %q", err, larder.ENOTFOUND)
		}
		if err := s.OtherProcess.RevokeDevice(ctx, alice.ID, ds[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Devices.Device(ctx, alice.ID, ds[0].ID); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("Device after a revocation in the other process: got %v, want code %q", err, larder.ENOTFOUND)
		}
		if err := s.Devices.RevokeDevice(ctx, alice.ID, ds[0].ID); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("RevokeDevice twice: got %v, want code %q", err, larder.ENOTFOUND)
		}
		if n, err := s.Devices.RevokeDevices(ctx, alice.ID, ds[1].ID); n != 2 || err != nil {
			t.Errorf("RevokeDevices but one: got %d, %v; want 2", n, err)
		}
		if list, _ := s.Devices.Devices(ctx, alice.ID); len(list) != 1 || list[0].ID != ds[1].ID {
			t.Errorf("after RevokeDevices: got %d devices, want the one kept", len(list))
		}
		if n, err := s.Devices.RevokeDevices(ctx, alice.ID, [16]byte{}); n != 1 || err != nil {
			t.Errorf("RevokeDevices of all: got %d, %v; want 1", n, err)
		}
		if list, _ := s.Devices.Devices(ctx, bob.ID); len(list) != 1 {
			t.Errorf("Bob's devices after Alice's were revoked: got %d, want 1", len(list))
		}
	})
	t.Run("GoWithTheirAccount", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		alice := newUser(t, s, "alice")
		d := newDevice(alice, "laptop")
		if err := s.Devices.AddDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.Users.DeleteUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		again := newUser(t, s, "alice")
		for _, id := range []int64{alice.ID, again.ID} {
			if _, err := s.Devices.Device(ctx, id, d.ID); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("a deleted account's device, as account %d: got %v, want code %q", id, err, larder.ENOTFOUND)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		alice := newUser(t, s, "alice")
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				st := s.Devices
				if i%2 == 1 {
					st = s.OtherProcess
				}
				if err := st.AddDevice(ctx, newDevice(alice, "d")); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if list, err := s.Devices.Devices(ctx, alice.ID); len(list) != 8 || err != nil {
			t.Errorf("Devices after 8 concurrent adds: got %d, %v", len(list), err)
		}
	})
}
