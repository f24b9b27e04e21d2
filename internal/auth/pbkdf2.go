package auth

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
)

// Imported PBKDF2-HMAC-SHA256 hashes, in two forms: the PHC one,
//
//	$pbkdf2-sha256$i=<iterations>[,l=<length>]$<salt>$<hash>
//
// in standard base64 without padding (the length defaults to 32 bytes), and
// passlib's pbkdf2_sha256,
//
//	$pbkdf2-sha256$<iterations>$<salt>$<hash>
//
// in passlib's adapted base64 ('.' for '+'), always 32 bytes. Both hash the
// signature as 64 lowercase hex characters (hexSignature).

const (
	algPBKDF2 = "pbkdf2-sha256"

	pbkdf2DefaultLen             = sha256.Size
	pbkdf2MinSalt, pbkdf2MaxSalt = 1, 64
	// A short output would let a random signature match: at least 96 bits.
	pbkdf2MinLen, pbkdf2MaxLen = 12, 64

	maxPBKDF2Len = 256 // bounds the input of decodePBKDF2
)

// pbkdf2Hash is a decoded PBKDF2-SHA256 hash.
type pbkdf2Hash struct {
	passlib    bool // passlib's form rather than PHC's
	iterations uint32
	explicitL  bool // the PHC form says l=, even if it is 32
	salt       []byte
	hash       []byte // in a stub, zeros of the length it implies
}

// decodePBKDF2 parses either form, or, if withHash is false, its stub: the
// string without its last field, "$hash".
func decodePBKDF2(s string, withHash bool) (*pbkdf2Hash, error) {
	if len(s) > maxPBKDF2Len {
		return nil, fmt.Errorf("auth: pbkdf2-sha256 hash is %d bytes long; the limit is %d", len(s), maxPBKDF2Len)
	}
	fields := strings.Split(s, "$")
	want := 5
	if !withHash {
		want = 4
	}
	if len(fields) != want || fields[0] != "" || fields[1] != algPBKDF2 {
		return nil, fmt.Errorf("auth: pbkdf2-sha256 hash has %d fields, want %d", len(fields)-1, want-1)
	}
	h := new(pbkdf2Hash)
	enc := b64
	length := pbkdf2DefaultLen
	if rounds, ok := strings.CutPrefix(fields[2], "i="); ok {
		iter, l, hasL := strings.Cut(rounds, ",l=")
		v, err := parseDecimal(iter)
		if err != nil {
			return nil, fmt.Errorf("auth: pbkdf2-sha256 iterations: %w", err)
		}
		h.iterations = v
		if hasL {
			n, err := parseDecimal(l)
			if err != nil {
				return nil, fmt.Errorf("auth: pbkdf2-sha256 length: %w", err)
			}
			if n < pbkdf2MinLen || n > pbkdf2MaxLen {
				return nil, fmt.Errorf("auth: pbkdf2-sha256 length %d is outside %d to %d", n, pbkdf2MinLen, pbkdf2MaxLen)
			}
			length, h.explicitL = int(n), true
		}
	} else {
		v, err := parseDecimal(fields[2])
		if err != nil {
			return nil, fmt.Errorf("auth: pbkdf2-sha256 rounds: %w", err)
		}
		h.iterations, h.passlib, enc = v, true, ab64
	}
	if h.iterations == 0 {
		return nil, fmt.Errorf("auth: pbkdf2-sha256 iterations are 0")
	}
	var err error
	if h.salt, err = decodeBase64(enc, "pbkdf2-sha256 salt", fields[3], pbkdf2MinSalt, pbkdf2MaxSalt); err != nil {
		return nil, err
	}
	if !withHash {
		h.hash = make([]byte, length)
		return h, nil
	}
	if h.hash, err = decodeBase64(enc, "pbkdf2-sha256 hash", fields[4], length, length); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *pbkdf2Hash) encode() string {
	enc := b64
	if h.passlib {
		enc = ab64
	}
	return h.stub() + "$" + enc.EncodeToString(h.hash)
}

func (h *pbkdf2Hash) stub() string {
	if h.passlib {
		return fmt.Sprintf("$%s$%d$%s", algPBKDF2, h.iterations, ab64.EncodeToString(h.salt))
	}
	l := ""
	if h.explicitL {
		l = ",l=" + strconv.Itoa(len(h.hash))
	}
	return fmt.Sprintf("$%s$i=%d%s$%s", algPBKDF2, h.iterations, l, b64.EncodeToString(h.salt))
}

func (h *pbkdf2Hash) label() string {
	s := fmt.Sprintf("%s i=%d", algPBKDF2, h.iterations)
	if len(h.hash) != pbkdf2DefaultLen {
		s += fmt.Sprintf(" l=%d", len(h.hash))
	}
	return s
}

func (h *pbkdf2Hash) usable(*Hasher) error {
	if h.iterations > pbkdf2IterationsCap {
		return fmt.Errorf("auth: stored hash asks for %d PBKDF2 iterations; this server computes at most %d", h.iterations, pbkdf2IterationsCap)
	}
	return nil
}

func (h *pbkdf2Hash) slow() bool           { return true }
func (h *pbkdf2Hash) storedDigest() []byte { return h.hash }

func (h *pbkdf2Hash) verify(hs *Hasher, sig []byte) (bool, error) { return matchDigest(hs, h, sig) }

func (h *pbkdf2Hash) digest(_ *Hasher, sig []byte) ([]byte, error) {
	d, err := pbkdf2.Key(sha256.New, string(hexSignature(sig)), h.salt, int(h.iterations), len(h.hash))
	if err != nil {
		// Only in FIPS 140-3 "only" mode, for a salt under 16 bytes.
		return nil, fmt.Errorf("auth: pbkdf2-sha256: %w", err)
	}
	return d, nil
}
