package larder

import (
	"crypto/rand"
	"fmt"
	"io"
)

// SaltLen is the length of a salt that NewSalt makes, in characters: the
// length of the course's reference salt.
const SaltLen = 64

// saltAlphabet is what NewSalt draws from: letters and digits, so that a
// salt can be copied from a terminal and passed as a flag without quoting.
const saltAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewSalt returns a random client salt, for NewSignature: SaltLen
// characters from an alphabet of 62 letters and digits (about 381 bits),
// drawn from crypto/rand. The salt never leaves the client; one of its own
// per server and user makes a signature seen by one server useless on any
// other, and a dictionary precomputed for one salt useless for the next.
func NewSalt() (string, error) {
	return newSaltFrom(rand.Reader)
}

// newSaltFrom draws a salt from r. Bytes at or above 248, the largest
// multiple of 62 that fits a byte, are rejected rather than reduced modulo
// 62, which would make the first 8 characters of the alphabet likelier
// than the rest.
func newSaltFrom(r io.Reader) (string, error) {
	const limit = 256 - 256%len(saltAlphabet)
	out := make([]byte, 0, SaltLen)
	var buf [SaltLen]byte
	for len(out) < SaltLen {
		// Read only as many bytes as characters are missing: about 3% are
		// rejected, so this takes two or three reads.
		p := buf[:SaltLen-len(out)]
		if _, err := io.ReadFull(r, p); err != nil {
			return "", fmt.Errorf("salt: reading random bytes: %w", err)
		}
		for _, b := range p {
			if int(b) < limit {
				out = append(out, saltAlphabet[int(b)%len(saltAlphabet)])
			}
		}
	}
	return string(out), nil
}
