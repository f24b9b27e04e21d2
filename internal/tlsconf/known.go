package tlsconf

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/larderfs/larder/internal/flock"
	"github.com/larderfs/larder/internal/salt"
)

// knownHeader opens every known-servers file that Pin creates.
const knownHeader = `# larder known servers: the certificate fingerprint pinned for each server,
# one per line, "HOST:PORT SHA256:HEX". The larder client adds a line the
# first time it connects to a server, and refuses the server if its
# certificate changes. Remove a server's line only when you know why it
# changed.
`

// KnownServers is the file of certificate fingerprints that a client has
// pinned, one line per server: "HOST:PORT SHA256:HEX", in the format of
// Fingerprint. Blank lines and lines starting with '#' are ignored and kept.
//
// Servers are keyed as salt.ServerKey keys them, by the address the user
// typed with the host's case folded: "localhost:23456" and
// "127.0.0.1:23456" are two servers, and so are two ports of one host. An
// IPv6 address is written in brackets, "[::1]:23456".
//
// Lookups need no lock, since the file is only ever replaced whole by a
// rename; Pin holds an exclusive lock on a file beside it, its name with
// ".lock" added, across its read-modify-write, so that two clients pinning
// at once cannot lose each other's lines. The file is written with mode
// 0600 in a folder created with mode 0700.
type KnownServers struct {
	path string
}

// OpenKnownServers returns the known servers kept in the file at path. It
// touches nothing on disk until it is used.
func OpenKnownServers(path string) *KnownServers {
	return &KnownServers{path: path}
}

// DefaultKnownServersPath returns the file in which the larder client keeps
// the servers it knows: known_servers beside the client's salts, in
// salt.DefaultDir (~/.config/larder/known_servers on Linux).
func DefaultKnownServersPath() (string, error) {
	dir, err := salt.DefaultDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "known_servers"), nil
}

// Path returns the path of the file.
func (k *KnownServers) Path() string { return k.path }

// Lookup returns the fingerprint pinned for the server at addr, and whether
// there is one.
//
// Lookup refuses a file that its group or others may change (on systems
// with Unix permissions): whoever can change a pin can pass their server
// off as any other. Pin, which replaces the file with mode 0600, repairs
// it.
func (k *KnownServers) Lookup(addr string) (fingerprint string, ok bool, err error) {
	pins, _, err := k.read(true)
	if err != nil {
		return "", false, err
	}
	fingerprint, ok = pins[salt.ServerKey(addr)]
	return fingerprint, ok, nil
}

// Pin records fingerprint, as Fingerprint formats it, for the server at
// addr, adding a line at the end of the file and keeping every other line
// as it was. If the same fingerprint is pinned already, Pin does nothing;
// if another one is, as when a second client pinned the server a moment
// before, Pin changes nothing and returns a *CertChangedError.
//
// The file is replaced atomically: a new file is written beside it,
// synced, renamed over it, and the folder synced.
func (k *KnownServers) Pin(addr, fingerprint string) error {
	key := salt.ServerKey(addr)
	if _, _, err := net.SplitHostPort(key); err != nil || strings.ContainsAny(key, " \t\r\n#") {
		return fmt.Errorf("tlsconf: cannot pin a server at %q: want HOST:PORT, without spaces", addr)
	}
	fingerprint, err := parseFingerprint(fingerprint)
	if err != nil {
		return fmt.Errorf("tlsconf: cannot pin a certificate for %s: %w", addr, err)
	}
	unlock, err := k.lock()
	if err != nil {
		return err
	}
	defer unlock()

	pins, data, err := k.read(false)
	if err != nil {
		return err
	}
	if pinned, ok := pins[key]; ok {
		if pinned == fingerprint {
			return nil
		}
		return &CertChangedError{Addr: key, Pinned: pinned, Got: fingerprint, File: k.path}
	}
	if len(data) == 0 {
		data = []byte(knownHeader)
	} else if data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, key+" "+fingerprint+"\n"...)
	return k.writeFile(data)
}

// read parses the file, returning the pins by server key and the file's
// content. A missing file is an empty one. Errors name the file and the
// line.
func (k *KnownServers) read(checkMode bool) (map[string]string, []byte, error) {
	pins := make(map[string]string)
	f, err := os.Open(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return pins, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: %w", err)
	}
	defer f.Close()
	if checkMode && runtime.GOOS != "windows" {
		fi, err := f.Stat()
		if err != nil {
			return nil, nil, fmt.Errorf("tlsconf: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return nil, nil, fmt.Errorf("tlsconf: %s has mode %04o: other users can change the certificates it pins, and so pass their server off as yours; make it private: chmod 600 %s",
				k.path, perm, k.path)
		}
	}
	data, err := readAll(k.path, f)
	if err != nil {
		return nil, nil, err
	}
	lineOf := make(map[string]int)
	for i, line := range bytes.Split(data, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		where := fmt.Sprintf("tlsconf: %s line %d", k.path, i+1)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf(`%s: want "HOST:PORT SHA256:HEX", got %d fields`, where, len(fields))
		}
		fp, err := parseFingerprint(fields[1])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		key := salt.ServerKey(fields[0])
		if prev, dup := lineOf[key]; dup && pins[key] != fp {
			return nil, nil, fmt.Errorf("%s: %s is pinned already, to another certificate, on line %d: remove the wrong line", where, key, prev+1)
		}
		lineOf[key] = i
		pins[key] = fp
	}
	return pins, data, nil
}

// parseFingerprint returns s, a fingerprint written by hand or by
// Fingerprint, as Fingerprint writes it: it accepts upper-case hex digits
// and colons between them, as openssl prints them.
func parseFingerprint(s string) (string, error) {
	hexPart, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok {
		return "", fmt.Errorf("fingerprint does not start with %s", fingerprintPrefix)
	}
	hexPart = strings.ToLower(strings.ReplaceAll(hexPart, ":", ""))
	if b, err := hex.DecodeString(hexPart); err != nil || len(b) != 32 {
		return "", fmt.Errorf("fingerprint is not %s followed by 64 hex digits", fingerprintPrefix)
	}
	return fingerprintPrefix + hexPart, nil
}

// writeFile replaces the file with data, atomically and durably.
func (k *KnownServers) writeFile(data []byte) error {
	if err := flock.ReplaceFile(k.path, data); err != nil {
		return fmt.Errorf("tlsconf: writing %s: %w", k.path, err)
	}
	return nil
}

// lock creates the folder if need be and takes the exclusive lock on the
// lock file beside the file, waiting for another holder to release it. The
// lock file is never removed: removing it would let a process that opened
// the old file and one that creates a new one both hold "the" lock.
func (k *KnownServers) lock() (unlock func(), err error) {
	unlock, err = flock.LockPath(k.path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("tlsconf: locking %s.lock: %w", k.path, err)
	}
	return unlock, nil
}
