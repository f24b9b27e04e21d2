package lnp

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Device credentials: a client that logged in with the password gives the
// server the two keys of a random secret it keeps (DEVICE_ADD), and logs in
// later with that secret through the same channel-bound proof (HELLO of
// MethodDevice), with no password. docs/PROTOCOL.md describes every byte.

// MaxDeviceLabel is the longest label of a device, in bytes.
const MaxDeviceLabel = 64

// DeviceSecretSize is the size of a device's secret: its salted key.
const DeviceSecretSize = 32

// DeviceAdd asks the server to keep a device credential for the account:
// the keys DeriveKeys makes of the device's secret. Only a session logged
// in with the password may add one.
type DeviceAdd struct {
	Label                string
	StoredKey, ServerKey [32]byte
}

// DeviceAddReply is the body of an OK reply to DEVICE_ADD: the device's
// ID, and when it stops logging in.
type DeviceAddReply struct {
	ID      [16]byte
	Expires time.Time
}

// Devices asks for the account's devices.
type Devices struct{}

// DeviceInfo is one device of a DEVICES reply. Current is the one the
// session logged in with.
type DeviceInfo struct {
	ID                         [16]byte
	Label                      string
	Created, Expires, LastUsed time.Time
	Current                    bool
}

// DevicesReply is the body of an OK reply to DEVICES.
type DevicesReply struct{ Devices []DeviceInfo }

// DeviceRevoke removes the device ID of the account; with Others, every
// device but ID (every one, for a zero ID).
type DeviceRevoke struct {
	ID     [16]byte
	Others bool
}

// DeviceRevokeReply is the body of an OK reply to DEVICE_REVOKE: how many
// devices were removed.
type DeviceRevokeReply struct{ Count uint32 }

func (DeviceAdd) Type() Type    { return TypeDeviceAdd }
func (Devices) Type() Type      { return TypeDevices }
func (DeviceRevoke) Type() Type { return TypeDeviceRevoke }

func (m DeviceAdd) AppendBody(b []byte) []byte {
	return append(append(appendStr(b, m.Label), m.StoredKey[:]...), m.ServerKey[:]...)
}

func (Devices) AppendBody(b []byte) []byte { return b }

func (m DeviceRevoke) AppendBody(b []byte) []byte { return appendBool(append(b, m.ID[:]...), m.Others) }

func (m *DeviceAddReply) AppendBody(b []byte) []byte {
	return appendTime(append(b, m.ID[:]...), m.Expires)
}

func (m *DevicesReply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Devices)))
	for _, d := range m.Devices {
		b = appendStr(append(b, d.ID[:]...), d.Label)
		b = appendTime(appendTime(appendTime(b, d.Created), d.Expires), d.LastUsed)
		b = appendBool(b, d.Current)
	}
	return b
}

func (m *DeviceRevokeReply) AppendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, m.Count)
}

func (d *decoder) id() (id [16]byte) {
	if p := d.bytes(16); p != nil {
		id = [16]byte(p)
	}
	return id
}

func (d *decoder) deviceRequest(t Type) Message {
	switch t {
	case TypeDeviceAdd:
		return DeviceAdd{Label: d.str(MaxDeviceLabel), StoredKey: d.hash(), ServerKey: d.hash()}
	case TypeDevices:
		return Devices{}
	default:
		return DeviceRevoke{ID: d.id(), Others: d.bool()}
	}
}

// ParseDeviceAddReply parses the body of an OK reply to DEVICE_ADD.
func ParseDeviceAddReply(body []byte) (DeviceAddReply, error) {
	d := decoder{b: body}
	m := DeviceAddReply{ID: d.id(), Expires: d.time()}
	return m, d.done(TypeReply)
}

// ParseDevicesReply parses the body of an OK reply to DEVICES.
func ParseDevicesReply(body []byte) (DevicesReply, error) {
	d := decoder{b: body}
	var m DevicesReply
	n := int(d.u16())
	for i := 0; i < n && d.err == nil; i++ {
		m.Devices = append(m.Devices, DeviceInfo{ID: d.id(), Label: d.str(MaxDeviceLabel),
			Created: d.time(), Expires: d.time(), LastUsed: d.time(), Current: d.bool()})
	}
	if d.err == nil && len(m.Devices) != n {
		d.fail(fmt.Sprintf("%d devices announced, %d read", n, len(m.Devices)))
	}
	return m, d.done(TypeReply)
}

// ParseDeviceRevokeReply parses the body of an OK reply to DEVICE_REVOKE.
func ParseDeviceRevokeReply(body []byte) (DeviceRevokeReply, error) {
	d := decoder{b: body}
	m := DeviceRevokeReply{Count: d.u32()}
	return m, d.done(TypeReply)
}
