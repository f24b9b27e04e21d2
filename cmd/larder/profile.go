package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/larderfs/larder/internal/flock"
)

// profileName is the file, in the configuration folder, of the profile
// that "larder login" saves.
const profileName = "profile.json"

// profileVersion is the version of the profile's format.
const profileVersion = 1

// Trust modes: how a native command trusts the server's certificate.
const (
	trustPin       = "pin"       // pin on first use in known_servers
	trustCA        = "ca"        // a chain to CAFile's or the system's authorities
	trustPlaintext = "plaintext" // no TLS at all (--insecure-plaintext)
)

// trust is how a native command trusts the server.
type trust struct {
	Mode        string `json:"trust"`
	CAFile      string `json:"ca_file,omitempty"`      // with trustCA; an absolute path
	SystemRoots bool   `json:"system_roots,omitempty"` // with trustCA
}

// profile is what "larder login" remembers, so that the native commands
// after it need no flags: the server, the account, and how the server's
// certificate is trusted. It never holds the password or the signature;
// the salt stays in the salt store.
type profile struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	User    string `json:"user"`
	trust
}

// profilePath returns the path of the profile file.
func profilePath(env *Env) (string, error) {
	dir, err := configDir(env)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, profileName), nil
}

// loadProfile returns the saved profile, or nil if there is none (or no
// configuration folder to hold one).
//
// Like the known servers, the profile is refused if its group or others
// may change it: whoever can change it can switch the client to plaintext,
// or to a certificate authority of theirs.
func loadProfile(env *Env) (*profile, error) {
	path, err := profilePath(env)
	if err != nil {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if runtime.GOOS != "windows" {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return nil, fmt.Errorf("%s has mode %04o: other users can change how larder trusts your server; make it private: chmod 600 %s",
				path, perm, path)
		}
	}
	var p profile
	if err := json.NewDecoder(f).Decode(&p); err != nil {
		return nil, fmt.Errorf("%s is damaged (run larder login again): %w", path, err)
	}
	if p.Version != profileVersion {
		return nil, fmt.Errorf("%s has format version %d; this program reads version %d", path, p.Version, profileVersion)
	}
	if p.Server == "" || p.User == "" || (p.Mode != trustPin && p.Mode != trustCA && p.Mode != trustPlaintext) {
		return nil, fmt.Errorf("%s is damaged (run larder login again): no server, user or trust mode", path)
	}
	return &p, nil
}

// saveProfile replaces the profile file with p, mode 0600, atomically: a
// temporary file beside it, synced, renamed over it, the folder synced.
func saveProfile(env *Env, p *profile) (path string, err error) {
	if path, err = profilePath(env); err != nil {
		return "", err
	}
	p.Version = profileVersion
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "."+profileName+".*.tmp") // mode 0600
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(append(b, '\n')); err != nil {
		return "", err
	}
	if err = tmp.Sync(); err != nil {
		return "", err
	}
	if err = tmp.Close(); err != nil {
		return "", err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, flock.SyncDir(dir)
}
