package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/auth"
)

// adminCommands are the subcommands of "larder admin". They work on the
// account store directly, so they can run beside a running server: the
// server reads the account on every request, and a change takes effect at
// its next one.
func adminCommands() []command {
	return []command{
		{"user", "list, add, change, disable, enable, delete, import accounts, or list and revoke their devices", runAdminUser},
		{"hashes", "count the accounts on each password-hash scheme and parameter set", runAdminHashes},
		{"upgrade", "rewrap weak password hashes without the passwords (--wrap)", runAdminUpgrade},
		{"calibrate", "measure this machine and propose argon2id parameters", runAdminCalibrate},
		{"pepper", "list, rotate or retire the password peppers", runAdminPepper},
		{"storage", "check the records of files against the stored files, and repair them", runAdminStorage},
	}
}

func runAdmin(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder admin", adminCommands(), args)
}

// adminFlagSet returns a flag set for "larder admin NAME" with the account
// flags defined on cfg.
func adminFlagSet(env *Env, name, synopsis, help string, cfg *AccountConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfg.define(fs)
	defineConfig(fs, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder admin %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}

// eachUser calls f for every account, in byte order of names, a page at a
// time so that a large table is never held whole.
func eachUser(ctx context.Context, store larder.UserStore, f func(*larder.User) error) error {
	const page = 500
	after := ""
	for {
		users, err := store.ListUsers(ctx, after, page)
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := f(u); err != nil {
				return err
			}
		}
		if len(users) < page {
			return nil
		}
		after = users[len(users)-1].Name
	}
}

func runAdminHashes(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "hashes", "hashes [flags]",
		"Counts the accounts on each password-hash scheme and parameter set, and says\n"+
			"how each compares with the servers' policy, which they record in the database:\n"+
			"current; below policy (upgraded at the user's next login, or wrapped at once\n"+
			"by 'larder admin upgrade --wrap'); above policy in some parameter (replaced by\n"+
			"the policy's hash at the next login, never wrapped); or on an older pepper\n"+
			"(moved to the current one at the next login).", &cfg)
	asJSON := fs.Bool("json", false, "print a JSON object: accounts, policy, pepper, and hashes, a list of\n"+
		"{accounts, state, hash}")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	a, err := openAccounts(ctx, &cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.needPolicy(); err != nil {
		return err
	}

	type group struct {
		label string
		count int
		state string
	}
	groups := map[string]*group{}
	total := 0
	err = eachUser(ctx, a.store, func(u *larder.User) error {
		label, err := a.hasher.Describe(u.Verifier)
		if err != nil {
			label = "unreadable"
		}
		g := groups[label]
		if g == nil {
			g = &group{label: label, state: hashState(a.hasher, u.Verifier)}
			groups[label] = g
		}
		g.count++
		total++
		return nil
	})
	if err != nil {
		return err
	}
	sorted := make([]*group, 0, len(groups))
	for _, g := range groups {
		sorted = append(sorted, g)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].count != sorted[j].count {
			return sorted[i].count > sorted[j].count
		}
		return sorted[i].label < sorted[j].label
	})
	if *asJSON {
		type groupJSON struct {
			Accounts int    `json:"accounts"`
			State    string `json:"state"`
			Hash     string `json:"hash"`
		}
		out := struct {
			Accounts int         `json:"accounts"`
			Policy   string      `json:"policy"`
			Pepper   string      `json:"pepper"`
			Hashes   []groupJSON `json:"hashes"`
		}{Accounts: total, Policy: fmt.Sprint(cfg.Hash), Pepper: a.peppers.Current().ID, Hashes: []groupJSON{}}
		for _, g := range sorted {
			out.Hashes = append(out.Hashes, groupJSON{Accounts: g.count, State: g.state, Hash: g.label})
		}
		return writeJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ACCOUNTS\tPOLICY\tHASH\n")
	for _, g := range sorted {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", g.count, g.state, g.label)
	}
	tw.Flush()
	fmt.Fprintf(env.Stdout, "%d accounts; the policy is argon2id %v with pepper %s\n", total, cfg.Hash, a.peppers.Current().ID)
	return nil
}

// hashState says how stored compares with h's policy: "current", "above
// policy" (an argon2id hash that costs more in some parameter), "older
// pepper" (by the policy, with another pepper), or "below policy" (the
// rest: weaker, legacy, wrapped or unreadable).
func hashState(h *auth.Hasher, stored string) string {
	err := h.WrapCheck(stored)
	switch {
	case errors.Is(err, auth.ErrNoHash):
		return "native only"
	case errors.Is(err, auth.ErrStronger):
		return "above policy" // a login keeps it, or raises its other parameters
	case !h.NeedsRehash(stored):
		return "current"
	case errors.Is(err, auth.ErrOtherPepper):
		return "older pepper"
	}
	return "below policy"
}

// hashCurrent reports whether stored follows the servers' policy, or nil
// if that policy is not known: true also for a hash above the policy in
// some parameter and below it in none, which no login replaces (a login
// never weakens a hash); "larder admin hashes" tells the two apart.
func (a *accounts) hashCurrent(stored string) *bool {
	if a.needPolicy() != nil {
		return nil
	}
	current := !a.hasher.NeedsRehash(stored)
	return &current
}

// noArgs parses flags and refuses positional arguments.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("larder %s takes no arguments, got %q", fs.Name(), pos)
	}
	return nil
}

// oneArg parses flags and returns the single positional argument, named
// what in the error.
func oneArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usageError("larder %s takes one %s, got %d arguments", fs.Name(), what, len(pos))
	}
	return pos[0], nil
}
