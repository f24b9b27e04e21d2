package main

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/internal/flock"
)

// enrolledName is the file, in the configuration folder, of the accounts
// this client has logged in to with the channel-bound login: one
// "SERVER\tUSER" line each (a tab, which no address and no username can
// hold). For those larder never falls back to the course signature: a
// wrong password then costs one failed attempt at the server's throttle,
// not two, and the signature is not sent to the server again.
const enrolledName = "lnp_enrolled"

// knownEnrolled reports whether user on server is in the file.
func knownEnrolled(env *Env, server, user string) bool {
	dir, err := configDir(env)
	if err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, enrolledName))
	if err != nil {
		return false
	}
	line := server + "\t" + user
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if sc.Text() == line {
			return true
		}
	}
	return false
}

// rememberEnrolled adds user on server to the file, mode 0600, replaced
// atomically. It is best effort: without it, larder only asks the server
// once more than it needs to.
func rememberEnrolled(env *Env, server, user string) error {
	if knownEnrolled(env, server, user) {
		return nil
	}
	dir, err := configDir(env)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, enrolledName)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(old) > 0 && !strings.HasSuffix(string(old), "\n") {
		old = append(old, '\n')
	}
	tmp, err := os.CreateTemp(dir, "."+enrolledName+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(append(old, server+"\t"+user+"\n"...))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	return flock.SyncDir(dir)
}
