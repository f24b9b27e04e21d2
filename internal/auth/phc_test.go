package auth

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// Known vectors from an independent implementation: the reference C
// implementation's command-line tool, Debian package argon2
// 0~20171227-0.3+deb12u1. The tool takes the salt as the raw bytes of its
// first argument and the secret from standard input:
//
//	echo -n "password" | argon2 somesalt -id -t 2 -k 19456 -p 1 -l 32 -e
//	printf %s "hunter2$SALT64" | openssl dgst -sha256 -binary |
//	    argon2 larder-salt-0001 -id -t 2 -k 19456 -p 1 -l 32 -e
//	echo -n "correct horse" | argon2 saltsaltsalt -id -t 3 -k 256 -p 2 -l 32 -e
//
// where SALT64 is the course client's salt, "0123456789" repeated to 64
// characters; the second secret is thus a real course-protocol signature.
var knownVectors = []struct {
	name    string
	secret  []byte
	salt    string
	params  Params
	encoded string
}{
	{
		name:    "OWASP params, ASCII secret",
		secret:  []byte("password"),
		salt:    "somesalt",
		params:  Params{Memory: 19456, Time: 2, Threads: 1},
		encoded: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E",
	},
	{
		name:    "OWASP params, course signature",
		secret:  courseSignature("hunter2"),
		salt:    "larder-salt-0001",
		params:  Params{Memory: 19456, Time: 2, Threads: 1},
		encoded: "$argon2id$v=19$m=19456,t=2,p=1$bGFyZGVyLXNhbHQtMDAwMQ$gajgPH83TtHZZqxw9ywfAvscc/IomUZ3gvtrhdoi2ao",
	},
	{
		name:    "two lanes, three passes",
		secret:  []byte("correct horse"),
		salt:    "saltsaltsalt",
		params:  Params{Memory: 256, Time: 3, Threads: 2},
		encoded: "$argon2id$v=19$m=256,t=3,p=2$c2FsdHNhbHRzYWx0$VNuBtDwdevTf2h6trSpSkaWgpsAnqIPL/E/Iq1gVZxg",
	},
}

// courseSignature returns the signature that the course's reference client
// sends for password: SHA-256 of the password followed by its fixed salt.
func courseSignature(password string) []byte {
	sum := sha256.Sum256([]byte(password + strings.Repeat("0123456789", 7)[:64]))
	return sum[:]
}

func TestKnownVectors(t *testing.T) {
	for _, v := range knownVectors {
		t.Run(v.name, func(t *testing.T) {
			h, err := decodePHC(v.encoded)
			if err != nil {
				t.Fatalf("decodePHC: %v", err)
			}
			if h.params != v.params || string(h.salt) != v.salt || h.keyID != nil {
				t.Errorf("decoded params %v salt %q keyid %q, want %v %q none", h.params, h.salt, h.keyID, v.params, v.salt)
			}
			// Our encoder writes the same string as the C tool ...
			key := argon2Key(v.secret, []byte(v.salt), v.params, keyLen)
			got := (&phc{params: v.params, salt: []byte(v.salt), hash: key}).encode()
			if got != v.encoded {
				t.Errorf("encode = %s\nwant     %s", got, v.encoded)
			}
			// ... and Verify accepts it, and nothing else. (Only for the
			// cheap vector: the others cost 40 ms a hash, ten times that
			// under -race, and the comparison above already covers them.)
			if v.params.Memory > 1024 {
				return
			}
			hs := NewHasher(Params{Memory: 64, Time: 1, Threads: 1}, nil, 1)
			if ok, err := hs.Verify(t.Context(), v.encoded, v.secret); !ok || err != nil {
				t.Errorf("Verify(right secret) = %v, %v; want true, nil", ok, err)
			}
			wrong := append(bytes.Clone(v.secret), 0)
			if ok, err := hs.Verify(t.Context(), v.encoded, wrong); ok || err != nil {
				t.Errorf("Verify(wrong secret) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestPHCRoundTrip(t *testing.T) {
	for _, h := range []*phc{
		{params: DefaultParams, salt: bytes.Repeat([]byte{1}, 16), hash: bytes.Repeat([]byte{2}, 32)},
		{params: Params{Memory: 8, Time: 1, Threads: 1}, salt: bytes.Repeat([]byte{0xff}, 8), hash: bytes.Repeat([]byte{0}, 12)},
		{params: Params{Memory: MaxMemory, Time: 1<<32 - 1, Threads: 255}, salt: make([]byte, 48), hash: make([]byte, 64)},
		{params: DefaultParams, keyID: []byte("k1"), salt: make([]byte, 16), hash: make([]byte, 32)},
	} {
		s := h.encode()
		got, err := decodePHC(s)
		if err != nil {
			t.Errorf("decodePHC(%s): %v", s, err)
			continue
		}
		if got.params != h.params || !bytes.Equal(got.keyID, h.keyID) || !bytes.Equal(got.salt, h.salt) || !bytes.Equal(got.hash, h.hash) {
			t.Errorf("decodePHC(%s) = %+v, want %+v", s, got, h)
		}
		if again := got.encode(); again != s {
			t.Errorf("re-encoded %s, want %s", again, s)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	const (
		salt = "c29tZXNhbHQ"
		hash = "PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E"
	)
	for _, s := range []string{
		"",
		"$",
		"argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,           // no leading $
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,           // argon2i
		"$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,           // argon2d
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", // bcrypt
		"$argon2id$m=19456,t=2,p=1$" + salt + "$" + hash,               // no version (v=16)
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + hash,          // old version
		"$argon2id$v=019$m=19456,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt,                    // no hash
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",              // empty hash
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash + "$", // extra field
		"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + hash,       // wrong order
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + hash,           // missing p
		"$argon2id$v=19$m=19456,t=2,p=1,x=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=1,data=YQ$" + salt + "$" + hash,
		"$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + hash, // leading zero
		"$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + hash, // overflows uint32
		"$argon2id$v=19$m=4194305,t=2,p=1$" + salt + "$" + hash,    // above 4 GiB
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + hash,
		"$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + hash, // under 8 KiB per lane
		"$argon2id$v=19$m=19456,t=2,p=1,keyid=$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=1,keyid=YWJjZGVmZ2hp$" + salt + "$" + hash, // 9-byte keyid
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "=$" + hash,                   // padding
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHR$" + hash,                     // non-zero trailing bits
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbA$" + hash,                      // 7-byte salt
		"$argon2id$v=19$m=19456,t=2,p=1$c29t_XNhbHQ$" + hash,                     // URL alphabet
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash[:14],               // short hash
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash + "\n",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 300),
	} {
		if h, err := decodePHC(s); err == nil {
			t.Errorf("decodePHC(%q) = %+v, want an error", s, h)
		}
	}
}

// FuzzDecode checks that decodePHC never panics, and that whatever it
// accepts is canonical: encoding it again gives back the same string.
func FuzzDecode(f *testing.F) {
	for _, v := range knownVectors {
		f.Add(v.encoded)
	}
	f.Add("$argon2id$v=19$m=19456,t=2,p=1,keyid=azE$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
	f.Add("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := decodePHC(s)
		if err != nil {
			return
		}
		if got := h.encode(); got != s {
			t.Errorf("decodePHC accepted %q, which encodes back as %q", s, got)
		}
		if err := h.params.Validate(); err != nil {
			t.Errorf("decodePHC accepted %q with invalid params: %v", s, err)
		}
	})
}
