package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/larderfs/larder/lnp"
)

// runParts lists the account's unfinished uploads, or with "rm" cancels
// some.
func runParts(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "rm" {
		return runPartsRm(ctx, env, args[1:])
	}
	var asJSON bool
	c := lnpCommand{
		name: "parts", synopsis: "parts [--json] | parts rm PATH... | parts rm --all",
		help: "Lists your unfinished uploads: those interrupted, kept for 'larder put' to\n" +
			"resume, and those being written now. Each holds its file's whole size against\n" +
			"your quota until it completes, is cancelled with 'larder parts rm', or expires\n" +
			"24 hours after its last write.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON array: path, size, received, modified, active, id")
		},
		args: wantArgs("parts", 0, 0, "no arguments but rm"),
		run: func(ctx context.Context, s *lnpSession, _ []string) error {
			parts, err := s.Parts(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]partJSON, 0, len(parts))
				for _, p := range parts {
					list = append(list, partJSON{Path: p.Path, Size: p.Size, Received: p.Received, Modified: p.Modified.UTC(), Active: p.Active, ID: p.ID})
				}
				return writeJSON(env.Stdout, list)
			}
			if len(parts) == 0 {
				fmt.Fprintln(env.Stdout, "no unfinished uploads")
				return nil
			}
			var held uint64
			for _, p := range parts {
				held += p.Size
				fmt.Fprintln(env.Stdout, partLine(p))
			}
			fmt.Fprintf(env.Stdout, "%s, holding %s against your quota; 'larder parts rm PATH' cancels one\n",
				unfinished(len(parts)), formatBytes(int64(held)))
			return nil
		},
	}
	return c.main(ctx, env, args)
}

// partJSON is a part as parts --json prints it.
type partJSON struct {
	Path     string    `json:"path"`
	Size     uint64    `json:"size"`
	Received uint64    `json:"received"`
	Modified time.Time `json:"modified"`
	Active   bool      `json:"active"`
	ID       string    `json:"id"`
}

// partLine describes p on one line.
func partLine(p lnp.Part) string {
	name := printable("/" + p.Path)
	if p.Path == "" {
		name = "(unknown path) " + printable(p.ID)
	}
	pct := 100.0
	if p.Size > 0 {
		pct = float64(p.Received) * 100 / float64(p.Size)
	}
	line := fmt.Sprintf("%s  %s of %s (%.0f%%), last written %s", name, formatBytes(int64(p.Received)),
		formatBytes(int64(p.Size)), pct, p.Modified.Local().Format(timeFormat))
	if p.Active {
		line += ", being written now"
	}
	return line
}

func runPartsRm(ctx context.Context, env *Env, args []string) error {
	var all bool
	c := lnpCommand{
		name: "parts rm", synopsis: "parts rm PATH... | parts rm --all",
		help: "Cancels the unfinished uploads to each PATH, or with --all every one not being\n" +
			"written now, and gives their space back to your quota.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "cancel every unfinished upload not being written now")
		},
		args: func(pos []string) error {
			if all != (len(pos) == 0) {
				return usageError("parts rm takes one PATH or more, or --all")
			}
			// The protocol's empty path cancels every upload: only
			// --all may ask for that, not a variable left unset.
			if slices.Contains(pos, "") {
				return usageError("parts rm: an empty PATH names no upload; --all cancels every one")
			}
			return nil
		},
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			if all {
				pos = []string{""}
			}
			for _, p := range pos {
				r, err := s.Cancel(ctx, p)
				if err != nil {
					return withHint(err, map[lnp.Status]string{lnp.StatusConflict: "a session is uploading it now"})
				}
				fmt.Fprintf(env.Stderr, "larder: cancelled %s, %s freed\n", unfinished(int(r.Count)), formatBytes(int64(r.Bytes)))
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

// unfinished counts n unfinished uploads in words.
func unfinished(n int) string {
	if n == 1 {
		return "1 unfinished upload"
	}
	return fmt.Sprintf("%d unfinished uploads", n)
}
