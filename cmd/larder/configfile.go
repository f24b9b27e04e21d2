package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The configuration file is TOML, read with pelletier/go-toml/v2: its
// errors carry line and column, and it has no dependencies. Its keys are
// larder serve's flags, so that the file, the flags and the environment
// can never disagree on a name, a default or what a value means: a key
// under a table is the table's name, a dash, and the key ("[native]
// listen" is native-listen). Serve reads all of them; every admin and
// audit command reads those it has a flag for (data, db, pepper-file,
// hash-…, audit-sink), so that it works on the servers' accounts as the
// servers do. What overrides what, lowest first: the defaults, the file,
// the environment (LARDER_ and the key in capitals, dashes as
// underscores: LARDER_AUDIT_SINK), the command line.

// SystemConfigFile is where the configuration is looked for when neither
// --config, LARDER_CONFIG nor a user's file names one.
const SystemConfigFile = "/etc/larder/larder.toml"

// configFlag is the --config flag of the commands that read the
// configuration file. Its Value is where it found env, to read the file
// and the environment once the command line is parsed (parseFlags calls
// apply).
type configFlag struct {
	env  *Env
	path string
	// note, if set, is told where each setting applied comes from.
	note func(where string)
}

func (c *configFlag) String() string     { return c.path }
func (c *configFlag) Set(s string) error { c.path = s; return nil }

// defineConfig declares --config on fs.
func defineConfig(fs *flag.FlagSet, env *Env) {
	fs.Var(&configFlag{env: env}, "config", "configuration `file` (TOML; default: env LARDER_CONFIG, else\n"+
		"$XDG_CONFIG_HOME/larder/larder.toml, else "+SystemConfigFile+", if they exist)")
}

// setting is one value the file or the environment gives a key.
type setting struct {
	key   string
	table string // the [table] the key stands under in the file, if any
	value string
	kind  unstable.Kind // String, Integer or Bool; String for the environment
	where string        // "FILE:LINE:COL", or "env NAME"
}

// locate returns the configuration file to read: --config, then
// LARDER_CONFIG (each must exist), then the user's and the system's file
// if they exist; "" for none.
func (c *configFlag) locate() (string, error) {
	for _, given := range []string{c.path, c.env.Getenv("LARDER_CONFIG")} {
		if given == "" {
			continue
		}
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("configuration file: %w", err)
		}
		return given, nil
	}
	candidates := []string{}
	if d := c.env.Getenv("XDG_CONFIG_HOME"); d != "" {
		candidates = append(candidates, filepath.Join(d, "larder", "larder.toml"))
	} else if h := c.env.Getenv("HOME"); h != "" {
		candidates = append(candidates, filepath.Join(h, ".config", "larder", "larder.toml"))
	}
	if c.env.SystemConfig != "" {
		candidates = append(candidates, c.env.SystemConfig)
	}
	for _, p := range candidates {
		_, err := os.Stat(p)
		switch {
		case err == nil:
			return p, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("configuration file: %w", err)
		}
	}
	return "", nil
}

// apply sets the flags of fs that the command line did not set from the
// environment, else from the configuration file. Every key of the file
// must be one of serveKeys, and its value of the flag's type.
func (c *configFlag) apply(fs *flag.FlagSet) error {
	path, err := c.locate()
	if err != nil {
		return err
	}
	c.path = path
	var settings []setting
	if path != "" {
		if settings, err = readConfigFile(path); err != nil {
			return err
		}
	}
	keys := serveKeys()
	for _, s := range settings {
		if keys[s.key] == nil {
			return unknownKey(s)
		}
	}
	for name := range keys {
		env := "LARDER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := c.env.Getenv(env); v != "" {
			settings = append(settings, setting{key: name, value: v, kind: unstable.String, where: "env " + env})
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings { // the environment last: it wins
		f := fs.Lookup(s.key)
		if f == nil || given[s.key] {
			continue
		}
		if err := checkKind(f, s); err != nil {
			return usageError("%s: %s: %v", s.where, s.key, err)
		}
		if c.note != nil {
			c.note(s.where)
		}
		if err := fs.Set(s.key, s.value); err != nil {
			return usageError("%s: bad value %q for %s: %v", s.where, s.value, s.key, setError(f, err))
		}
	}
	return nil
}

// checkKind refuses a file's value of the wrong TOML type for f: a flag
// that is on or off takes true or false, a number a whole number, the
// rest a string (a size or a cost, "1GiB" or 19456, either).
func checkKind(f *flag.Flag, s setting) error {
	if strings.HasPrefix(s.where, "env ") {
		return nil // the flag's own parser judges text
	}
	want := unstable.String
	var v any // nil for a flag parsed by a function (flag.Func)
	if g, ok := f.Value.(flag.Getter); ok {
		v = g.Get()
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		want = unstable.Bool
	} else if v == nil && s.kind == unstable.Integer {
		return nil // "1GiB" or 1073741824
	}
	switch v.(type) {
	case int, int64, uint, uint64:
		want = unstable.Integer
	}
	if s.kind != want {
		return fmt.Errorf("want %s, got %s", kindName(want), kindName(s.kind))
	}
	return nil
}

// setError says what f wants, where the flag package says only "parse
// error".
func setError(f *flag.Flag, err error) error {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	switch g.Get().(type) {
	case time.Duration:
		return errors.New("want a duration such as 30s, 5m or 1h30m")
	case int, int64, uint, uint64:
		return errors.New("want a whole number")
	case bool:
		return errors.New("want true or false")
	}
	return err
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.Bool:
		return "true or false"
	case unstable.Integer:
		return "a whole number"
	case unstable.String:
		return `a string (in "quotes")`
	case unstable.Float:
		return "a fraction"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	}
	return "a date or time"
}

// unknownKey says that s names no setting, and which it may have meant.
func unknownKey(s setting) error {
	msg := fmt.Sprintf("%s: unknown key %q", s.where, s.key)
	bare := strings.TrimPrefix(s.key, strings.ReplaceAll(s.table, ".", "-")+"-")
	near := nearestKey(s.key)
	switch bareNear := nearestKey(bare); {
	case s.table != "" && bareNear != "" && (near == "" || editDistance(bare, bareNear) < editDistance(s.key, near)):
		// A key meant for the top, written after a table's header.
		msg += fmt.Sprintf(" (under [%s]; did you mean %q, before the first [table]?)", s.table, bareNear)
	case near != "":
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return usageError("%s; the keys are the flags of larder serve (larder serve -h), and a key under a table [t] is t-key", msg)
}

// nearestKey returns the setting whose name is closest to key, if close.
func nearestKey(key string) string {
	best, dist := "", 3
	for name := range serveKeys() {
		if d := editDistance(key, name); d < dist || d == dist && name < best {
			best, dist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// serveKeys returns larder serve's flags by name: the keys of the file.
func serveKeys() map[string]*flag.Flag {
	cfg := defaultServeConfig(func(string) string { return "" })
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.define(fs)
	keys := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { keys[f.Name] = f })
	return keys
}

// readConfigFile reads the settings of a configuration file, each with
// where it stands. A syntax error, a value of a kind no setting takes, an
// array of tables and a key given twice are errors that say where.
func readConfigFile(path string) ([]setting, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	var p unstable.Parser
	p.Reset(doc)
	at := func(r unstable.Range) string {
		pos := p.Shape(r).Start
		return fmt.Sprintf("%s:%d:%d", path, pos.Line, pos.Column)
	}
	var (
		settings []setting
		table    []string
		seen     = map[string]string{}
	)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = keyParts(e.Key(), nil)
		case unstable.ArrayTable:
			it := e.Key()
			it.Next()
			return nil, usageError("%s: an array of tables ([[…]]): no setting takes one", at(it.Node().Raw))
		case unstable.KeyValue:
			it := e.Key()
			it.Next()
			first := it.Node()
			key := strings.Join(keyParts(e.Key(), slices.Clone(table)), "-")
			s := setting{key: key, table: strings.Join(table, "."), where: at(first.Raw)}
			if prev, ok := seen[key]; ok {
				return nil, usageError("%s: %s is set twice (first at %s)", s.where, key, prev)
			}
			seen[key] = s.where
			v := e.Value()
			s.kind = v.Kind
			switch v.Kind {
			case unstable.String:
				s.value = string(v.Data)
			case unstable.Bool:
				s.value = string(v.Data)
			case unstable.Integer:
				n, err := strconv.ParseInt(string(v.Data), 0, 64)
				if err != nil {
					return nil, usageError("%s: %s: %v", at(v.Raw), key, err)
				}
				s.value = strconv.FormatInt(n, 10)
			default:
				return nil, usageError("%s: %s: want a string, a whole number or true or false, got %s", at(v.Raw), key, kindName(v.Kind))
			}
			settings = append(settings, s)
		}
	}
	if err := p.Error(); err != nil {
		var perr *unstable.ParserError
		if errors.As(err, &perr) && len(perr.Highlight) > 0 {
			return nil, usageError("%s: %s", at(p.Range(perr.Highlight)), perr.Message)
		}
		return nil, usageError("%s: %v", path, err)
	}
	return settings, nil
}

// keyParts appends the parts of a dotted key to parts.
func keyParts(it unstable.Iterator, parts []string) []string {
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}
