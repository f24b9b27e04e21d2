package main

import (
	"context"

	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/lnp"
)

// deviceStore opens the store of device credentials in the configuration
// folder.
func deviceStore(env *Env) (*clientconf.Devices, error) {
	conf, err := config(env)
	if err != nil {
		return nil, err
	}
	return conf.Devices(), nil
}

// storedDevice returns this machine's device credential for t, if any.
func storedDevice(env *Env, t lnpTarget) (clientconf.Device, bool) {
	store, err := deviceStore(env)
	if err != nil {
		return clientconf.Device{}, false
	}
	d, ok, err := store.Lookup(t.server, t.user)
	if err != nil {
		fmt.Fprintf(env.Stderr, "larder: warning: %v\n", err)
		return clientconf.Device{}, false
	}
	return d, ok
}

// forgetDevice removes this machine's device credential for t.
func forgetDevice(env *Env, t lnpTarget) {
	if store, err := deviceStore(env); err == nil {
		if err := store.Remove(t.server, t.user); err != nil {
			fmt.Fprintf(env.Stderr, "larder: warning: %v\n", err)
		}
	}
}

// deviceLogin logs in to t with the device credential 'larder login'
// stored, unless a password was given (--password-stdin,
// LARDER_PASSWORD), which then wins. It reports false when there is no
// credential to use, or the server refused it (refused is then true), and
// the caller asks for the password.
func (f *lnpFlags) deviceLogin(ctx context.Context, env *Env, t lnpTarget) (_ context.Context, _ *lnpSession, ok, refused bool, _ error) {
	if f.passwordStdin || env.Getenv("LARDER_PASSWORD") != "" {
		return nil, nil, false, false, nil
	}
	d, ok := storedDevice(env, t)
	if !ok {
		return nil, nil, false, false, nil
	}
	if !time.Now().Before(d.Expires) {
		fmt.Fprintf(env.Stderr, "larder: the device credential of %s on %s expired at %s: forgotten; 'larder login' saves a new one\n", t.user, t.server, d.Expires.Format(time.RFC3339))
		forgetDevice(env, t)
		return nil, nil, false, false, nil
	}
	cancel := context.CancelFunc(func() {})
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	opts, err := loginOptions(env, f.idleTimeout)
	if err != nil {
		cancel()
		return nil, nil, false, false, err
	}
	conn, err := f.dialLNP(ctx, env, t)
	if err != nil {
		cancel()
		return nil, nil, false, false, err
	}
	s := &lnpSession{target: t, cancel: cancel, fingerprint: fingerprintOf(conn), device: d.ID, reopen: f.deviceReopener(env, t, d)}
	s.Session, err = client.LoginDevice(ctx, conn, t.user, d.ID, d.Secret, opts.SessionOptions)
	if refusedFeatures(err, opts.Features) {
		opts.Features = 0
		if conn, err = f.dialLNP(ctx, env, t); err == nil {
			s.Session, err = client.LoginDevice(ctx, conn, t.user, d.ID, d.Secret, opts.SessionOptions)
		}
	}
	if st, ok := lnpStatus(err); ok && st == lnp.StatusInvalidLogin {
		cancel()
		// Revoked, expired, or its account disabled: the answer does not
		// say which. The caller forgets it once the password logs in,
		// which a disabled account's does not: its device, still valid on
		// the server, is kept for when the account is enabled again.
		fmt.Fprintf(env.Stderr, "larder: the server refused the device credential of %s on %s (revoked or expired, or the account is disabled)\n", t.user, t.server)
		return nil, nil, false, true, nil
	}
	if err != nil {
		cancel()
		return nil, nil, false, false, sessionError(err)
	}
	return ctx, s, true, false, nil
}

// addDevice gives the server a new device credential for this machine,
// in session s logged in with the password, revoking the one this
// machine had, and stores it.
func addDevice(ctx context.Context, env *Env, s *lnpSession, label string) error {
	store, err := deviceStore(env)
	if err != nil {
		return err
	}
	t := s.target
	if old, ok, _ := store.Lookup(t.server, t.user); ok {
		// Best effort: the old one may be revoked or expired already.
		s.RevokeDevice(ctx, old.ID)
	}
	secret := client.NewDeviceSecret()
	r, err := s.AddDevice(ctx, label, secret)
	if err != nil {
		return sessionError(err)
	}
	if err := store.Record(t.server, t.user, clientconf.Device{ID: r.ID, Secret: secret, Expires: r.Expires}); err != nil {
		s.RevokeDevice(ctx, r.ID)
		return err
	}
	fmt.Fprintf(env.Stdout, "Device credential %s saved in %s, until %s: later commands need no password ('larder logout' revokes it).\n",
		auth.DeviceID(r.ID), store.Path(), r.Expires.Local().Format(time.RFC3339))
	return nil
}

func defaultDeviceLabel() string {
	if h, err := os.Hostname(); err == nil && len(h) <= larder.MaxDeviceLabel && larder.ValidateNewName("label", h) == nil {
		return h
	}
	return "larder"
}

// deviceJSON is a device credential as devices --json and admin user
// devices --json print it: last_used is null for never.
type deviceJSON struct {
	ID       string     `json:"id"`
	Label    string     `json:"label"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used"`
	Expires  time.Time  `json:"expires"`
}

func newDeviceJSON(id [16]byte, label string, created, lastUsed, expires time.Time) deviceJSON {
	d := deviceJSON{ID: auth.DeviceID(id), Label: label, Created: created.UTC(), Expires: expires.UTC()}
	if !lastUsed.IsZero() {
		t := lastUsed.UTC()
		d.LastUsed = &t
	}
	return d
}

// myDeviceJSON is a device as devices --json prints it: this_machine
// marks the one this machine logs in with.
type myDeviceJSON struct {
	deviceJSON
	ThisMachine bool `json:"this_machine"`
}

func runDevices(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	c := lnpCommand{
		name: "devices", synopsis: "devices [flags]",
		help: "Lists the account's device credentials: the machines on which 'larder login'\n" +
			"saved one, which log in without the password until they expire or are revoked\n" +
			"('larder logout'). The one marked * is this machine's.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON array: id, label, created, last_used, expires, this_machine")
		},
		args: wantArgs("devices", 0, 0, "no arguments"),
		run: func(ctx context.Context, s *lnpSession, _ []string) error {
			ds, err := s.Devices(ctx)
			if err != nil {
				return err
			}
			mine, _ := storedDevice(env, s.target)
			if asJSON {
				list := make([]myDeviceJSON, 0, len(ds))
				for _, d := range ds {
					list = append(list, myDeviceJSON{newDeviceJSON(d.ID, d.Label, d.Created, d.LastUsed, d.Expires), d.Current || d.ID == mine.ID})
				}
				return writeJSON(env.Stdout, list)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\tID\tLABEL\tCREATED\tLAST USED\tEXPIRES")
			when := func(t time.Time) string {
				if t.IsZero() {
					return "never"
				}
				return t.Local().Format("2006-01-02 15:04")
			}
			for _, d := range ds {
				mark := ""
				if d.Current || d.ID == mine.ID {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, auth.DeviceID(d.ID), printable(d.Label), when(d.Created), when(d.LastUsed), when(d.Expires))
			}
			if len(ds) == 0 {
				fmt.Fprintln(tw, "\t(none)")
			}
			return tw.Flush()
		},
	}
	return c.main(ctx, env, args)
}

func runLogout(ctx context.Context, env *Env, args []string) error {
	var all bool
	c := lnpCommand{
		name: "logout", synopsis: "logout [ID] [--all] [flags]",
		help: "Revokes this machine's device credential on the server and forgets it, so\n" +
			"that commands ask for the password again. With an ID (from 'larder devices'),\n" +
			"revokes that device instead; with --all, every device of the account.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "revoke every device credential of the account")
		},
		args: func(pos []string) error {
			if err := wantArgs("logout", 0, 1, "at most one device ID")(pos); err != nil {
				return err
			}
			if len(pos) == 1 {
				if all {
					return usageError("logout: an ID or --all, not both")
				}
				_, err := auth.ParseDeviceID(pos[0])
				return err
			}
			return nil
		},
		run: func(ctx context.Context, s *lnpSession, pos []string) error {
			mine, haveMine := storedDevice(env, s.target)
			switch {
			case all:
				n, err := s.RevokeOtherDevices(ctx, [16]byte{})
				if err != nil {
					return err
				}
				forgetDevice(env, s.target)
				fmt.Fprintf(env.Stdout, "Revoked %d device credentials of %s on %s.\n", n, s.target.user, s.target.server)
				return nil
			case len(pos) == 1:
				id, _ := auth.ParseDeviceID(pos[0])
				if err := s.RevokeDevice(ctx, id); err != nil {
					return err
				}
				if haveMine && id == mine.ID {
					forgetDevice(env, s.target)
				}
				fmt.Fprintf(env.Stdout, "Revoked device %s.\n", pos[0])
				return nil
			case !haveMine:
				return usageError("logout: no device credential of %s on %s is stored on this machine; name one ('larder devices') or pass --all", s.target.user, s.target.server)
			}
			err := s.RevokeDevice(ctx, mine.ID)
			if st, ok := lnpStatus(err); ok && st == lnp.StatusNotFound {
				err = nil // revoked already
			}
			if err != nil {
				return err
			}
			forgetDevice(env, s.target)
			fmt.Fprintf(env.Stdout, "Logged out: device %s revoked and forgotten.\n", auth.DeviceID(mine.ID))
			return nil
		},
	}
	return c.main(ctx, env, args)
}

// revokeOtherDevices, after a password change in s, revokes the
// account's devices but this machine's.
func revokeOtherDevices(ctx context.Context, env *Env, s *lnpSession) error {
	mine, _ := storedDevice(env, s.target)
	n, err := s.RevokeOtherDevices(ctx, mine.ID)
	if err != nil {
		return fmt.Errorf("the other machines' devices could not be revoked, so the password is unchanged: %w", sessionError(err))
	}
	if n > 0 {
		fmt.Fprintf(env.Stdout, "Revoked %d device credentials of other machines (--keep-devices keeps them).\n", n)
	}
	return nil
}

func runUserDevices(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "user devices", "user devices NAME [--revoke ID | --revoke-all] [flags]",
		"Lists an account's device credentials (what 'larder login' saves on a machine to\n"+
			"log in without the password), or revokes one or all: a revoked device logs in\n"+
			"no more, and its sessions end within a second, on every server.", &cfg)
	revoke := fs.String("revoke", "", "revoke the device of this `ID`")
	revokeAll := fs.Bool("revoke-all", false, "revoke every device of the account")
	asJSON := fs.Bool("json", false, "list as a JSON array: id, label, created, last_used, expires")
	a, name, err := openAuditedOneArg(ctx, env, fs, &cfg, args, "account name")
	if err != nil {
		return err
	}
	defer a.Close()
	if *revoke != "" && *revokeAll {
		return usageError("user devices: --revoke or --revoke-all, not both")
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	ds := a.db.devices()
	switch {
	case *revoke != "":
		id, err := auth.ParseDeviceID(*revoke)
		if err != nil {
			return err
		}
		if err := ds.RevokeDevice(ctx, u.ID, id); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "device %s of %s revoked\n", *revoke, name)
		return a.recordChange(ctx, name, "device revoked by an administrator: "+*revoke)
	case *revokeAll:
		n, err := ds.RevokeDevices(ctx, u.ID, [16]byte{})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%d devices of %s revoked\n", n, name)
		return a.recordChange(ctx, name, fmt.Sprintf("%d devices revoked by an administrator", n))
	}
	list, err := ds.Devices(ctx, u.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]deviceJSON, 0, len(list))
		for _, d := range list {
			out = append(out, newDeviceJSON(d.ID, d.Label, d.CreatedAt, d.LastUsed, d.ExpiresAt))
		}
		return writeJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLABEL\tCREATED\tLAST USED\tEXPIRES")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", auth.DeviceID(d.ID), printable(d.Label), when(d.CreatedAt), when(d.LastUsed), when(d.ExpiresAt))
	}
	return tw.Flush()
}
