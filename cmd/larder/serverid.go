package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// serverIDFile, in the data folder, names this server among those that
// share a bucket: its journal of changes to files is its own (see
// files.Config.Owner).
const serverIDFile = "server-id"

// serverID returns the name kept in DATA/server-id, made at the first
// call: written whole (a temporary file, synced, renamed) so that a crash
// never leaves a name half written, which would orphan the journal.
func serverID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, serverIDFile)
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !validServerID(id) {
			return "", fmt.Errorf("%s holds %q, not a server's name (16 hex digits); remove it only if no change of this server is pending (larder admin storage check lists them)", p, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	r := make([]byte, 8)
	rand.Read(r)
	id := hex.EncodeToString(r)
	f, err := os.CreateTemp(dataDir, "."+serverIDFile+".*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(id + "\n"); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(dataDir); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return id, nil
}

func validServerID(id string) bool {
	_, err := hex.DecodeString(id)
	return len(id) == 16 && err == nil
}
