package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/s3"
)

// adoptSpaces gives the spaces of older versions, named after the user's
// name, to the accounts of those names now, and sets aside in
// DATA/deleted those of names that no account has (see disk.Adopt).
func (m *Main) adoptSpaces(ctx context.Context) error {
	lookup := func(name string) (int64, error) {
		u, err := m.accounts.store.UserByName(ctx, name)
		if err != nil {
			return 0, err
		}
		return u.ID, nil
	}
	adopted, err := m.spaces.Adopt(lookup, filepath.Join(m.Config.DataDir, "deleted"))
	for _, a := range adopted {
		switch {
		case a.Aside == "":
			m.Logger.Info("moved a space to its account's id", "user", a.Name, "id", a.ID)
		case a.ID == 0:
			m.Logger.Warn("set aside the space of a name that has no account (deleted before this version)", "user", a.Name, "to", a.Aside)
		default:
			m.Logger.Warn("set aside an old space of an account that has one by its id", "user", a.Name, "id", a.ID, "to", a.Aside)
		}
	}
	return err
}

// deleteSpace deals with the files of the deleted account u: it removes
// their records, and removes its space, or with keep moves it to
// DATA/deleted; in bucket, if not nil, rather than DATA/spaces. It says
// what it did, for the audit trail, and prints it.
func deleteSpace(ctx context.Context, env *Env, a *accounts, cfg *AccountConfig, bucket *s3.Backend, u *larder.User, keep bool) (string, error) {
	usage, err := a.db.files().DeleteSpace(ctx, larder.SpaceOf(u.ID))
	if err != nil {
		return "its file records could not be removed", err
	}
	// The block sums of contents no file has any more; a server's hourly
	// sweep would remove them too.
	a.db.files().PruneBlockSums(ctx)

	if bucket != nil {
		aside := ""
		if keep {
			aside = disk.AsideName(u.Name, u.ID, time.Now())
		}
		found, err := bucket.DeleteSpace(u.ID, aside)
		switch {
		case err != nil:
			return "its files could not be removed from the bucket", fmt.Errorf("the account is deleted, but its files stay in the bucket below spaces/%d/: %w", u.ID, err)
		case !found:
			fmt.Fprintf(env.Stdout, "%s had no files in the bucket\n", u.Name)
			return "it had no files", nil
		case keep:
			fmt.Fprintf(env.Stdout, "its files (%d recorded, %d bytes) are kept in the bucket below deleted/%s/\n", usage.Files, usage.Bytes, aside)
			return "files kept in the bucket below deleted/" + aside + "/", nil
		}
		fmt.Fprintf(env.Stdout, "its files (%d recorded, %d bytes) are removed from the bucket\n", usage.Files, usage.Bytes)
		return "files removed", nil
	}

	dir := filepath.Join(cfg.DataDir, "spaces")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(env.Stdout, "%d file records removed; no private spaces in %s\n", usage.Files, cfg.DataDir)
		return "no private space here", nil
	}
	spaces, err := disk.OpenSpaces(dir)
	if err != nil {
		return "its files could not be reached", err
	}
	defer spaces.Close()
	if keep {
		to := filepath.Join(cfg.DataDir, "deleted", disk.AsideName(u.Name, u.ID, time.Now()))
		found, err := spaces.Export(u.ID, u.Name, to)
		switch {
		case err != nil:
			return "its files could not be moved to " + to, fmt.Errorf("the account is deleted, but its files stay in %s: %w", dir, err)
		case !found:
			fmt.Fprintf(env.Stdout, "%s had no private space\n", u.Name)
			return "it had no files", nil
		}
		fmt.Fprintf(env.Stdout, "its files (%d recorded, %d bytes) are kept in %s\n", usage.Files, usage.Bytes, to)
		return "files kept in " + to, nil
	}
	found, err := spaces.Delete(u.ID, u.Name)
	switch {
	case err != nil:
		return "its files could not be removed", fmt.Errorf("the account is deleted, but its files stay in %s: %w", dir, err)
	case !found:
		fmt.Fprintf(env.Stdout, "%s had no private space\n", u.Name)
		return "it had no files", nil
	}
	fmt.Fprintf(env.Stdout, "its files (%d recorded, %d bytes) are removed\n", usage.Files, usage.Bytes)
	return "files removed", nil
}
