package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/larderfs/larder"
)

// The stored form of an LNP/1 credential (larder.User.LNPCredential):
//
//	$lnp-scram$v=1$m=DEC,t=DEC,p=DEC[,keyid=B64]$B64(salt)$B64(sealed)
//
// salt and the argon2id parameters are the client's, with which it derives
// its salted key from the password; the server never sees that key. With
// a keyid, sealed is a 12-byte nonce and AES-256-GCM of StoredKey ‖
// ServerKey under HMAC-SHA256(pepper, "larder LNP/1 credential key"),
// authenticating the account's name, the parameters and the salt: without
// the pepper a copy of the database gives neither a key to log in with nor
// anything to test a guessed password against, and a sealed credential
// cannot be moved to another account. Without a keyid (a Hasher with no
// pepper file: tests and tools) sealed is the two keys in the clear.

const (
	lnpScheme  = "lnp-scram"
	lnpVersion = "v=1"
	// lnpSealLabel derives the sealing key from a pepper.
	lnpSealLabel = "larder LNP/1 credential key"
	lnpKeysLen   = 64
	gcmNonceLen  = 12
	gcmTagLen    = 16
	// LNPSaltLen is the salt a client makes for a credential, in bytes.
	LNPSaltLen = 16
	// Salt lengths a credential may have (lnp.MinSaltSize, MaxSaltSize).
	minLNPSalt, maxLNPSalt = 16, 64
)

// LNPKeys are the two keys the server keeps of an LNP/1 credential.
type LNPKeys struct {
	StoredKey, ServerKey [32]byte
}

// lnpCred is a decoded LNP/1 credential.
type lnpCred struct {
	params Params
	keyID  []byte
	salt   []byte
	sealed []byte
}

func (c *lnpCred) stub() string {
	p := phc{params: c.params, keyID: c.keyID}
	var b strings.Builder
	fmt.Fprintf(&b, "$%s$%s$%s", lnpScheme, lnpVersion, c.params)
	if p.keyID != nil {
		b.WriteString(",keyid=" + b64.EncodeToString(p.keyID))
	}
	b.WriteString("$" + b64.EncodeToString(c.salt))
	return b.String()
}

func (c *lnpCred) encode() string { return c.stub() + "$" + b64.EncodeToString(c.sealed) }

// additionalData is what the seal authenticates besides the keys.
func (c *lnpCred) additionalData(name string) []byte {
	return []byte(c.stub() + "\x00" + name)
}

func decodeLNPCred(s string) (*lnpCred, error) {
	if len(s) > 512 {
		return nil, fmt.Errorf("auth: LNP/1 credential is %d bytes long", len(s))
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != lnpScheme {
		return nil, errors.New("auth: not an LNP/1 credential")
	}
	if f[2] != lnpVersion {
		return nil, fmt.Errorf("auth: LNP/1 credential of version %q, want %q", truncate(f[2]), lnpVersion)
	}
	var p phc
	if err := p.decodeParams(f[3]); err != nil {
		return nil, err
	}
	c := &lnpCred{params: p.params, keyID: p.keyID}
	var err error
	if c.salt, err = decodeB64("LNP/1 salt", f[4], minLNPSalt, maxLNPSalt); err != nil {
		return nil, err
	}
	want := lnpKeysLen
	if c.keyID != nil {
		want = gcmNonceLen + lnpKeysLen + gcmTagLen
	}
	if c.sealed, err = decodeB64("LNP/1 keys", f[5], want, want); err != nil {
		return nil, err
	}
	return c, nil
}

// sealer returns the AEAD of the pepper keyID names.
func (h *Hasher) sealer(keyID []byte) (cipher.AEAD, error) {
	p, err := h.pepper(keyID)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(p.mac([]byte(lnpSealLabel)))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealLNP returns the stored form of the LNP/1 credential of account name
// made by a client with salt and p, sealed with the current pepper.
func (h *Hasher) SealLNP(name string, salt []byte, p Params, k LNPKeys) (string, error) {
	if err := p.Validate(); err != nil {
		return "", larder.Errorf(larder.EINVALID, "LNP/1 credential: %v", err)
	}
	if len(salt) < minLNPSalt || len(salt) > maxLNPSalt {
		return "", larder.Errorf(larder.EINVALID, "LNP/1 credential: a salt of %d bytes, want %d to %d", len(salt), minLNPSalt, maxLNPSalt)
	}
	c := &lnpCred{params: p, keyID: h.currentKeyID(), salt: salt}
	keys := append(k.StoredKey[:], k.ServerKey[:]...)
	if c.keyID == nil {
		c.sealed = keys
		return c.encode(), nil
	}
	aead, err := h.sealer(c.keyID)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcmNonceLen)
	rand.Read(nonce)
	c.sealed = aead.Seal(nonce, nonce, keys, c.additionalData(name))
	return c.encode(), nil
}

// OpenLNP returns the salt, the parameters and the keys of account name's
// stored LNP/1 credential. A credential that does not parse, whose pepper
// the server lacks, or whose seal fails (altered, or moved from another
// account) is an error with code EINTERNAL.
func (h *Hasher) OpenLNP(name, stored string) ([]byte, Params, LNPKeys, error) {
	c, err := decodeLNPCred(stored)
	if err != nil {
		return nil, Params{}, LNPKeys{}, &larder.Error{Code: larder.EINTERNAL, Message: "stored LNP/1 credential is unreadable", Err: err}
	}
	keys := c.sealed
	if c.keyID != nil {
		aead, err := h.sealer(c.keyID)
		if err == nil {
			keys, err = aead.Open(nil, c.sealed[:gcmNonceLen], c.sealed[gcmNonceLen:], c.additionalData(name))
		}
		if err != nil {
			return nil, Params{}, LNPKeys{}, &larder.Error{Code: larder.EINTERNAL, Message: "stored LNP/1 credential is unusable", Err: fmt.Errorf("auth: LNP/1 credential of %q: %w", name, err)}
		}
	}
	return c.salt, c.params, LNPKeys{StoredKey: [32]byte(keys[:32]), ServerKey: [32]byte(keys[32:])}, nil
}

// lnpPepper returns the ID of the pepper that seals a stored LNP/1
// credential; "" for none or an unreadable one.
func lnpPepper(stored string) string {
	if c, err := decodeLNPCred(stored); err == nil {
		return string(c.keyID)
	}
	return ""
}

// LNPNeedsReseal reports whether a stored LNP/1 credential is sealed with
// another pepper than the current one, so that a login, having opened it,
// seals it again (ResealLNP) as it rehashes a password hash.
func (h *Hasher) LNPNeedsReseal(stored string) bool {
	return lnpPepper(stored) != string(h.currentKeyID())
}

// LNPWeakerThanPolicy reports whether p is below h's policy in some
// parameter: a login at p then asks the client for a fresh credential at
// the policy, as rehash-on-login does for the course protocol's hashes.
func (h *Hasher) LNPWeakerThanPolicy(p Params) bool {
	policy := h.Params()
	return p.Memory < policy.Memory || p.Time < policy.Time || p.Threads < policy.Threads
}

// DescribeLNP labels a stored LNP/1 credential as Describe does a hash:
// "lnp-scram m=19456,t=2,p=1 pepper=p2", "none" for "".
func (h *Hasher) DescribeLNP(stored string) (string, error) {
	if stored == "" {
		return "none", nil
	}
	c, err := decodeLNPCred(stored)
	if err != nil {
		return "unreadable", err
	}
	s := lnpScheme + " " + c.params.String()
	if c.keyID != nil {
		s += " pepper=" + string(c.keyID)
	}
	return s, nil
}
