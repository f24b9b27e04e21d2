package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/s3"
)

func userCommands() []command {
	return []command{
		{"list", "list the accounts", runUserList},
		{"add", "add an account with a password typed at the prompt", runUserAdd},
		{"passwd", "reset an account's password, typed at the prompt", runUserPasswd},
		{"quota", "set or show an account's own quota over the servers' default", runUserQuota},
		{"disable", "refuse an account's logins, at once", runUserSetDisabled(true)},
		{"enable", "allow a disabled account's logins again", runUserSetDisabled(false)},
		{"delete", "delete an account, at once", runUserDelete},
		{"devices", "list or revoke an account's device credentials", runUserDevices},
		{"import", "import accounts and their hashes from a file (NAME:HASH lines)", runUserImport},
	}
}

func runAdminUser(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder admin user", userCommands(), args)
}

func runUserList(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "user list", "user list [--json] [flags]",
		"Lists the accounts in byte order of their names, with their own quotas\n"+
			"(\"default\": the servers' --quota-bytes and --quota-files), what their\n"+
			"stored files take (unfinished uploads, which also count against a quota, are\n"+
			"not shown: 'larder whoami' counts them), and their last login, recorded to\n"+
			"within a minute.", &cfg)
	asJSON := fs.Bool("json", false, "one JSON object per line, for scripts")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	a, err := openAccounts(ctx, &cfg)
	if err != nil {
		return err
	}
	defer a.Close()

	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(env.Stdout)
	if !*asJSON {
		fmt.Fprintf(tw, "NAME\tSTATE\tQUOTA (BYTES / FILES)\tUSED\tLAST LOGIN\tCREATED\tCHANGED\tNATIVE\tHASH\n")
	}
	records := a.db.files()
	err = eachUser(ctx, a.store, func(u *larder.User) error {
		used, err := records.SpaceUsage(ctx, larder.SpaceOf(u.ID))
		if err != nil {
			return err
		}
		label, err := a.hasher.Describe(u.Verifier)
		if err != nil {
			label = "unreadable"
		}
		state := "enabled"
		if u.Disabled {
			state = "disabled"
		}
		// Whether the account has its credential for the native
		// protocol's channel-bound login: an administrator closes the
		// window for course signatures (--native-signature-logins
		// closed) once every account that needs it has one.
		native, err := a.hasher.DescribeLNP(u.LNPCredential)
		if err != nil {
			native = "unreadable"
		}
		enrolled := "enrolled"
		if u.LNPCredential == "" {
			enrolled = "no"
		}
		lastLogin := "never"
		if !u.LastLogin.IsZero() {
			lastLogin = u.LastLogin.Local().Format(time.DateTime)
		}
		if *asJSON {
			var j userJSON
			j.Name, j.Disabled, j.Created, j.Changed = u.Name, u.Disabled, u.CreatedAt, u.UpdatedAt
			j.Hash, j.Current, j.Native = label, a.hashCurrent(u.Verifier), native
			j.QuotaBytes, j.QuotaFiles = boundJSON(u.Quota.Bytes, u.Quota.SetBytes), boundJSON(u.Quota.Files, u.Quota.SetFiles)
			j.BytesUsed, j.FilesUsed = used.Bytes, used.Files
			if !u.LastLogin.IsZero() {
				j.LastLogin = &u.LastLogin
			}
			return enc.Encode(j)
		}
		files := "files"
		if used.Files == 1 {
			files = "file"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, state, quotaText(u.Quota),
			fmt.Sprintf("%s / %d %s", formatBytes(used.Bytes), used.Files, files), lastLogin,
			u.CreatedAt.Format(time.DateTime), u.UpdatedAt.Format(time.DateTime), enrolled, label)
		return nil
	})
	if !*asJSON {
		tw.Flush()
	}
	return err
}

// userJSON is a line of 'admin user list --json'. A bound of the quota
// is null for the servers' default, 0 for none; last_login is null for
// none recorded.
type userJSON struct {
	Name       string     `json:"name"`
	Disabled   bool       `json:"disabled"`
	Created    time.Time  `json:"created"`
	Changed    time.Time  `json:"changed"`
	Hash       string     `json:"hash"`
	Current    *bool      `json:"hash_current"` // null: no policy known
	Native     string     `json:"native"`
	QuotaBytes *int64     `json:"quota_bytes"`
	QuotaFiles *int64     `json:"quota_files"`
	BytesUsed  int64      `json:"bytes_used"`
	FilesUsed  int64      `json:"files_used"`
	LastLogin  *time.Time `json:"last_login"`
}

// boundJSON is a bound of an account's own quota in JSON: null where
// not set.
func boundJSON(n int64, set bool) *int64 {
	if !set {
		return nil
	}
	return &n
}

// passwordFlags are the flags of the commands that set a password.
type passwordFlags struct {
	salt          string
	newSalt       bool // passwd: a new random salt for an account that has one
	course        bool // also a password for the course protocol
	nativeOnly    bool // no password for the course protocol
	passwordStdin bool
	address       string // the course protocol's, for the command printed for the user
}

func (p *passwordFlags) define(fs *flag.FlagSet, env *Env, add bool) {
	if add {
		fs.StringVar(&p.salt, "salt", "", "the client `salt` the user will sign with on the course protocol; \"course\" for the course client's fixed salt\n"+
			"(implies --course; default: a new random salt, printed)")
		fs.BoolVar(&p.course, "course", false, "also give the account a password for the course protocol (by default it logs in over the native protocol only)")
	} else {
		fs.StringVar(&p.salt, "salt", "", "the client `salt` the user signs with on the course protocol: the one they have\n"+
			"('larder salt show' prints it), to keep it; \"course\" for the course client's fixed salt (implies --course)")
		fs.BoolVar(&p.newSalt, "new-salt", false, "give the account a new random salt for the course protocol, printed with the command\n"+
			"the user stores it with (implies --course)")
		fs.BoolVar(&p.course, "course", false, "also give the account a password for the course protocol, if it has none")
		fs.BoolVar(&p.nativeOnly, "native-only", false, "take away the account's password for the course protocol: it logs in over the native protocol only")
	}
	fs.BoolVar(&p.passwordStdin, "password-stdin", false, "read the password from the first line of stdin (else LARDER_PASSWORD, else a prompt)")
	fs.StringVar(&p.address, "server-address", env.Getenv("LARDER_SERVER"), "the course protocol's `address` as users reach it, for the 'larder salt set'\n"+
		"command printed for them (env LARDER_SERVER; default: HOST:PORT, to fill in)")
}

// courseSalt returns the salt of the account's course-protocol password:
// --salt, or a new random one.
func (p *passwordFlags) courseSalt() (string, error) {
	switch p.salt {
	case "course":
		return course.CourseSalt, nil
	case "":
		return larder.NewSalt()
	}
	return p.salt, nil
}

// tellSalt tells the administrator which salt the user must sign with,
// and the command that stores it on the user's machine (with --replace
// over an older one when the account had a salt). The salt is no secret
// from the server's administrator: it only makes the signature differ
// between servers and users.
func tellSalt(env *Env, name, s, address string, replace bool) {
	if s == course.CourseSalt {
		fmt.Fprintf(env.Stdout, "%s signs with the course client's fixed salt (larder get --salt %s).\n", name, s)
		return
	}
	if address == "" {
		// Not a usable address: pasted as it is, the command is refused.
		address = "HOST:PORT"
	}
	flags := ""
	if replace {
		flags = " --replace"
	}
	fmt.Fprintf(env.Stdout, "%s's client salt, to hand over with the password: %s\n"+
		"%s stores it on their machine with:\n\n    larder salt set --server %s --user %s%s %s\n\n",
		name, s, name, shellQuote(address), shellQuote(name), flags, s)
	if address == "HOST:PORT" {
		fmt.Fprintln(env.Stdout, "(HOST:PORT: the course protocol's address as users reach it, such as files.example.org:23456;\n"+
			"--server-address puts it in)")
	}
}

// shellQuote returns s as a POSIX shell reads it back: as is if it is
// made of characters no shell treats specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:@/+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func runUserAdd(ctx context.Context, env *Env, args []string) error {
	return setPassword(ctx, env, args, true)
}

func runUserPasswd(ctx context.Context, env *Env, args []string) error {
	return setPassword(ctx, env, args, false)
}

// setPassword adds an account (add) or resets its password. The password
// is typed at the prompt; from it come the native protocol's credential
// and, for an account that has one, the course protocol's verifier (of the
// password signed with the client salt). Neither the password nor the
// signature is shown or stored.
func setPassword(ctx context.Context, env *Env, args []string, add bool) error {
	cfg := defaultAccountConfig(env.Getenv)
	var pf passwordFlags
	name, synopsis, help := "user passwd", "user passwd NAME [--course | --native-only] [--keep-devices] [flags]",
		"Resets an account's password. The new password is typed at the prompt (by the\n"+
			"user, ideally); neither it nor its signature is shown or stored anywhere but in\n"+
			"the account's credentials: the native protocol's and, if the account has one,\n"+
			"the course protocol's. The old password stops working at once, on every\n"+
			"server, and the account's device credentials are revoked."
	if add {
		name, synopsis, help = "user add", "user add NAME [--course] [flags]",
			"Adds an account. The password is typed at the prompt (by the user, ideally);\n"+
				"neither it nor anything made from it is shown. The account logs in over the\n"+
				"native protocol only, unless --course also gives it a password for the course\n"+
				"protocol, signed with the client salt."
	}
	fs := adminFlagSet(env, name, synopsis, help, &cfg)
	pf.define(fs, env, add)
	var keepDevices *bool
	if !add {
		keepDevices = fs.Bool("keep-devices", false, "keep the account's device credentials")
	}
	sink := defineAuditSink(fs)
	user, err := oneArg(fs, args, "account name")
	if err != nil {
		return err
	}
	if pf.nativeOnly && (pf.course || pf.salt != "" || pf.newSalt) {
		return usageError("--native-only goes with none of --course, --salt and --new-salt")
	}
	if pf.newSalt && pf.salt != "" {
		return usageError("--new-salt and --salt exclude each other")
	}
	validate := larder.ValidateUsername
	if add {
		validate = larder.ValidateNewUsername // an existing name keeps working
	}
	if err := validate(user); err != nil {
		return usageError("bad account name: %s", larder.ErrorMessage(err))
	}
	a, err := openAccountsAudited(ctx, env, &cfg, *sink)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.needPolicy(); err != nil {
		return err // a hash by another policy would be replaced at the first login, or be weaker
	}
	u, err := a.store.UserByName(ctx, user)
	switch {
	case add && err == nil:
		return larder.Errorf(larder.ECONFLICT, "user %q already exists", user)
	case !add && err != nil:
		return err
	}
	withCourse := pf.course || pf.salt != "" || pf.newSalt || !add && u.Verifier != "" && !pf.nativeOnly
	// The server keeps only a hash of the signature, never the salt: a
	// new password for an account that has a course password needs the
	// salt its user signs with, or a new one on purpose, which the user
	// must then store.
	hadSalt := !add && u.Verifier != ""
	if withCourse && hadSalt && pf.salt == "" && !pf.newSalt {
		return usageError("%s signs on the course protocol with a salt of their own, which the server does not know "+
			"(it keeps only a hash of the signature): pass --salt SALT to keep it (the user prints it with 'larder salt show'), "+
			"--new-salt to give a new one (the user then stores it with 'larder salt set'), or --native-only", user)
	}
	var s string
	if withCourse {
		if s, err = pf.courseSalt(); err != nil {
			return err
		}
		if pf.salt != "" && pf.salt != "course" {
			if err := checkSalt(s); err != nil {
				return err
			}
		}
	}
	pw, err := readPassword(ctx, env, pf.passwordStdin, user+" (new)", true)
	if err != nil {
		return err
	}
	var v string
	if withCourse {
		sig := larder.NewSignature(pw, s)
		if v, err = a.hasher.Hash(ctx, sig[:]); err != nil {
			return err
		}
	}
	cred, err := a.hasher.NewLNPCredential(user, pw)
	if err != nil {
		return err
	}
	if add {
		err = a.store.CreateUser(ctx, &larder.User{Name: user, Verifier: v, LNPCredential: cred})
	} else {
		if !*keepDevices {
			if err := a.revokeDevices(ctx, env, u); err != nil {
				return err
			}
		}
		err = a.store.ReplaceCredentials(ctx, user, u.ID, u.CredentialGen, v, cred)
		if larder.ErrorCode(err) == larder.ECONFLICT {
			err = replacedAccount(ctx, a.store, u, err)
		}
	}
	if err != nil {
		return err
	}
	what := "password reset by an administrator"
	if add {
		what = "added by an administrator"
		fmt.Fprintf(env.Stdout, "user %s added\n", user)
	} else {
		fmt.Fprintf(env.Stdout, "password of %s changed\n", user)
	}
	if withCourse {
		what += ", with a password for the course protocol"
		if hadSalt && pf.salt != "" && s != course.CourseSalt {
			fmt.Fprintf(env.Stdout, "%s keeps the salt given with --salt: hand over the new password only\n", user)
		} else {
			tellSalt(env, user, s, pf.address, hadSalt)
		}
	} else {
		what += ", native protocol only"
		fmt.Fprintf(env.Stdout, "%s logs in over the native protocol only (larder login)\n", user)
	}
	if err := a.recordChange(ctx, user, what); err != nil {
		return err
	}
	return nil
}

// revokeDevices revokes every device credential of u before a password
// reset: whoever learned the old password may have made one. It comes
// first so that no failure or kill between the two steps leaves a new
// password beside the devices of the old one; the reverse (devices
// revoked, password unchanged) is undone by running the reset again.
func (a *accounts) revokeDevices(ctx context.Context, env *Env, u *larder.User) error {
	n, err := a.db.devices().RevokeDevices(ctx, u.ID, [16]byte{})
	if err != nil {
		return fmt.Errorf("the account's devices could not be revoked, so its password is unchanged: %w", err)
	}
	if n == 0 {
		return nil
	}
	fmt.Fprintf(env.Stdout, "%d devices of %s revoked\n", n, u.Name)
	return a.recordChange(ctx, u.Name, fmt.Sprintf("%d devices revoked by an administrator", n))
}

// replacedAccount returns the error of a reset of u refused with err
// (ECONFLICT), saying so if the name is now another account's: run
// again, the command would reset the new account's password.
func replacedAccount(ctx context.Context, store larder.UserStore, u *larder.User, err error) error {
	if now, nerr := store.UserByName(ctx, u.Name); nerr == nil && now.ID != u.ID {
		return fmt.Errorf("user %q was deleted while its new password was typed, and the name is now another account's (id %d, not %d): nothing changed", u.Name, now.ID, u.ID)
	}
	return err
}

func runUserSetDisabled(disabled bool) func(context.Context, *Env, []string) error {
	verb, help := "enable", "Allows a disabled account's logins again."
	if disabled {
		verb, help = "disable", "Refuses the account's logins from its next request on, on every server; its\n"+
			"sessions end within a second, transfers in flight included (an upload is not\n"+
			"committed). Its files and password stay."
	}
	return func(ctx context.Context, env *Env, args []string) error {
		cfg := defaultAccountConfig(env.Getenv)
		fs := adminFlagSet(env, "user "+verb, "user "+verb+" NAME [flags]", help, &cfg)
		a, name, err := openAuditedOneArg(ctx, env, fs, &cfg, args, "account name")
		if err != nil {
			return err
		}
		defer a.Close()
		if err := a.store.SetDisabled(ctx, name, disabled); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "user %s %sd\n", name, verb)
		return a.recordChange(ctx, name, verb+"d by an administrator")
	}
}

func runUserDelete(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "user delete", "user delete NAME [--keep-files] [flags]",
		"Deletes an account at once, on every server: its sessions and transfers end\n"+
			"within a second, its password hash goes, and with it the records of its files.\n"+
			"Its private space (DATA/spaces/id-N, the files and interrupted uploads) is\n"+
			"removed; with --keep-files it is moved to DATA/deleted/NAME-ID-TIME/ for an\n"+
			"administrator to hand over. With --storage s3://…, as the servers have it, the\n"+
			"space in the bucket goes instead (or is copied to PREFIX/deleted/NAME-ID-TIME/).\n"+
			"The name can then be registered again: the new account is a new id and starts\n"+
			"empty.", &cfg)
	keep := fs.Bool("keep-files", false, "move the account's files to DATA/deleted/ (PREFIX/deleted/ in a bucket) instead of removing them")
	storage := fs.String("storage", "local", "where the servers keep the users' files, as their --storage says: local (DATA/spaces) or `s3://BUCKET/PREFIX?…`")
	a, name, err := openAuditedOneArg(ctx, env, fs, &cfg, args, "account name")
	if err != nil {
		return err
	}
	defer a.Close()
	// The bucket is reached before the account goes: a storage that
	// cannot be used must not leave an account deleted and its files.
	var bucket *s3.Backend
	if *storage != "" && *storage != "local" {
		bc, err := s3.ParseURL(*storage)
		if err != nil {
			return usageError("bad --storage: %v", err)
		}
		if bucket, err = s3.New(ctx, bc); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	u, err := a.store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if err := a.store.DeleteUser(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "user %s deleted (account id %d); its sessions end within a second\n", name, u.ID)
	what, err := deleteSpace(ctx, env, a, &cfg, bucket, u, *keep)
	if rerr := a.recordChange(ctx, name, "deleted by an administrator; "+what); err == nil {
		err = rerr
	}
	return err
}

func runUserImport(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "user import", "user import FILE [flags]",
		"Imports accounts from FILE (\"-\" for stdin): one NAME:HASH per line, # comments.\n"+
			"HASH is any format larder reads: argon2id, bcrypt ($2a$, $2b$, $2y$),\n"+
			"PBKDF2-SHA256 in PHC form, or the course server's scheme; see docs/SECURITY.md\n"+
			"for what each must be a hash of. Imported hashes are upgraded to the current\n"+
			"policy at each user's next login; 'larder admin upgrade --wrap' protects them\n"+
			"at once. Existing names are skipped, never overwritten.", &cfg)
	sink := defineAuditSink(fs)
	file, err := oneArg(fs, args, "file")
	if err != nil {
		return err
	}
	var in io.Reader = env.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	a, err := openAccountsAudited(ctx, env, &cfg, *sink)
	if err != nil {
		return err
	}
	defer a.Close()

	var added, skipped, bad int
	sc := bufio.NewScanner(in)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			fmt.Fprintf(env.Stderr, "%s:%d: want NAME:HASH\n", file, n)
			bad++
			continue
		}
		if err := larder.ValidateUsername(name); err != nil {
			fmt.Fprintf(env.Stderr, "%s:%d: %s\n", file, n, larder.ErrorMessage(err))
			bad++
			continue
		}
		if _, err := a.hasher.Describe(hash); err != nil {
			fmt.Fprintf(env.Stderr, "%s:%d: %s: the hash is not in a format larder reads: %v\n", file, n, name, err)
			bad++
			continue
		}
		// Never store a hash no server could check: one too costly, or
		// made with a pepper the servers' file does not hold.
		if err := a.hasher.Usable(hash); err != nil {
			fmt.Fprintf(env.Stderr, "%s:%d: %s: the hash could not be checked by the servers: %v\n", file, n, name, errors.Unwrap(err))
			bad++
			continue
		}
		switch err := a.store.CreateUser(ctx, &larder.User{Name: name, Verifier: hash}); larder.ErrorCode(err) {
		case "":
			added++
			label, _ := a.hasher.Describe(hash)
			if err := a.recordChange(ctx, name, "imported with a "+label+" hash"); err != nil {
				return err
			}
		case larder.ECONFLICT:
			fmt.Fprintf(env.Stderr, "%s:%d: %s exists already; skipped\n", file, n, name)
			skipped++
		default:
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%d accounts imported, %d skipped as existing, %d lines refused\n", added, skipped, bad)
	if bad > 0 {
		return fmt.Errorf("%d lines of %s were refused", bad, file)
	}
	return nil
}
