// Package salt generates and keeps the client-side salts of larder's
// clients.
//
// The course protocol's signature is SHA-256(password ‖ salt), computed by
// the client; the salt never leaves the client. A random salt per server
// and user makes a signature seen by one server useless on any other, and
// a dictionary precomputed for one salt useless for the next. The salt must
// therefore outlive the process: a Store keeps the salts of one user of the
// machine in a file in their configuration folder, private to them.
package salt

import (
	"crypto/rand"
	"fmt"
	"io"
)

// Len is the length of a salt that New makes, in characters: the length of
// the course's reference salt.
const Len = 64

// alphabet is what New draws from: letters and digits, so that a salt can
// be copied from a terminal and passed as a flag without quoting.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// New returns a random salt of Len characters from an alphabet of 62
// letters and digits (about 381 bits), drawn from crypto/rand.
func New() (string, error) {
	return newFrom(rand.Reader)
}

// newFrom draws a salt from r. Bytes at or above 248, the largest multiple
// of 62 that fits a byte, are rejected rather than reduced modulo 62, which
// would make the first 8 characters of the alphabet likelier than the rest.
func newFrom(r io.Reader) (string, error) {
	const limit = 256 - 256%len(alphabet)
	out := make([]byte, 0, Len)
	var buf [Len]byte
	for len(out) < Len {
		// Read only as many bytes as characters are missing: about 3% are
		// rejected, so this takes two or three reads.
		p := buf[:Len-len(out)]
		if _, err := io.ReadFull(r, p); err != nil {
			return "", fmt.Errorf("salt: reading random bytes: %w", err)
		}
		for _, b := range p {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
