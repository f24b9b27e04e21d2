package lnp

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// loginMessages are one of each message of the channel-bound login.
var loginMessages = []Message{
	Hello2{User: "alice", Method: MethodPassword, Nonce: sha256.Sum256([]byte("n")), MaxBlock: 1 << 20},
	Hello2{User: "bob", Method: MethodSignature, Nonce: sha256.Sum256([]byte("sig")), MaxBlock: 4096},
	Hello2{User: "carol", Method: MethodRegister, Nonce: sha256.Sum256([]byte("sig")), MaxBlock: 4096},
	Challenge{Nonce: sha256.Sum256([]byte("s")), Salt: bytes.Repeat([]byte{7}, 16), KDF: KDF{19456, 2, 1}},
	Proof{Proof: sha256.Sum256([]byte("p"))},
	Verified{Signature: sha256.Sum256([]byte("v")), Renew: true, KDF: KDF{65536, 3, 4}},
	Enroll{Salt: bytes.Repeat([]byte{9}, 64), KDF: KDF{19456, 2, 1}, StoredKey: sha256.Sum256([]byte("a")), ServerKey: sha256.Sum256([]byte("b"))},
}

func parseLogin(t Type, body []byte) (Message, error) {
	switch t {
	case TypeHello:
		return ParseHello2(body)
	case TypeChallenge:
		return ParseChallenge(body)
	case TypeProof:
		return ParseProof(body)
	case TypeVerified:
		return ParseVerified(body)
	case TypeEnroll:
		return ParseEnroll(body)
	}
	return nil, malformed("%v is not a login message", t)
}

func TestLoginMessagesRoundTrip(t *testing.T) {
	for _, m := range loginMessages {
		body := m.AppendBody(nil)
		got, err := parseLogin(m.Type(), body)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("%v: got %+v, %v; want %+v", m.Type(), got, err, m)
			continue
		}
		for n := range len(body) {
			if _, err := parseLogin(m.Type(), body[:n]); !isProtocolError(err) {
				t.Errorf("%v cut to %d of %d bytes: %v", m.Type(), n, len(body), err)
			}
		}
		if _, err := parseLogin(m.Type(), append(body, 0)); !isProtocolError(err) {
			t.Errorf("%v with a byte left over: %v", m.Type(), err)
		}
	}
	// The largest of each, as docs/PROTOCOL.md gives them, fit under the
	// limit before the login.
	long := strings.Repeat("a", 64)
	if n := len(Hello2{User: long}.AppendBody(nil)); n != 107 || n > MaxHelloBody {
		t.Errorf("the longest HELLO v2 is %d bytes; want 107", n)
	}
	if n := len(Enroll{Salt: make([]byte, MaxSaltSize)}.AppendBody(nil)); n != 138 {
		t.Errorf("the longest ENROLL is %d bytes; want 138", n)
	}
	if !IsHello2(loginMessages[0].AppendBody(nil)) || IsHello2(Hello{User: "a"}.AppendBody(nil)) {
		t.Error("IsHello2 does not tell a HELLO of version 2 from one of version 1")
	}
}

func TestLoginMessagesRefused(t *testing.T) {
	hello := Hello2{User: "a", Method: MethodPassword}.AppendBody(nil)
	badMethod := bytes.Clone(hello)
	badMethod[4+2+1] = 4
	ch := Challenge{Salt: make([]byte, 16)}.AppendBody(nil)
	shortSalt := bytes.Clone(ch)
	shortSalt[32] = 15
	longSalt := append(bytes.Clone(ch[:32]), 65)
	longSalt = append(longSalt, make([]byte, 65+9)...)
	ver := Verified{}.AppendBody(nil)
	ver[32] = 2
	for _, c := range []struct {
		name string
		t    Type
		body []byte
	}{
		{"a HELLO of version 1", TypeHello, Hello{User: "a"}.AppendBody(nil)},
		{"a method of 4", TypeHello, badMethod},
		{"a salt of 15 bytes", TypeChallenge, shortSalt},
		{"a salt of 65 bytes", TypeChallenge, longSalt},
		{"a renew flag of 2", TypeVerified, ver},
	} {
		if _, err := parseLogin(c.t, c.body); !isProtocolError(err) {
			t.Errorf("%s: got %v, want a ProtocolError", c.name, err)
		}
	}
}

// TestSCRAMVectors checks the key schedule and proofs against RFC 7677's
// SCRAM-SHA-256 example (section 3): the same HMACs over the RFC's
// SaltedPassword (PBKDF2, 4096 iterations) and AuthMessage give its
// ClientProof and ServerSignature.
func TestSCRAMVectors(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	sp, err := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	am := []byte("n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=" + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=" + nonce)
	k := DeriveKeys([32]byte(sp))
	proof := k.ClientProof(am)
	if got, want := base64.StdEncoding.EncodeToString(proof[:]), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="; got != want {
		t.Errorf("ClientProof: got %s, want %s", got, want)
	}
	sig := ServerSignature(k.ServerKey, am)
	if got, want := base64.StdEncoding.EncodeToString(sig[:]), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; got != want {
		t.Errorf("ServerSignature: got %s, want %s", got, want)
	}
	if !VerifyProof(k.StoredKey, am, proof) {
		t.Error("VerifyProof refuses the RFC's proof")
	}
	for i := range 32 {
		bad := proof
		bad[i] ^= 1
		if VerifyProof(k.StoredKey, am, bad) {
			t.Fatalf("VerifyProof takes a proof with bit 0 of byte %d flipped", i)
		}
	}
	if VerifyProof(k.StoredKey, append(am, 'x'), proof) {
		t.Error("VerifyProof takes the proof for another AuthMessage")
	}
}

// lnpVector is the example of docs/PROTOCOL.md. Its salted key, keys,
// proof and server signature were computed with independent tools:
// testdata/login-vector.sh (the reference C argon2 and Python's hmac).
var lnpVector = struct {
	password        string
	hello           Hello2
	challenge       Challenge
	binding         string // hex
	salted          string
	storedKey       string
	serverKey       string
	proof           string
	serverSignature string
}{
	password:        "correct horse",
	hello:           Hello2{User: "alice", Method: MethodPassword, Nonce: [32]byte(bytes.Repeat([]byte{0x11}, 32)), MaxBlock: 1 << 20},
	challenge:       Challenge{Nonce: [32]byte(bytes.Repeat([]byte{0x22}, 32)), Salt: []byte("0123456789abcdef"), KDF: KDF{Memory: 64, Time: 1, Threads: 1}},
	binding:         "3333333333333333333333333333333333333333333333333333333333333333",
	salted:          "32364fd7ed54f4951b0d6bc3bed2f212c66235738a114c5f8ba3b6a1ee3abb10",
	storedKey:       "a1bc04231954389605864050b2f740db2ec4ece5055325d95157e64cd78df74f",
	serverKey:       "120973cbecd6f10a5f36207afe699b56b5ddbad8671340f83aad4cb9065b9975",
	proof:           "47d04beee6e9a365b67cf8810c053ffe362347c23b3d785abf1deb5c2e88dcaa",
	serverSignature: "33a0fb4b040eb6b1a91eb2dedce0a928e379cb0c0dc910de220395c3286c8bb4",
}

const lnpVectorAuthMessage = "4c4e503220534352414d2d5348412d3235362d504c555320746c732d6578706f7274657200304c4e50320005616c69636501111111111111111111111111111111111111111111111111111111111111111100100000003a2222222222222222222222222222222222222222222222222222222222222222103031323334353637383961626364656600000040000000010100203333333333333333333333333333333333333333333333333333333333333333"

func TestLoginVector(t *testing.T) {
	v := lnpVector
	binding, _ := hex.DecodeString(v.binding)
	am := AuthMessage(v.hello.AppendBody(nil), v.challenge.AppendBody(nil), binding)
	salted := SaltedKey(v.password, v.challenge.Salt, v.challenge.KDF)
	k := DeriveKeys(salted)
	proof := k.ClientProof(am)
	sig := ServerSignature(k.ServerKey, am)
	if got, want := hex.EncodeToString(am), lnpVectorAuthMessage; got != want {
		t.Errorf("AuthMessage: got %s, want %s", got, want)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"salted key", salted[:], v.salted},
		{"StoredKey", k.StoredKey[:], v.storedKey},
		{"ServerKey", k.ServerKey[:], v.serverKey},
		{"ClientProof", proof[:], v.proof},
		{"ServerSignature", sig[:], v.serverSignature},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	if !VerifyProof(k.StoredKey, am, proof) {
		t.Error("VerifyProof refuses the vector's proof")
	}
}

// FuzzParseLogin: any body either fails with a ProtocolError or parses to
// a message that encodes back to the same bytes.
func FuzzParseLogin(f *testing.F) {
	for _, m := range loginMessages {
		f.Add(byte(m.Type()), m.AppendBody(nil))
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := parseLogin(Type(typ), body)
		if err != nil {
			if !isProtocolError(err) {
				t.Fatalf("not a ProtocolError: %v", err)
			}
			return
		}
		if again := m.AppendBody(nil); !bytes.Equal(again, body) {
			t.Fatalf("%v re-encodes to %x, read from %x", m.Type(), again, body)
		}
	})
}
