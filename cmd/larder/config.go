package main

import (
	"fmt"

	"github.com/larderfs/larder/internal/clientconf"
)

// config opens the client's configuration folder, which holds the salts,
// the pinned certificates (known_servers) and the profile of "larder
// login": LARDER_CONFIG_DIR if set, else the folder "larder" in the
// user's configuration folder (~/.config/larder on Linux).
func config(env *Env) (*clientconf.Dir, error) {
	dir, err := clientconf.Locate(env.Getenv)
	if err != nil {
		return nil, err
	}
	return clientconf.Open(dir), nil
}

// saltStore opens the salt store in the configuration folder.
func saltStore(env *Env) (*clientconf.Salts, error) {
	conf, err := config(env)
	if err != nil {
		return nil, fmt.Errorf("%w, or pass --salt", err)
	}
	return conf.Salts(), nil
}

// noSalt is the error for a salt that salts lacks for user on server. It
// carries no error code: a missing salt is not a missing file.
func noSalt(salts *clientconf.Salts, server, user string) error {
	return fmt.Errorf("no salt for user %q on server %s in %s: register from this machine, store the salt an administrator "+
		"handed over with the account ('larder salt set --server %s --user %s SALT'), or pass the salt the account was registered with (--salt)",
		user, server, salts.Path(), server, user)
}

// loadProfile returns the profile that "larder login" saved, or nil if
// there is none (or no configuration folder to hold one).
func loadProfile(env *Env) (*clientconf.Settings, error) {
	conf, err := config(env)
	if err != nil {
		return nil, nil
	}
	p, ok, err := conf.Profile().Lookup()
	if !ok || err != nil {
		return nil, err
	}
	return &p, nil
}

// saveProfile replaces the profile with p and returns the profile's path.
func saveProfile(env *Env, p clientconf.Settings) (path string, err error) {
	conf, err := config(env)
	if err != nil {
		return "", err
	}
	return conf.Profile().Path(), conf.Profile().Record(p)
}
