package auth

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// The course's reference server stores SHA-256(signature ‖ server salt),
// the signature as its 32 raw bytes. larder imports such an account as
//
//	$course-sha256$<salt>$<hash>
//
// in standard base64 without padding: the salt is the server salt's bytes
// (1 to 64; the UTF-8 bytes of the string if the server kept a string), the
// hash the 32-byte digest. It is a fast hash: checking it takes no slot of
// the pool, and "larder admin upgrade --wrap" should wrap it at once.

const (
	algCourse                    = "course-sha256"
	courseMinSalt, courseMaxSalt = 1, 64
	maxCourseLen                 = 160 // bounds the input of decodeCourse
)

// courseHash is a decoded course-sha256 hash.
type courseHash struct {
	salt []byte
	hash []byte // in a stub, 32 zeros
}

// decodeCourse parses "$course-sha256$<salt>$<hash>", or, if withHash is
// false, its stub "$course-sha256$<salt>".
func decodeCourse(s string, withHash bool) (*courseHash, error) {
	if len(s) > maxCourseLen {
		return nil, fmt.Errorf("auth: course-sha256 hash is %d bytes long; the limit is %d", len(s), maxCourseLen)
	}
	fields := strings.Split(s, "$")
	want := 4
	if !withHash {
		want = 3
	}
	if len(fields) != want || fields[0] != "" || fields[1] != algCourse {
		return nil, fmt.Errorf("auth: course-sha256 hash has %d fields, want %d", len(fields)-1, want-1)
	}
	h := new(courseHash)
	var err error
	if h.salt, err = decodeB64("course-sha256 salt", fields[2], courseMinSalt, courseMaxSalt); err != nil {
		return nil, err
	}
	if !withHash {
		h.hash = make([]byte, sha256.Size)
		return h, nil
	}
	if h.hash, err = decodeB64("course-sha256 hash", fields[3], sha256.Size, sha256.Size); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *courseHash) encode() string       { return h.stub() + "$" + b64.EncodeToString(h.hash) }
func (h *courseHash) stub() string         { return "$" + algCourse + "$" + b64.EncodeToString(h.salt) }
func (h *courseHash) label() string        { return algCourse }
func (h *courseHash) usable(*Hasher) error { return nil }
func (h *courseHash) slow() bool           { return false }
func (h *courseHash) storedDigest() []byte { return h.hash }

func (h *courseHash) verify(hs *Hasher, sig []byte) (bool, error) { return matchDigest(hs, h, sig) }

func (h *courseHash) digest(_ *Hasher, sig []byte) ([]byte, error) {
	d := sha256.New()
	d.Write(sig)
	d.Write(h.salt)
	return d.Sum(nil), nil
}
