package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/larderfs/larder"
)

// RunSettings runs the conformance suite of larder.SettingStore against
// the stores that open returns. It calls open once in each subtest, which
// must return an empty store of its own, closed in t.Cleanup; shared, if
// not nil, returns two stores on one new database (two servers). The
// subtests run in parallel.
func RunSettings(t *testing.T, open func(t *testing.T) larder.SettingStore, shared func(t *testing.T) (larder.SettingStore, larder.SettingStore)) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		if _, err := s.Setting(ctx, larder.SettingHashPolicy); larder.ErrorCode(err) != larder.ENOTFOUND {
			t.Errorf("Setting of a key never set: got %v, want code %q", err, larder.ENOTFOUND)
		}
		for _, v := range []string{"m=19456,t=2,p=1", "m=65536,t=3,p=1", "", "ünïcode ✓ " + strings.Repeat("x", larder.MaxSettingValue-15)} {
			if err := s.SetSetting(ctx, larder.SettingHashPolicy, v); err != nil {
				t.Fatalf("SetSetting(%.20q): %v", v, err)
			}
			if got, err := s.Setting(ctx, larder.SettingHashPolicy); got != v || err != nil {
				t.Errorf("Setting after SetSetting(%.20q): got %.20q, %v", v, got, err)
			}
		}
		if err := s.SetSetting(ctx, "other", "1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Setting(ctx, "other"); got != "1" {
			t.Errorf("Setting(other) = %q, want 1", got)
		}
		if got, _ := s.Setting(ctx, larder.SettingHashPolicy); !strings.HasPrefix(got, "ünïcode") {
			t.Errorf("setting another key changed %s to %.20q", larder.SettingHashPolicy, got)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		for _, tc := range []struct{ key, value string }{
			{"", "v"},
			{strings.Repeat("k", larder.MaxSettingKey+1), "v"},
			{"k", strings.Repeat("v", larder.MaxSettingValue+1)},
			{"k\x00", "v"},
			{"k", "v\x00"},
			{"k", "\xff"},
		} {
			if err := s.SetSetting(ctx, tc.key, tc.value); larder.ErrorCode(err) != larder.EINVALID {
				t.Errorf("SetSetting(%.20q, %.20q): got %v, want code %q", tc.key, tc.value, err, larder.EINVALID)
			}
		}
		for _, key := range []string{"", "k\x00", "\xff"} {
			if _, err := s.Setting(ctx, key); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("Setting(%q): got %v, want code %q", key, err, larder.ENOTFOUND)
			}
		}
	})
	if shared == nil {
		return
	}
	t.Run("Shared", func(t *testing.T) {
		t.Parallel()
		a, b := shared(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				s := []larder.SettingStore{a, b}[i%2]
				if err := s.SetSetting(ctx, "race", fmt.Sprint(i)); err != nil {
					t.Errorf("SetSetting %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		va, erra := a.Setting(ctx, "race")
		vb, errb := b.Setting(ctx, "race")
		if erra != nil || errb != nil || va != vb {
			t.Errorf("after concurrent sets, the stores read %q, %v and %q, %v; want one value", va, erra, vb, errb)
		}
		if err := a.SetSetting(ctx, larder.SettingHashPolicy, "m=1,t=1,p=1"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Setting(ctx, larder.SettingHashPolicy); got != "m=1,t=1,p=1" || err != nil {
			t.Errorf("the other store reads %q, %v; want the value just set", got, err)
		}
	})
}
