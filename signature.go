package larder

import "crypto/sha256"

// SignatureSize is the length of a Signature in bytes.
const SignatureSize = sha256.Size

// Signature is what a client derives from its password and salt and the
// server hashes again before it stores or compares it: SHA-256 of the
// password followed by the client's salt. The course protocol carries it
// as is; the server's verifiers (internal/auth) are slow hashes of it.
type Signature [SignatureSize]byte

// NewSignature computes the signature of password with salt: SHA-256
// over the UTF-8 bytes of password and salt concatenated, password first,
// with no separator, as the course protocol defines it.
func NewSignature(password, salt string) Signature {
	h := sha256.New()
	h.Write([]byte(password))
	h.Write([]byte(salt))
	var s Signature
	h.Sum(s[:0])
	return s
}
