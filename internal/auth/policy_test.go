package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/larderfs/larder"
)

// p1Only returns the vector peppers without p2: a server that has not been
// given the rotated file yet.
func p1Only(t *testing.T) *Peppers {
	t.Helper()
	var p1 [32]byte
	for i := range 32 {
		p1[i] = byte(i)
	}
	return writePeppers(t, "p1 "+base64.StdEncoding.EncodeToString(p1[:])+"\n")
}

func TestHashRecordsCurrentPepper(t *testing.T) {
	ps := vectorPeppers(t)
	h := NewHasher(cheap, ps, 1)
	sig := courseSignature("hunter2")
	s, err := h.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodePHC(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.keyID) != "p2" || !strings.Contains(s, ",keyid=cDI$") {
		t.Errorf("Hash = %s, want keyid p2 (cDI)", s)
	}
	// The input of argon2id is HMAC-SHA256(p2, sig), not sig.
	p2, _ := ps.Lookup("p2")
	if want := argon2Key(p2.mac(sig), v.salt, cheap, keyLen); !bytes.Equal(v.hash, want) {
		t.Error("Hash did not hash HMAC-SHA256(current pepper, signature)")
	}
	if ok, err := h.Verify(t.Context(), s, sig); !ok || err != nil {
		t.Errorf("Verify = %v, %v; want true, nil", ok, err)
	}
	if h.NeedsRehash(s) {
		t.Error("NeedsRehash(fresh hash) = true")
	}
	if got, err := h.Describe(s); got != "argon2id m=64,t=1,p=1 pepper=p2" || err != nil {
		t.Errorf("Describe = %q, %v", got, err)
	}
	if got := h.PepperIDs(s); !slices.Equal(got, []string{"p2"}) {
		t.Errorf("PepperIDs = %q, want [p2]", got)
	}
}

// TestPepperRotation: hashes made before a rotation keep verifying with
// their pepper, and need a rehash; a server without the new pepper refuses
// the new hashes with an error that names the pepper, not its key.
func TestPepperRotation(t *testing.T) {
	sig := courseSignature("hunter2")
	before := NewHasher(cheap, p1Only(t), 1)
	old, err := before.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	after := NewHasher(cheap, vectorPeppers(t), 1)
	if ok, err := after.Verify(t.Context(), old, sig); !ok || err != nil {
		t.Errorf("Verify(p1 hash) after rotation = %v, %v; want true, nil", ok, err)
	}
	if !after.NeedsRehash(old) {
		t.Error("NeedsRehash(p1 hash) after rotation = false")
	}
	fresh, err := after.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := before.Verify(t.Context(), fresh, sig)
	if ok || larder.ErrorCode(err) != larder.EINTERNAL {
		t.Fatalf("Verify(p2 hash) without p2 = %v, %v; want false, EINTERNAL", ok, err)
	}
	if !strings.Contains(err.Error(), `"p2"`) {
		t.Errorf("error %q does not name pepper p2", err)
	}
	p1 := make([]byte, 32)
	for i := range p1 {
		p1[i] = byte(i)
	}
	if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(p1)) ||
		strings.Contains(err.Error(), hex.EncodeToString(p1)) || strings.Contains(larder.ErrorMessage(err), "p2") {
		t.Errorf("error %q, message %q: the pepper belongs in the internal cause only", err, larder.ErrorMessage(err))
	}

	// Without any peppers, no peppered hash verifies.
	none := NewHasher(cheap, nil, 1)
	if ok, err := none.Verify(t.Context(), old, sig); ok || larder.ErrorCode(err) != larder.EINTERNAL || !strings.Contains(err.Error(), `"p1"`) {
		t.Errorf("Verify(p1 hash) without peppers = %v, %v; want false, EINTERNAL naming p1", ok, err)
	}
	// An unpeppered hash verifies everywhere, and needs a rehash where
	// there are peppers.
	plain, err := none.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, "keyid") || none.NeedsRehash(plain) {
		t.Errorf("unpeppered Hash = %s, NeedsRehash %v; want no keyid, false", plain, none.NeedsRehash(plain))
	}
	if ok, err := after.Verify(t.Context(), plain, sig); !ok || err != nil || !after.NeedsRehash(plain) {
		t.Errorf("peppered hasher: Verify(unpeppered) = %v, %v, NeedsRehash %v; want true, nil, true", ok, err, after.NeedsRehash(plain))
	}
}

func TestNeedsRehash(t *testing.T) {
	h := NewHasher(cheap, vectorPeppers(t), 1)
	cur := func(f func(*phc)) string {
		v := &phc{params: cheap, keyID: []byte("p2"), salt: make([]byte, saltLen), hash: make([]byte, keyLen)}
		if f != nil {
			f(v)
		}
		return v.encode()
	}
	wrapped := wrapOf(bcryptVectors[0], withKeyID(wrappedVectors[0].cli, "p2"))
	for _, tc := range []struct {
		name, stored string
		want         bool
	}{
		{"current", cur(nil), false},
		{"older pepper", cur(func(v *phc) { v.keyID = []byte("p1") }), true},
		{"no pepper", cur(func(v *phc) { v.keyID = nil }), true},
		{"unknown pepper", cur(func(v *phc) { v.keyID = []byte("p9") }), true},
		// A stronger hash is kept: a login never weakens one.
		{"more memory", cur(func(v *phc) { v.params.Memory *= 2 }), false},
		{"less memory", cur(func(v *phc) { v.params.Memory = 32 }), true},
		{"more passes", cur(func(v *phc) { v.params.Time++ }), false},
		{"more lanes", cur(func(v *phc) { v.params.Threads = 2 }), false},
		{"more memory, older pepper", cur(func(v *phc) { v.params.Memory *= 2; v.keyID = []byte("p1") }), true},
		{"more memory, shorter salt", cur(func(v *phc) { v.params.Memory *= 2; v.salt = v.salt[:8] }), true},
		{"shorter salt", cur(func(v *phc) { v.salt = v.salt[:8] }), true},
		{"longer output", cur(func(v *phc) { v.hash = make([]byte, 64) }), true},
		{"bcrypt", bcryptVectors[0], true},
		{"pbkdf2", pbkdf2Vectors[0].encoded, true},
		{"course", courseVectors[0], true},
		{"wrapped", wrapped, true},
		{"unreadable", "nonsense", true},
		// No hash at all: the account logs in over LNP/1 only.
		{"none", "", false},
	} {
		if got := h.NeedsRehash(tc.stored); got != tc.want {
			t.Errorf("%s: NeedsRehash(%s) = %v, want %v", tc.name, tc.stored, got, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	salt, hash := make([]byte, 16), make([]byte, 32)
	for _, tc := range []struct{ stored, want string }{
		{(&phc{params: DefaultParams, keyID: []byte("p2"), salt: salt, hash: hash}).encode(), "argon2id m=19456,t=2,p=1 pepper=p2"},
		{(&phc{params: DefaultParams, salt: salt, hash: hash}).encode(), "argon2id m=19456,t=2,p=1"},
		{(&phc{params: DefaultParams, keyID: []byte("a-b"), salt: salt, hash: hash[:16]}).encode(), "argon2id m=19456,t=2,p=1 keyid=YS1i len=16"},
		{bcryptVectors[1], "bcrypt cost=5"},
		{"$2y$12$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", "bcrypt cost=12"},
		{pbkdf2Vectors[0].encoded, "pbkdf2-sha256 i=1000"},
		{pbkdf2Vectors[1].encoded, "pbkdf2-sha256 i=2000 l=64"},
		{pbkdf2Vectors[3].encoded, "pbkdf2-sha256 i=1000"},
		{courseVectors[0], "course-sha256"},
		{wrapOf(bcryptVectors[0], withKeyID(wrappedVectors[0].cli, "p2")), "wrapped bcrypt cost=4 in argon2id m=256,t=2,p=1 pepper=p2"},
		{wrapOf(courseVectors[0], wrappedVectors[2].cli), "wrapped course-sha256 in argon2id m=256,t=2,p=1"},
		{"", "none"}, // an account that logs in over LNP/1 only
	} {
		if got, err := h.Describe(tc.stored); got != tc.want || err != nil {
			t.Errorf("Describe(%s) = %q, %v; want %q", tc.stored, got, err, tc.want)
		}
	}
	for _, s := range []string{"x", "$argon2id$", "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA", "$wrap$$"} {
		if got, err := h.Describe(s); got != "unreadable" || err == nil {
			t.Errorf("Describe(%q) = %q, %v; want unreadable and an error", s, got, err)
		}
	}
}

func TestPepperIDs(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	salt, hash := make([]byte, 16), make([]byte, 32)
	inner := (&phc{params: cheap, keyID: []byte("p1"), salt: salt, hash: hash}).encode()
	for _, tc := range []struct {
		stored string
		want   []string
	}{
		{inner, []string{"p1"}},
		{(&phc{params: cheap, salt: salt, hash: hash}).encode(), nil},
		{bcryptVectors[0], nil},
		{courseVectors[0], nil},
		{wrapOf(bcryptVectors[0], withKeyID(wrappedVectors[0].cli, "p2")), []string{"p2"}},
		{wrapOf(inner, withKeyID(wrappedVectors[0].cli, "p2")), []string{"p1", "p2"}},
		{wrapOf(inner, wrappedVectors[0].cli), []string{"p1"}},
		{"garbage", nil},
	} {
		if got := h.PepperIDs(tc.stored); !slices.Equal(got, tc.want) {
			t.Errorf("PepperIDs(%s) = %q, want %q", tc.stored, got, tc.want)
		}
	}
}

// TestVerifyDummy checks that VerifyDummy runs one argon2id with the
// current parameters over the peppered signature, and reports false.
func TestVerifyDummy(t *testing.T) {
	ps := vectorPeppers(t)
	p := Params{Memory: 128, Time: 2, Threads: 1}
	h := NewHasher(p, ps, 1)
	sig := courseSignature("hunter2")
	p2, _ := ps.Lookup("p2")
	var calls atomic.Int32
	h.key = func(secret, salt []byte, got Params, n uint32) []byte {
		calls.Add(1)
		if got != p || n != keyLen || len(salt) != saltLen || !bytes.Equal(secret, p2.mac(sig)) {
			t.Errorf("dummy verification ran argon2id(%x, salt %d bytes, %v, %d), want the policy's", secret, len(salt), got, n)
		}
		return argon2Key(secret, salt, got, n)
	}
	for range 3 {
		if ok, err := h.VerifyDummy(t.Context(), sig); ok || err != nil {
			t.Errorf("VerifyDummy = %v, %v; want false, nil", ok, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("3 VerifyDummy calls ran argon2id %d times, want 3", n)
	}
	// Its dummy hash is a current hash that nothing matches.
	if h.NeedsRehash(h.dummyHash().encode()) {
		t.Error("the dummy hash does not follow the policy")
	}
}

// TestSetParams: a policy changed while the hasher is in use (a server's
// reload) makes new hashes, rehashes and the dummy check of unknown names
// at the new parameters, on the cache's fast path too; an invalid one is
// refused and changes nothing. Run with -race, logins and changes race.
func TestSetParams(t *testing.T) {
	ps := vectorPeppers(t)
	p, stronger := Params{Memory: 128, Time: 2, Threads: 1}, Params{Memory: 256, Time: 3, Threads: 1}
	h := NewHasher(p, ps, 2)
	sig := courseSignature("hunter2")
	old, err := h.Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}
	if h.NeedsRehash(old) || h.needsRehashLazily(old) {
		t.Fatal("a hash by the policy needs a rehash")
	}
	if err := h.SetParams(Params{Memory: 1, Time: 0, Threads: 1}); err == nil || h.Params() != p {
		t.Errorf("SetParams of an invalid policy: %v, policy now %v; want an error and %v kept", err, h.Params(), p)
	}
	if err := h.SetParams(stronger); err != nil {
		t.Fatal(err)
	}
	if h.Params() != stronger {
		t.Fatalf("Params() = %v after SetParams(%v)", h.Params(), stronger)
	}
	if !h.NeedsRehash(old) || !h.needsRehashLazily(old) {
		t.Error("a hash by the old, weaker policy does not need a rehash under the new one (NeedsRehash, needsRehashLazily)")
	}
	for _, f := range []func() (string, error){
		func() (string, error) { return h.Hash(t.Context(), sig) },
		func() (string, error) { return h.Rehash(t.Context(), old, sig) },
	} {
		s, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if h.NeedsRehash(s) || h.needsRehashLazily(s) || !strings.Contains(s, "m=256,t=3,p=1") {
			t.Errorf("a hash made after SetParams(%v): %s", stronger, s)
		}
		if ok, err := h.Verify(t.Context(), s, sig); !ok || err != nil {
			t.Errorf("Verify of a hash made after SetParams: %v, %v", ok, err)
		}
	}
	var ran atomic.Value
	h.key = func(secret, salt []byte, got Params, n uint32) []byte {
		ran.Store(got)
		return argon2Key(secret, salt, got, n)
	}
	h.VerifyDummy(t.Context(), sig)
	if got := ran.Load(); got != stronger {
		t.Errorf("the dummy check ran argon2id %v after SetParams(%v)", got, stronger)
	}
	h.key = argon2Key

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 5 {
				if i == 0 {
					h.SetParams([]Params{p, stronger}[j%2])
					continue
				}
				s, err := h.Hash(t.Context(), sig)
				if err != nil {
					t.Error(err)
					return
				}
				if ok, err := h.Verify(t.Context(), s, sig); !ok || err != nil {
					t.Errorf("Verify of a hash made while the policy changed: %v, %v", ok, err)
				}
				h.needsRehashLazily(s)
			}
		})
	}
	wg.Wait()
}
