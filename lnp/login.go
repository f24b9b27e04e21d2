package lnp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// The channel-bound login, HELLO version 2. It is SCRAM-SHA-256-PLUS (RFC
// 5802, RFC 7677) in LNP/1's binary frames, with argon2id in place of
// PBKDF2 and the TLS exporter (RFC 9266) as the channel binding:
//
//	client  HELLO     magic "LNP2", user, method, nonce, max block
//	server  CHALLENGE server nonce, salt, argon2id parameters
//	client  PROOF     ClientKey XOR HMAC(StoredKey, AuthMessage)
//	server  VERIFIED  HMAC(ServerKey, AuthMessage), and whether to renew
//	client  ENROLL    (only if asked) a fresh credential
//	server  WELCOME
//
// A failure at any step is a WELCOME with its status, and the end of the
// connection. docs/PROTOCOL.md describes every byte.

// Magic2 opens a HELLO of version 2: the channel-bound login.
const Magic2 = "LNP2"

// Method is how a HELLO of version 2 logs in.
type Method uint8

const (
	// MethodPassword proves the password with a channel-bound
	// challenge–response: nothing sent is of use on another connection.
	MethodPassword Method = 1
	// MethodSignature sends the course signature, once, to enroll an
	// account that has no LNP/1 credential yet: the server then asks for
	// one (VERIFIED with Renew) and the signature stops opening LNP/1.
	MethodSignature Method = 2
	// MethodRegister makes a new account for both protocols: the nonce
	// is the course signature the account will have on the course
	// protocol, and the server asks for an LNP/1 credential (VERIFIED
	// with Renew).
	MethodRegister Method = 3
	// MethodDevice proves a device credential (DeviceAdd) as
	// MethodPassword proves the password: the HELLO carries the device's
	// ID after the max block, the CHALLENGE has the ID as its salt and a
	// cost of zeros, and the salted key is the device's secret itself.
	MethodDevice Method = 4
	// MethodRegisterLNP makes a new account that logs in over LNP/1 only,
	// as MethodRegister does but with no course signature: the nonce is
	// sent as zeros and ignored.
	MethodRegisterLNP Method = 5
)

// Salt lengths a credential may have, in bytes.
const (
	MinSaltSize = 16
	MaxSaltSize = 64
)

// KDF is the argon2id cost of a credential: memory in KiB, passes, lanes.
type KDF struct {
	Memory  uint32
	Time    uint32
	Threads uint8
}

func (k KDF) String() string { return fmt.Sprintf("m=%d,t=%d,p=%d", k.Memory, k.Time, k.Threads) }

// Hello2 opens a session with the channel-bound login.
type Hello2 struct {
	User   string
	Method Method
	// Nonce is the client's fresh random nonce (MethodPassword), the
	// course signature (MethodSignature, MethodRegister), or zeros.
	Nonce    [32]byte
	MaxBlock uint32
	// Device is the device's ID, with MethodDevice only.
	Device [16]byte
	// Features are those the client offers (see Hello).
	Features Features
}

// Challenge answers a Hello2 of MethodPassword: the server's nonce, and
// the salt and cost with which the client derives its key.
type Challenge struct {
	Nonce [32]byte
	Salt  []byte
	KDF   KDF
}

// Proof is the client's proof of its key.
type Proof struct{ Proof [32]byte }

// Verified says the proof (or the signature) was right. Signature is the
// server's: HMAC(ServerKey, AuthMessage), which only a server holding the
// account's credential can make (all zeros after MethodSignature, where
// the server has no credential yet). With Renew the server asks for a
// fresh credential at KDF: the client answers ENROLL.
type Verified struct {
	Signature [32]byte
	Renew     bool
	KDF       KDF
}

// Enroll gives the server a credential: a salt, a cost, and the two keys
// derived from the password with them. The server never sees the password
// nor the key it is derived into.
type Enroll struct {
	Salt      []byte
	KDF       KDF
	StoredKey [32]byte
	ServerKey [32]byte
}

func (Hello2) Type() Type    { return TypeHello }
func (Challenge) Type() Type { return TypeChallenge }
func (Proof) Type() Type     { return TypeProof }
func (Verified) Type() Type  { return TypeVerified }
func (Enroll) Type() Type    { return TypeEnroll }

func (m Hello2) AppendBody(b []byte) []byte {
	b = appendStr(append(b, Magic2...), m.User)
	b = append(append(b, byte(m.Method)), m.Nonce[:]...)
	b = binary.BigEndian.AppendUint32(b, m.MaxBlock)
	if m.Method == MethodDevice {
		b = append(b, m.Device[:]...)
	}
	return appendFeatures(b, m.Features)
}

func appendKDF(b []byte, k KDF) []byte {
	b = binary.BigEndian.AppendUint32(b, k.Memory)
	b = binary.BigEndian.AppendUint32(b, k.Time)
	return append(b, k.Threads)
}

func appendSalt(b, salt []byte) []byte { return append(append(b, byte(len(salt))), salt...) }

func (m Challenge) AppendBody(b []byte) []byte {
	return appendKDF(appendSalt(append(b, m.Nonce[:]...), m.Salt), m.KDF)
}

func (m Proof) AppendBody(b []byte) []byte { return append(b, m.Proof[:]...) }

func (m Verified) AppendBody(b []byte) []byte {
	return appendKDF(appendBool(append(b, m.Signature[:]...), m.Renew), m.KDF)
}

func (m Enroll) AppendBody(b []byte) []byte {
	b = appendKDF(appendSalt(b, m.Salt), m.KDF)
	return append(append(b, m.StoredKey[:]...), m.ServerKey[:]...)
}

func (d *decoder) kdf() KDF { return KDF{Memory: d.u32(), Time: d.u32(), Threads: d.u8()} }

func (d *decoder) salt() []byte {
	n := int(d.u8())
	if d.err == nil && (n < MinSaltSize || n > MaxSaltSize) {
		d.fail(fmt.Sprintf("a salt of %d bytes: want %d to %d", n, MinSaltSize, MaxSaltSize))
		return nil
	}
	return append([]byte(nil), d.bytes(n)...)
}

// IsHello2 reports whether a HELLO's body opens a login of version 2.
func IsHello2(body []byte) bool {
	return len(body) >= len(Magic2) && string(body[:len(Magic2)]) == Magic2
}

// ParseHello2 parses a HELLO body of version 2.
func ParseHello2(body []byte) (Hello2, error) {
	d := decoder{b: body}
	if magic := d.bytes(len(Magic2)); d.err == nil && string(magic) != Magic2 {
		return Hello2{}, &ProtocolError{Msg: "the HELLO does not start with " + Magic2}
	}
	m := Hello2{User: d.str(64), Method: Method(d.u8())}
	if d.err == nil && (m.Method < MethodPassword || m.Method > MethodRegisterLNP) {
		d.fail(fmt.Sprintf("a HELLO of unknown method %d", m.Method))
	}
	m.Nonce, m.MaxBlock = d.hash(), d.u32()
	if m.Method == MethodDevice {
		m.Device = d.id()
	}
	m.Features = d.features()
	return m, d.done(TypeHello)
}

// ParseChallenge parses a CHALLENGE body.
func ParseChallenge(body []byte) (Challenge, error) {
	d := decoder{b: body}
	m := Challenge{Nonce: d.hash(), Salt: d.salt(), KDF: d.kdf()}
	return m, d.done(TypeChallenge)
}

// ParseProof parses a PROOF body.
func ParseProof(body []byte) (Proof, error) {
	d := decoder{b: body}
	m := Proof{Proof: d.hash()}
	return m, d.done(TypeProof)
}

// ParseVerified parses a VERIFIED body.
func ParseVerified(body []byte) (Verified, error) {
	d := decoder{b: body}
	m := Verified{Signature: d.hash(), Renew: d.bool(), KDF: d.kdf()}
	return m, d.done(TypeVerified)
}

// ParseEnroll parses an ENROLL body.
func ParseEnroll(body []byte) (Enroll, error) {
	d := decoder{b: body}
	m := Enroll{Salt: d.salt(), KDF: d.kdf(), StoredKey: d.hash(), ServerKey: d.hash()}
	return m, d.done(TypeEnroll)
}

// ChannelBindingLabel is the TLS exporter label of RFC 9266: 32 bytes of
// ExportKeyingMaterial with this label and no context bind a login to its
// TLS connection.
const ChannelBindingLabel = "EXPORTER-Channel-Binding"

// authLabel starts every AuthMessage, so that no other use of these keys
// can produce the same bytes.
const authLabel = "LNP2 SCRAM-SHA-256-PLUS tls-exporter"

// AuthMessage returns what both proofs sign: the label, the HELLO body,
// the CHALLENGE body and the channel binding, each but the label after
// its length as a u16. A proof made on one connection therefore names
// that connection's nonces and TLS keys, and is of no use on any other.
func AuthMessage(hello, challenge, binding []byte) []byte {
	b := append([]byte(nil), authLabel...)
	for _, p := range [][]byte{hello, challenge, binding} {
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(p))), p...)
	}
	return b
}

// Keys are what a credential derives from its salted key (SCRAM's
// SaltedPassword): the client keeps ClientKey, the server StoredKey and
// ServerKey.
type Keys struct {
	ClientKey, StoredKey, ServerKey [32]byte
}

// SaltedKey derives the salted key from the password: argon2id over its
// UTF-8 bytes with salt and k, 32 bytes. This is the slow step, and it
// runs on the client.
func SaltedKey(password string, salt []byte, k KDF) [32]byte {
	return [32]byte(argon2.IDKey([]byte(password), salt, k.Time, k.Memory, k.Threads, 32))
}

// NewCredential makes the credential of password at k, with a fresh
// random salt: what a client sends in ENROLL.
func NewCredential(password string, k KDF) Enroll {
	m := Enroll{Salt: make([]byte, 16), KDF: k}
	rand.Read(m.Salt)
	keys := DeriveKeys(SaltedKey(password, m.Salt, k))
	m.StoredKey, m.ServerKey = keys.StoredKey, keys.ServerKey
	return m
}

// DeriveKeys returns the keys of a salted key (RFC 5802 §3).
func DeriveKeys(salted [32]byte) Keys {
	var k Keys
	k.ClientKey = hmacSHA256(salted[:], []byte("Client Key"))
	k.StoredKey = sha256.Sum256(k.ClientKey[:])
	k.ServerKey = hmacSHA256(salted[:], []byte("Server Key"))
	return k
}

// ClientProof returns ClientKey XOR HMAC(StoredKey, authMessage).
func (k *Keys) ClientProof(authMessage []byte) [32]byte {
	sig := hmacSHA256(k.StoredKey[:], authMessage)
	var p [32]byte
	subtle.XORBytes(p[:], k.ClientKey[:], sig[:])
	return p
}

// ServerSignature returns HMAC(serverKey, authMessage).
func ServerSignature(serverKey [32]byte, authMessage []byte) [32]byte {
	return hmacSHA256(serverKey[:], authMessage)
}

// VerifyProof reports whether proof was made by the holder of the client
// key whose hash is storedKey, for authMessage. It takes the same time
// whatever the inputs.
func VerifyProof(storedKey [32]byte, authMessage []byte, proof [32]byte) bool {
	sig := hmacSHA256(storedKey[:], authMessage)
	var clientKey [32]byte
	subtle.XORBytes(clientKey[:], proof[:], sig[:])
	got := sha256.Sum256(clientKey[:])
	return subtle.ConstantTimeCompare(got[:], storedKey[:]) == 1
}

func hmacSHA256(key, msg []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return [32]byte(m.Sum(nil))
}
