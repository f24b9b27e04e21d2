package larder

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewSalt(t *testing.T) {
	seen := make(map[string]bool)
	counts := make(map[rune]int)
	for range 1000 {
		s, err := NewSalt()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != SaltLen {
			t.Fatalf("got %d characters, want %d", len(s), SaltLen)
		}
		if seen[s] {
			t.Fatalf("salt %q drawn twice", s)
		}
		seen[s] = true
		for _, r := range s {
			if !strings.ContainsRune(saltAlphabet, r) {
				t.Fatalf("salt %q has %q, not in the saltAlphabet", s, r)
			}
			counts[r]++
		}
	}
	// 64000 draws over 62 characters: about 1032 each, with a standard
	// deviation of about 32. A modulo bias would give the first 8 about
	// 1290.
	for _, r := range saltAlphabet {
		if n := counts[r]; n < 850 || n > 1220 {
			t.Errorf("%q drawn %d times in 64000, want about 1032", r, n)
		}
	}
}

// TestNewSaltUnbiased feeds every byte value equally often and checks that
// every character comes out exactly equally often: the bytes that a plain
// modulo would fold onto the first characters must be rejected. Eight
// cycles of 256 bytes hold 8×248 = 1984 accepted bytes, exactly 31 salts.
func TestNewSaltUnbiased(t *testing.T) {
	const rounds = 10
	var src bytes.Buffer
	for range 8 * rounds {
		for b := range 256 {
			src.WriteByte(byte(b))
		}
	}
	counts := make(map[byte]int)
	for range 31 * rounds {
		s, err := newSaltFrom(&src)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(s) {
			counts[s[i]]++
		}
	}
	for i := range len(saltAlphabet) {
		if n := counts[saltAlphabet[i]]; n != 32*rounds {
			t.Errorf("%q came %d times, want %d", saltAlphabet[i], n, 32*rounds)
		}
	}
	if _, err := newSaltFrom(bytes.NewReader(bytes.Repeat([]byte{255}, 4*SaltLen))); err == nil {
		t.Error("a source of only rejected bytes produced a salt")
	}
}
