package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// A pepper is a secret key that the server holds apart from the database:
// the slow hash runs over HMAC-SHA256(pepper, signature), so a stolen
// database alone cannot be attacked offline. Each pepper has an ID, which
// stored hashes record in the PHC keyid parameter, so the pepper can be
// rotated: new hashes use the current pepper, older ones keep verifying with
// theirs until they are rehashed.
//
// A pepper file holds one pepper per line, "ID BASE64KEY": ID is 1 to 8
// ASCII letters or digits, BASE64KEY is 32 bytes in standard base64 with
// padding (44 characters, as `openssl rand -base64 32` prints them). Blank
// lines and lines starting with '#' are ignored. The last pepper is the
// current one. The file must be a regular file that neither its group nor
// others may access (mode 0600 or stricter). A symbolic link is followed:
// secret stores such as Kubernetes mount their files through links; what is
// checked is the file it leads to.

const (
	// PepperSize is the length of a pepper's key in bytes.
	PepperSize = 32
	// maxPepperIDLen is the PHC limit on a keyid.
	maxPepperIDLen = maxKeyIDLen
	// maxPepperFile bounds what LoadPeppers reads: thousands of peppers.
	maxPepperFile = 64 << 10
	// firstPepperID is the ID of the pepper of a new file.
	firstPepperID = "p1"
)

// pepperHeader opens every pepper file that CreatePepperFile writes.
const pepperHeader = `# larder pepper file: one pepper per line, "ID BASE64KEY"; the last one is
# current. Keep this file private (chmod 600) and apart from the database and
# its backups: without it no stored password hash can be checked.
`

// Pepper is one secret key with its ID. No method reveals the key: fmt's
// verbs, GoString and slog all show only the ID.
type Pepper struct {
	ID string
	// mac computes HMAC-SHA256 keyed with the pepper. The key lives only
	// in this closure, out of reach of reflection: fmt prints the fields
	// of a struct held in an unexported field without calling its
	// methods (and dereferences a pointer for a verb such as %s), but of
	// a func it prints only the address.
	mac func(msg []byte) []byte
}

// newPepper returns the pepper id with key.
func newPepper(id string, key *[PepperSize]byte) Pepper {
	k := *key
	return Pepper{ID: id, mac: func(msg []byte) []byte {
		m := hmac.New(sha256.New, k[:])
		m.Write(msg)
		return m.Sum(nil)
	}}
}

// String returns "pepper ID".
func (p Pepper) String() string { return "pepper " + p.ID }

// GoString returns a Go-like form without the key.
func (p Pepper) GoString() string { return fmt.Sprintf("auth.Pepper{ID: %q, key: REDACTED}", p.ID) }

// Format prints p for every verb as String does, and as GoString for %#v:
// no verb, %x and %d included, prints the key.
func (p Pepper) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, p.GoString())
		return
	}
	io.WriteString(f, p.String())
}

// LogValue logs only the ID.
func (p Pepper) LogValue() slog.Value { return slog.GroupValue(slog.String("id", p.ID)) }

// Fingerprint returns a public value that tells this pepper's key from any
// other with the same ID: HMAC-SHA256 of a fixed label under the key, in
// unpadded base64. Programs sharing accounts record and compare it, so that
// two pepper files that both call different keys "p1" are caught before
// either makes hashes the other cannot check. It reveals nothing of the
// key: HMAC is a pseudo-random function, and the key is 32 random bytes.
func (p Pepper) Fingerprint() string {
	return b64.EncodeToString(p.mac([]byte("larder pepper fingerprint v1")))
}

// Peppers is the content of a pepper file: every pepper by ID, and the
// current one. It is immutable and safe for concurrent use. A Peppers that
// LoadPeppers or CreatePepperFile returns remembers its file, so that a
// Hasher can reload it when it changes (see Hasher.ReloadPeppers).
type Peppers struct {
	list []Pepper // in file order; the last is current

	path string      // the file it was read from; "" for none
	file os.FileInfo // the file as it was read, to tell when it changes
}

// Current returns the pepper with which new hashes are made. A Peppers
// from this package always has one.
func (ps *Peppers) Current() Pepper { return ps.list[len(ps.list)-1] }

// Lookup returns the pepper called id.
func (ps *Peppers) Lookup(id string) (Pepper, bool) {
	if ps != nil {
		for _, p := range ps.list {
			if p.ID == id {
				return p, true
			}
		}
	}
	return Pepper{}, false
}

// IDs returns the IDs of the peppers in file order; the last is current.
func (ps *Peppers) IDs() []string {
	if ps == nil {
		return nil
	}
	ids := make([]string, len(ps.list))
	for i, p := range ps.list {
		ids[i] = p.ID
	}
	return ids
}

// String returns "peppers p1,p2 (current p2)".
func (ps *Peppers) String() string {
	if ps == nil || len(ps.list) == 0 {
		return "no peppers"
	}
	return fmt.Sprintf("peppers %s (current %s)", strings.Join(ps.IDs(), ","), ps.Current().ID)
}

// GoString returns a Go-like form without the keys.
func (ps *Peppers) GoString() string {
	if ps == nil {
		return "(*auth.Peppers)(nil)"
	}
	return fmt.Sprintf("&auth.Peppers{IDs: %#v, keys: REDACTED}", ps.IDs())
}

// Format prints ps for every verb as String does, and as GoString for %#v.
func (ps *Peppers) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, ps.GoString())
		return
	}
	io.WriteString(f, ps.String())
}

// LogValue logs the IDs and the current one.
func (ps *Peppers) LogValue() slog.Value {
	if ps == nil || len(ps.list) == 0 {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("ids", strings.Join(ps.IDs(), ",")), slog.String("current", ps.Current().ID))
}

// validPepperID reports whether id can name a pepper: 1 to 8 ASCII letters
// or digits, so that it is safe in a file, a log and a PHC keyid.
func validPepperID(id string) bool {
	if id == "" || len(id) > maxPepperIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// parsePeppers parses the content of pepper file name. It also returns the
// index, among the lines of data, of each pepper's line. Errors name the
// file and the line, and never quote a line: it may hold a key.
func parsePeppers(name string, data []byte) (*Peppers, map[string]int, error) {
	ps := new(Peppers)
	lineOf := make(map[string]int)
	for i, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		where := fmt.Sprintf("auth: pepper file %s line %d", name, i+1)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf(`%s: want "ID BASE64KEY", got %d fields`, where, len(fields))
		}
		id, enc := fields[0], fields[1]
		if !validPepperID(id) {
			return nil, nil, fmt.Errorf("%s: a pepper ID is 1 to %d ASCII letters or digits", where, maxPepperIDLen)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil || len(raw) != PepperSize || len(enc) != base64.StdEncoding.EncodedLen(PepperSize) {
			return nil, nil, fmt.Errorf("%s: the key of pepper %s is not %d bytes in standard base64 (44 characters, as `openssl rand -base64 32` prints)", where, id, PepperSize)
		}
		if prev, dup := lineOf[id]; dup {
			return nil, nil, fmt.Errorf("%s: pepper %s is already defined on line %d", where, id, prev+1)
		}
		lineOf[id] = i
		ps.list = append(ps.list, newPepper(id, (*[PepperSize]byte)(raw)))
	}
	if len(ps.list) == 0 {
		return nil, nil, fmt.Errorf("auth: pepper file %s holds no pepper", name)
	}
	return ps, lineOf, nil
}

// LoadPeppers reads the pepper file at path. It refuses a file that its
// group or others may access, saying how to fix it, and any malformed line,
// naming it. Errors never hold a key; a missing file is an error for which
// errors.Is(err, fs.ErrNotExist) holds.
func LoadPeppers(path string) (*Peppers, error) {
	ps, _, _, _, err := readPeppers(path)
	return ps, err
}

// readPeppers is LoadPeppers, also returning the file's content, the line
// index of each pepper and the file's information.
func readPeppers(path string) (*Peppers, []byte, map[string]int, os.FileInfo, error) {
	// Stat first, so that a FIFO or a device is refused before an open
	// that could block or have side effects.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	defer f.Close()
	// Check what was opened, not what the path named a moment ago.
	if fi, err = f.Stat(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, nil, nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPepperFile+1))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if len(data) > maxPepperFile {
		return nil, nil, nil, nil, fmt.Errorf("auth: pepper file %s is larger than %d bytes", path, maxPepperFile)
	}
	ps, lineOf, err := parsePeppers(path, data)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ps.path, ps.file = path, fi
	return ps, data, lineOf, fi, nil
}

// checkPrivate refuses a file that its group or others may read, write or
// execute. Windows has no such mode bits (Go reports 0666 or 0444 there),
// so the check is skipped on it.
func checkPrivate(path string, fi os.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("auth: pepper file %s has mode %04o: other users can read or change it, and it holds the secret that protects every password hash; make it private to the server's user: chmod 600 %s",
			path, perm, path)
	}
	return nil
}

// newPepperLine returns a line "ID BASE64KEY\n" for a fresh random key.
func newPepperLine(id string) []byte {
	var key [PepperSize]byte
	rand.Read(key[:]) // never fails: since Go 1.24 it crashes the program instead
	return []byte(id + " " + base64.StdEncoding.EncodeToString(key[:]) + "\n")
}

// CreatePepperFile creates a pepper file at path with one fresh random
// pepper, "p1", with mode 0600, durably (the file and its folder are
// synced). It fails if path exists (errors.Is(err, fs.ErrExist)); its folder
// must exist.
func CreatePepperFile(path string) (ps *Peppers, err error) {
	data := append([]byte(pepperHeader), newPepperLine(firstPepperID)...)
	// Written whole under a temporary name, then linked into place: a
	// concurrent start sees no file or the whole file, never a part, and
	// the link fails with fs.ErrExist if another made it first.
	f, err := os.CreateTemp(filepath.Dir(path), ".pepper-*")
	if err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if ps, _, err = parsePeppers(path, data); err != nil {
		return nil, err
	}
	ps.path = path
	ps.file, err = os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	return ps, nil
}

// nextPepperID returns "pN" for the smallest N above every ID of that form.
func nextPepperID(ps *Peppers) (string, error) {
	n := 0
	for _, p := range ps.list {
		if len(p.ID) > 1 && p.ID[0] == 'p' && p.ID[1] != '0' {
			if v, err := strconv.Atoi(p.ID[1:]); err == nil && v > n {
				n = v
			}
		}
	}
	id := "p" + strconv.Itoa(n+1)
	if !validPepperID(id) {
		return "", fmt.Errorf("auth: no pepper ID is left after p%d", n)
	}
	return id, nil
}

// RotatePepper appends a fresh random pepper to the pepper file at path and
// returns its ID: "pN", N one more than the largest N of such IDs in the
// file. It becomes the current pepper of every Hasher that reads the file,
// from its next hash on (see Hasher.ReloadPeppers). Servers on other
// machines need a copy of the file before any hash made with it reaches
// them. The file is replaced atomically (a private temporary file, synced,
// renamed over it, the folder synced), keeping its comments and its owner.
// Two rotations of one file at the same instant can lose one of them.
func RotatePepper(path string) (string, error) {
	ps, data, _, fi, err := readPeppers(path)
	if err != nil {
		return "", err
	}
	id, err := nextPepperID(ps)
	if err != nil {
		return "", err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, newPepperLine(id)...)
	if _, _, err := parsePeppers(path, data); err != nil {
		return "", err // cannot happen; never write a file that would not load
	}
	return id, replaceFile(path, data, fi)
}

// RetirePepper removes pepper id, which must not be the current one, from
// the pepper file at path, atomically as RotatePepper writes. The hashes
// made with it can no longer be checked: the caller checks first that no
// stored hash uses it (Hasher.PepperIDs).
func RetirePepper(path, id string) error {
	ps, data, lineOf, fi, err := readPeppers(path)
	if err != nil {
		return err
	}
	i, ok := lineOf[id]
	switch {
	case !ok:
		return fmt.Errorf("auth: pepper file %s has no pepper %q", path, id)
	case id == ps.Current().ID:
		return fmt.Errorf("auth: pepper %s is the current pepper of %s; rotate to a new one first", id, path)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	data = bytes.Join(append(lines[:i:i], lines[i+1:]...), nil)
	if _, _, err := parsePeppers(path, data); err != nil {
		return err // cannot happen; never write a file that would not load
	}
	return replaceFile(path, data, fi)
}

// replaceFile replaces the file at path, whose information is old, with
// data: it writes a private temporary file beside it, gives it old's owner
// and group where they differ from the writer's, syncs it, renames it over
// path and syncs the folder.
func replaceFile(path string, data []byte, old os.FileInfo) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := keepOwner(tmp, old); err != nil {
		return fmt.Errorf("auth: pepper file %s: keeping its owner: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	return nil
}

// syncDir makes a creation or rename in dir durable. Windows cannot open a
// folder for syncing, and MoveFileEx, behind os.Rename, is as durable as it
// gets there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
