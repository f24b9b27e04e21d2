package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// model is a machine on which argon2id takes ns nanoseconds per KiB-pass.
func model(ns float64) func(Params) time.Duration {
	return func(p Params) time.Duration { return time.Duration(ns * float64(p.Memory) * float64(p.Time)) }
}

func TestCalibrateModel(t *testing.T) {
	const ns = 1000 // 1 µs per KiB-pass: DefaultParams take 38.9 ms
	run := model(ns)
	for _, tc := range []struct {
		target time.Duration
		maxMem uint32
		want   Params
	}{
		// Room for more passes at the most memory allowed.
		{100 * time.Millisecond, 19456, Params{Memory: 19456, Time: 5, Threads: 1}},
		{40 * time.Millisecond, 19456, Params{Memory: 19456, Time: 2, Threads: 1}},
		{1 * time.Second, 65536, Params{Memory: 65536, Time: 15, Threads: 1}},
		{70 * time.Millisecond, 65536 + 1000, Params{Memory: 65536, Time: 1, Threads: 1}}, // whole MiB
		{8 * time.Millisecond, 7168, Params{Memory: 7168, Time: 5, Threads: 1}},           // floor, too slow
		// 64 MiB×1 takes 65.5 ms: halve to 32 MiB×2 (65.5), 16 MiB×3 (49.2).
		{50 * time.Millisecond, 65536, Params{Memory: 16384, Time: 3, Threads: 1}},
		// Nothing fits: the cheapest OWASP allows, 7 MiB×5 (35.8 ms).
		{10 * time.Millisecond, 65536, Params{Memory: 7168, Time: 5, Threads: 1}},
	} {
		p, d, err := calibrate(context.Background(), tc.target, tc.maxMem, 1, run)
		if err != nil {
			t.Errorf("calibrate(%v, %d): %v", tc.target, tc.maxMem, err)
			continue
		}
		if p != tc.want || d != run(p) {
			t.Errorf("calibrate(%v, %d) = %v, %v; want %v, %v", tc.target, tc.maxMem, p, d, tc.want, run(tc.want))
		}
		if !p.MeetsOWASPMinimum() {
			t.Errorf("calibrate(%v, %d) = %v, below OWASP's minimum", tc.target, tc.maxMem, p)
		}
	}
}

// TestCalibrateMonotonic checks the shape of the search on models of
// machines of many speeds: the result always meets OWASP's minimum, fits
// the target unless nothing does, cannot take one more pass within it, and
// costs no less for a longer target.
func TestCalibrateMonotonic(t *testing.T) {
	for _, ns := range []float64{50, 300, 1000, 4000} {
		run := model(ns)
		var prev Params
		for target := time.Millisecond; target <= 2*time.Second; target = target * 3 / 2 {
			for _, maxMem := range []uint32{7168, 19456, 50000, 262144} {
				var measured []Params
				rec := func(p Params) time.Duration { measured = append(measured, p); return run(p) }
				p, d, err := calibrate(context.Background(), target, maxMem, 2, rec)
				if err != nil {
					t.Fatal(err)
				}
				if !p.MeetsOWASPMinimum() || p.Threads != 2 || p.Memory > maxMem || p.Validate() != nil {
					t.Errorf("ns=%v target=%v max=%d: %v", ns, target, maxMem, p)
				}
				if d > target && (p.Memory != owaspFloorMemory || p.Time != minPasses(owaspFloorMemory)) {
					t.Errorf("ns=%v target=%v max=%d: %v takes %v, over the target, yet cheaper ones exist", ns, target, maxMem, p, d)
				}
				if next := (Params{Memory: p.Memory, Time: p.Time + 1, Threads: 2}); d <= target && run(next) <= target && p.Time < calibrateMaxPasses {
					t.Errorf("ns=%v target=%v max=%d: %v, but %v also fits", ns, target, maxMem, p, next)
				}
				if len(measured) > 1+calibrateRuns*(calibrateMaxMeasures+2) {
					t.Errorf("ns=%v target=%v max=%d: %d runs", ns, target, maxMem, len(measured))
				}
				if maxMem == 262144 {
					if cost := uint64(p.Memory) * uint64(p.Time); cost < uint64(prev.Memory)*uint64(prev.Time) && d <= target {
						t.Errorf("ns=%v: target %v gives %v, cheaper than %v for a shorter target", ns, target, p, prev)
					}
					prev = p
				}
			}
		}
	}
}

func TestCalibrateRefuses(t *testing.T) {
	run := model(1000)
	for _, tc := range []struct {
		target time.Duration
		maxMem uint32
		lanes  uint8
	}{
		{0, 19456, 1},
		{-time.Second, 19456, 1},
		{time.Second, 7167, 1},
		{time.Second, MaxMemory + 1, 1},
		{time.Second, 19456, 0},
	} {
		if p, _, err := calibrate(context.Background(), tc.target, tc.maxMem, tc.lanes, run); err == nil {
			t.Errorf("calibrate(%v, %d, %d) = %v, want an error", tc.target, tc.maxMem, tc.lanes, p)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := calibrate(ctx, time.Second, 19456, 1, run); !errors.Is(err, context.Canceled) {
		t.Errorf("calibrate(canceled) = %v, want context.Canceled", err)
	}
}

// TestCalibrateReal runs the real argon2id, with little memory: it checks
// the result's structure, not the times, which depend on the machine.
func TestCalibrateReal(t *testing.T) {
	for _, target := range []time.Duration{time.Millisecond, 60 * time.Millisecond} {
		p, d, err := Calibrate(t.Context(), target, 8192, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !p.MeetsOWASPMinimum() || p.Memory > 8192 || p.Threads != 1 || d <= 0 {
			t.Errorf("Calibrate(%v) = %v, %v", target, p, d)
		}
		if d > target && (p.Memory != owaspFloorMemory || p.Time != minPasses(owaspFloorMemory)) {
			t.Errorf("Calibrate(%v) = %v taking %v, over the target, yet cheaper ones exist", target, p, d)
		}
		t.Logf("Calibrate(%v, 8 MiB) = %v in %v", target, p, d)
		if testing.Short() {
			break
		}
	}
}
