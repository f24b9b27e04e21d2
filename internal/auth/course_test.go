package auth

import (
	"strings"
	"testing"
)

func TestDecodeCourse(t *testing.T) {
	const (
		salt = "Y291cnNlLXNhbHQtMDAwMQ"
		hash = "zuUvYOMewKg9u30miDM4ZuPK7Hck3lXh4oqfwS6ATgw"
	)
	s := "$course-sha256$" + salt + "$" + hash
	h, err := decodeCourse(s, true)
	if err != nil || h.encode() != s || string(h.salt) != "course-salt-0001" || len(h.hash) != 32 {
		t.Errorf("decodeCourse(%s) = %+v, %v", s, h, err)
	}
	if st, err := decodeCourse(h.stub(), false); err != nil || st.stub() != "$course-sha256$"+salt {
		t.Errorf("decodeCourse(stub %s) = %+v, %v", h.stub(), st, err)
	}
	for _, s := range []string{
		"",
		"$course-sha256$" + salt,
		"$course-sha256$$" + hash,
		"$course-sha256$" + salt + "$" + hash[:42],
		"$course-sha256$" + salt + "$" + hash + "A",
		"$course-sha256$" + salt + "$" + hash + "$",
		"$course-sha256$" + strings.Repeat("A", 88) + "$" + hash, // 66-byte salt
		"$course-sha256$" + salt + "$" + hash + "\n",
		"$course-sha256$" + salt + "=$" + hash,
		"$course-sha1$" + salt + "$" + hash,
		"course-sha256$" + salt + "$" + hash,
	} {
		if h, err := decodeCourse(s, true); err == nil {
			t.Errorf("decodeCourse(%q) = %+v, want an error", s, h)
		}
	}
}

// FuzzDecodeCourse checks that decodeCourse never panics and that what it
// accepts, whole or as a stub, encodes back as itself.
func FuzzDecodeCourse(f *testing.F) {
	for _, v := range courseVectors {
		f.Add(v, true)
		f.Add(v[:strings.LastIndex(v, "$")], false)
	}
	f.Fuzz(func(t *testing.T, s string, withHash bool) {
		h, err := decodeCourse(s, withHash)
		if err != nil {
			return
		}
		checkCanonical(t, s, withHash, h)
		if len(h.hash) != 32 || len(h.salt) < courseMinSalt || len(h.salt) > courseMaxSalt {
			t.Errorf("decodeCourse(%q) = %+v", s, h)
		}
	})
}
