package auth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// cheap are parameters that make hashing fast in tests.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		okay bool
	}{
		{DefaultParams, true},
		{cheap, true},
		{Params{Memory: 8, Time: 1, Threads: 1}, true},
		{Params{Memory: 16, Time: 1, Threads: 2}, true},
		{Params{Memory: MaxMemory, Time: 1, Threads: 4}, true},
		{Params{}, false},
		{Params{Memory: 64, Time: 0, Threads: 1}, false},
		{Params{Memory: 64, Time: 1, Threads: 0}, false},
		{Params{Memory: 7, Time: 1, Threads: 1}, false},
		{Params{Memory: 15, Time: 1, Threads: 2}, false},
		{Params{Memory: MaxMemory + 1, Time: 1, Threads: 1}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.okay {
			t.Errorf("%v.Validate() = %v, want ok=%v", tc.p, err, tc.okay)
		}
	}
}

func TestMeetsOWASPMinimum(t *testing.T) {
	// The default is exactly OWASP's headline configuration.
	if DefaultParams != (Params{Memory: 19456, Time: 2, Threads: 1}) {
		t.Errorf("DefaultParams = %v, want m=19456,t=2,p=1", DefaultParams)
	}
	for _, tc := range []struct {
		p    Params
		want bool
	}{
		{DefaultParams, true},
		{Params{Memory: 47104, Time: 1, Threads: 1}, true},
		{Params{Memory: 12288, Time: 3, Threads: 1}, true},
		{Params{Memory: 9216, Time: 4, Threads: 1}, true},
		{Params{Memory: 7168, Time: 5, Threads: 1}, true},
		{Params{Memory: 65536, Time: 3, Threads: 4}, true},
		{Params{Memory: 19455, Time: 2, Threads: 1}, false},
		{Params{Memory: 47103, Time: 1, Threads: 1}, false},
		{Params{Memory: 7168, Time: 4, Threads: 1}, false},
		{cheap, false},
		{Params{}, false},
	} {
		if got := tc.p.MeetsOWASPMinimum(); got != tc.want {
			t.Errorf("%v.MeetsOWASPMinimum() = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestNewHasherPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHasher(invalid params) did not panic")
		}
	}()
	NewHasher(Params{}, nil, 1)
}

// TestHashVerifyDefault runs the real cost once: slow, especially under -race.
func TestHashVerifyDefault(t *testing.T) {
	h := NewHasher(DefaultParams, nil, 0)
	if h.Params() != DefaultParams {
		t.Errorf("Params() = %v, want %v", h.Params(), DefaultParams)
	}
	sig := courseSignature("hunter2")
	encoded, err := h.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %s, want the default parameters recorded", encoded)
	}
	if ok, err := h.Verify(t.Context(), encoded, sig); !ok || err != nil {
		t.Errorf("Verify = %v, %v; want true, nil", ok, err)
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(cheap, nil, 2)
	ctx := t.Context()
	sig := courseSignature("hunter2")
	a, err := h.Hash(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two hashes of one secret are equal; the salt is not random")
	}
	d, err := decodePHC(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.salt) != saltLen || len(d.hash) != keyLen || d.params != cheap {
		t.Errorf("hash has salt %d bytes, key %d bytes, params %v; want %d, %d, %v", len(d.salt), len(d.hash), d.params, saltLen, keyLen, cheap)
	}
	for _, tc := range []struct {
		secret []byte
		want   bool
	}{
		{sig, true},
		{courseSignature("hunter3"), false},
		{sig[:31], false},
		{nil, false},
	} {
		if ok, err := h.Verify(ctx, a, tc.secret); ok != tc.want || err != nil {
			t.Errorf("Verify(%x) = %v, %v; want %v, nil", tc.secret, ok, err, tc.want)
		}
	}

	// A hasher with other parameters verifies with the recorded ones.
	h2 := NewHasher(Params{Memory: 128, Time: 2, Threads: 2}, nil, 1)
	if ok, err := h2.Verify(ctx, a, sig); !ok || err != nil {
		t.Errorf("Verify with other current params = %v, %v; want true, nil", ok, err)
	}
}

// TestVerifyTampered flips each character of a stored hash: every variant
// either fails to decode (EINTERNAL) or does not match.
func TestVerifyTampered(t *testing.T) {
	h := NewHasher(cheap, nil, 2)
	sig := courseSignature("hunter2")
	encoded, err := h.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(encoded) {
		b := []byte(encoded)
		b[i] ^= 1
		ok, err := h.Verify(t.Context(), string(b), sig)
		if ok {
			t.Errorf("Verify accepted %s", b)
		}
		if err != nil && larder.ErrorCode(err) != larder.EINTERNAL {
			t.Errorf("Verify(%s) error code %q, want %q", b, larder.ErrorCode(err), larder.EINTERNAL)
		}
	}
}

func TestVerifyRefusesUnusable(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	h.key = func([]byte, []byte, Params, uint32) []byte {
		t.Error("Verify computed a hash it should have refused")
		return nil
	}
	salt, hash := make([]byte, 16), make([]byte, 32)
	for name, s := range map[string]string{
		"garbage":        "not a hash",
		"bcrypt cost 17": "$2a$17$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"pbkdf2 2^24":    "$pbkdf2-sha256$i=16777216$bGFyZGVyLXBia2RmMi0wMQ$I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOexuw",
		"scrypt":         "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
		"1 GiB":          (&phc{params: Params{Memory: 1 << 20, Time: 1, Threads: 1}, salt: salt, hash: hash}).encode(),
		"4 GiB":          (&phc{params: Params{Memory: MaxMemory, Time: 1, Threads: 1}, salt: salt, hash: hash}).encode(),
		"2^32-1 passes":  (&phc{params: Params{Memory: 64, Time: 1<<32 - 1, Threads: 1}, salt: salt, hash: hash}).encode(),
		"keyid":          (&phc{params: cheap, keyID: []byte("k1"), salt: salt, hash: hash}).encode(),
	} {
		ok, err := h.Verify(t.Context(), s, []byte("x"))
		if ok || larder.ErrorCode(err) != larder.EINTERNAL {
			t.Errorf("%s: Verify = %v, %v; want false and code %q", name, ok, err, larder.EINTERNAL)
		}
	}

	// The hasher's own parameters are always allowed, even above the cap.
	big := Params{Memory: verifyMemoryCap + 8, Time: verifyTimeCap + 1, Threads: 1}
	hb := NewHasher(big, nil, 1)
	called := false
	hb.key = func(_, _ []byte, p Params, n uint32) []byte { called = true; return make([]byte, n) }
	s := (&phc{params: big, salt: salt, hash: hash}).encode()
	if ok, err := hb.Verify(t.Context(), s, []byte("x")); !ok || err != nil || !called {
		t.Errorf("Verify at the hasher's own params = %v, %v (computed: %v); want true, nil, true", ok, err, called)
	}
}

// TestPoolBound runs many hashes at once and checks, inside the argon2 call
// itself, that no more than the pool's size ever run together, and that
// the pool does let that many run.
func TestPoolBound(t *testing.T) {
	const size, callers = 3, 24
	h := NewHasher(cheap, nil, size)
	var running, peak atomic.Int32
	h.key = func(secret, salt []byte, p Params, n uint32) []byte {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			old := peak.Load()
			if r <= old || peak.CompareAndSwap(old, r) {
				break
			}
		}
		// Widen the window in which a broken semaphore would show.
		time.Sleep(2 * time.Millisecond)
		return argon2Key(secret, salt, p, n)
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if _, err := h.Hash(context.Background(), []byte("secret")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > size {
		t.Errorf("%d hashes ran at once, want at most %d", p, size)
	} else if p < 2 {
		t.Errorf("at most %d hash ran at once; the pool of %d does not run hashes concurrently", p, size)
	}
}

// TestDefaultConcurrency: by default the pool leaves one core to the users
// already logged in (one fewer hash at once than the cores, at least one),
// and a concurrency of zero or less means that default.
func TestDefaultConcurrency(t *testing.T) {
	n, cpus := DefaultConcurrency(), runtime.NumCPU()
	if want := max(1, cpus-1); n != want {
		t.Errorf("DefaultConcurrency() = %d on %d cores, want %d", n, cpus, want)
	}
	for _, c := range []int{0, -1} {
		if h := NewHasher(cheap, nil, c); cap(*h.sem.Load()) != n {
			t.Errorf("NewHasher with concurrency %d: pool of %d, want DefaultConcurrency() = %d", c, cap(*h.sem.Load()), n)
		}
	}
	if h := NewHasher(cheap, nil, 3); cap(*h.sem.Load()) != 3 {
		t.Errorf("NewHasher with concurrency 3: pool of %d, want 3", cap(*h.sem.Load()))
	}
}

// TestBusy fills the pool and checks that a caller whose context ends while
// it waits gets EUNAVAILABLE, wrapping the context's error.
func TestBusy(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	entered, release := make(chan struct{}), make(chan struct{})
	h.key = func(_, _ []byte, _ Params, n uint32) []byte {
		entered <- struct{}{}
		<-release
		return make([]byte, n)
	}
	done := make(chan error)
	go func() {
		_, err := h.Hash(context.Background(), []byte("first"))
		done <- err
	}()
	<-entered // the only slot is taken

	encoded := (&phc{params: cheap, salt: make([]byte, 16), hash: make([]byte, 32)}).encode()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ok, err := h.Verify(ctx, encoded, []byte("second"))
	if ok || larder.ErrorCode(err) != larder.EUNAVAILABLE {
		t.Fatalf("Verify with a full pool = %v, %v; want false and code %q", ok, err, larder.EUNAVAILABLE)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if msg := larder.ErrorMessage(err); !strings.Contains(msg, "busy") {
		t.Errorf("message %q does not say the server is busy", msg)
	}

	// An already-canceled caller gets no slot even when one is free.
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	h.key = func([]byte, []byte, Params, uint32) []byte {
		t.Error("hash computed for a canceled caller")
		return nil
	}
	if _, err := h.Hash(canceled, []byte("third")); !errors.Is(err, context.Canceled) || larder.ErrorCode(err) != larder.EUNAVAILABLE {
		t.Errorf("Hash with a canceled context: %v, want EUNAVAILABLE wrapping context.Canceled", err)
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams, nil, 1)
	sig := courseSignature("hunter2")
	encoded, err := h.Hash(context.Background(), sig)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if ok, err := h.Verify(context.Background(), encoded, sig); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/op")
}

// TestSetConcurrency: the pool's bound changed while the hasher is in
// use (a server's reload) holds for the hashes that start after it, both
// lowered and raised.
func TestSetConcurrency(t *testing.T) {
	h := NewHasher(cheap, nil, 3)
	var running, peak atomic.Int32
	h.key = func(secret, salt []byte, p Params, n uint32) []byte {
		r := running.Add(1)
		defer running.Add(-1)
		for {
			old := peak.Load()
			if r <= old || peak.CompareAndSwap(old, r) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		return argon2Key(secret, salt, p, n)
	}
	run := func(callers int) int32 {
		peak.Store(0)
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := h.Hash(context.Background(), []byte("secret")); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return peak.Load()
	}
	h.SetConcurrency(1)
	if p := run(8); p != 1 {
		t.Errorf("after SetConcurrency(1), %d hashes ran at once, want 1", p)
	}
	h.SetConcurrency(4)
	if p := run(16); p > 4 || p < 2 {
		t.Errorf("after SetConcurrency(4), %d hashes ran at once, want 2 to 4", p)
	}
	if st := cap(*h.sem.Load()); st != 4 {
		t.Errorf("pool of %d after SetConcurrency(4)", st)
	}
}
