// Package clientconf keeps the larder client's files in the user's
// configuration folder (~/.config/larder on Linux): the salts it signs
// with (salts.json), the certificates it pinned on first use
// (known_servers), the profile that "larder login" saves (profile.json)
// and the accounts enrolled for LNP/1's channel-bound login
// (lnp_enrolled).
//
// A Dir opens the folder; its Salts, KnownServers, Profile and Enrolled
// are the four stores, of one shape: Path, Lookup and Record. A Lookup needs no
// lock, since every file is only ever replaced whole by a rename; a Record
// writes a temporary file beside the old one, syncs it, renames it over
// the old and syncs the folder, so that a crash leaves the old file or the
// new one, never a mix. The stores that read, change and write back
// (salts, pins and enrolments) hold an exclusive lock on a file beside theirs across
// it, so that two clients at once cannot lose each other's entries. The
// folder is created with mode 0700 and the files with mode 0600, and a
// Lookup refuses a file that other users may change.
//
// The formats are those of the files that users already have; a version
// this package cannot read is refused, never overwritten.
package clientconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/larderfs/larder/internal/flock"
)

// EnvDir names the environment variable that, when set, names the folder
// instead of the user's configuration folder.
const EnvDir = "LARDER_CONFIG_DIR"

// Dir is the client's configuration folder. It holds no state but its
// path: every Lookup reads the file again, so that what another client
// recorded a moment before is seen.
type Dir struct {
	path string
}

// Open returns the folder at path. It touches nothing on disk until one
// of its stores is used.
func Open(path string) *Dir {
	return &Dir{path: path}
}

// DefaultPath returns the folder in which the larder client keeps its
// files: "larder" in os.UserConfigDir (~/.config/larder on Linux).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		// The prefix is the one this error has always had; users may
		// have seen it.
		return "", fmt.Errorf("salt: %w", err)
	}
	return filepath.Join(dir, "larder"), nil
}

// Locate returns the folder that the environment chooses: the value of
// EnvDir in getenv if it is set, else DefaultPath. Its error says to set
// EnvDir.
func Locate(getenv func(string) string) (string, error) {
	if dir := getenv(EnvDir); dir != "" {
		return dir, nil
	}
	dir, err := DefaultPath()
	if err != nil {
		return "", fmt.Errorf("%w (set %s)", err, EnvDir)
	}
	return dir, nil
}

// Path returns the folder's path.
func (d *Dir) Path() string { return d.path }

// Salts returns the store of the salts in the folder.
func (d *Dir) Salts() *Salts {
	return &Salts{dir: d.path}
}

// KnownServers returns the store of the certificates pinned in the
// folder.
func (d *Dir) KnownServers() *KnownServers {
	return &KnownServers{path: filepath.Join(d.path, knownServersName)}
}

// Enrolled returns the list of the accounts enrolled for LNP/1's
// channel-bound login.
func (d *Dir) Enrolled() *Enrolled { return &Enrolled{dir: d.path} }

// Profile returns the store of the profile in the folder.
func (d *Dir) Profile() *Profile {
	return &Profile{path: filepath.Join(d.path, profileName)}
}

// ServerKey returns a server's identity: the stores take two addresses
// with one ServerKey for one server, so that two spellings of an address
// find the same salt, pin and credentials. The host is in lower case without a trailing dot; an IP address
// is in its shortest form (an IPv4 address mapped into IPv6 as IPv4); the
// port is a number without leading zeros; and this machine's usual names,
// "localhost", 127.0.0.1 and ::1, are all "localhost".
//
// Other names are not resolved: a name and its IP address stay two keys,
// as do two ports of one host. Which address a name leads to changes, and
// guessing wrong would sign with a salt the server never saw. The three
// loopback spellings are merged because they are what users type for the
// same local server; if two servers do listen on 127.0.0.1 and ::1 at one
// port, the worst is a pinned certificate that does not match, which is
// refused, or a signature sent to a process of this machine.
func ServerKey(server string) string {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return strings.ToLower(server)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		host = ip.String()
		if ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || ip == netip.IPv6Loopback() {
			host = "localhost"
		}
	}
	return net.JoinHostPort(host, port)
}

// fileKey is the key under which the stores write a server: the address
// as typed, with the host in lower case, as every version has written it,
// so that the files stay readable by earlier versions. Lookups compare
// ServerKey of the keys (see pick), so that any spelling finds them.
func fileKey(server string) string {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return strings.ToLower(server)
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// pick returns the value that byKey (values by the key they are filed
// under) holds for server: the one under the address as typed
// (fileKey); else the one under any other key that names the same server
// (ServerKey), if they all agree. Keys that name the server but hold
// different values, as files written before ServerKey merged spellings
// may, are returned as conflict, for an error that says which to remove.
func pick[V comparable](byKey map[string]V, server string) (v V, ok bool, conflict []string) {
	if v, ok := byKey[fileKey(server)]; ok {
		return v, true, nil
	}
	key := ServerKey(server)
	var keys []string
	differ := false
	for k, val := range byKey {
		if ServerKey(k) != key {
			continue
		}
		if len(keys) > 0 && val != v {
			differ = true
		}
		keys = append(keys, k)
		v, ok = val, true
	}
	if differ {
		slices.Sort(keys)
		var zero V
		return zero, false, keys
	}
	return v, ok, nil
}

// openPrivate opens the file at path for reading. A missing file is no
// error: f is nil. If any of the permission bits in forbid is set on the
// file (on systems with Unix permissions), it returns refuse's error for
// the file's permissions instead; forbid 0 checks nothing. Other errors
// are prefixed with prefix.
func openPrivate(path, prefix string, forbid fs.FileMode, refuse func(perm fs.FileMode) error) (f *os.File, err error) {
	f, err = os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s%w", prefix, err)
	}
	if forbid != 0 && runtime.GOOS != "windows" {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s%w", prefix, err)
		}
		if perm := fi.Mode().Perm(); perm&forbid != 0 {
			f.Close()
			return nil, refuse(perm)
		}
	}
	return f, nil
}

// replace replaces the file at path with data, creating its folder (mode
// 0700) if need be.
func replace(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return flock.ReplaceFile(path, data)
}
