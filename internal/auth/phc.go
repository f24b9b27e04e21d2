package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The argon2id PHC string (P-H-C/phc-string-format) is larder's own format:
//
//	$argon2id$v=19$m=19456,t=2,p=1[,keyid=<id>]$<salt>$<hash>
//
// with keyid, salt and hash in standard base64 without padding. The string
// names its algorithm and parameters, so hashes of several costs, peppers
// and algorithms can live side by side. doc.go gives the grammar of every
// format this package reads.

const (
	algArgon2id = "argon2id"
	saltLen     = 16 // bytes; RFC 9106 recommends 128 bits
	keyLen      = 32 // bytes; RFC 9106 recommends 256 bits

	// Lengths that the PHC specification allows for argon2, in bytes.
	minSaltLen, maxSaltLen = 8, 48
	minHashLen, maxHashLen = 12, 64
	maxKeyIDLen            = 8

	// maxPHCLen bounds the input of decodePHC; the longest valid string
	// is well under it.
	maxPHCLen = 256
)

// b64 is the PHC base64: standard alphabet, no padding. Strict rejects
// non-zero trailing bits, so every hash has exactly one encoding.
var b64 = base64.RawStdEncoding.Strict()

// ab64 is passlib's "adapted base64": the PHC base64 with '.' for '+'.
var ab64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./").WithPadding(base64.NoPadding).Strict()

// phc is a decoded argon2id PHC string.
type phc struct {
	params Params
	// keyID is the optional "keyid" parameter, which the PHC format
	// defines for naming a secret key (our pepper); nil when absent.
	keyID []byte
	salt  []byte
	hash  []byte
}

// encode returns h as a PHC string.
func (h *phc) encode() string {
	return h.stub() + "$" + b64.EncodeToString(h.hash)
}

// stub returns h as a PHC string without its last field, the hash: the
// inner part of a wrapped hash (wrap.go).
func (h *phc) stub() string {
	var b strings.Builder
	b.Grow(128)
	fmt.Fprintf(&b, "$%s$v=%d$%s", algArgon2id, argon2.Version, h.params)
	if h.keyID != nil {
		b.WriteString(",keyid=")
		b.WriteString(b64.EncodeToString(h.keyID))
	}
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(h.salt))
	return b.String()
}

// decodePHC parses an argon2id PHC string strictly: anything but the one
// canonical form of a supported hash is an error. Errors never quote s,
// which holds the hash.
func decodePHC(s string) (*phc, error) { return decodeArgon2id(s, true) }

// decodeArgon2id parses an argon2id PHC string, or, if withHash is false,
// its stub: the string without its last field. A stub's hash is keyLen
// bytes long, as every argon2id hash that larder makes.
func decodeArgon2id(s string, withHash bool) (*phc, error) {
	if len(s) > maxPHCLen {
		return nil, fmt.Errorf("auth: PHC string is %d bytes long; the limit is %d", len(s), maxPHCLen)
	}
	fields := strings.Split(s, "$")
	if len(fields) < 2 || fields[0] != "" {
		return nil, errors.New("auth: not a PHC string")
	}
	if fields[1] != algArgon2id {
		return nil, fmt.Errorf("auth: unsupported hash algorithm %q", truncate(fields[1]))
	}
	want := 6
	if !withHash {
		want = 5
	}
	if len(fields) != want {
		return nil, fmt.Errorf("auth: argon2id PHC string has %d fields, want %d", len(fields)-1, want-1)
	}
	if want := "v=" + strconv.Itoa(argon2.Version); fields[2] != want {
		return nil, fmt.Errorf("auth: unsupported argon2 version %q, want %q", truncate(fields[2]), want)
	}

	h := new(phc)
	if err := h.decodeParams(fields[3]); err != nil {
		return nil, err
	}
	var err error
	if h.salt, err = decodeB64("argon2id salt", fields[4], minSaltLen, maxSaltLen); err != nil {
		return nil, err
	}
	if !withHash {
		h.hash = make([]byte, keyLen) // only its length matters
		return h, nil
	}
	if h.hash, err = decodeB64("argon2id hash", fields[5], minHashLen, maxHashLen); err != nil {
		return nil, err
	}
	return h, nil
}

// decodeParams parses "m=<KiB>,t=<passes>,p=<lanes>[,keyid=<b64>]", in that
// order, as the PHC specification requires for argon2.
func (h *phc) decodeParams(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 && len(parts) != 4 {
		return fmt.Errorf("auth: argon2id has %d parameters, want m, t, p and an optional keyid", len(parts))
	}
	names := [...]string{"m", "t", "p", "keyid"}
	var vals [3]uint32
	for i, part := range parts {
		name, val, ok := strings.Cut(part, "=")
		if !ok || name != names[i] {
			return fmt.Errorf("auth: argon2id parameter %d is %q, want %s=...", i+1, truncate(part), names[i])
		}
		if i == 3 {
			id, err := decodeB64("argon2id keyid", val, 1, maxKeyIDLen)
			if err != nil {
				return err
			}
			h.keyID = id
			continue
		}
		v, err := parseDecimal(val)
		if err != nil {
			return fmt.Errorf("auth: argon2id parameter %s: %w", name, err)
		}
		vals[i] = v
	}
	if vals[2] > 255 {
		return fmt.Errorf("auth: argon2id parameter p=%d is above 255", vals[2])
	}
	h.params = Params{Memory: vals[0], Time: vals[1], Threads: uint8(vals[2])}
	return h.params.Validate()
}

// parseDecimal parses a PHC decimal: digits only, no sign, no leading zero.
func parseDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", truncate(s))
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", truncate(s))
	}
	return uint32(v), nil
}

// decodeB64 decodes field s, which must be the canonical PHC base64 of
// minLen to maxLen bytes; what names the field in errors.
func decodeB64(what, s string, minLen, maxLen int) ([]byte, error) {
	return decodeBase64(b64, what, s, minLen, maxLen)
}

// decodeBase64 decodes s with enc, an encoding without padding, and checks
// that the result is minLen to maxLen bytes long; what names the field in
// errors.
func decodeBase64(enc *base64.Encoding, what, s string, minLen, maxLen int) ([]byte, error) {
	// encoding/base64 skips '\r' and '\n' anywhere in its input, and
	// rejects every other byte outside its alphabet; a field of a stored
	// hash is the bare alphabet.
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("auth: %s holds a byte outside the base64 alphabet", what)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("auth: %s is not valid base64: %w", what, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("auth: %s is %d bytes long, want %d to %d", what, len(b), minLen, maxLen)
	}
	return b, nil
}

// truncate shortens a piece of a malformed PHC string for an error message.
func truncate(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
