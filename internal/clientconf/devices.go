package clientconf

import (
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/larderfs/larder/internal/flock"
)

const (
	devicesName     = "lnp_devices"
	devicesLockName = "lnp_devices.lock"
)

// Device is this machine's device credential for one account on one
// server: what logs in to LNP/1 without the password.
type Device struct {
	ID      [16]byte
	Secret  [32]byte
	Expires time.Time
}

// Devices is the store of this machine's device credentials (lnp_devices,
// mode 0600): one "SERVER\tUSER\tID\tSECRET\tEXPIRES" line per account,
// ID and SECRET in hex, EXPIRES in RFC 3339. The secrets log in as their
// accounts, so the file is refused if other users may read it.
type Devices struct {
	dir string
}

// Devices returns the store of the device credentials in the folder.
func (d *Dir) Devices() *Devices { return &Devices{dir: d.path} }

// Path returns the file's path.
func (s *Devices) Path() string { return filepath.Join(s.dir, devicesName) }

// Lookup returns the device credential of user on server, if there is one.
func (s *Devices) Lookup(server, user string) (Device, bool, error) {
	lines, err := s.read()
	if err != nil {
		return Device{}, false, err
	}
	rest, ok, conflict := pick(forUser(lines, user), server)
	switch {
	case conflict != nil:
		return Device{}, false, fmt.Errorf("devices: %s holds several credentials of %s, under %s, which name one server; remove them with 'larder logout'",
			s.Path(), user, strings.Join(conflict, " and "))
	case !ok:
		return Device{}, false, nil
	}
	d, err := parseDevice(rest)
	if err != nil {
		return Device{}, false, fmt.Errorf("devices: %s: the line of %s on %s: %w; remove it with 'larder logout'", s.Path(), user, server, err)
	}
	return d, true, nil
}

// forUser returns the rest of the lines of user, by their server.
func forUser(lines []string, user string) map[string]string {
	m := make(map[string]string)
	for _, l := range lines {
		srv, after, ok1 := strings.Cut(l, "\t")
		u, rest, ok2 := strings.Cut(after, "\t")
		if ok1 && ok2 && u == user {
			m[srv] = rest
		}
	}
	return m
}

func parseDevice(s string) (Device, error) {
	f := strings.Split(s, "\t")
	if len(f) != 3 {
		return Device{}, fmt.Errorf("%d fields, want 5", len(f)+2)
	}
	var d Device
	id, err1 := hex.DecodeString(f[0])
	secret, err2 := hex.DecodeString(f[1])
	exp, err3 := time.Parse(time.RFC3339, f[2])
	if err1 != nil || err2 != nil || err3 != nil || len(id) != 16 || len(secret) != 32 {
		return Device{}, fmt.Errorf("not an ID, a secret and an expiry")
	}
	d.ID, d.Secret, d.Expires = [16]byte(id), [32]byte(secret), exp
	return d, nil
}

// Record stores d as the device credential of user on server, replacing
// any other.
func (s *Devices) Record(server, user string, d Device) error {
	line := fmt.Sprintf("%x\t%x\t%s", d.ID, d.Secret, d.Expires.UTC().Format(time.RFC3339))
	return s.update(server, user, line)
}

// Remove forgets the device credential of user on server.
func (s *Devices) Remove(server, user string) error { return s.update(server, user, "") }

func (s *Devices) update(server, user, rest string) error {
	if strings.ContainsAny(server+user, "\t\n") {
		return fmt.Errorf("devices: %q on %q cannot be recorded: tab or newline", user, server)
	}
	path := filepath.Join(s.dir, devicesLockName)
	unlock, err := flock.LockPath(path)
	if err != nil {
		return fmt.Errorf("devices: locking %s: %w", path, err)
	}
	defer unlock()
	lines, err := s.read()
	if err != nil {
		return err
	}
	key := fileKey(server) + "\t" + user + "\t"
	var out []string
	for _, l := range lines {
		// Every line of user on this server, under any spelling.
		srv, after, _ := strings.Cut(l, "\t")
		if u, _, _ := strings.Cut(after, "\t"); u != user || ServerKey(srv) != ServerKey(server) {
			out = append(out, l)
		}
	}
	if rest != "" {
		out = append(out, key+rest)
	}
	out = append(out, "")
	if err := replace(s.Path(), []byte(strings.Join(out, "\n"))); err != nil {
		return fmt.Errorf("devices: writing %s: %w", s.Path(), err)
	}
	return nil
}

// read returns the lines of the file that are not empty.
func (s *Devices) read() ([]string, error) {
	h, err := openPrivate(s.Path(), "devices: ", 0o077, func(perm fs.FileMode) error {
		return fmt.Errorf("devices: %s holds secrets that log in as your accounts, and other users may read it (mode %04o): chmod 600 %s, and revoke its devices ('larder devices', 'larder logout')", s.Path(), perm, s.Path())
	})
	if err != nil || h == nil {
		return nil, err
	}
	defer h.Close()
	b, err := io.ReadAll(h)
	if err != nil {
		return nil, fmt.Errorf("devices: reading %s: %w", s.Path(), err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
