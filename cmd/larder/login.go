package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/lnp"
)

func runLogin(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	fs := f.newFlagSet(env, "login", "login [flags]",
		"Logs in to a server's native protocol (LNP/1) to check the password, and saves\n"+
			"a profile (the server, the account, how its certificate is trusted; never the\n"+
			"password) so that put, get, ls and the other native commands need no flags,\n"+
			"and a device credential (a random secret in lnp_devices, mode 0600) so that they\n"+
			"need no password either, until it expires or is revoked ('larder devices',\n"+
			"'larder logout'). A password given explicitly (--password-stdin,\n"+
			"LARDER_PASSWORD) is used instead of the device credential.\n"+
			"\n"+
			"The first connection to a server pins its certificate's fingerprint in\n"+
			"known_servers in your configuration folder, as ssh does; compare it with the\n"+
			"one the server printed. A server whose certificate changed is refused.\n"+
			"\n"+
			"The salt is --salt's, else the one stored for this server and user, else the\n"+
			"one 'larder register' stored for the course server (--course-server); it is\n"+
			"then stored for this server.\n"+
			"\n"+
			"With --remote NAME, logs in to that remote ('larder remote add') and saves\n"+
			"its salt, pin and device credential, but leaves the profile as it is.")
	fs.Lookup("salt").Usage = "sign with this `salt`, and store it for this server and user"
	noDevice := fs.Bool("no-device", false, "save no device credential: later commands ask for the password")
	label := fs.String("device-label", defaultDeviceLabel(), "what 'larder devices' calls this machine")
	var courseServer string
	fs.StringVar(&courseServer, "course-server", "", "`address` of the course protocol on which the account was registered, whose\n"+
		"stored salt to use if none is stored for this server (default: env LARDER_SERVER,\n"+
		"else this server's host on port 23456)")
	pos, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("login", 0, 0, "no arguments")(pos); err != nil {
		return err
	}
	t, err := f.target(env)
	if err != nil {
		return err
	}
	if f.addr != nil && courseServer == "" {
		courseServer = f.addr.courseServer()
	}
	store, err := saltStore(env)
	if err != nil {
		return err
	}
	if err := f.dialFirst(ctx, env, t); err != nil {
		return err
	}
	defer f.closeEarly()
	password, err := readPassword(ctx, env, f.passwordStdin, t.user+"@"+t.server, false)
	if err != nil {
		return err
	}
	// The salt is needed only to enroll an account (lnpFlags.enroll).
	var s, from string
	salt := func() (string, error) {
		var err error
		s, from, err = loginSalt(env, store, f.salt, t, courseServer)
		return s, err
	}
	f.enrollAlways = true
	lctx, sess, err := f.login(ctx, env, t, password, salt)
	if err != nil && from != "" {
		return withHint(err, map[lnp.Status]string{
			lnp.StatusInvalidLogin: "signed with the salt stored for " + from + "; pass --salt if the account has another",
		})
	}
	if err != nil {
		return err
	}
	defer sess.Close()

	if s != "" && from != t.server {
		if err := store.Record(t.server, t.user, s); err != nil {
			return fmt.Errorf("saving the salt: %w", err)
		}
		fmt.Fprintf(env.Stderr, "larder: salt for %s on %s saved in %s\n", t.user, t.server, store.Path())
	}
	// A remote is its own profile: logging in to one leaves the default
	// server as it was.
	path := ""
	if f.addr == nil {
		path, err = saveProfile(env, clientconf.Settings{Server: t.server, User: t.user, Trust: t.Trust})
		if err != nil {
			return fmt.Errorf("saving the profile: %w", err)
		}
	}
	fmt.Fprintf(env.Stdout, "Logged in to %s as %s (%s).\n", t.server, t.user, printable(sess.Server()))
	switch t.Mode {
	case clientconf.TrustPin:
		// dialLNP found the folder, or it would not have pinned.
		if conf, err := config(env); err == nil {
			fmt.Fprintf(env.Stdout, "Server certificate %s, pinned in %s.\n", sess.fingerprint, conf.KnownServers().Path())
		}
	case clientconf.TrustCA:
		fmt.Fprintf(env.Stdout, "Server certificate %s, verified by a certificate authority.\n", sess.fingerprint)
	case clientconf.TrustPlaintext:
		fmt.Fprintln(env.Stdout, "No TLS (--insecure-plaintext): the login is bound to no channel, and files travel in the clear.")
	}
	if path != "" {
		fmt.Fprintf(env.Stdout, "Profile saved in %s.\n", path)
	} else {
		fmt.Fprintf(env.Stdout, "Remote %s is ready (NAME:PATH, --remote %s); the profile is unchanged.\n", f.addr.spelled, f.addr.spelled)
	}
	if *noDevice {
		return nil
	}
	// The login itself succeeded: a device credential that cannot be
	// saved leaves the commands asking for the password, as before.
	if err := addDevice(lctx, env, sess, *label); err != nil {
		fmt.Fprintf(env.Stderr, "larder: warning: no device credential saved (%v): commands will ask for the password\n", err)
	}
	return nil
}

// loginSalt returns the salt to log in to t with, and the server it is
// stored for ("" for --salt): given, stored for t, or stored for the
// course server the account was registered on.
func loginSalt(env *Env, store *clientconf.Salts, given string, t lnpTarget, courseServer string) (s, from string, err error) {
	if given != "" {
		return given, "", nil
	}
	var ok bool
	if s, ok, err = store.Lookup(t.server, t.user); err != nil {
		return "", "", err
	} else if ok {
		return s, t.server, nil
	}
	if courseServer == "" {
		courseServer = env.Getenv("LARDER_SERVER")
	}
	if courseServer == "" {
		host, _, _ := net.SplitHostPort(t.server)
		courseServer = net.JoinHostPort(host, "23456")
	}
	if s, ok, err = store.Lookup(courseServer, t.user); err != nil {
		return "", "", err
	} else if ok {
		return s, courseServer, nil
	}
	return "", "", fmt.Errorf("no salt for user %q on %s or on the course server %s in %s: register from this machine ('larder register'), "+
		"name the course server you registered on (--course-server), or pass the salt the account was registered with (--salt)",
		t.user, t.server, courseServer, store.Path())
}

// whoamiJSON is what whoami --json prints. A quota of null is none.
type whoamiJSON struct {
	User       string  `json:"user"`
	Server     string  `json:"server"`
	ServerName string  `json:"server_name"`
	BytesUsed  uint64  `json:"bytes_used"`
	BytesQuota *uint64 `json:"bytes_quota"`
	FilesUsed  uint64  `json:"files_used"`
	FilesQuota *uint64 `json:"files_quota"`
	Parts      int     `json:"parts"`       // unfinished uploads
	PartsBytes uint64  `json:"parts_bytes"` // the size they hold against the quota
}

func runWhoami(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	c := lnpCommand{
		name: "whoami", synopsis: "whoami [--json] [flags]",
		help: "Prints the account, the server, and the account's usage and quotas.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON object: user, server, server_name, bytes_used, bytes_quota,\n"+
				"files_used, files_quota (null: no quota), parts, parts_bytes")
		},
		args: wantArgs("whoami", 0, 0, "no arguments"),
		run: func(ctx context.Context, s *lnpSession, _ []string) error {
			w, err := s.Whoami(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				j := whoamiJSON{User: w.User, Server: s.target.server, ServerName: s.Server(),
					BytesUsed: w.BytesUsed, FilesUsed: w.FilesUsed}
				if w.BytesQuota != 0 {
					j.BytesQuota = &w.BytesQuota
				}
				if w.FilesQuota != 0 {
					j.FilesQuota = &w.FilesQuota
				}
				parts, err := s.Parts(ctx)
				if err != nil {
					return err
				}
				for _, p := range parts {
					j.Parts++
					j.PartsBytes += p.Size
				}
				return writeJSON(env.Stdout, j)
			}
			quota := func(q uint64, unit func(uint64) string) string {
				if q == 0 {
					return "no quota"
				}
				return "quota " + unit(q)
			}
			bytes := func(n uint64) string { return fmt.Sprintf("%s (%d bytes)", formatBytes(int64(n)), n) }
			fmt.Fprintf(env.Stdout, "user:   %s\n", printable(w.User))
			fmt.Fprintf(env.Stdout, "server: %s (%s)\n", s.target.server, printable(s.Server()))
			fmt.Fprintf(env.Stdout, "bytes:  %s used, %s\n", bytes(w.BytesUsed), quota(w.BytesQuota, bytes))
			fmt.Fprintf(env.Stdout, "files:  %d used, %s\n", w.FilesUsed, quota(w.FilesQuota, func(n uint64) string { return fmt.Sprint(n) }))
			if parts, err := s.Parts(ctx); err == nil && len(parts) > 0 {
				var held uint64
				for _, p := range parts {
					held += p.Size
				}
				fmt.Fprintf(env.Stdout, "parts:  %s, holding %s of that ('larder parts')\n", unfinished(len(parts)), bytes(held))
			}
			return nil
		},
	}
	return c.main(ctx, env, args)
}

func runPasswd(ctx context.Context, env *Env, args []string) error {
	var f lnpFlags
	fs := f.newFlagSet(env, "passwd", "passwd [flags]",
		"Changes the account's password: the server replaces the native protocol's\n"+
			"credential with one made here from the new password and, for an account that\n"+
			"also has a password for the course protocol, its verifier (the old and the new\n"+
			"password signed with the salt stored for the account, or --salt), in one\n"+
			"request, and ends your other sessions.\n"+
			"\n"+
			"The old password comes from the first line of stdin with --password-stdin,\n"+
			"else LARDER_PASSWORD, else a prompt; the new one from the second line of stdin\n"+
			"with --password-stdin, else LARDER_NEW_PASSWORD, else a prompt, asked twice.\n"+
			"\n"+
			"The account's device credentials on other machines are revoked, unless\n"+
			"--keep-devices: whoever learned the old password may have made one.")
	keepDevices := fs.Bool("keep-devices", false, "keep the device credentials of other machines")
	pos, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("passwd", 0, 0, "no arguments")(pos); err != nil {
		return err
	}
	t, err := f.target(env)
	if err != nil {
		return err
	}
	// No salt: the account logs in over LNP/1 only, or the server says
	// which salt it wants.
	s, saltErr := f.saltFor(env, t)
	who := t.user + "@" + t.server
	old := passwordInput{envVar: "LARDER_PASSWORD", prompt: fmt.Sprintf("Old password for %s: ", who)}
	next := passwordInput{envVar: "LARDER_NEW_PASSWORD", prompt: fmt.Sprintf("New password for %s: ", who), confirm: true}
	if f.passwordStdin {
		old.stdin = bufio.NewReader(io.LimitReader(env.Stdin, 2*(maxPassword+2)))
		next.stdin = old.stdin
	}
	if err := f.dialFirst(ctx, env, t); err != nil {
		return err
	}
	defer f.closeEarly()
	oldPw, err := old.read(ctx, env)
	if err != nil {
		return err
	}
	newPw, err := next.read(ctx, env)
	if err != nil {
		return fmt.Errorf("the new password: %w", err)
	}
	ctx, sess, err := f.login(ctx, env, t, oldPw, func() (string, error) { return s, saltErr })
	if err != nil {
		return err
	}
	defer sess.Close()
	// Both credentials in one request: the course signature's, and the
	// channel-bound login's, made from the new password here, so that no
	// enrollment with the course signature is needed after.
	var oldSig, newSig larder.Signature
	if saltErr == nil {
		oldSig, newSig = larder.NewSignature(oldPw, s), larder.NewSignature(newPw, s)
	}
	// The other devices go first, so that no failure or interruption
	// between the two requests leaves a new password beside devices that
	// whoever knew the old one may have made.
	if !*keepDevices {
		if err := revokeOtherDevices(ctx, env, sess); err != nil {
			return err
		}
	}
	if err := sess.ChangePassword(ctx, oldSig, newSig, newPw); err != nil {
		if saltErr != nil {
			err = withHint(err, map[lnp.Status]string{lnp.StatusBadRequest: saltErr.Error()})
		}
		return fmt.Errorf("the password is unchanged: %w", sessionError(err))
	}
	fmt.Fprintf(env.Stdout, "Password changed for %s on %s.\n", t.user, t.server)
	return nil
}
