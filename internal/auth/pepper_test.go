package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// A key whose every form is easy to spot in output.
var (
	spotKey    = bytes.Repeat([]byte{0xAB, 0xCD}, 16)
	spotKeyB64 = base64.StdEncoding.EncodeToString(spotKey)
	spotFile   = "# comment\n\n  p1 " + spotKeyB64 + "  \r\nkey2 " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n"
)

func TestParsePeppers(t *testing.T) {
	ps, lineOf, err := parsePeppers("F", []byte(spotFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := ps.IDs(); !slices.Equal(got, []string{"p1", "key2"}) || ps.Current().ID != "key2" {
		t.Errorf("IDs = %q, current %s; want [p1 key2], key2", got, ps.Current().ID)
	}
	if p, ok := ps.Lookup("p1"); !ok || !hasKey(p, spotKey) {
		t.Errorf("Lookup(p1) = %v, %v, or its key is wrong", p, ok)
	}
	if _, ok := ps.Lookup("p3"); ok {
		t.Error("Lookup(p3) found a pepper")
	}
	if lineOf["p1"] != 2 || lineOf["key2"] != 3 {
		t.Errorf("lineOf = %v, want p1 on index 2, key2 on 3", lineOf)
	}

	good := "p1 " + spotKeyB64
	for _, tc := range []struct{ content, want string }{
		{"", "holds no pepper"},
		{"# only a comment\n\n", "holds no pepper"},
		{spotKeyB64, "line 1: want \"ID BASE64KEY\", got 1 fields"},
		{good + " extra", "line 1: want"},
		{"\n\n" + "p1 " + spotKeyB64[:40], "line 3: the key of pepper p1 is not 32 bytes"},
		{"p1 " + strings.TrimRight(spotKeyB64, "="), "line 1: the key of pepper p1"},              // unpadded
		{"p1 " + base64.StdEncoding.EncodeToString(spotKey[:31]), "line 1: the key of pepper p1"}, // 31 bytes
		{"p1 " + base64.StdEncoding.EncodeToString(append(spotKey, 1)), "line 1: the key"},        // 33 bytes
		{"p1 " + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), "line 1: the key"},
		{"p-1 " + spotKeyB64, "line 1: a pepper ID is 1 to 8 ASCII letters or digits"},
		{"pepper123 " + spotKeyB64, "line 1: a pepper ID"},
		{"pé " + spotKeyB64, "line 1: a pepper ID"},
		{good + "\n" + good, "line 2: pepper p1 is already defined on line 1"},
	} {
		_, _, err := parsePeppers("F", []byte(tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePeppers(%q) = %v, want an error containing %q", tc.content, err, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "auth: pepper file F") {
			t.Errorf("error %q does not name the file", err)
		}
		// An error never quotes a line, which may hold a key.
		for _, f := range strings.Fields(tc.content) {
			if len(f) > 8 && strings.Contains(err.Error(), f) {
				t.Errorf("error %q quotes %q from the file", err, f)
			}
		}
	}
}

// TestPepperNeverPrinted checks every way a Pepper or Peppers could be
// printed or logged, directly or nested in other values.
func TestPepperNeverPrinted(t *testing.T) {
	ps, _, err := parsePeppers("F", []byte(spotFile))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ps.Lookup("p1")
	type exported struct{ P Pepper }
	type unexported struct{ p Pepper }
	type ptr struct{ p *Pepper }
	values := []any{p, &p, *ps, ps, []Pepper{p}, map[string]Pepper{"x": p},
		exported{p}, unexported{p}, ptr{&p}, struct{ ps *Peppers }{ps}, NewHasher(cheap, ps, 1)}
	var out bytes.Buffer
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%T"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintln(&out, v)
		b, _ := json.Marshal(v)
		out.Write(b)
		for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
			slog.New(h).Info("msg", "value", v, slog.Any("any", v), slog.Group("g", "v", v))
		}
	}
	s := out.String()
	forms := map[string]string{
		"base64": spotKeyB64, "hex": hex.EncodeToString(spotKey), "HEX": strings.ToUpper(hex.EncodeToString(spotKey)),
		"decimal": "171 205 171 205", "octal": "253 315", "hex bytes": "0xab, 0xcd", "HEX bytes": "0xAB, 0xCD",
		"string": string(spotKey[:4]), "quoted": `\xab\xcd`,
	}
	for name, form := range forms {
		if strings.Contains(s, form) {
			t.Errorf("the key appears in %s form in:\n%s", name, s)
		}
	}
	if !strings.Contains(s, "pepper p1") || !strings.Contains(s, `auth.Pepper{ID: "p1", key: REDACTED}`) ||
		!strings.Contains(s, "peppers p1,key2 (current key2)") || !strings.Contains(s, "value.id=p1") {
		t.Errorf("the IDs are not shown as intended:\n%s", s)
	}
}

func TestLoadPeppersRefusesOpenModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes on Windows")
	}
	path := filepath.Join(t.TempDir(), "pepper")
	if err := os.WriteFile(path, []byte(spotFile), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPeppers(path)
		want := fmt.Sprintf("%s has mode %04o", path, mode)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("LoadPeppers(mode %04o) = %v, want an error saying %q and how to fix it", mode, err, want)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		os.Chmod(path, mode)
		if _, err := LoadPeppers(path); err != nil {
			t.Errorf("LoadPeppers(mode %04o): %v", mode, err)
		}
	}
}

func TestLoadPeppersFileKinds(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPeppers(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadPeppers(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadPeppers(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadPeppers(folder) = %v, want 'not a regular file'", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	// A FIFO, which would block an open: TestLoadPeppersFIFO (Unix).
	// A symbolic link is followed, and the file it leads to is checked.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte(spotFile), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if ps, err := LoadPeppers(link); err != nil || ps.Current().ID != "key2" {
		t.Errorf("LoadPeppers(link) = %v, %v", ps, err)
	}
	os.Chmod(target, 0o644)
	if _, err := LoadPeppers(link); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("LoadPeppers(link to a 0644 file) = %v, want the mode refused", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, append([]byte(spotFile), bytes.Repeat([]byte("#\n"), maxPepperFile)...), 0o600)
	if _, err := LoadPeppers(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("LoadPeppers(huge file) = %v, want refused", err)
	}
}

func TestCreatePepperFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pepper")
	ps, err := CreatePepperFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ps.IDs(), []string{"p1"}) {
		t.Errorf("IDs = %q, want [p1]", ps.IDs())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	loaded, err := LoadPeppers(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ps.Lookup("p1")
	b, _ := loaded.Lookup("p1")
	if !sameKey(a, b) || hasKey(a, make([]byte, 32)) {
		t.Error("the created pepper and the loaded one differ, or the key is zero")
	}
	if _, err := CreatePepperFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreatePepperFile(existing) = %v, want fs.ErrExist", err)
	}
	if again, _ := LoadPeppers(path); again == nil || !sameKey(mustLookup(t, again, "p1"), a) {
		t.Error("a failed CreatePepperFile changed the existing file")
	}
	// Two files get different keys.
	other, err := CreatePepperFile(path + "2")
	if err != nil {
		t.Fatal(err)
	}
	if sameKey(mustLookup(t, other, "p1"), a) {
		t.Error("two new pepper files have the same key")
	}
}

// hasKey reports whether p's key is key, by the HMAC it computes.
func hasKey(p Pepper, key []byte) bool {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("probe"))
	return hmac.Equal(p.mac([]byte("probe")), m.Sum(nil))
}

// sameKey reports whether a and b have the same key.
func sameKey(a, b Pepper) bool { return bytes.Equal(a.mac([]byte("probe")), b.mac([]byte("probe"))) }

func mustLookup(t *testing.T, ps *Peppers, id string) Pepper {
	t.Helper()
	p, ok := ps.Lookup(id)
	if !ok {
		t.Fatalf("no pepper %s in %v", id, ps)
	}
	return p
}

func TestRotateAndRetirePepper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pepper")
	if _, err := CreatePepperFile(path); err != nil {
		t.Fatal(err)
	}
	orig, _ := LoadPeppers(path)
	sig := courseSignature("hunter2")
	old, err := NewHasher(cheap, orig, 1).Hash(t.Context(), sig)
	if err != nil {
		t.Fatal(err)
	}

	id, err := RotatePepper(path)
	if err != nil || id != "p2" {
		t.Fatalf("RotatePepper = %q, %v; want p2", id, err)
	}
	ps, err := LoadPeppers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ps.IDs(), []string{"p1", "p2"}) || ps.Current().ID != "p2" {
		t.Errorf("after rotation: %v, want p1, p2 current", ps)
	}
	if !sameKey(mustLookup(t, ps, "p1"), mustLookup(t, orig, "p1")) {
		t.Error("rotation changed p1")
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), pepperHeader) {
		t.Errorf("rotation lost the comments:\n%s", data)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after rotation %04o, want 0600", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp")); len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
	h := NewHasher(cheap, ps, 1)
	if ok, err := h.Verify(t.Context(), old, sig); !ok || err != nil || !h.NeedsRehash(old) {
		t.Errorf("p1 hash after rotation: Verify %v, %v, NeedsRehash %v; want true, nil, true", ok, err, h.NeedsRehash(old))
	}

	if err := RetirePepper(path, "p2"); err == nil || !strings.Contains(err.Error(), "current") {
		t.Errorf("RetirePepper(current) = %v, want refused", err)
	}
	if err := RetirePepper(path, "p9"); err == nil {
		t.Error("RetirePepper(unknown) succeeded")
	}
	if err := RetirePepper(path, "p1"); err != nil {
		t.Fatal(err)
	}
	ps, err = LoadPeppers(path)
	if err != nil || !slices.Equal(ps.IDs(), []string{"p2"}) {
		t.Fatalf("after retiring p1: %v, %v; want only p2", ps, err)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), pepperHeader) {
		t.Errorf("retiring lost the comments:\n%s", data)
	}
	if ok, err := NewHasher(cheap, ps, 1).Verify(t.Context(), old, sig); ok || err == nil {
		t.Errorf("Verify(p1 hash) after retiring p1 = %v, %v; want an error", ok, err)
	}
	// The next ID is above every pN ever seen in the file, not reused.
	if id, err := RotatePepper(path); err != nil || id != "p3" {
		t.Errorf("RotatePepper = %q, %v; want p3", id, err)
	}
}

func TestNextPepperID(t *testing.T) {
	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{[]string{"p1"}, "p2"},
		{[]string{"p9"}, "p10"},
		{[]string{"p2", "p10", "p3"}, "p11"},
		{[]string{"old", "p07", "pX"}, "p1"},
		{[]string{"p9999998"}, "p9999999"},
	} {
		ps := &Peppers{}
		for _, id := range tc.ids {
			ps.list = append(ps.list, Pepper{ID: id})
		}
		if got, err := nextPepperID(ps); got != tc.want || err != nil {
			t.Errorf("nextPepperID(%q) = %q, %v; want %q", tc.ids, got, err, tc.want)
		}
	}
	if got, err := nextPepperID(&Peppers{list: []Pepper{{ID: "p9999999"}}}); err == nil {
		t.Errorf("nextPepperID(p9999999) = %q, want an error", got)
	}
}

// FuzzParsePeppers checks that parsePeppers never panics, that every
// pepper it accepts has a valid, unique ID and a key decoded from its line,
// and that its errors never quote the content.
func FuzzParsePeppers(f *testing.F) {
	f.Add([]byte(spotFile))
	f.Add([]byte("p1 " + spotKeyB64 + "\np1 " + spotKeyB64))
	f.Add([]byte("#\n\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, lineOf, err := parsePeppers("F", data)
		if err != nil {
			for _, field := range strings.Fields(string(data)) {
				if len(field) >= 16 && strings.Contains(err.Error(), field) {
					t.Errorf("error %q quotes %q", err, field)
				}
			}
			return
		}
		seen := map[string]bool{}
		lines := strings.Split(string(data), "\n")
		for _, p := range ps.list {
			if !validPepperID(p.ID) || seen[p.ID] {
				t.Errorf("invalid or duplicate ID %q", p.ID)
			}
			seen[p.ID] = true
			fields := strings.Fields(lines[lineOf[p.ID]])
			key, _ := base64.StdEncoding.DecodeString(fields[len(fields)-1])
			if fields[0] != p.ID || !hasKey(p, key) {
				t.Errorf("pepper %s is not the one on its line %d", p.ID, lineOf[p.ID]+1)
			}
		}
		if ps.Current().ID != ps.list[len(ps.list)-1].ID {
			t.Error("the current pepper is not the last")
		}
	})
}
