package auth

import (
	"fmt"
	"strconv"
	"strings"
)

// Params are the cost parameters of argon2id. Every stored hash records the
// parameters it was made with, so they can be raised without invalidating
// existing accounts.
type Params struct {
	Memory  uint32 // KiB of memory per hash
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (degree of parallelism)
}

// DefaultParams are OWASP's recommended minimum for argon2id: 19 MiB,
// 2 passes, 1 lane (Password Storage Cheat Sheet, 2023–2026). One hash
// takes about 40 ms on one core of our 2-vCPU machines.
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1}

// MaxMemory is the most memory, in KiB, that Validate accepts: 4 GiB.
const MaxMemory = 4 << 20

// Validate reports whether p can be computed at all and is not absurd. It
// accepts parameters far below OWASP's minimum, which tests use for speed;
// see MeetsOWASPMinimum for that check.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("auth: argon2id needs at least 1 thread, got %d", p.Threads)
	case p.Time < 1:
		return fmt.Errorf("auth: argon2id needs at least 1 pass, got %d", p.Time)
	case p.Memory < 8*uint32(p.Threads):
		// x/crypto/argon2 would silently raise the memory to 8 KiB per
		// lane, and the recorded parameters would then lie.
		return fmt.Errorf("auth: argon2id needs at least 8 KiB per thread, got %d KiB for %d threads", p.Memory, p.Threads)
	case p.Memory > MaxMemory:
		return fmt.Errorf("auth: argon2id memory %d KiB is above the limit of %d KiB", p.Memory, MaxMemory)
	}
	return nil
}

// owaspMinimums are OWASP's equal-strength argon2id configurations (memory
// in KiB, passes), all with one lane.
var owaspMinimums = [...]struct{ memory, time uint32 }{
	{47104, 1}, {19456, 2}, {12288, 3}, {9216, 4}, {7168, 5},
}

// MeetsOWASPMinimum reports whether p costs at least as much as one of
// OWASP's equal-strength argon2id configurations (46 MiB×1, 19 MiB×2,
// 12 MiB×3, 9 MiB×4, 7 MiB×5). A server should warn when it does not.
func (p Params) MeetsOWASPMinimum() bool {
	if p.Validate() != nil {
		return false
	}
	for _, m := range owaspMinimums {
		if p.Memory >= m.memory && p.Time >= m.time {
			return true
		}
	}
	return false
}

// String returns p in the notation of PHC strings, "m=19456,t=2,p=1".
func (p Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// ParseParams parses parameters in the notation of String, "m=19456,t=2,p=1",
// and validates them.
func ParseParams(s string) (Params, error) {
	var p Params
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return p, fmt.Errorf("auth: argon2id parameters %q: want m=KiB,t=PASSES,p=LANES", s)
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || (name == "p" && n > 255) {
			return p, fmt.Errorf("auth: argon2id parameters %q: want m=KiB,t=PASSES,p=LANES", s)
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		}
	}
	return p, p.Validate()
}
