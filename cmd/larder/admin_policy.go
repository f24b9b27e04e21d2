package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
)

func runAdminUpgrade(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "upgrade", "upgrade --wrap [--dry-run] [flags]",
		"Hashes below the servers' policy are upgraded at each user's next login, from\n"+
			"the signature presented. For users who do not come back, --wrap rewraps every\n"+
			"weak hash now, without the passwords: argon2id with the current parameters and\n"+
			"pepper over the old hash. A stolen database then holds no fast hash, and no\n"+
			"hash usable without the pepper. Wrapped accounts still log in, and are\n"+
			"unwrapped to a plain current hash at their next login.\n\n"+
			"The policy is the one the servers recorded in the database. A hash above it\n"+
			"in any parameter is never wrapped (that would weaken it), nor one by the\n"+
			"policy on an older pepper (wrapping keeps the old pepper in use; only a login\n"+
			"moves it to the current one).", &cfg)
	wrap := fs.Bool("wrap", false, "rewrap every hash below the policy (required: it is the only upgrade that needs no password)")
	dryRun := fs.Bool("dry-run", false, "only count what would be rewrapped")
	sink := defineAuditSink(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if !*wrap {
		return usageError("larder admin upgrade: say --wrap; without the passwords, wrapping is the only upgrade possible (the others happen at login)")
	}
	a, err := openAccountsAudited(ctx, env, &cfg, *sink)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.needPolicy(); err != nil {
		return err
	}

	// Collect first, then wrap in parallel: one argon2id per account.
	var todo []*larder.User
	var current, wrapped, stronger, olderPepper, nativeOnly, unusable int
	err = eachUser(ctx, a.store, func(u *larder.User) error {
		switch err := a.hasher.WrapCheck(u.Verifier); {
		case err == nil:
			todo = append(todo, u)
		case errors.Is(err, auth.ErrAlreadyCurrent):
			current++
		case errors.Is(err, auth.ErrAlreadyWrapped):
			wrapped++
		case errors.Is(err, auth.ErrStronger):
			stronger++
		case errors.Is(err, auth.ErrOtherPepper):
			olderPepper++
		case errors.Is(err, auth.ErrNoHash):
			nativeOnly++
		default:
			unusable++ // unreadable, or not checkable here: not checkable wrapped either
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%d accounts current, %d already wrapped, %d above policy (left alone), %d on an older pepper (moved at login), %d native only (no hash), %d unusable, %d to wrap\n",
		current, wrapped, stronger, olderPepper, nativeOnly, unusable, len(todo))
	if *dryRun || len(todo) == 0 {
		return nil
	}

	start := time.Now()
	var (
		mu          sync.Mutex
		done, raced int
		firstErr    error
		work        = make(chan *larder.User)
		wg          sync.WaitGroup
		workers     = max(1, min(runtime.NumCPU(), len(todo)))
	)
	for range workers {
		wg.Go(func() {
			for u := range work {
				err := wrapOne(ctx, a, u)
				mu.Lock()
				switch {
				case err == nil:
					done++
				case larder.ErrorCode(err) == larder.ECONFLICT || larder.ErrorCode(err) == larder.ENOTFOUND:
					raced++ // changed or deleted meanwhile: nothing to protect
				case firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	for _, u := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- u
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(env.Stdout, "%d accounts wrapped in %v; %d changed meanwhile and were left alone\n",
		done, time.Since(start).Round(time.Millisecond), raced)
	return errors.Join(firstErr, ctx.Err())
}

// wrapOne rewraps one account's hash, if it has not changed since it was
// read: a user who logs in meanwhile gets a current hash, which wins.
func wrapOne(ctx context.Context, a *accounts, u *larder.User) error {
	w, err := a.hasher.Wrap(ctx, u.Verifier)
	if err != nil {
		return fmt.Errorf("wrapping %s: %w", u.Name, err)
	}
	if err := a.store.RehashVerifier(ctx, u.Name, u.Verifier, w); err != nil { // the same password: sessions go on
		return err
	}
	from, _ := a.hasher.Describe(u.Verifier)
	to, _ := a.hasher.Describe(w)
	return a.recordChange(ctx, u.Name, "wrapped by an administrator: "+from+" -> "+to)
}

func runAdminCalibrate(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "calibrate", "calibrate [--target 250ms] [--max-memory KiB] [flags]",
		"Measures argon2id on this machine and proposes the parameters that take about\n"+
			"the target time per hash, never below OWASP's minimum. It changes nothing:\n"+
			"start the server with the flags it prints, and every account whose hash is\n"+
			"weaker in some parameter is raised at its next login. No hash is ever\n"+
			"lowered: a proposal below the servers' recorded policy is said so.", &cfg)
	target := fs.Duration("target", 250*time.Millisecond, "time one password hash should take")
	maxMemory := fs.Uint("max-memory", 64<<10, "most memory one hash may take, in `KiB`; the server needs this times --hash-concurrency")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *maxMemory == 0 || *maxMemory > uint(auth.MaxMemory) {
		return usageError("bad --max-memory %d: want 1 to %d KiB", *maxMemory, auth.MaxMemory)
	}
	// The servers' policy, if a server recorded one in the data folder:
	// a proposal below it must say what it would mean.
	var recorded *auth.Params
	if a, err := openAccounts(ctx, &cfg); err == nil {
		if a.needPolicy() == nil {
			p := a.hasher.Params()
			recorded = &p
		}
		a.Close()
	}
	fmt.Fprintf(env.Stderr, "measuring argon2id on this machine for a %v target…\n", *target)
	p, took, err := auth.Calibrate(ctx, *target, uint32(*maxMemory), cfg.Hash.Threads)
	if err != nil {
		return err
	}
	conc := cfg.HashConcurrency
	if conc <= 0 {
		conc = auth.DefaultConcurrency()
	}
	fmt.Fprintf(env.Stdout, "proposed: --hash-memory %d --hash-passes %d --hash-lanes %d\n", p.Memory, p.Time, p.Threads)
	fmt.Fprintf(env.Stdout, "one hash takes %v and %d MiB here; with --hash-concurrency %d this machine checks about %.0f passwords/s and needs %d MiB for hashing\n",
		took.Round(time.Millisecond), p.Memory>>10, conc, float64(conc)/took.Seconds(), conc*int(p.Memory>>10))
	if !p.MeetsOWASPMinimum() {
		fmt.Fprintf(env.Stdout, "warning: below OWASP's minimum (m=19456 KiB, t=2, p=1)\n")
	}
	if r := recorded; r != nil && (p.Memory < r.Memory || p.Time < r.Time || p.Threads < r.Threads) {
		var less []string
		if p.Memory < r.Memory {
			less = append(less, fmt.Sprintf("less memory (%d KiB < %d KiB)", p.Memory, r.Memory))
		}
		if p.Time < r.Time {
			less = append(less, fmt.Sprintf("fewer passes (%d < %d)", p.Time, r.Time))
		}
		if p.Threads < r.Threads {
			less = append(less, fmt.Sprintf("fewer lanes (%d < %d)", p.Threads, r.Threads))
		}
		fmt.Fprintf(env.Stdout, "warning: the proposal has %s than the servers' recorded policy argon2id %v: "+
			"serve refuses it without --hash-lower-policy; with it, only new hashes (registrations, password changes) follow it, "+
			"stored hashes are never lowered, and a login raises only a hash's weaker parameters (to argon2id %v here)\n",
			strings.Join(less, " and "), *r, auth.Params{Memory: max(p.Memory, r.Memory), Time: max(p.Time, r.Time), Threads: max(p.Threads, r.Threads)})
	}
	return nil
}

func pepperCommands() []command {
	return []command{
		{"list", "list the peppers and how many accounts use each", runPepperList},
		{"rotate", "add a new current pepper; old hashes keep theirs until rehashed", runPepperRotate},
		{"retire", "remove a pepper that no account uses any more", runPepperRetire},
	}
}

func runAdminPepper(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder admin pepper", pepperCommands(), args)
}

// pepperUse counts the accounts whose hash or LNP/1 credential uses each
// pepper id.
func pepperUse(ctx context.Context, a *accounts) (map[string]int, error) {
	use := map[string]int{}
	err := eachUser(ctx, a.store, func(u *larder.User) error {
		for _, id := range a.accountPeppers(ctx, u) {
			use[id]++
		}
		return nil
	})
	return use, err
}

// accountPeppers returns the IDs of the peppers that u's hash, LNP/1
// credential and device credentials need, each once. A device that
// cannot be read is no use of a pepper: it is left out, not guessed.
func (a *accounts) accountPeppers(ctx context.Context, u *larder.User) []string {
	creds := []string{u.Verifier, u.LNPCredential}
	if devices, err := a.db.devices().Devices(ctx, u.ID); err == nil {
		for _, d := range devices {
			creds = append(creds, d.Credential)
		}
	}
	var ids []string
	for _, c := range creds {
		for _, id := range a.hasher.PepperIDs(c) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// pepperUsers returns the names of up to most accounts whose hash uses
// pepper id, and "…" after them if there are more.
func (a *accounts) pepperUsers(ctx context.Context, id string, most int) []string {
	var names []string
	eachUser(ctx, a.store, func(u *larder.User) error {
		if slices.Contains(a.accountPeppers(ctx, u), id) {
			if len(names) == most {
				names = append(names, "…")
				return errEnough
			}
			names = append(names, u.Name)
		}
		return nil
	})
	return names
}

var errEnough = errors.New("enough")

func runPepperList(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "pepper list", "pepper list [flags]", "Lists the peppers of the pepper file (ids only, never the keys).", &cfg)
	asJSON := fs.Bool("json", false, "print a JSON array: id, current, accounts, in_file (false: accounts use a pepper\n"+
		"the file lacks, and cannot log in)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	a, err := openAccounts(ctx, &cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	use, err := pepperUse(ctx, a)
	if err != nil {
		return err
	}
	if *asJSON {
		list := []pepperJSON{}
		for _, id := range a.peppers.IDs() {
			list = append(list, pepperJSON{ID: id, Current: id == a.peppers.Current().ID, Accounts: use[id], InFile: true})
			delete(use, id)
		}
		for _, id := range slices.Sorted(maps.Keys(use)) {
			list = append(list, pepperJSON{ID: id, Accounts: use[id]})
		}
		return writeJSON(env.Stdout, list)
	}
	for _, id := range a.peppers.IDs() {
		mark := ""
		if id == a.peppers.Current().ID {
			mark = " (current)"
		}
		fmt.Fprintf(env.Stdout, "%s%s: %d accounts\n", id, mark, use[id])
		delete(use, id)
	}
	for id, n := range use {
		fmt.Fprintf(env.Stdout, "%s: %d accounts, NOT IN THE PEPPER FILE: they cannot log in\n", id, n)
	}
	return nil
}

func runPepperRotate(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "pepper rotate", "pepper rotate [flags]",
		"Adds a new pepper to the pepper file and makes it current. New hashes use it;\n"+
			"each account moves to it at its next login. Servers that read this file use\n"+
			"it from their next hash on, without a restart; copy the file to every server on\n"+
			"another machine sharing the accounts (they reload it when it changes, or on\n"+
			"SIGHUP).", &cfg)
	sink := defineAuditSink(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	// Opened first: a wrong --data is refused before the file is touched.
	a, err := openAccountsAudited(ctx, env, &cfg, *sink)
	if err != nil {
		return err
	}
	defer a.Close()
	id, err := auth.RotatePepper(cfg.pepperFile())
	if err != nil {
		return err
	}
	ps, err := auth.LoadPeppers(cfg.pepperFile())
	if err == nil {
		// Recorded, so that a server or command with another file
		// calling another key id is refused.
		err = checkPeppers(ctx, a.db, ps, cfg.pepperFile(), true)
	}
	if err != nil {
		return fmt.Errorf("pepper %s added to %s, but: %w", id, cfg.pepperFile(), err)
	}
	fmt.Fprintf(env.Stdout, "pepper %s added to %s and made current; servers reading this file use it from their next hash, "+
		"servers on other machines once they have a copy of it\n", id, cfg.pepperFile())
	return a.recordChange(ctx, "", "pepper "+id+" added and made current")
}

func runPepperRetire(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "pepper retire", "pepper retire ID [flags]",
		"Removes a pepper from the pepper file. It refuses while an account still uses it:\n"+
			"those accounts could no longer log in.", &cfg)
	a, id, err := openAuditedOneArg(ctx, env, fs, &cfg, args, "pepper id")
	if err != nil {
		return err
	}
	defer a.Close()
	use, err := pepperUse(ctx, a)
	if err != nil {
		return err
	}
	if n := use[id]; n > 0 {
		return fmt.Errorf("pepper %s is still used by %d accounts (%s): each moves to the current pepper at its next login; "+
			"no command can move a hash to another pepper without its password (a wrapped hash keeps the pepper of the hash inside it). "+
			"Wait for those logins, or reset those passwords with 'larder admin user passwd NAME'", id, n, strings.Join(a.pepperUsers(ctx, id, 5), ", "))
	}
	if err := auth.RetirePepper(cfg.pepperFile(), id); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "pepper %s removed from %s\n", id, cfg.pepperFile())
	return a.recordChange(ctx, "", "pepper "+id+" retired")
}

// pepperJSON is a pepper as admin pepper list --json prints it.
type pepperJSON struct {
	ID       string `json:"id"`
	Current  bool   `json:"current"`
	Accounts int    `json:"accounts"`
	InFile   bool   `json:"in_file"`
}
