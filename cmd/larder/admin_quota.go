package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/larderfs/larder"
)

// quotaBound is one bound of an account's own quota as a flag takes it:
// a number (with a size suffix for bytes), "none", or "default".
type quotaBound struct {
	n, set  bool // n: the value below holds; set: the flag was given
	value   int64
	isBytes bool
}

func (b *quotaBound) String() string { return "" }

func (b *quotaBound) Set(s string) error {
	b.set = true
	switch strings.ToLower(s) {
	case "default":
		b.n, b.value = false, 0
		return nil
	case "none", "unlimited":
		b.n, b.value = true, 0
		return nil
	}
	b.n = true
	if b.isBytes {
		v, err := parseQuotaSize(s)
		if err != nil {
			return err
		}
		b.value = v
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive number of files, \"none\" for no limit, or \"default\" for the server's")
	}
	b.value = v
	return nil
}

// parseQuotaSize parses a size as an administrator types it: a number of
// bytes, or of KiB, MiB, GiB or TiB (in any case, "G" and "GiB" alike,
// fractions allowed: 1.5GiB). The decimal units (GB) are refused rather
// than guessed at.
func parseQuotaSize(s string) (int64, error) {
	const want = "want a size such as 500MiB, 1.5GiB or 10G, \"none\" for no limit, or \"default\" for the server's"
	num, mult := s, 1.0
	lower := strings.ToLower(s)
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}} {
		for _, form := range []string{u.suffix + "ib", u.suffix} {
			if n, ok := strings.CutSuffix(lower, form); ok {
				num, mult = n, u.mult
				goto parse
			}
		}
		if strings.HasSuffix(lower, u.suffix+"b") {
			return 0, fmt.Errorf("%q: larder counts in binary units; write %siB (2^%d bytes) or a number of bytes",
				s, strings.ToUpper(u.suffix), map[string]int{"k": 10, "m": 20, "g": 30, "t": 40}[u.suffix])
		}
	}
parse:
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v*mult > 1<<62 {
		return 0, fmt.Errorf("%s", want)
	}
	n := int64(math.Round(v * mult))
	if n < 1 {
		return 0, fmt.Errorf("%s", want)
	}
	return n, nil
}

// describeBound says one bound of an account's own quota, with unit
// formatting it where it is a limit.
func describeBound(n int64, set bool, unit func(int64) string) string {
	switch {
	case !set:
		return "default"
	case n == 0:
		return "none"
	}
	return unit(n)
}

// quotaText says an account's own quota, bytes then files.
func quotaText(q larder.AccountQuota) string {
	return describeBound(q.Bytes, q.SetBytes, formatBytes) + " / " + describeBound(q.Files, q.SetFiles, func(n int64) string { return strconv.FormatInt(n, 10) + " files" })
}

func runUserQuota(ctx context.Context, env *Env, args []string) error {
	cfg := defaultAccountConfig(env.Getenv)
	fs := adminFlagSet(env, "user quota", "user quota NAME [--bytes SIZE] [--files N] [--default] [flags]",
		"Sets an account's own quota over the servers' default (serve --quota-bytes,\n"+
			"--quota-files), bound by bound: each is a limit, \"none\" (no limit, whatever\n"+
			"the default), or \"default\" (the servers' own, the state of a new account).\n"+
			"Every server on the database applies it from the account's next upload on,\n"+
			"sessions already open included, with no restart or reload; what is stored\n"+
			"stays, even above a lowered quota. Without --bytes, --files or --default it\n"+
			"prints the account's quota. 'larder admin user list' shows every account's,\n"+
			"with its usage; the user sees the quota in force with 'larder whoami'.", &cfg)
	bytesFlag := &quotaBound{isBytes: true}
	filesFlag := &quotaBound{}
	fs.Var(bytesFlag, "bytes", "most `bytes` in the account's space: a size (suffixes KiB, MiB, GiB, TiB), none, or default")
	fs.Var(filesFlag, "files", "most `files` in the account's space: a number, none, or default")
	reset := fs.Bool("default", false, "give the account the servers' default for both bounds again")
	a, name, err := openAuditedOneArg(ctx, env, fs, &cfg, args, "account name")
	if err != nil {
		return err
	}
	defer a.Close()
	if *reset && (bytesFlag.set || filesFlag.set) {
		return usageError("--default goes with neither --bytes nor --files")
	}
	if !*reset && !bytesFlag.set && !filesFlag.set {
		u, err := a.store.UserByName(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "quota of %s: %s (bytes / files)\n", name, quotaText(u.Quota))
		return nil
	}
	// Only the bounds named are written: another administrator's change
	// of the other bound meanwhile stays.
	var q larder.AccountQuota
	which := larder.QuotaBoth
	if !*reset {
		which = 0
		if bytesFlag.set {
			q.Bytes, q.SetBytes = bytesFlag.value, bytesFlag.n
			which |= larder.QuotaBytes
		}
		if filesFlag.set {
			q.Files, q.SetFiles = filesFlag.value, filesFlag.n
			which |= larder.QuotaFiles
		}
	}
	if q, err = a.store.SetQuota(ctx, name, q, which); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "quota of %s: %s (bytes / files), on every server from its next upload\n", name, quotaText(q))
	return a.recordChange(ctx, name, "quota set by an administrator: "+quotaText(q))
}
