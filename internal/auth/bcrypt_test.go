package auth

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestBcryptDigestMatchesXCrypto proves bcryptDigest, the reimplementation
// that checking a wrapped bcrypt hash needs: for random passwords (NUL
// bytes and the 72-byte limit included) and costs 4 to 6, with the random
// salt that x/crypto/bcrypt draws, it gives exactly the string that
// bcrypt.GenerateFromPassword made.
func TestBcryptDigestMatchesXCrypto(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 15
	}
	for i := range n {
		pw := make([]byte, randInt(t, 73)) // 0 to 72 bytes
		rand.Read(pw)
		if i%3 == 0 {
			pw = hexSignature(pw[:min(len(pw), 32)]) // the real input
		}
		cost := 4 + i%3
		want, err := bcrypt.GenerateFromPassword(pw, cost)
		if err != nil {
			t.Fatal(err)
		}
		h, err := decodeBcrypt(string(want), true)
		if err != nil {
			t.Fatalf("decodeBcrypt(%s): %v", want, err)
		}
		got := h.stub() + bcryptB64.EncodeToString(bcryptDigest(pw, cost, h.salt))
		if got != string(want) {
			t.Fatalf("password %x cost %d:\nbcryptDigest gives %s\nx/crypto gives     %s", pw, cost, got, want)
		}
	}
}

func randInt(t *testing.T, n int64) int {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return int(v.Int64())
}

func TestDecodeBcrypt(t *testing.T) {
	const ok = "$2b$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS"
	h, err := decodeBcrypt(ok, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.cost != 4 || len(h.salt) != 16 || len(h.hash) != 23 || h.encode() != ok || h.stub() != ok[:29] {
		t.Errorf("decodeBcrypt(%s) = %+v", ok, h)
	}
	if got := h.label(); got != "bcrypt cost=4" {
		t.Errorf("label = %q, want %q", got, "bcrypt cost=4")
	}
	// The low bits of a salt's last character are ignored, as C bcrypt
	// and x/crypto/bcrypt ignore them.
	lenient := ok[:28] + "/" + ok[29:]
	if _, err := decodeBcrypt(lenient, true); err != nil {
		t.Errorf("decodeBcrypt(salt with its unused bits set): %v", err)
	}
	for _, s := range []string{
		"",
		ok[:59],
		ok + "x",
		"$2$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoSx", // $2$
		"$2x$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", // $2x$ (crypt_blowfish's bug)
		"$3b$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
		"$2b$03$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", // cost below 4
		"$2b$32$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", // above 31
		"$2b$4$$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
		"$2b$+4$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
		"$2b$04xlarderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
		"$2b$04$larderBcryptVectorSal+Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", // '+' is not bcrypt's
		"$2b$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoT", // hash's unused bits set
		"$2b$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBo\n",
		"$2b$04$larderBcryptVectorSal\nTs1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
	} {
		if h, err := decodeBcrypt(s, true); err == nil {
			t.Errorf("decodeBcrypt(%q) = %+v, want an error", s, h)
		}
	}
	if _, err := decodeBcrypt(ok[:29], false); err != nil {
		t.Errorf("decodeBcrypt(stub): %v", err)
	}
	if _, err := decodeBcrypt(ok, false); err == nil {
		t.Error("decodeBcrypt(whole string as a stub) succeeded")
	}
}

// FuzzDecodeBcrypt checks that decodeBcrypt never panics and that what it
// accepts encodes back as itself, as a whole string and as a stub, and
// that x/crypto/bcrypt reads it too.
func FuzzDecodeBcrypt(f *testing.F) {
	for _, v := range bcryptVectors {
		f.Add(v, true)
		f.Add(v[:29], false)
	}
	f.Add("$2b$31$larderBcryptVectorSal/Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS", true)
	f.Fuzz(func(t *testing.T, s string, withHash bool) {
		h, err := decodeBcrypt(s, withHash)
		if err != nil {
			return
		}
		checkCanonical(t, s, withHash, h)
		if _, err := bcrypt.Cost([]byte(s)); withHash && err != nil {
			t.Errorf("decodeBcrypt accepted %q, which x/crypto/bcrypt refuses: %v", s, err)
		}
		if len(h.salt) != bcryptSaltLen || len(h.hash) != bcryptDigestLen || bytes.Contains([]byte(s), []byte("\n")) {
			t.Errorf("decodeBcrypt(%q) = %+v", s, h)
		}
	})
}
