package auth

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/larderfs/larder"
	"golang.org/x/crypto/bcrypt"
)

// weakHashes returns one stored hash of sig per scheme that Wrap wraps,
// made by the package's own encoders or by x/crypto (the independent
// vectors are in vectors_test.go).
func weakHashes(t *testing.T, sig []byte) map[string]string {
	t.Helper()
	bc, err := bcrypt.GenerateFromPassword(hexSignature(sig), 4)
	if err != nil {
		t.Fatal(err)
	}
	unpeppered, err := NewHasher(cheap, nil, 1).Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	oldPepper, err := NewHasher(Params{Memory: 32, Time: 1, Threads: 1}, p1Only(t), 1).Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	oldParams, err := NewHasher(Params{Memory: 32, Time: 1, Threads: 1}, vectorPeppers(t), 1).Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	course := &courseHash{salt: []byte("some server salt")}
	course.hash, _ = course.digest(nil, sig)
	pb := &pbkdf2Hash{iterations: 1000, salt: []byte("sixteen byte slt"), hash: make([]byte, 32)}
	pb.hash, _ = pb.digest(nil, sig)
	pbPasslib := &pbkdf2Hash{passlib: true, iterations: 1000, salt: []byte("sixteen byte slt"), hash: make([]byte, 32)}
	pbPasslib.hash, _ = pbPasslib.digest(nil, sig)
	pb64 := &pbkdf2Hash{iterations: 1000, explicitL: true, salt: []byte("salt"), hash: make([]byte, 64)}
	pb64.hash, _ = pb64.digest(nil, sig)
	return map[string]string{
		"bcrypt":                         string(bc),
		"bcrypt $2y$":                    "$2y$" + string(bc[4:]),
		"pbkdf2":                         pb.encode(),
		"pbkdf2 passlib":                 pbPasslib.encode(),
		"pbkdf2 l=64":                    pb64.encode(),
		"course":                         course.encode(),
		"argon2id no pepper":             unpeppered,
		"argon2id old params, pepper p1": oldPepper,
		"argon2id old params":            oldParams,
	}
}

// TestWrap wraps a hash of every scheme, and checks that the wrapped hash
// verifies the right signature and only it, needs a rehash, says what it
// wraps, and holds no trace of the inner digest.
func TestWrap(t *testing.T) {
	sig := courseSignature("hunter2")
	h := NewHasher(cheap, vectorPeppers(t), 2)
	for name, stored := range weakHashes(t, sig) {
		t.Run(name, func(t *testing.T) {
			if ok, err := h.Verify(t.Context(), stored, sig); !ok || err != nil {
				t.Fatalf("Verify(inner) = %v, %v; want true, nil", ok, err)
			}
			innerLabel, _ := h.Describe(stored)
			w, err := h.Wrap(t.Context(), stored)
			if err != nil {
				t.Fatalf("Wrap(%s): %v", stored, err)
			}
			if !strings.HasPrefix(w, "$wrap$") || !strings.Contains(w, "$argon2id$v=19$m=64,t=1,p=1,keyid=cDI$") {
				t.Errorf("Wrap = %s, want $wrap$ and an outer argon2id with the policy", w)
			}
			inner, _ := decodeInner(stored, true)
			if digest := b64.EncodeToString(inner.storedDigest()); strings.Contains(w, digest) {
				t.Errorf("Wrap = %s still holds the inner digest %s", w, digest)
			}
			if ok, err := h.Verify(t.Context(), w, sig); !ok || err != nil {
				t.Errorf("Verify(wrapped, right signature) = %v, %v; want true, nil", ok, err)
			}
			if ok, err := h.Verify(t.Context(), w, courseSignature("hunter3")); ok || err != nil {
				t.Errorf("Verify(wrapped, wrong signature) = %v, %v; want false, nil", ok, err)
			}
			if !h.NeedsRehash(w) {
				t.Error("NeedsRehash(wrapped) = false")
			}
			want := "wrapped " + innerLabel + " in argon2id m=64,t=1,p=1 pepper=p2"
			if got, err := h.Describe(w); got != want || err != nil {
				t.Errorf("Describe(wrapped) = %q, %v; want %q", got, err, want)
			}
			if _, err := h.Wrap(t.Context(), w); !errors.Is(err, ErrAlreadyWrapped) {
				t.Errorf("Wrap(wrapped) = %v, want ErrAlreadyWrapped", err)
			}
			// After the next rotation, a server with both peppers still
			// checks it.
			if ok, err := NewHasher(DefaultParams, vectorPeppers(t), 1).Verify(t.Context(), w, sig); !ok || err != nil {
				t.Errorf("Verify(wrapped) under another policy = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

// TestWrapNeedsNoSignature counts the work of Wrap: one argon2id, the
// outer one, whatever the inner hash; it never recomputes the inner hash.
func TestWrapNeedsNoSignature(t *testing.T) {
	sig := courseSignature("hunter2")
	weak := weakHashes(t, sig)
	h := NewHasher(cheap, vectorPeppers(t), 1)
	var calls atomic.Int32
	h.key = func(secret, salt []byte, p Params, n uint32) []byte {
		calls.Add(1)
		if p != cheap {
			t.Errorf("Wrap ran argon2id with %v, want only the policy's %v", p, cheap)
		}
		return argon2Key(secret, salt, p, n)
	}
	for name, stored := range weak {
		calls.Store(0)
		if _, err := h.Wrap(t.Context(), stored); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%s: Wrap ran argon2id %d times, want 1", name, n)
		}
	}
}

func TestWrapRefuses(t *testing.T) {
	sig := courseSignature("hunter2")
	h := NewHasher(cheap, vectorPeppers(t), 1)
	current, err := h.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wrap(t.Context(), current); !errors.Is(err, ErrAlreadyCurrent) {
		t.Errorf("Wrap(current) = %v, want ErrAlreadyCurrent", err)
	}
	salt, hash := make([]byte, 16), make([]byte, 32)
	for name, s := range map[string]string{
		"unreadable":      "nonsense",
		"scrypt":          "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA",
		"missing pepper":  (&phc{params: cheap, keyID: []byte("p7"), salt: salt, hash: hash}).encode(),
		"16-byte output":  (&phc{params: cheap, salt: salt, hash: hash[:16]}).encode(),
		"bcrypt cost 17":  "$2b$17$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
		"pbkdf2 too many": "$pbkdf2-sha256$i=10000001$bGFyZGVyLXBia2RmMi0wMQ$I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOexuw",
	} {
		w, err := h.Wrap(t.Context(), s)
		if w != "" || larder.ErrorCode(err) != larder.EINTERNAL || errors.Is(err, ErrAlreadyCurrent) {
			t.Errorf("%s: Wrap = %q, %v; want an EINTERNAL error", name, w, err)
		}
	}
	// Without peppers, an unpeppered argon2id hash by the policy is
	// current; the outer hash of a wrap has no keyid.
	none := NewHasher(cheap, nil, 1)
	plain, _ := none.Hash(t.Context(), sig)
	if _, err := none.Wrap(t.Context(), plain); !errors.Is(err, ErrAlreadyCurrent) {
		t.Errorf("Wrap(current, no peppers) = %v, want ErrAlreadyCurrent", err)
	}
	w, err := none.Wrap(t.Context(), courseVectors[0])
	if err != nil || strings.Contains(w, "keyid") {
		t.Errorf("Wrap without peppers = %s, %v; want no keyid", w, err)
	}
	if ok, err := none.Verify(t.Context(), w, sig); !ok || err != nil {
		t.Errorf("Verify(unpeppered wrap) = %v, %v", ok, err)
	}
}

// TestWrapNeverWeakens: an argon2id hash above the policy in any
// parameter is never wrapped in the policy's hash, and one by the policy
// with an older pepper is left for its login to move; WrapCheck says so
// without hashing.
func TestWrapNeverWeakens(t *testing.T) {
	h := NewHasher(cheap, vectorPeppers(t), 1)
	h.key = func(secret, salt []byte, p Params, n uint32) []byte {
		t.Errorf("argon2id computed for a hash that is not wrapped")
		return argon2Key(secret, salt, p, n)
	}
	salt, hash := make([]byte, 16), make([]byte, 32)
	for name, tc := range map[string]struct {
		stored string
		want   error
	}{
		"more memory":         {(&phc{params: Params{Memory: 128, Time: 1, Threads: 1}, keyID: []byte("p2"), salt: salt, hash: hash}).encode(), ErrStronger},
		"more passes":         {(&phc{params: Params{Memory: 32, Time: 3, Threads: 1}, keyID: []byte("p2"), salt: salt, hash: hash}).encode(), ErrStronger},
		"more lanes":          {(&phc{params: Params{Memory: 64, Time: 1, Threads: 2}, salt: salt, hash: hash}).encode(), ErrStronger},
		"older pepper":        {(&phc{params: cheap, keyID: []byte("p1"), salt: salt, hash: hash}).encode(), ErrOtherPepper},
		"current":             {(&phc{params: cheap, keyID: []byte("p2"), salt: salt, hash: hash}).encode(), ErrAlreadyCurrent},
		"stronger, no pepper": {(&phc{params: Params{Memory: 64, Time: 2, Threads: 1}, salt: salt, hash: hash}).encode(), ErrStronger},
	} {
		if err := h.WrapCheck(tc.stored); !errors.Is(err, tc.want) {
			t.Errorf("%s: WrapCheck = %v, want %v", name, err, tc.want)
		}
		if w, err := h.Wrap(t.Context(), tc.stored); w != "" || !errors.Is(err, tc.want) {
			t.Errorf("%s: Wrap = %q, %v; want %v", name, w, err, tc.want)
		}
	}
}

// TestVerifyWrappedRefuses: a wrapped hash whose inner or outer part is
// too costly, or names a missing pepper, is unusable.
func TestVerifyWrappedRefuses(t *testing.T) {
	h := NewHasher(cheap, vectorPeppers(t), 1)
	h.key = func([]byte, []byte, Params, uint32) []byte {
		t.Error("Verify computed a hash it should have refused")
		return make([]byte, keyLen)
	}
	salt, hash := make([]byte, 16), make([]byte, 32)
	outer := (&phc{params: cheap, keyID: []byte("p2"), salt: salt, hash: hash}).encode()
	for name, s := range map[string]string{
		"inner bcrypt cost 20": wrapOf("$2b$20$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", outer),
		"inner pepper p5":      wrapOf((&phc{params: cheap, keyID: []byte("p5"), salt: salt, hash: hash}).encode(), outer),
		"outer pepper p5":      wrapOf(courseVectors[0], withKeyID(wrappedVectors[2].cli, "p5")),
		"outer 1 GiB":          wrapOf(courseVectors[0], (&phc{params: Params{Memory: 1 << 20, Time: 1, Threads: 1}, salt: salt, hash: hash}).encode()),
	} {
		if ok, err := h.Verify(t.Context(), s, courseSignature("hunter2")); ok || larder.ErrorCode(err) != larder.EINTERNAL {
			t.Errorf("%s: Verify = %v, %v; want false, EINTERNAL", name, ok, err)
		}
	}
}

func TestDecodeWrappedRejects(t *testing.T) {
	outer := withKeyID(wrappedVectors[0].cli, "p1")
	good := wrapOf(bcryptVectors[0], outer)
	if _, err := decodeWrapped(good); err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return b64.EncodeToString([]byte(s)) }
	for name, s := range map[string]string{
		"no outer":          "$wrap$" + enc(bcryptVectors[0][:29]),
		"empty stub":        "$wrap$" + outer,
		"whole inner":       "$wrap$" + enc(bcryptVectors[0]) + outer,
		"stub of a stub":    "$wrap$" + enc(bcryptVectors[0][:28]) + outer,
		"nested":            "$wrap$" + enc(good[:strings.LastIndex(good, "$")]) + outer,
		"wrap stub":         "$wrap$" + enc("$wrap$") + outer,
		"unsupported inner": "$wrap$" + enc("$scrypt$ln=16,r=8,p=1$c2FsdA") + outer,
		"padded stub":       "$wrap$" + b64.EncodeToString([]byte(bcryptVectors[0][:29])) + "=" + outer,
		"outer bcrypt":      "$wrap$" + enc(bcryptVectors[0][:29]) + bcryptVectors[1],
		"outer argon2i":     "$wrap$" + enc(bcryptVectors[0][:29]) + strings.Replace(outer, "argon2id", "argon2i", 1),
		"outer trailing":    good + "$",
		"newline":           good + "\n",
		"too long":          "$wrap$" + strings.Repeat("A", 700),
		"no prefix":         good[1:],
	} {
		if w, err := decodeWrapped(s); err == nil {
			t.Errorf("%s: decodeWrapped(%q) = %+v, want an error", name, s, w)
		}
	}
}

// FuzzDecodeWrapped checks that decodeWrapped never panics and that what
// it accepts encodes back as itself, wraps a scheme that can be wrapped,
// and has a valid outer argon2id.
func FuzzDecodeWrapped(f *testing.F) {
	for _, v := range wrappedVectors {
		f.Add(wrapOf(v.inner, withKeyID(v.cli, "p1")))
		f.Add(wrapOf(v.inner, v.cli))
	}
	f.Add(wrapOf((&phc{params: cheap, keyID: []byte("p1"), salt: make([]byte, 16), hash: make([]byte, 32)}).encode(), wrappedVectors[0].cli))
	f.Add(wrapOf(pbkdf2Vectors[3].encoded, wrappedVectors[0].cli))
	f.Fuzz(func(t *testing.T, s string) {
		w, err := decodeWrapped(s)
		if err != nil {
			return
		}
		if got := w.encode(); got != s {
			t.Errorf("decodeWrapped accepted %q, which encodes back as %q", s, got)
		}
		if strings.HasPrefix(w.inner.stub(), wrapPrefix) {
			t.Errorf("decodeWrapped accepted a nested wrap %q", s)
		}
		if err := w.outer.params.Validate(); err != nil {
			t.Errorf("decodeWrapped accepted %q with invalid outer params: %v", s, err)
		}
	})
}
