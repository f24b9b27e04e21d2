package lnp

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// TestDeviceVector checks a device login against values computed with
// Python's standard library (hmac, hashlib) from the bytes docs/PROTOCOL.md
// gives: secret 32 bytes of 0x44, device ID 16 bytes of 0x55, the nonces and
// the channel binding of the password's test vector.
func TestDeviceVector(t *testing.T) {
	hello := Hello2{User: "alice", Method: MethodDevice, MaxBlock: 1 << 20}
	copy(hello.Nonce[:], bytes.Repeat([]byte{0x11}, 32))
	copy(hello.Device[:], bytes.Repeat([]byte{0x55}, 16))
	ch := Challenge{Salt: bytes.Repeat([]byte{0x55}, 16)}
	copy(ch.Nonce[:], bytes.Repeat([]byte{0x22}, 32))
	hb, cb := hello.AppendBody(nil), ch.AppendBody(nil)
	want := map[string]string{
		"HELLO body":     "4c4e50320005616c6963650411111111111111111111111111111111111111111111111111111111111111110010000055555555555555555555555555555555",
		"CHALLENGE body": "22222222222222222222222222222222222222222222222222222222222222221055555555555555555555555555555555000000000000000000",
	}
	var secret [32]byte
	copy(secret[:], bytes.Repeat([]byte{0x44}, 32))
	k := DeriveKeys(secret)
	am := AuthMessage(hb, cb, bytes.Repeat([]byte{0x33}, 32))
	proof, sig := k.ClientProof(am), ServerSignature(k.ServerKey, am)
	got := map[string]string{
		"HELLO body": hex.EncodeToString(hb), "CHALLENGE body": hex.EncodeToString(cb),
		"StoredKey": hex.EncodeToString(k.StoredKey[:]), "ServerKey": hex.EncodeToString(k.ServerKey[:]),
		"ClientProof": hex.EncodeToString(proof[:]), "ServerSignature": hex.EncodeToString(sig[:]),
	}
	want["StoredKey"] = "7c198b68c872f8b68f3bef96584db153637ce7450b8d019a887b61cf26798873"
	want["ServerKey"] = "0a78950fd85d1a89dba4d41a65b55faeb51cb09880668c066f7dc2ab91a5e326"
	want["ClientProof"] = "4b7fe074b9761b8c10bb7849df24700e3757b914ecc832208a939cace218cdcc"
	want["ServerSignature"] = "3d8869e3aede3f618475f9d113f43b755a7f71ccbeb66829cae60edb7b0436e6"
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %s, want %s", name, got[name], w)
		}
	}
	if !VerifyProof(k.StoredKey, am, proof) {
		t.Error("VerifyProof refused the vector's proof")
	}
	back, err := ParseHello2(hb)
	if err != nil || back != hello {
		t.Errorf("ParseHello2: got %+v, %v; want %+v", back, err, hello)
	}
	// A HELLO of method 4 without its device ID is malformed.
	if _, err := ParseHello2(hb[:len(hb)-1]); err == nil {
		t.Error("ParseHello2 took a device HELLO one byte short")
	}
}

// TestDeviceMessages round-trips the device requests and replies.
func TestDeviceMessages(t *testing.T) {
	add := DeviceAdd{Label: "laptop ✓", StoredKey: [32]byte{1}, ServerKey: [32]byte{2}}
	rev := DeviceRevoke{ID: [16]byte{3}, Others: true}
	for _, m := range []Message{add, Devices{}, rev} {
		got, err := ParseRequest(m.Type(), m.AppendBody(nil))
		if err != nil || got != m {
			t.Errorf("%v: got %+v, %v; want %+v", m.Type(), got, err, m)
		}
	}
	when := time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC)
	r := DevicesReply{Devices: []DeviceInfo{{ID: [16]byte{9}, Label: "a", Created: when, Expires: when.Add(time.Hour), Current: true}, {Label: "b"}}}
	back, err := ParseDevicesReply(r.AppendBody(nil))
	if err != nil || len(back.Devices) != 2 || back.Devices[0].ID != r.Devices[0].ID || !back.Devices[0].Expires.Equal(r.Devices[0].Expires) ||
		!back.Devices[0].Current || back.Devices[1].Label != "b" || !back.Devices[1].LastUsed.IsZero() {
		t.Errorf("DevicesReply: got %+v, %v; want %+v", back, err, r)
	}
	long := DeviceAdd{Label: string(bytes.Repeat([]byte{'x'}, MaxDeviceLabel+1))}
	if _, err := ParseRequest(TypeDeviceAdd, long.AppendBody(nil)); err == nil {
		t.Error("ParseRequest took a label longer than MaxDeviceLabel")
	}
}
