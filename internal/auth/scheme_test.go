package auth

import (
	"strings"
	"testing"
)

// FuzzDecodeHash feeds the decoder of every scheme through its dispatcher:
// it never panics, what it accepts encodes back as itself and has a label,
// and whatever it refuses Describe calls unreadable.
func FuzzDecodeHash(f *testing.F) {
	for _, v := range knownVectors {
		f.Add(v.encoded)
	}
	for _, v := range argon2idPeppered {
		f.Add(withKeyID(v.cli, v.pepper))
	}
	for _, v := range bcryptVectors {
		f.Add(v)
	}
	for _, v := range pbkdf2Vectors {
		f.Add(v.encoded)
	}
	for _, v := range courseVectors {
		f.Add(v)
	}
	for _, v := range wrappedVectors {
		f.Add(wrapOf(v.inner, withKeyID(v.cli, "p1")))
	}
	f.Add("$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA")
	h := NewHasher(cheap, nil, 1)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := decodeHash(s)
		label, derr := h.Describe(s)
		if err != nil {
			if label != "unreadable" || derr == nil {
				t.Errorf("Describe(%q) = %q, %v for a string decodeHash refuses", s, label, derr)
			}
			return
		}
		if got := v.encode(); got != s {
			t.Errorf("decodeHash accepted %q, which encodes back as %q", s, got)
		}
		if derr != nil || label == "" || label == "unreadable" || strings.ContainsAny(label, "$\n") {
			t.Errorf("Describe(%q) = %q, %v", s, label, derr)
		}
		if _, ok := v.(*phc); !ok && !h.NeedsRehash(s) {
			t.Errorf("NeedsRehash(%q) = false for a scheme other than argon2id", s)
		}
		h.PepperIDs(s)
	})
}

// checkCanonical fails t unless v, decoded from s (a whole stored string if
// withHash, else a stub), encodes back as s: every hash has one encoding.
func checkCanonical(t *testing.T, s string, withHash bool, v innerHash) {
	t.Helper()
	got := v.stub()
	if withHash {
		got = v.encode()
	}
	if got != s {
		t.Errorf("decoded %q (whole: %v), which encodes back as %q", s, withHash, got)
	}
}
