package clientconf

import (
	"encoding/json"
	"fmt"
	"io/fs"
)

// profileName is the file of the profile, in the folder.
const profileName = "profile.json"

// profileVersion is the version of the profile's format.
const profileVersion = 1

// A TrustMode is how a native command trusts the server's certificate.
type TrustMode string

// The trust modes.
const (
	TrustPin       TrustMode = "pin"       // pin on first use in known_servers
	TrustCA        TrustMode = "ca"        // a chain to CAFile's or the system's authorities
	TrustPlaintext TrustMode = "plaintext" // no TLS at all
)

// Trust is how a native command trusts a server.
type Trust struct {
	Mode        TrustMode `json:"trust"`
	CAFile      string    `json:"ca_file,omitempty"`      // with TrustCA; an absolute path
	SystemRoots bool      `json:"system_roots,omitempty"` // with TrustCA
}

// Settings are what "larder login" remembers, so that the native commands
// after it need no flags: the server, the account, and how the server's
// certificate is trusted. They never hold the password or the signature;
// the salt stays in the salts store.
type Settings struct {
	Server string `json:"server"`
	User   string `json:"user"`
	Trust
}

// profileFile is the profile file: the settings, after the format's
// version.
type profileFile struct {
	Version int `json:"version"`
	Settings
}

// Profile is the store of the profile, profile.json: the Settings of the
// last "larder login".
type Profile struct {
	path string
}

// Path returns the path of the profile file.
func (p *Profile) Path() string { return p.path }

// Lookup returns the saved settings, and whether there are any.
//
// Like the known servers, the profile is refused if its group or others
// may change it: whoever can change it can switch the client to
// plaintext, or to a certificate authority of theirs.
func (p *Profile) Lookup() (s Settings, ok bool, err error) {
	f, err := openPrivate(p.path, "", 0o022, func(perm fs.FileMode) error {
		return fmt.Errorf("%s has mode %04o: other users can change how larder trusts your server; make it private: chmod 600 %s",
			p.path, perm, p.path)
	})
	if err != nil || f == nil {
		return Settings{}, false, err
	}
	defer f.Close()
	var pf profileFile
	if err := json.NewDecoder(f).Decode(&pf); err != nil {
		return Settings{}, false, fmt.Errorf("%s is damaged (run larder login again): %w", p.path, err)
	}
	if pf.Version != profileVersion {
		return Settings{}, false, fmt.Errorf("%s has format version %d; this program reads version %d", p.path, pf.Version, profileVersion)
	}
	s = pf.Settings
	if s.Server == "" || s.User == "" || (s.Mode != TrustPin && s.Mode != TrustCA && s.Mode != TrustPlaintext) {
		return Settings{}, false, fmt.Errorf("%s is damaged (run larder login again): no server, user or trust mode", p.path)
	}
	return s, true, nil
}

// Record replaces the profile with s.
func (p *Profile) Record(s Settings) error {
	b, err := json.MarshalIndent(profileFile{Version: profileVersion, Settings: s}, "", "  ")
	if err != nil {
		return err
	}
	return replace(p.path, append(b, '\n'))
}
