package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/s3"
)

func runAdminStorage(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder admin storage", []command{
		{"check", "compare the records of files with the files on the disk or in the bucket, and repair the records (--repair)", runStorageCheck},
	}, args)
}

// errDifferences is the error of a check that found differences: exit
// status 1, after the report.
var errDifferences = errors.New("the records of files and the files differ")

func runStorageCheck(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	flags := adminFlagSet(env, "storage check", "storage check [NAME...|--shared] [--repair] [--json] [flags]",
		"Compares, for each account (or those named), the records of its files in the\n"+
			"account database with the files in its private space, where the servers keep\n"+
			"them (--storage, as they have it: DATA/spaces, or a bucket), and lists the\n"+
			"differences: a record with no file (no object), a file with no record (no\n"+
			"record: counted in no quota), a record of another size (size) or of other\n"+
			"content (version: the file is hashed again at its next read). Unfinished\n"+
			"uploads and changes in flight (or cut by a crash, replayed at a server's next\n"+
			"start) are listed too, but are not differences. Without NAME it checks the\n"+
			"shared area too (--files, or the bucket's shared/), whose records are the\n"+
			"hashes of files taken at their first read: a file there with no record is not\n"+
			"a difference, a record of a file gone or changed is. With --repair the records\n"+
			"follow the files, as a server's start does after a crash: a record with no\n"+
			"file goes, a file is hashed and recorded; no file is changed. It can run beside\n"+
			"the servers: a change they make meanwhile can show as a difference, and its\n"+
			"repair only records what is stored. Exit status 1 if it found differences,\n"+
			"repaired or not: a second run says whether any are left.", &cfg)
	repair := flags.Bool("repair", false, "make the records follow the files where they differ")
	asJSON := flags.Bool("json", false, "one JSON object per space, a line each, for scripts")
	storage := flags.String("storage", "local", "where the servers keep the users' files, as their --storage says: local (DATA/spaces) or `s3://BUCKET/PREFIX?…`")
	filesDir := flags.String("files", "", "the `folder` the servers serve as the shared area, as their --files says (default: the data folder's files/); with --storage local")
	sharedOnly := flags.Bool("shared", false, "check the shared area only")
	names, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if *sharedOnly && len(names) > 0 {
		return usageError("--shared checks the shared area only: name no account with it")
	}
	a, err := openAccounts(ctx, &cfg)
	if err != nil {
		return err
	}
	defer a.Close()

	var (
		backend files.Backend
		spaces  *disk.Spaces // local only
		where   string
		shared  = len(names) == 0 // the shared area is checked
	)
	if *storage == "" || *storage == "local" {
		dir := filepath.Join(cfg.DataDir, "spaces")
		// Opening would make the folder; a check must not.
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no private spaces in %s: is --data the servers' data folder, or do they keep files in a bucket (--storage s3://…)?", dir)
		}
		if spaces, err = disk.OpenSpaces(dir); err != nil {
			return err
		}
		defer spaces.Close()
		var served *disk.Store
		if shared {
			sdir := cmp.Or(*filesDir, filepath.Join(cfg.DataDir, "files"))
			if _, err := os.Stat(sdir); errors.Is(err, fs.ErrNotExist) {
				if *sharedOnly {
					return fmt.Errorf("no shared area in %s: name the servers' --files", sdir)
				}
				fmt.Fprintf(env.Stderr, "larder: no shared area in %s, not checked: name the servers' --files to check it\n", sdir)
				shared = false
			} else if served, err = disk.Open(sdir); err != nil {
				return err
			} else {
				defer served.Close()
			}
		}
		backend, where = files.NewLocal(served, spaces), dir
	} else {
		bc, err := s3.ParseURL(*storage)
		if err != nil {
			return usageError("bad --storage: %v", err)
		}
		b, err := s3.New(ctx, bc)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		backend, where = b, "the bucket "+bc.Bucket
	}
	svc, err := files.New(files.Config{Backend: backend, Records: a.db.files()})
	if err != nil {
		return err
	}
	defer svc.Close()

	var users []*larder.User
	if *sharedOnly {
		// None.
	} else if len(names) == 0 {
		err = eachUser(ctx, a.store, func(u *larder.User) error { users = append(users, u); return nil })
	} else {
		for _, name := range names {
			u, err := a.store.UserByName(ctx, name)
			if err != nil {
				return err
			}
			users = append(users, u)
		}
	}
	if err != nil {
		return err
	}

	enc := json.NewEncoder(env.Stdout)
	var total, repaired, failed int
	count := func(c *files.SpaceCheck) {
		total += len(c.Differences)
		for _, d := range c.Differences {
			if d.Repaired {
				repaired++
			} else if d.RepairError != "" {
				failed++
			}
		}
	}
	for _, u := range users {
		space := larder.SpaceOf(u.ID)
		if spaces != nil {
			has, err := spaces.Has(u.ID)
			if err != nil {
				return err
			}
			if !has {
				// No space, so no file: any record is one with no object,
				// which the check reports, making the space as it opens it.
				n, err := a.db.files().SpaceUsage(ctx, space)
				if err != nil {
					return err
				}
				if n.Files == 0 {
					continue
				}
			}
		}
		c, err := svc.Check(ctx, space, *repair)
		if err != nil {
			return fmt.Errorf("space of %s (%s): %w", u.Name, space, err)
		}
		count(c)
		if *asJSON {
			if err := enc.Encode(struct {
				User string `json:"user"`
				*files.SpaceCheck
			}{u.Name, c}); err != nil {
				return err
			}
			continue
		}
		printCheck(env, u.Name, c)
	}
	if shared {
		c, err := svc.Check(ctx, "", *repair)
		if err != nil {
			return fmt.Errorf("the shared area: %w", err)
		}
		count(c)
		if *asJSON {
			if err := enc.Encode(struct {
				User string `json:"user"`
				*files.SpaceCheck
			}{"", c}); err != nil {
				return err
			}
		} else {
			printCheck(env, "", c)
		}
	}
	if !*asJSON {
		fmt.Fprintf(env.Stdout, "%d differences in %d accounts' spaces", total, len(users))
		if shared {
			fmt.Fprintf(env.Stdout, " and the shared area")
		}
		fmt.Fprintf(env.Stdout, " in %s", where)
		if *repair {
			fmt.Fprintf(env.Stdout, "; %d repaired, %d not", repaired, failed)
		}
		fmt.Fprintln(env.Stdout)
	}
	if total > 0 {
		return errDifferences
	}
	return nil
}

// printCheck prints what the check of name's space (the shared area's,
// for ""), found, if anything.
func printCheck(env *Env, name string, c *files.SpaceCheck) {
	if len(c.Differences) == 0 && len(c.Uploads) == 0 && len(c.Pending) == 0 {
		return
	}
	if name == "" {
		fmt.Fprintf(env.Stdout, "the shared area: %d records, %d files (%d not hashed yet), %d differences\n", c.Records, c.Objects, c.Unrecorded, len(c.Differences))
	} else {
		fmt.Fprintf(env.Stdout, "%s (space %s): %d records, %d files, %d differences\n", name, c.Space, c.Records, c.Objects, len(c.Differences))
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	for _, d := range c.Differences {
		var what string
		switch d.Kind {
		case files.NoObject:
			what = fmt.Sprintf("recorded %d bytes, not stored", d.RecordSize)
		case files.NoRecord:
			what = fmt.Sprintf("stored %d bytes, not recorded", d.StoredSize)
		case files.SizeDiffers:
			what = fmt.Sprintf("recorded %d bytes, stored %d", d.RecordSize, d.StoredSize)
		case files.VersionDiffers:
			what = fmt.Sprintf("recorded of other content (version %q, stored %q)", d.RecordVersion, d.StoredVersion)
		}
		switch {
		case d.Repaired:
			what += "; repaired"
		case d.RepairError != "":
			what += "; not repaired: " + d.RepairError
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Kind, d.Path, what)
	}
	for _, p := range c.Uploads {
		fmt.Fprintf(tw, "  unfinished upload\t%s\t%d of %d bytes, last written %s\n", p.Target, p.Received, p.Size, p.Modified.UTC().Format(time.RFC3339))
	}
	for _, in := range c.Pending {
		to := ""
		if in.To != "" {
			to = " to " + in.To
		}
		by := "a server's"
		if id, owner, ok := strings.Cut(in.Backend, "/"); ok && strings.HasPrefix(id, "s3:") {
			by = "server " + owner + "'s" // its DATA/server-id
		}
		fmt.Fprintf(tw, "  change in flight\t%s\t%s%s (or cut short: %s next start finishes it)\n", in.Path, in.Op, to, by)
	}
	tw.Flush()
}
