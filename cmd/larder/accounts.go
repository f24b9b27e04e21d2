package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/sqlite"
)

// AccountConfig says where accounts live and how their passwords are
// hashed. "larder serve" and "larder admin" share it, so that the
// administrator's tools hash exactly as the server does.
type AccountConfig struct {
	DataDir    string // server state; the SQLite database unless DB is set
	DB         string // a postgres:// URL, or "" for SQLite in DataDir
	PepperFile string // "" means DataDir/pepper

	Hash            auth.Params // the cost policy: new hashes use it, older ones are upgraded
	HashConcurrency int         // hashes computed at once; 0 means one per core

	// hashGiven records which --hash-… flags were given (memory, passes,
	// lanes), so that an admin command can tell the administrator's word
	// from the defaults.
	hashGiven [3]bool

	// LowerHashPolicy lets a server record a policy weaker than the
	// recorded one in some parameter (serve --hash-lower-policy).
	LowerHashPolicy bool
}

func defaultAccountConfig(getenv func(string) string) AccountConfig {
	return AccountConfig{DataDir: defaultDataDir(getenv), Hash: auth.DefaultParams}
}

// defaultDataDir follows the XDG base directory convention.
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "larder")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "larder")
	}
	return "larder-data"
}

// define registers the account flags on fs.
func (c *AccountConfig) define(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", c.DataDir, "`folder` for the account database and server state")
	fs.StringVar(&c.DB, "db", c.DB, "account database `URL`: postgres://… to share accounts between servers (default: SQLite in the data folder)")
	fs.StringVar(&c.PepperFile, "pepper-file", c.PepperFile, "`file` of the password pepper, mode 0600, created if absent (default: the data folder's pepper)")
	given := func(i int, f func(string) error) func(string) error {
		return func(s string) error { c.hashGiven[i] = true; return f(s) }
	}
	fs.Func("hash-memory", "argon2id memory per hash in `KiB` (default 19456, OWASP's minimum)", given(0, uintFlag(&c.Hash.Memory)))
	fs.Func("hash-passes", "argon2id `passes` over memory (default 2)", given(1, uintFlag(&c.Hash.Time)))
	fs.Func("hash-lanes", "argon2id `lanes` (default 1)", given(2, func(s string) error {
		var v uint32
		if err := uintFlag(&v)(s); err != nil || v > 255 {
			return fmt.Errorf("want 1 to 255")
		}
		c.Hash.Threads = uint8(v)
		return nil
	}))
	fs.IntVar(&c.HashConcurrency, "hash-concurrency", c.HashConcurrency, "password hashes computed at once (default: one fewer than the cores, at least one)")
}

// uintFlag parses a positive 32-bit integer flag into p.
func uintFlag(p *uint32) func(string) error {
	return func(s string) error {
		var v uint32
		if _, err := fmt.Sscan(s, &v); err != nil || v == 0 {
			return fmt.Errorf("want a positive integer")
		}
		*p = v
		return nil
	}
}

func (c *AccountConfig) pepperFile() string {
	if c.PepperFile != "" {
		return c.PepperFile
	}
	return filepath.Join(c.DataDir, "pepper")
}

// database is the opened database of accounts and, by default, of the
// audit trail: SQLite in the data folder, or PostgreSQL.
type database struct {
	where  string // for messages: a file, or a URL without its password
	sqlite *sqlite.DB
	pg     *postgres.DB
}

// openDatabase opens the database c names. Only a server creates one (and
// the data folder), if create is set: every other command works on what a
// server made, and a data folder or database that does not exist is a
// wrong --data or --db, refused with a message that names it, never an
// empty database made there.
func openDatabase(ctx context.Context, c *AccountConfig, create bool) (*database, error) {
	if create {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
	}
	switch {
	case c.DB == "":
		path := filepath.Join(c.DataDir, "larder.db")
		if !create {
			if err := mustExist(c.DataDir, path); err != nil {
				return nil, err
			}
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		return &database{where: path, sqlite: db}, nil
	case strings.HasPrefix(c.DB, "postgres://"), strings.HasPrefix(c.DB, "postgresql://"):
		open := postgres.Open
		if !create {
			open = postgres.OpenExisting
		}
		db, err := open(ctx, c.DB)
		if larder.ErrorCode(err) == larder.ENOTFOUND {
			return nil, fmt.Errorf("%s: check the URL (--db, or --audit-db for the audit commands); larder serve creates the database on first start", larder.ErrorMessage(err))
		}
		if err != nil {
			return nil, err
		}
		return &database{where: db.String(), pg: db}, nil
	}
	return nil, usageError("bad --db %q: want a postgres:// URL, or nothing for SQLite in the data folder", redactURL(c.DB))
}

func (d *database) users() larder.UserStore {
	if d.pg != nil {
		return postgres.NewUserStore(d.pg)
	}
	return sqlite.NewUserStore(d.sqlite)
}

func (d *database) devices() larder.DeviceStore {
	if d.pg != nil {
		return postgres.NewDeviceStore(d.pg)
	}
	return sqlite.NewDeviceStore(d.sqlite)
}

func (d *database) files() larder.FileStore {
	if d.pg != nil {
		return postgres.NewFileStore(d.pg)
	}
	return sqlite.NewFileStore(d.sqlite)
}

func (d *database) settings() larder.SettingStore {
	if d.pg != nil {
		return postgres.NewSettingStore(d.pg)
	}
	return sqlite.NewSettingStore(d.sqlite)
}

// mustExist checks that the data folder dir and the SQLite database path
// in it exist, naming what is missing and the flag that points at it.
func mustExist(dir, path string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no data folder %s: give --data the folder of the server (larder serve creates it on first start)", dir)
	case err != nil:
		return fmt.Errorf("data folder: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("the data folder %s is not a folder: give --data the folder of the server", dir)
	}
	switch _, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no larder database in %s (no %s): give --data the server's data folder, or --db its PostgreSQL URL (larder serve creates the database on first start)", dir, filepath.Base(path))
	case err != nil:
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

func (d *database) events() larder.EventStore {
	if d.pg != nil {
		return postgres.NewEventStore(d.pg)
	}
	return sqlite.NewEventStore(d.sqlite)
}

// Close closes the database.
func (d *database) Close() error {
	if d == nil {
		return nil
	}
	if d.pg != nil {
		d.pg.Close()
		return nil
	}
	return d.sqlite.Close()
}

// openEvents opens the audit trail of the database c names, for reading.
func openEvents(ctx context.Context, c *AccountConfig) (larder.EventStore, func(), error) {
	db, err := openDatabase(ctx, c, false)
	if err != nil {
		return nil, nil, err
	}
	return db.events(), func() { db.Close() }, nil
}

// accounts is the opened account store with the hasher of the policy.
type accounts struct {
	db      *database
	where   string // the store, for messages
	store   larder.UserStore
	hasher  *auth.Hasher
	peppers *auth.Peppers
	audit   *auditTrail // for the commands that change accounts; nil for the others
	dataDir string

	// policyErr says why the servers' hash policy is not known (no
	// server recorded one, and no flag gave it); nil when c.Hash is it.
	policyErr error
}

// openAccounts opens the accounts for an administrator's command, beside
// the servers: the data folder, the database and the pepper file must
// exist (a server creates them), and the hash policy is the one the servers
// recorded in the database. --hash-… flags that disagree with it are
// refused; without a recorded policy they are taken as the administrator's
// word, and without either, needPolicy refuses to guess.
func openAccounts(ctx context.Context, c *AccountConfig) (*accounts, error) {
	return openAccountsMode(ctx, c, false, nil)
}

// openServerAccounts opens the accounts for "larder serve": it creates the
// data folder, the database and the pepper file if they are missing, and
// records c.Hash as the servers' policy, logging a change of it.
func openServerAccounts(ctx context.Context, c *AccountConfig, logger *slog.Logger) (*accounts, error) {
	return openAccountsMode(ctx, c, true, logger)
}

func openAccountsMode(ctx context.Context, c *AccountConfig, server bool, logger *slog.Logger) (a *accounts, err error) {
	if err := c.Hash.Validate(); err != nil {
		return nil, usageError("bad password-hash parameters: %v", err)
	}
	db, err := openDatabase(ctx, c, server)
	if err != nil {
		return nil, err
	}
	a = &accounts{db: db, where: db.where, store: db.users()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if server {
		err = recordPolicy(ctx, db, c.Hash, c.LowerHashPolicy, logger)
	} else {
		a.policyErr, err = serversPolicy(ctx, db, c)
	}
	if err != nil {
		return nil, err
	}
	if a.peppers, err = loadOrCreatePeppers(ctx, c.pepperFile(), a.store, server); err != nil {
		return nil, err
	}
	if err := checkPeppers(ctx, db, a.peppers, c.pepperFile(), server); err != nil {
		return nil, err
	}
	a.hasher = auth.NewHasher(c.Hash, a.peppers, c.HashConcurrency)
	return a, nil
}

// lnpMockKey returns the secret from which the servers on db derive the
// salts shown for names without an LNP/1 credential, made and recorded by
// the first server to start. Two first servers starting at the same
// instant may each keep a key of their own until their next start; the
// key read back after writing narrows that window.
func lnpMockKey(ctx context.Context, db *database) ([]byte, error) {
	settings := db.settings()
	v, err := settings.Setting(ctx, larder.SettingLNPMockKey)
	if larder.ErrorCode(err) == larder.ENOTFOUND {
		key := make([]byte, auth.MockKeySize)
		rand.Read(key)
		if err := settings.SetSetting(ctx, larder.SettingLNPMockKey, base64.StdEncoding.EncodeToString(key)); err != nil {
			return nil, fmt.Errorf("recording the LNP/1 mock key: %w", err)
		}
		v, err = settings.Setting(ctx, larder.SettingLNPMockKey)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the LNP/1 mock key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) != auth.MockKeySize {
		return nil, fmt.Errorf("the LNP/1 mock key in the settings (%s) is not %d bytes of base64: delete it, and the next server makes a new one", larder.SettingLNPMockKey, auth.MockKeySize)
	}
	return key, nil
}

// checkPeppers compares the fingerprint of each pepper of ps, read from
// file, with the one recorded in db under its ID, and refuses a pepper file
// whose key differs from the one the others sharing db use under the same
// ID: hashes made with either would not verify with the other. If record,
// it records those not recorded yet (a server does, at each start).
func checkPeppers(ctx context.Context, db *database, ps *auth.Peppers, file string, record bool) error {
	settings := db.settings()
	for _, id := range ps.IDs() {
		p, _ := ps.Lookup(id)
		key := "pepper." + id
		got, err := settings.Setting(ctx, key)
		switch {
		case larder.ErrorCode(err) == larder.ENOTFOUND:
			if record {
				if err := settings.SetSetting(ctx, key, p.Fingerprint()); err != nil {
					return fmt.Errorf("recording the fingerprint of pepper %s: %w", id, err)
				}
			}
		case err != nil:
			return fmt.Errorf("reading the fingerprint of pepper %s: %w", id, err)
		case got != p.Fingerprint():
			return fmt.Errorf("pepper %s of %s is not the pepper %s that the others sharing %s use (its fingerprint differs): "+
				"point --pepper-file at their pepper file; hashes made with either would not verify with the other", id, file, id, db.where)
		}
	}
	return nil
}

// recordPolicy records p as the servers' hash policy in db, for the
// administrator's commands to read, and logs a change of it. A policy
// weaker than the recorded one in some parameter (memory, passes, lanes)
// is refused unless lower: a mistyped flag must not quietly make every
// new hash (registrations, password changes) weaker. Stored hashes are
// never lowered either way (auth.Hasher.NeedsRehash).
func recordPolicy(ctx context.Context, db *database, p auth.Params, lower bool, logger *slog.Logger) error {
	prev, weaker, err := checkPolicy(ctx, db, p, lower)
	if err != nil || prev == p.String() {
		return err
	}
	if err := db.settings().SetSetting(ctx, larder.SettingHashPolicy, p.String()); err != nil {
		return fmt.Errorf("recording the hash policy: %w", err)
	}
	switch {
	case logger == nil || prev == "":
	case weaker:
		logger.Warn("password-hash policy LOWERED by --hash-lower-policy: new hashes (registrations, password changes) are weaker; "+
			"stored hashes stronger than it are kept, and a login raises only their weaker parameters",
			"was", prev, "now", p.String())
	default:
		logger.Warn("password-hash policy changed: hashes weaker than it are moved to it as their users log in; every server sharing the accounts should use it",
			"was", prev, "now", p.String())
	}
	return nil
}

// checkPolicy returns the policy recorded in db and whether p is weaker
// than it, and refuses a weaker p without lower. It changes nothing.
func checkPolicy(ctx context.Context, db *database, p auth.Params, lower bool) (prev string, weaker bool, err error) {
	prev, err = db.settings().Setting(ctx, larder.SettingHashPolicy)
	if err != nil && larder.ErrorCode(err) != larder.ENOTFOUND {
		return "", false, fmt.Errorf("reading the recorded hash policy: %w", err)
	}
	if prev == p.String() {
		return prev, false, nil
	}
	old, oldErr := auth.ParseParams(prev)
	weaker = prev != "" && oldErr == nil && (p.Memory < old.Memory || p.Time < old.Time || p.Threads < old.Threads)
	if weaker && !lower {
		return prev, weaker, usageError("the password-hash policy argon2id %v is weaker than argon2id %v, the one the servers on %s recorded: "+
			"give the --hash-… flags of that policy (or stronger), or add --hash-lower-policy to make new hashes weaker on purpose "+
			"(stored hashes are never lowered)", p, old, db.where)
	}
	return prev, weaker, nil
}

// serversPolicy sets c.Hash to the policy the servers recorded in db. It
// refuses --hash-… flags that disagree with it. Without a recorded policy
// it keeps c.Hash if the three flags gave it whole, and otherwise returns,
// as policyErr, why the policy is unknown.
func serversPolicy(ctx context.Context, db *database, c *AccountConfig) (policyErr, err error) {
	v, err := db.settings().Setting(ctx, larder.SettingHashPolicy)
	if larder.ErrorCode(err) == larder.ENOTFOUND {
		if c.hashGiven == [3]bool{true, true, true} {
			return nil, nil
		}
		return fmt.Errorf("the database %s records no password-hash policy (no server of this version has started on it), and admin commands do not guess it: "+
			"start larder serve once with its flags, or give all of --hash-memory, --hash-passes and --hash-lanes as the servers use them", db.where), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the servers' hash policy: %w", err)
	}
	p, err := auth.ParseParams(v)
	if err != nil {
		return nil, fmt.Errorf("the servers' hash policy recorded in %s: %w", db.where, err)
	}
	if g := c.hashGiven; g[0] && c.Hash.Memory != p.Memory || g[1] && c.Hash.Time != p.Time || g[2] && c.Hash.Threads != p.Threads {
		return nil, usageError("the --hash-… flags say argon2id %v, but the servers on %s use %v: admin commands hash as the servers do; "+
			"drop the flags, or restart the servers with the new policy first", c.Hash, db.where, p)
	}
	c.Hash = p
	return nil, nil
}

// needPolicy returns an error unless the servers' hash policy is known: a
// command that makes hashes or judges them against the policy calls it.
func (a *accounts) needPolicy() error { return a.policyErr }

// loadOrCreatePeppers loads the pepper file. If it does not exist, a
// server (create) creates it, unless a stored hash needs a pepper: a
// missing file while hashes name peppers means a wrong --pepper-file or a
// lost file, and a new pepper would make every such account fail to log
// in. Other commands never create it: they work on the servers' file.
func loadOrCreatePeppers(ctx context.Context, path string, store larder.UserStore, create bool) (*auth.Peppers, error) {
	p, err := auth.LoadPeppers(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	parser := auth.NewHasher(auth.DefaultParams, nil, 1) // reads hashes; computes none
	used := map[string]int{}
	err = eachUser(ctx, store, func(u *larder.User) error {
		for _, c := range []string{u.Verifier, u.LNPCredential} {
			for _, id := range parser.PepperIDs(c) {
				used[id]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(used) > 0 {
		return nil, fmt.Errorf("pepper file %s does not exist, but the accounts' hashes use peppers %v: "+
			"restore the file or point --pepper-file at it; a new pepper would lock those accounts out", path, sortedKeys(used))
	}
	if !create {
		return nil, fmt.Errorf("pepper file %s does not exist: give --pepper-file the servers' pepper file (larder serve creates it on first start)", path)
	}
	p, err = auth.CreatePepperFile(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process (a second server, an admin command) created it
		// meanwhile.
		return auth.LoadPeppers(path)
	}
	return p, err
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// redactURL hides the password of a database URL, for messages.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return s[:i+3] + rest[:colon] + ":xxxxx" + rest[at:]
			}
		}
	}
	return s
}

// Close closes the audit trail, if any, and the store.
func (a *accounts) Close() error {
	if a == nil {
		return nil
	}
	var err error
	if a.audit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), adminAuditDrain)
		defer cancel()
		if a.audit.Close(ctx) != nil {
			err = fmt.Errorf("the audit sink did not take this command's events within %v: they wait in %s for the server to deliver",
				adminAuditDrain, filepath.Join(a.dataDir, "audit"))
		}
	}
	return errors.Join(err, a.db.Close())
}

// adminAuditDrain bounds how long an admin command waits for the sink to
// take its events before it leaves them in the spool.
const adminAuditDrain = 10 * time.Second

// defineAuditSink defines --audit-sink on the flag set of a command that
// changes accounts.
func defineAuditSink(fs *flag.FlagSet) *string {
	return fs.String("audit-sink", "db", auditSinkHelp+"; give the server's")
}

// openAccountsAudited is openAccounts for the commands that change
// accounts: each change is recorded as an account event, through the
// spool in the data folder, into the audit sink.
func openAccountsAudited(ctx context.Context, env *Env, c *AccountConfig, sink string) (*accounts, error) {
	a, err := openAccounts(ctx, c)
	if err != nil {
		return nil, err
	}
	ac := defaultAuditConfig()
	ac.Sink = sink
	ac.noAdopt = true // a server's backlog is the server's to deliver
	ignoreSIGPIPEFor(sink)
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if a.audit, err = openAuditTrail(ctx, &ac, c.DataDir, a.db, env.Stdout, serverName("admin"), logger); err != nil {
		a.Close()
		return nil, err
	}
	a.dataDir = c.DataDir
	return a, nil
}

// openAuditedOneArg parses the flags of fs, a command that changes
// accounts and takes one argument (what it is), defining --audit-sink on
// it first, and opens the accounts with the audit trail.
func openAuditedOneArg(ctx context.Context, env *Env, fs *flag.FlagSet, cfg *AccountConfig, args []string, what string) (*accounts, string, error) {
	sink := defineAuditSink(fs)
	arg, err := oneArg(fs, args, what)
	if err != nil {
		return nil, "", err
	}
	a, err := openAccountsAudited(ctx, env, cfg, *sink)
	return a, arg, err
}

// recordChange records that an administrator changed user's account (or,
// for "", the password policy); what says how.
func (a *accounts) recordChange(ctx context.Context, user, what string) error {
	err := a.audit.Record(ctx, larder.Event{Kind: larder.EventAccount, User: user, Reason: what})
	if err != nil {
		return fmt.Errorf("done, but the audit trail could not record it: %w", err)
	}
	return nil
}
