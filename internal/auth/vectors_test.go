package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Known vectors of every scheme from implementations independent of
// larder's, made by testdata/vectors.sh, which gives the exact commands:
// Python's hashlib, hmac and base64 (standard library), Debian's
// python3-bcrypt 3.2.2 and python3-passlib 1.7.4, and the reference C
// implementation of Argon2 (Debian package argon2 0~20171227), which reads
// the secret as raw bytes from standard input (checked: a NUL or a newline
// in the input changes its output, as it changes Go's).
//
// Every vector is of the course client's signature for "hunter2"
// (courseSignature). Pepper p1 is the bytes 0..31, p2 the bytes 32..63.

// The argon2 CLI prints no keyid; withKeyID adds the one the pepper gives.
var argon2idPeppered = []struct {
	name, cli, pepper string
}{
	{
		// unhex HMAC-SHA256(p1, sig) | argon2 larder-salt-0002 -id -t 2 -k 256 -p 1 -l 32 -e
		name: "p1", pepper: "p1",
		cli: "$argon2id$v=19$m=256,t=2,p=1$bGFyZGVyLXNhbHQtMDAwMg$VCLUrXuiTo9eiHc87TuOEI7NyjivMrMYpKBZfuzdxGM",
	},
	{
		// unhex HMAC-SHA256(p2, sig) | argon2 larder-salt-0003 -id -t 1 -k 512 -p 2 -l 32 -e
		name: "p2, two lanes", pepper: "p2",
		cli: "$argon2id$v=19$m=512,t=1,p=2$bGFyZGVyLXNhbHQtMDAwMw$84n1jabEC81PZB+IMh58G+BJ2ikwl+9u9zc24PFYKzY",
	},
}

// bcryptVectors: bcrypt.hashpw(hexsig, b"$2X$CC$larderBcryptVectorSal.").
// python3-bcrypt makes $2a$ and $2y$ itself when the salt says so.
var bcryptVectors = []string{
	"$2b$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
	"$2b$05$larderBcryptVectorSal.Us668vzpVIywKXxSqb235afSzaLyP1S",
	"$2a$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
	"$2y$04$larderBcryptVectorSal.Ts1iAZ9gXVbAAaUws/mqFkln6D/vBoS",
}

// pbkdf2Vectors: hashlib.pbkdf2_hmac("sha256", hexsig, salt, i, l) in the
// PHC form, and passlib's
// pbkdf2_sha256.using(rounds=1000, salt=b"larder-passlib-1").hash(hexsig).
var pbkdf2Vectors = []struct{ label, encoded string }{
	{"pbkdf2-sha256 i=1000", "$pbkdf2-sha256$i=1000$bGFyZGVyLXBia2RmMi0wMQ$I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOexuw"},
	{"pbkdf2-sha256 i=2000 l=64", "$pbkdf2-sha256$i=2000,l=64$bGFyZGVyLXBia2RmMi0wMg$Km8I5wBOUv1ZCx6uwo6NxGsdW8XNBOcyL4ZHMDvIrWs/2wd3XvZ/ANyLdbCXke2lCzlhopqF3Rvfdebsk3MoWA"},
	{"pbkdf2-sha256 i=1500", "$pbkdf2-sha256$i=1500,l=32$bGFyZGVyLXBia2RmMi0wMw$KYILehN37Uu7MG64bWFOSRfCo20y/K7/gNsDz83lLTI"},
	{"pbkdf2-sha256 i=1000", "$pbkdf2-sha256$1000$bGFyZGVyLXBhc3NsaWItMQ$4E0hcVKC1uvxBfkNy.67W/Gvl1/d0B1OAbdEuIGd6uI"},
}

// courseVectors: hashlib.sha256(sig + salt) for the salts
// b"course-salt-0001", bytes(range(200, 232)) and b"x".
var courseVectors = []string{
	"$course-sha256$Y291cnNlLXNhbHQtMDAwMQ$zuUvYOMewKg9u30miDM4ZuPK7Hck3lXh4oqfwS6ATgw",
	"$course-sha256$yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5uc$Zi2O/sfXfWEkTRkm9Wpj3GGT1AjRWpjIgAsk+CDDU5o",
	"$course-sha256$eA$8rpjvRQMDdxGi/IGyfCWw9FOYnGVJ/qvDkX6kno5xLY",
}

// wrappedVectors: the first bcrypt, PBKDF2 and course vectors, wrapped
// with pepper p1: unhex HMAC-SHA256(p1, inner digest) |
// argon2 larder-wrap-salt -id -t 2 -k 256 -p 1 -l 32 -e, where Python
// recomputed the inner digest (bcrypt's 23 bytes decoded from its hash
// characters).
var wrappedVectors = []struct{ inner, cli string }{
	{bcryptVectors[0], "$argon2id$v=19$m=256,t=2,p=1$bGFyZGVyLXdyYXAtc2FsdA$zsAzhipgweJbgktHSue87immD5xCjkLkbLC1aeiKwZM"},
	{pbkdf2Vectors[0].encoded, "$argon2id$v=19$m=256,t=2,p=1$bGFyZGVyLXdyYXAtc2FsdA$kq5VoWofCL4f4S0K8IwAd6qtRuiIAuy1riFXxooN/4s"},
	{courseVectors[0], "$argon2id$v=19$m=256,t=2,p=1$bGFyZGVyLXdyYXAtc2FsdA$/8IqyAYYuv5VPNIvddLoH2JACf4ApWuBVK9OTQUs5b4"},
}

// withKeyID inserts ",keyid=B64(id)" after the parameters of an argon2id
// PHC string.
func withKeyID(s, id string) string {
	f := strings.Split(s, "$")
	f[3] += ",keyid=" + base64.RawStdEncoding.EncodeToString([]byte(id))
	return strings.Join(f, "$")
}

// wrapOf builds a wrapped hash by the format's definition from an inner
// hash and the outer argon2id string, without the package's encoder.
func wrapOf(inner, outer string) string {
	stub := inner[:strings.LastIndex(inner, "$")]
	if strings.HasPrefix(inner, "$2") {
		stub = inner[:29]
	}
	return "$wrap$" + base64.RawStdEncoding.EncodeToString([]byte(stub)) + outer
}

// vectorPeppers returns the peppers of the vectors, p1 then p2 (current),
// through a real pepper file.
func vectorPeppers(t testing.TB) *Peppers {
	t.Helper()
	var p1, p2 [32]byte
	for i := range 32 {
		p1[i], p2[i] = byte(i), byte(32+i)
	}
	return writePeppers(t, "p1 "+base64.StdEncoding.EncodeToString(p1[:])+"\np2 "+base64.StdEncoding.EncodeToString(p2[:])+"\n")
}

// writePeppers loads a pepper file with content.
func writePeppers(t testing.TB, content string) *Peppers {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pepper")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ps, err := LoadPeppers(path)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestVectorsArgon2idPeppered(t *testing.T) {
	h := NewHasher(cheap, vectorPeppers(t), 1)
	sig := courseSignature("hunter2")
	for _, v := range argon2idPeppered {
		t.Run(v.name, func(t *testing.T) {
			s := withKeyID(v.cli, v.pepper)
			if ok, err := h.Verify(t.Context(), s, sig); !ok || err != nil {
				t.Errorf("Verify(%s) = %v, %v; want true, nil", s, ok, err)
			}
			if ok, err := h.Verify(t.Context(), s, courseSignature("hunter3")); ok || err != nil {
				t.Errorf("Verify(wrong signature) = %v, %v; want false, nil", ok, err)
			}
			// Without its keyid, the string is an unpeppered hash that
			// the signature does not match: the pepper is used.
			if ok, err := h.Verify(t.Context(), v.cli, sig); ok || err != nil {
				t.Errorf("Verify(without keyid) = %v, %v; want false, nil", ok, err)
			}
			// With the other pepper's id, it does not match either.
			other := map[string]string{"p1": "p2", "p2": "p1"}[v.pepper]
			if ok, err := h.Verify(t.Context(), withKeyID(v.cli, other), sig); ok || err != nil {
				t.Errorf("Verify(other pepper) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestVectorsBcrypt(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	sig := courseSignature("hunter2")
	for _, v := range bcryptVectors {
		t.Run(v[:4], func(t *testing.T) {
			// x/crypto/bcrypt itself accepts the variant and the hex input.
			if err := bcrypt.CompareHashAndPassword([]byte(v), hexSignature(sig)); err != nil {
				t.Errorf("x/crypto/bcrypt refuses %s: %v", v, err)
			}
			if ok, err := h.Verify(t.Context(), v, sig); !ok || err != nil {
				t.Errorf("Verify(%s) = %v, %v; want true, nil", v, ok, err)
			}
			if ok, err := h.Verify(t.Context(), v, courseSignature("hunter3")); ok || err != nil {
				t.Errorf("Verify(wrong signature) = %v, %v; want false, nil", ok, err)
			}
			// The digest that wrapping recomputes is the one stored.
			d, err := decodeBcrypt(v, true)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := d.digest(h, sig); !bytes.Equal(got, d.hash) {
				t.Errorf("bcryptDigest = %x, want the stored %x", got, d.hash)
			}
		})
	}
}

func TestVectorsPBKDF2(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	sig := courseSignature("hunter2")
	for _, v := range pbkdf2Vectors {
		t.Run(v.encoded[:20], func(t *testing.T) {
			if ok, err := h.Verify(t.Context(), v.encoded, sig); !ok || err != nil {
				t.Errorf("Verify(%s) = %v, %v; want true, nil", v.encoded, ok, err)
			}
			if ok, err := h.Verify(t.Context(), v.encoded, courseSignature("hunter3")); ok || err != nil {
				t.Errorf("Verify(wrong signature) = %v, %v; want false, nil", ok, err)
			}
			if got, err := h.Describe(v.encoded); got != v.label || err != nil {
				t.Errorf("Describe = %q, %v; want %q", got, err, v.label)
			}
		})
	}
}

func TestVectorsCourse(t *testing.T) {
	h := NewHasher(cheap, nil, 1)
	none := make(chan struct{}) // no slot at all: the fast scheme needs none
	h.sem.Store(&none)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	sig := courseSignature("hunter2")
	for _, v := range courseVectors {
		if ok, err := h.Verify(ctx, v, sig); !ok || err != nil {
			t.Errorf("Verify(%s) = %v, %v; want true, nil", v, ok, err)
		}
		if ok, err := h.Verify(ctx, v, courseSignature("hunter3")); ok || err != nil {
			t.Errorf("Verify(wrong signature) = %v, %v; want false, nil", ok, err)
		}
	}
}

func TestVectorsWrapped(t *testing.T) {
	h := NewHasher(cheap, vectorPeppers(t), 1)
	sig := courseSignature("hunter2")
	for _, v := range wrappedVectors {
		s := wrapOf(v.inner, withKeyID(v.cli, "p1"))
		t.Run(s[:12], func(t *testing.T) {
			w, err := decodeWrapped(s)
			if err != nil {
				t.Fatalf("decodeWrapped(%s): %v", s, err)
			}
			if got := w.encode(); got != s {
				t.Errorf("encode = %s, want %s", got, s)
			}
			if ok, err := h.Verify(t.Context(), s, sig); !ok || err != nil {
				t.Errorf("Verify(%s) = %v, %v; want true, nil", s, ok, err)
			}
			if ok, err := h.Verify(t.Context(), s, courseSignature("hunter3")); ok || err != nil {
				t.Errorf("Verify(wrong signature) = %v, %v; want false, nil", ok, err)
			}
			// What Wrap computes, from the stored hash alone, is the
			// vector's outer hash.
			inner, err := decodeInner(v.inner, true)
			if err != nil {
				t.Fatal(err)
			}
			outer := &phc{params: w.outer.params, keyID: []byte("p1"), salt: w.outer.salt, hash: make([]byte, keyLen)}
			if got, err := outer.digest(h, inner.storedDigest()); err != nil || !bytes.Equal(got, w.outer.hash) {
				t.Errorf("outer hash of the stored digest = %x, %v; want %x", got, err, w.outer.hash)
			}
		})
	}
}
