//go:build linux

package main

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	larderclient "github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// cheap is an argon2id cost small enough for a test.
var cheap = lnp.KDF{Memory: 8, Time: 1, Threads: 1}

func TestKeptKey(t *testing.T) {
	var k keptKey
	salt := []byte("0123456789abcdef")
	want := lnp.SaltedKey("pw", salt, cheap)
	for i := range 3 {
		if got := k.derive("pw", salt, cheap); got != want {
			t.Fatalf("derive #%d = %x, want lnp.SaltedKey's %x", i+1, got, want)
		}
	}
	if k.derived != 1 {
		t.Fatalf("argon2id ran %d times for one salt and cost, want 1", k.derived)
	}
	// The caller's salt may change under it: the kept one is a copy.
	salt[0] = 'X'
	if got := k.derive("pw", []byte("0123456789abcdef"), cheap); got != want || k.derived != 1 {
		t.Fatalf("after the caller's salt changed: derive = %x with %d runs, want %x with 1", got, k.derived, want)
	}
	// A new salt, or a new cost, derives again.
	other := []byte("fedcba9876543210")
	if got := k.derive("pw", other, cheap); got != lnp.SaltedKey("pw", other, cheap) || k.derived != 2 {
		t.Fatalf("new salt: derive = %x with %d runs, want the new salt's key with 2", got, k.derived)
	}
	dearer := lnp.KDF{Memory: 16, Time: 1, Threads: 1}
	if got := k.derive("pw", other, dearer); got != lnp.SaltedKey("pw", other, dearer) || k.derived != 3 {
		t.Fatalf("new cost: derive = %x with %d runs, want the new cost's key with 3", got, k.derived)
	}
}

func TestPerLogin(t *testing.T) {
	tests := []struct {
		share   float64
		elapsed time.Duration
		n       int
		want    float64
	}{
		{100, time.Second, 1000, 1000},   // one core for a second, 1000 logins: 1 ms each
		{50, 2 * time.Second, 40, 25000}, // half a core for 2 s, 40 logins
		{200, time.Second, 4, 500000},    // both cores
	}
	for _, tt := range tests {
		if got := perLogin(tt.share, tt.elapsed, tt.n); math.Abs(got-tt.want) > 1e-6*tt.want {
			t.Errorf("perLogin(%v%%, %v, %d) = %v µs, want %v", tt.share, tt.elapsed, tt.n, got, tt.want)
		}
	}
	if got := perLogin(100, time.Second, 0); !math.IsNaN(got) {
		t.Errorf("perLogin with no logins = %v, want NaN", got)
	}
}

func TestPerRoundRatios(t *testing.T) {
	got := perRoundRatios([]float64{30000, 40000, 36000}, []float64{300, 800})
	want := []float64{100, 50}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("perRoundRatios = %v, want %v (the rounds both have)", got, want)
	}
}

func TestCacheCounts(t *testing.T) {
	hits, misses, n := cacheCounts([]loginPhase{
		{ok: 30, failed: 1, cacheHits: 0, cacheMisses: 31},
		{ok: 28, cacheHits: 2, cacheMisses: 26},
	})
	if hits != 2 || misses != 57 || n != 59 {
		t.Errorf("cacheCounts = %v hits, %v misses, %d logins; want 2, 57, 59", hits, misses, n)
	}
}

func TestClassifyLNPLogin(t *testing.T) {
	tests := []struct {
		err  error
		want loginOutcome
	}{
		{&larderclient.LNPError{Status: lnp.StatusInvalidLogin, Message: "unknown user or wrong password"}, outcomeWrong},
		{fmt.Errorf("wrapped: %w", &larderclient.LNPError{Status: lnp.StatusInvalidLogin}), outcomeWrong},
		{&larderclient.LNPError{Status: lnp.StatusThrottled, Message: "too many failed attempts from this address, retry in 10 s"}, outcomeThrottled},
		{&larderclient.LNPError{Status: lnp.StatusBusy, Message: "server busy: too many connections, retry later"}, outcomeConnBusy},
		{&larderclient.LNPError{Status: lnp.StatusBusy, Message: "too many sessions at once for this account"}, outcomeOther},
		{&larderclient.LNPError{Status: lnp.StatusMalformed, Message: "malformed PROOF"}, outcomeOther},
		{errors.New("read tcp: connection reset by peer"), outcomeNoReply},
		{larderclient.ErrServerProof, outcomeNoReply},
		{nil, outcomeOther}, // a wrong password that logged in
	}
	for _, tt := range tests {
		if got, msg := classifyLNPLogin(tt.err); got != tt.want {
			t.Errorf("classifyLNPLogin(%v) = %v (%q), want %v", tt.err, got, msg, tt.want)
		}
	}
}

func TestFloodSettings(t *testing.T) {
	c := newFloodConfig().(*floodConfig)
	// The course protocol alone keeps the rows' former names.
	c.throttle.values = []string{"off", "on"}
	var got []string
	for _, s := range c.settings() {
		got = append(got, s.label(c)+" | "+s.group(c))
	}
	if want := "[off | throttle off on | throttle on]"; fmt.Sprint(got) != want {
		t.Errorf("course alone: %v, want %s", got, want)
	}
	if h := c.settingHeader(); h != "throttle" {
		t.Errorf("course alone: header %q, want throttle", h)
	}
	if err := c.protocols.Set("course,lnp"); err != nil {
		t.Fatal(err)
	}
	c.throttle.values = []string{"on"}
	got = nil
	for _, s := range c.settings() {
		got = append(got, s.label(c))
	}
	if want := "[course, throttle on LNP/1, throttle on]"; fmt.Sprint(got) != want {
		t.Errorf("both protocols: %v, want %s", got, want)
	}
	if h := c.settingHeader(); h != "flood" {
		t.Errorf("both protocols: header %q, want flood", h)
	}
	if err := c.protocols.Set("lnp,smtp"); err == nil {
		t.Error("--protocol lnp,smtp accepted, want an error")
	}
}
