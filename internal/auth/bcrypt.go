package auth

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/blowfish"
)

// Imported bcrypt hashes, "$2b$12$<22 salt chars><31 hash chars>", and their
// variants $2a$ and $2y$, which all compute the same for ASCII input of up
// to 72 bytes. They hash the signature as 64 lowercase hex characters
// (hexSignature), as the Python or PHP code that made them did.

const (
	bcryptLen       = 60 // "$2b$" + "12$" + 22 + 31
	bcryptStubLen   = 29 // the string without its 31 hash characters
	bcryptSaltChars = 22 // 16 bytes in bcrypt's base64
	bcryptSaltLen   = 16
	bcryptDigestLen = 23 // of the 24 bytes bcrypt encrypts, the 23 it encodes
	bcryptMinCost   = 4
	bcryptMaxCost   = 31
)

// bcryptAlphabet is bcrypt's base64 alphabet, in the order of its values.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

var (
	// bcryptB64 decodes a hash strictly: its unused low bits must be zero,
	// as every bcrypt implementation writes them, so each digest has one
	// encoding.
	bcryptB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding).Strict()
	// bcryptSaltB64 decodes a salt leniently: C bcrypt and x/crypto/bcrypt
	// ignore the low 4 bits of its last character, and some old
	// implementations set them.
	bcryptSaltB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)
)

// bcryptHash is a decoded bcrypt hash. Its salt is kept as the characters
// stored, which x/crypto/bcrypt hashes with.
type bcryptHash struct {
	s    string // the whole string (or the stub)
	cost int
	salt []byte // decoded, 16 bytes
	hash []byte // 23 bytes; zero in a stub
}

// hexSignature returns sig as lowercase hex: the input of imported bcrypt
// and PBKDF2 hashes. Raw digests hold NUL bytes, which C bcrypt and
// pyca/bcrypt refuse or stop at; 64 hex characters fit bcrypt's 72 bytes.
func hexSignature(sig []byte) []byte { return hex.AppendEncode(nil, sig) }

// decodeBcrypt parses "$2X$CC$<salt><hash>", X one of a, b and y, CC a cost
// from 04 to 31 in two digits; or, if withHash is false, its stub, the first
// 29 characters.
func decodeBcrypt(s string, withHash bool) (*bcryptHash, error) {
	want := bcryptLen
	if !withHash {
		want = bcryptStubLen
	}
	if len(s) != want {
		return nil, fmt.Errorf("auth: bcrypt hash is %d bytes long, want %d", len(s), want)
	}
	if s[0] != '$' || s[1] != '2' || (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') || s[3] != '$' || s[6] != '$' {
		return nil, errors.New("auth: not a bcrypt hash")
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return nil, errors.New("auth: bcrypt cost is not two digits")
	}
	h := &bcryptHash{s: s, cost: int(s[4]-'0')*10 + int(s[5]-'0')}
	if h.cost < bcryptMinCost || h.cost > bcryptMaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d is outside %d to %d", h.cost, bcryptMinCost, bcryptMaxCost)
	}
	var err error
	if h.salt, err = decodeBase64(bcryptSaltB64, "bcrypt salt", s[7:7+bcryptSaltChars], bcryptSaltLen, bcryptSaltLen); err != nil {
		return nil, err
	}
	if !withHash {
		h.hash = make([]byte, bcryptDigestLen)
		return h, nil
	}
	if h.hash, err = decodeBase64(bcryptB64, "bcrypt hash", s[bcryptStubLen:], bcryptDigestLen, bcryptDigestLen); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *bcryptHash) encode() string       { return h.s }
func (h *bcryptHash) stub() string         { return h.s[:bcryptStubLen] }
func (h *bcryptHash) storedDigest() []byte { return h.hash }
func (h *bcryptHash) label() string        { return fmt.Sprintf("bcrypt cost=%d", h.cost) }
func (h *bcryptHash) slow() bool           { return true }

func (h *bcryptHash) usable(*Hasher) error {
	if h.cost > bcryptCostCap {
		return fmt.Errorf("auth: stored hash asks for bcrypt cost %d; this server computes at most %d", h.cost, bcryptCostCap)
	}
	return nil
}

// verify checks sig with x/crypto/bcrypt, which compares in constant time.
func (h *bcryptHash) verify(_ *Hasher, sig []byte) (bool, error) {
	switch err := bcrypt.CompareHashAndPassword([]byte(h.s), hexSignature(sig)); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("auth: bcrypt: %w", err)
	}
}

// digest recomputes the 23-byte digest that the hash stores, for checking
// a wrapped hash.
func (h *bcryptHash) digest(_ *Hasher, sig []byte) ([]byte, error) {
	return bcryptDigest(hexSignature(sig), h.cost, h.salt), nil
}

// bcryptMagic is the text that bcrypt encrypts 64 times.
const bcryptMagic = "OrpheanBeholderScryDoubt"

// bcryptDigest computes bcrypt (Provos and Mazières, 1999) of password with
// the given cost and 16-byte raw salt, returning the 23 bytes that a bcrypt
// string encodes. x/crypto/bcrypt does the same but exports no way to hash
// with a given salt, which checking a wrapped hash needs; the tests check
// that this reproduces its output exactly.
func bcryptDigest(password []byte, cost int, salt []byte) []byte {
	// As C bcrypt, the key includes the password's terminating NUL.
	key := append(password[:len(password):len(password)], 0)
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil {
		panic(err) // cannot happen: the key is never empty
	}
	for range uint64(1) << cost {
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
	}
	text := []byte(bcryptMagic)
	for i := 0; i < len(text); i += 8 {
		for range 64 {
			c.Encrypt(text[i:i+8], text[i:i+8])
		}
	}
	return text[:bcryptDigestLen]
}
