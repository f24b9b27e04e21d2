package clientconf

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/larderfs/larder/internal/flock"
)

// knownServersName is the file of the pinned certificates, in the folder.
const knownServersName = "known_servers"

// knownPrefix starts the errors about the known-servers file: the prefix
// they had when the file belonged to the TLS setup, which users may have
// seen.
const knownPrefix = "tlsconf: "

// maxKnownServers bounds what is read of the file: a line takes about 90
// bytes, so this is some ten thousand servers.
const maxKnownServers = 1 << 20

// fingerprintPrefix starts every fingerprint: the hash it names, as ssh
// writes it.
const fingerprintPrefix = "SHA256:"

// knownHeader opens every known-servers file that Record creates.
const knownHeader = `# larder known servers: the certificate fingerprint pinned for each server,
# one per line, "HOST:PORT SHA256:HEX". The larder client adds a line the
# first time it connects to a server, and refuses the server if its
# certificate changes. Remove a server's line only when you know why it
# changed.
`

// KnownServers is the store of the certificate fingerprints that the
// client pinned, in known_servers, one line per server: "HOST:PORT
// SHA256:HEX", with the 64 hex digits of the certificate's SHA-256. Blank
// lines and lines starting with '#' are ignored and kept, and so is the
// rest of a file that a user edited by hand.
//
// Servers are written as typed (fileKey) and found by any spelling of
// them (ServerKey, pick); an IPv6 address is written in brackets,
// "[::1]:23456". A pin never changes but by hand: Record refuses another
// fingerprint for a server that has one.
//
// Record holds an exclusive lock on a file beside it, its name with
// ".lock" added.
type KnownServers struct {
	path string
}

// Path returns the path of the file.
func (k *KnownServers) Path() string { return k.path }

// Lookup returns the fingerprint pinned for the server at addr, and
// whether there is one.
//
// Lookup refuses a file that its group or others may change (on systems
// with Unix permissions): whoever can change a pin can pass their server
// off as any other. Record, which replaces the file with mode 0600,
// repairs it.
func (k *KnownServers) Lookup(addr string) (fingerprint string, ok bool, err error) {
	pins, _, err := k.read(true)
	if err != nil {
		return "", false, err
	}
	fingerprint, ok, conflict := pick(pins, addr)
	if conflict != nil {
		return "", false, fmt.Errorf(knownPrefix+"%s pins different certificates under %s, which name one server: remove the wrong line ('larder known-servers rm' removes them all)",
			k.path, strings.Join(conflict, " and "))
	}
	return fingerprint, ok, nil
}

// Pins returns every pin of the file, by the server as its line names it.
func (k *KnownServers) Pins() (map[string]string, error) {
	pins, _, err := k.read(true)
	return pins, err
}

// Remove removes the lines of every pin for the server at addr, under
// ServerKey(addr) or any other spelling of it, keeping every other line as
// it was. It returns the servers, as their lines named them, whose pins it
// removed; none is no error.
func (k *KnownServers) Remove(addr string) ([]string, error) {
	lockPath := k.path + ".lock"
	unlock, err := flock.LockPath(lockPath)
	if err != nil {
		return nil, fmt.Errorf(knownPrefix+"locking %s: %w", lockPath, err)
	}
	defer unlock()
	_, data, err := k.read(false)
	if err != nil || data == nil {
		return nil, err
	}
	key := ServerKey(addr)
	var removed []string
	var out [][]byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) > 0 && !strings.HasPrefix(fields[0], "#") && ServerKey(fields[0]) == key {
			removed = append(removed, fields[0])
			continue
		}
		out = append(out, line)
	}
	if removed == nil {
		return nil, nil
	}
	if err := replace(k.path, bytes.Join(out, nil)); err != nil {
		return nil, fmt.Errorf(knownPrefix+"writing %s: %w", k.path, err)
	}
	return removed, nil
}

// Record pins fingerprint, "SHA256:" and 64 hex digits, for the server at
// addr, adding a line at the end of the file and keeping every other line
// as it was. If the same fingerprint is pinned already, Record does
// nothing; if another one is, as when a second client pinned the server a
// moment before, Record changes nothing and returns a *PinConflictError.
func (k *KnownServers) Record(addr, fingerprint string) error {
	key := fileKey(addr)
	if _, _, err := net.SplitHostPort(key); err != nil || strings.ContainsAny(key, " \t\r\n#") {
		return fmt.Errorf(knownPrefix+"cannot pin a server at %q: want HOST:PORT, without spaces", addr)
	}
	fingerprint, err := parseFingerprint(fingerprint)
	if err != nil {
		return fmt.Errorf(knownPrefix+"cannot pin a certificate for %s: %w", addr, err)
	}
	lockPath := k.path + ".lock"
	unlock, err := flock.LockPath(lockPath)
	if err != nil {
		return fmt.Errorf(knownPrefix+"locking %s: %w", lockPath, err)
	}
	defer unlock()

	pins, data, err := k.read(false)
	if err != nil {
		return err
	}
	if pinned, ok, _ := pick(pins, addr); ok {
		if pinned == fingerprint {
			return nil
		}
		return &PinConflictError{Addr: key, Pinned: pinned, Got: fingerprint, File: k.path}
	}
	if len(data) == 0 {
		data = []byte(knownHeader)
	} else if data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, key+" "+fingerprint+"\n"...)
	if err := replace(k.path, data); err != nil {
		return fmt.Errorf(knownPrefix+"writing %s: %w", k.path, err)
	}
	return nil
}

// A PinConflictError reports a Record of a fingerprint for a server that
// has another one pinned.
type PinConflictError struct {
	Addr   string // the server, as the file names it
	Pinned string // the fingerprint pinned for Addr
	Got    string // the fingerprint that Record was asked to pin
	File   string // the known-servers file that holds the pin
}

func (e *PinConflictError) Error() string {
	return fmt.Sprintf(knownPrefix+"%s has another certificate pinned in %s: %s, not %s", e.Addr, e.File, e.Pinned, e.Got)
}

// read parses the file, returning the pins by server key and the file's
// content. A missing file is an empty one. Errors name the file and the
// line. With checkMode, a file that others may change is refused.
func (k *KnownServers) read(checkMode bool) (map[string]string, []byte, error) {
	pins := make(map[string]string)
	var forbid fs.FileMode
	if checkMode {
		forbid = 0o022
	}
	f, err := openPrivate(k.path, knownPrefix, forbid, func(perm fs.FileMode) error {
		return fmt.Errorf(knownPrefix+"%s has mode %04o: other users can change the certificates it pins, and so pass their server off as yours; make it private: chmod 600 %s",
			k.path, perm, k.path)
	})
	if err != nil {
		return nil, nil, err
	}
	if f == nil {
		return pins, nil, nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKnownServers+1))
	if err != nil {
		return nil, nil, fmt.Errorf(knownPrefix+"%w", err)
	}
	if len(data) > maxKnownServers {
		return nil, nil, fmt.Errorf(knownPrefix+"%s is larger than %d bytes", k.path, maxKnownServers)
	}
	lineOf := make(map[string]int)
	for i, line := range bytes.Split(data, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		where := fmt.Sprintf(knownPrefix+"%s line %d", k.path, i+1)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf(`%s: want "HOST:PORT SHA256:HEX", got %d fields`, where, len(fields))
		}
		fp, err := parseFingerprint(fields[1])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", where, err)
		}
		// The line's own spelling: files written before spellings
		// were merged may pin one server under two, which pick
		// reconciles.
		key := fileKey(fields[0])
		if prev, dup := lineOf[key]; dup && pins[key] != fp {
			return nil, nil, fmt.Errorf("%s: %s is pinned already, to another certificate, on line %d: remove the wrong line", where, key, prev+1)
		}
		lineOf[key] = i
		pins[key] = fp
	}
	return pins, data, nil
}

// parseFingerprint returns s, a fingerprint written by hand or by the
// client, in the client's form: it accepts upper-case hex digits and
// colons between them, as openssl prints them.
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
