package auth

import (
	"strings"
	"testing"
)

func TestDecodePBKDF2(t *testing.T) {
	const (
		salt = "bGFyZGVyLXBia2RmMi0wMQ"
		hash = "I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOexuw"
		// passlib's form of the same bytes: '.' for '+'.
		phash = "I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOexuw"
	)
	for _, s := range []string{
		"$pbkdf2-sha256$i=1000$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=1000,l=32$" + salt + "$" + hash,
		"$pbkdf2-sha256$1000$" + salt + "$" + phash,
		"$pbkdf2-sha256$i=4294967295$" + salt + "$" + hash, // parsed; refused by usable
	} {
		h, err := decodePBKDF2(s, true)
		if err != nil {
			t.Errorf("decodePBKDF2(%s): %v", s, err)
			continue
		}
		if got := h.encode(); got != s {
			t.Errorf("encode = %s, want %s", got, s)
		}
		stub := s[:strings.LastIndex(s, "$")]
		if got := h.stub(); got != stub {
			t.Errorf("stub = %s, want %s", got, stub)
		}
		if hs, err := decodePBKDF2(stub, false); err != nil || hs.stub() != stub || len(hs.hash) != len(h.hash) {
			t.Errorf("decodePBKDF2(stub %s) = %+v, %v", stub, hs, err)
		}
	}
	for _, s := range []string{
		"",
		"$pbkdf2-sha256$i=1000$" + salt,
		"$pbkdf2-sha256$i=1000$" + salt + "$" + hash + "$",
		"$pbkdf2-sha1$i=1000$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=0$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=01000$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=4294967296$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=1000,l=64$" + salt + "$" + hash, // l says 64, the hash is 32
		"$pbkdf2-sha256$i=1000,l=11$" + salt + "$" + hash[:15],
		"$pbkdf2-sha256$i=1000,l=032$" + salt + "$" + hash,
		"$pbkdf2-sha256$l=32,i=1000$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=1000,x=1$" + salt + "$" + hash,
		"$pbkdf2-sha256$i=1000$$" + hash,                                // empty salt
		"$pbkdf2-sha256$i=1000$" + strings.Repeat("A", 88) + "$" + hash, // 66-byte salt
		"$pbkdf2-sha256$i=1000$" + salt + "$" + hash[:42],               // 31 bytes without l
		"$pbkdf2-sha256$i=1000$" + salt + "=$" + hash,
		"$pbkdf2-sha256$i=1000$" + salt + "$" + hash + "\n",
		"$pbkdf2-sha256$1000$" + salt + "$" + "I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOe+uw",   // '+' in passlib's
		"$pbkdf2-sha256$i=1000$" + salt + "$" + "I6onqLYLjKv1TK67syYF3jfzRUtOqW9Zp7SxynOe.uw", // '.' in PHC's
		"$pbkdf2-sha256$+1000$" + salt + "$" + phash,
		"$pbkdf2-sha256$1000,l=32$" + salt + "$" + phash,
		"$pbkdf2-sha256$i=1000$" + salt + "$" + strings.Repeat("A", 300),
	} {
		if h, err := decodePBKDF2(s, true); err == nil {
			t.Errorf("decodePBKDF2(%q) = %+v, want an error", s, h)
		}
	}
}

// FuzzDecodePBKDF2 checks that decodePBKDF2 never panics and that what it
// accepts, whole or as a stub, encodes back as itself.
func FuzzDecodePBKDF2(f *testing.F) {
	for _, v := range pbkdf2Vectors {
		f.Add(v.encoded, true)
		f.Add(v.encoded[:strings.LastIndex(v.encoded, "$")], false)
	}
	f.Fuzz(func(t *testing.T, s string, withHash bool) {
		h, err := decodePBKDF2(s, withHash)
		if err != nil {
			return
		}
		checkCanonical(t, s, withHash, h)
		if h.iterations == 0 || len(h.hash) < pbkdf2MinLen || len(h.hash) > pbkdf2MaxLen || len(h.salt) < pbkdf2MinSalt {
			t.Errorf("decodePBKDF2(%q) = %+v", s, h)
		}
	})
}
