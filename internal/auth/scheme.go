package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// storedHash is a decoded stored hash of one of the supported schemes.
type storedHash interface {
	// encode returns the string the hash was decoded from: every format
	// is parsed strictly, so that decoding then encoding gives it back.
	encode() string
	// label returns the salt-free description that Describe returns.
	label() string
	// usable returns an error if h refuses to compute the hash: it asks
	// for more work than h allows, or for a pepper that h does not have.
	usable(h *Hasher) error
	// slow reports whether checking the hash takes a slot in h's pool.
	slow() bool
	// verify reports, in constant time, whether sig matches. The caller
	// has checked usable and holds a slot of the pool if slow.
	verify(h *Hasher, sig []byte) (bool, error)
}

// innerHash is a stored hash that is a digest of the signature, and that
// Wrap can therefore wrap: every scheme but a wrapped hash itself.
type innerHash interface {
	storedHash
	// stub returns the stored string without its digest, from which
	// decodeInner(stub, false) recovers everything but the digest.
	stub() string
	// storedDigest returns the digest that the stored string holds.
	storedDigest() []byte
	// digest recomputes the digest from sig, under the same conditions
	// as verify.
	digest(h *Hasher, sig []byte) ([]byte, error)
}

// matchDigest is verify for the schemes that check by recomputing the
// stored digest.
func matchDigest(h *Hasher, v innerHash, sig []byte) (bool, error) {
	d, err := v.digest(h, sig)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(d, v.storedDigest()) == 1, nil
}

// decodeHash parses a stored hash of any supported scheme, strictly.
// Errors never quote s, which holds the hash.
func decodeHash(s string) (storedHash, error) {
	if strings.HasPrefix(s, wrapPrefix) {
		w, err := decodeWrapped(s)
		if err != nil {
			return nil, err // not a typed nil
		}
		return w, nil
	}
	return decodeInner(s, true)
}

// decodeInner parses a stored hash of a scheme that can be wrapped, or, if
// withDigest is false, the stub of one (innerHash.stub).
func decodeInner(s string, withDigest bool) (innerHash, error) {
	if s == "" || s[0] != '$' {
		return nil, errors.New("auth: not a PHC string")
	}
	alg, _, _ := strings.Cut(s[1:], "$")
	// Each case returns through an innerHash variable, never a typed nil.
	var (
		v   innerHash
		err error
	)
	switch alg {
	case algArgon2id:
		v, err = nonNil(decodeArgon2id(s, withDigest))
	case "2a", "2b", "2y":
		v, err = nonNil(decodeBcrypt(s, withDigest))
	case algPBKDF2:
		v, err = nonNil(decodePBKDF2(s, withDigest))
	case algCourse:
		v, err = nonNil(decodeCourse(s, withDigest))
	default:
		return nil, fmt.Errorf("auth: unsupported hash algorithm %q", truncate(alg))
	}
	return v, err
}

// nonNil converts a decoder's result to an innerHash, nil when err is set.
func nonNil[T innerHash](v T, err error) (innerHash, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Describe returns a stable label of the scheme and cost of a stored hash,
// without its salt or digest, for grouping accounts by how their hashes are
// made ("larder admin hashes"):
//
//	argon2id m=19456,t=2,p=1 pepper=p2
//	argon2id m=19456,t=2,p=1           (no pepper)
//	bcrypt cost=12
//	pbkdf2-sha256 i=600000
//	course-sha256
//	wrapped bcrypt cost=10 in argon2id m=19456,t=2,p=1 pepper=p2
//
// An argon2id output other than 32 bytes adds " len=N", a PBKDF2 output
// other than 32 bytes " l=N", and a keyid that is not a pepper ID is shown
// as " keyid=BASE64". A string that does not parse is labelled
// "unreadable", and the error says why. The label depends on stored only,
// not on h.
func (h *Hasher) Describe(stored string) (string, error) {
	if stored == "" {
		return "none", nil // an account that logs in over LNP/1 only
	}
	v, err := decodeHash(stored)
	if err != nil {
		return "unreadable", err
	}
	return v.label(), nil
}

// PepperIDs returns the IDs of the peppers that checking a stored hash
// needs: none for an unpeppered or legacy hash, one for a peppered argon2id
// hash, up to two for a wrapped one (its outer hash's, and its inner
// argon2id hash's), one for a sealed LNP/1 credential. An unreadable
// string needs none that can be told. A caller checks before RetirePepper
// that no stored hash or credential needs the pepper.
func (h *Hasher) PepperIDs(stored string) []string {
	if id := lnpPepper(stored); id != "" {
		return []string{id}
	}
	if id := devicePepper(stored); id != "" {
		return []string{id}
	}
	v, err := decodeHash(stored)
	if err != nil {
		return nil
	}
	var ids []string
	add := func(h *phc) {
		if h.keyID != nil {
			ids = append(ids, string(h.keyID))
		}
	}
	switch v := v.(type) {
	case *phc:
		add(v)
	case *wrapped:
		if in, ok := v.inner.(*phc); ok {
			add(in)
		}
		add(v.outer)
	}
	return ids
}

// The argon2id scheme.

func (h *phc) label() string {
	s := "argon2id " + h.params.String()
	if h.keyID != nil {
		if id := string(h.keyID); validPepperID(id) {
			s += " pepper=" + id
		} else {
			s += " keyid=" + b64.EncodeToString(h.keyID)
		}
	}
	if len(h.hash) != keyLen {
		s += fmt.Sprintf(" len=%d", len(h.hash))
	}
	return s
}

func (h *phc) usable(hs *Hasher) error {
	if p, pol := h.params, hs.policy.Load(); p.Memory > pol.maxMemory || p.Time > pol.maxTime {
		return fmt.Errorf("auth: stored hash asks for argon2id %v; this server computes at most m=%d,t=%d", p, pol.maxMemory, pol.maxTime)
	}
	_, err := hs.pepper(h.keyID)
	return err
}

func (h *phc) slow() bool           { return true }
func (h *phc) storedDigest() []byte { return h.hash }

func (h *phc) verify(hs *Hasher, sig []byte) (bool, error) { return matchDigest(hs, h, sig) }

// digest computes argon2id over sig, or over HMAC-SHA256(pepper, sig) when
// h names a pepper.
func (h *phc) digest(hs *Hasher, sig []byte) ([]byte, error) {
	in, err := hs.peppered(h.keyID, sig)
	if err != nil {
		return nil, err
	}
	return hs.key(in, h.salt, h.params, uint32(len(h.hash))), nil
}
