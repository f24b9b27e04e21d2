package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/argon2"
)

// Calibration settings.
const (
	calibrateRuns = 3 // timed runs per candidate; their median counts
	// calibrateMaxMeasures bounds the candidates tried, so that a noisy
	// machine cannot keep Calibrate going.
	calibrateMaxMeasures = 24
	// calibrateMaxPasses keeps t sane for a long target on little memory.
	calibrateMaxPasses = 1024
)

// owaspFloorMemory is the least memory of OWASP's argon2id configurations.
var owaspFloorMemory = owaspMinimums[len(owaspMinimums)-1].memory

// minPasses returns the fewest passes at which m KiB meets OWASP's minimum
// (Params.MeetsOWASPMinimum), and 0 if no number of passes does.
func minPasses(m uint32) uint32 {
	for _, row := range owaspMinimums { // by decreasing memory
		if m >= row.memory {
			return row.time
		}
	}
	return 0
}

// Calibrate measures argon2id on this machine and proposes parameters whose
// hash takes about target, with the median of a few timed runs. It follows
// RFC 9106 §4 and OWASP: memory first, then passes. It starts at
// maxMemoryKiB (rounded down to whole MiB), the most memory one hash may
// take (the caller divides what the machine can spare by the pool size),
// with the fewest passes that OWASP's table of equal-strength minimums
// allows at that memory (46 MiB×1, 19 MiB×2, 12 MiB×3, 9 MiB×4, 7 MiB×5).
// If that already takes longer than target, it halves the memory, taking
// the passes the table then requires, down to OWASP's least memory, 7 MiB;
// otherwise it raises the passes to the most whose median still fits in
// target. It never proposes parameters below OWASP's minimum: if even the
// cheapest takes longer than target, it returns those with their (longer)
// time, which the caller should report. It returns the parameters and the
// median time they took.
//
// It runs for roughly 3 to 20 times target, on lanes threads: run it on an
// otherwise idle machine, not beside a busy server. maxMemoryKiB must be at
// least 7168 and at most MaxMemory.
func Calibrate(ctx context.Context, target time.Duration, maxMemoryKiB uint32, lanes uint8) (Params, time.Duration, error) {
	return calibrate(ctx, target, maxMemoryKiB, lanes, timeArgon2id)
}

// timeArgon2id times one argon2id hash with p.
func timeArgon2id(p Params) time.Duration {
	secret, salt := make([]byte, 32), make([]byte, saltLen)
	rand.Read(secret)
	rand.Read(salt)
	start := time.Now()
	argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, keyLen)
	return time.Since(start)
}

// calibrate is Calibrate with the timing function as a parameter, so that
// the tests can check the search against a model of the machine.
func calibrate(ctx context.Context, target time.Duration, maxMemory uint32, lanes uint8, run func(Params) time.Duration) (Params, time.Duration, error) {
	switch {
	case target <= 0:
		return Params{}, 0, fmt.Errorf("auth: calibrate: target %v is not positive", target)
	case lanes < 1:
		return Params{}, 0, fmt.Errorf("auth: calibrate: lanes must be at least 1")
	case maxMemory < owaspFloorMemory:
		return Params{}, 0, fmt.Errorf("auth: calibrate: %d KiB is below OWASP's least argon2id memory, %d KiB", maxMemory, owaspFloorMemory)
	case maxMemory > MaxMemory:
		return Params{}, 0, fmt.Errorf("auth: calibrate: %d KiB is above the limit of %d KiB", maxMemory, MaxMemory)
	}
	measures := 0
	median := func(p Params) (time.Duration, error) {
		measures++
		ds := make([]time.Duration, calibrateRuns)
		for i := range ds {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("auth: calibrate: %w", err)
			}
			ds[i] = run(p)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], nil
	}
	// Memory: the most allowed, halved while the fewest passes OWASP
	// allows there take longer than target.
	m := max(maxMemory/1024*1024, owaspFloorMemory)
	// One untimed run, so that the first timed one does not pay alone for
	// growing the heap.
	if err := ctx.Err(); err != nil {
		return Params{}, 0, fmt.Errorf("auth: calibrate: %w", err)
	}
	run(Params{Memory: m, Time: 1, Threads: lanes})
	p := Params{Memory: m, Time: minPasses(m), Threads: lanes}
	d, err := median(p)
	if err != nil {
		return Params{}, 0, err
	}
	for d > target && p.Memory > owaspFloorMemory {
		m = max(p.Memory/2/1024*1024, owaspFloorMemory)
		p = Params{Memory: m, Time: minPasses(m), Threads: lanes}
		if d, err = median(p); err != nil {
			return Params{}, 0, err
		}
	}
	if d > target {
		return p, d, nil // the cheapest OWASP allows is still too slow
	}

	// Passes: the time of argon2id grows linearly with t, so guess the
	// most that fits from this run, then step to the largest t whose
	// median fits, going down while the guess is too slow and up while
	// one more pass still fits.
	best, bestD := p, d
	guess := p
	if d > 0 {
		guess.Time = uint32(min(int64(target)*int64(p.Time)/int64(d), calibrateMaxPasses))
	}
	for guess.Time > best.Time && measures < calibrateMaxMeasures {
		gd, err := median(guess)
		if err != nil {
			return Params{}, 0, err
		}
		if gd <= target {
			best, bestD = guess, gd
			break
		}
		guess.Time--
	}
	for best.Time < calibrateMaxPasses && measures < calibrateMaxMeasures {
		next := best
		next.Time++
		nd, err := median(next)
		if err != nil {
			return Params{}, 0, err
		}
		if nd > target {
			break
		}
		best, bestD = next, nd
	}
	return best, bestD, nil
}
