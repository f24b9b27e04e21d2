package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func configCommands() []command {
	return []command{
		{"check", "check the server's configuration, as sshd -t does", runConfigCheck},
		{"show", "print the server's effective configuration, secrets masked", runConfigShow},
	}
}

func runConfig(ctx context.Context, env *Env, args []string) error {
	return dispatch(ctx, env, "larder config", configCommands(), args)
}

// serveConfigFlags parses args as larder serve would, configuration file
// and environment included, and returns the configuration, the flags,
// and where each flag's value came from.
func serveConfigFlags(env *Env, name, help string, args []string, own ...func(*flag.FlagSet)) (*ServeConfig, *flag.FlagSet, map[string]given, error) {
	cfg := defaultServeConfig(env.Getenv)
	fs := flag.NewFlagSet("config "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfg.define(fs)
	defineConfig(fs, env)
	// The command's own flags, which are no settings of serve.
	ownFlags := map[string]bool{"config": true}
	for _, define := range own {
		before := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
		define(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !before[f.Name] {
				ownFlags[f.Name] = true
			}
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: larder config %s [--config FILE] [serve's flags]\n\n%s\n\nFlags:\n", name, help)
		fs.PrintDefaults()
	}
	// Note where each value comes from, by wrapping every flag's Set.
	from := map[string]given{}
	source := "command line"
	fs.VisitAll(func(f *flag.Flag) {
		if !ownFlags[f.Name] {
			f.Value = &sourced{Value: f.Value, set: func(text string) { from[f.Name] = given{source, text} }}
		}
	})
	c := fs.Lookup("config").Value.(*configFlag)
	c.note = func(where string) { source = where }
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(pos) > 0 {
		return nil, nil, nil, usageError("config %s takes no arguments, got %q", name, pos)
	}
	return &cfg, fs, from, nil
}

// given is where a setting's value came from, and its text.
type given struct{ where, text string }

// sourced is a flag.Value that tells set what it is set to.
type sourced struct {
	flag.Value
	set func(text string)
}

func (s *sourced) Set(v string) error {
	if err := s.Value.Set(v); err != nil {
		return err
	}
	s.set(v)
	return nil
}

func (s *sourced) IsBoolFlag() bool {
	b, ok := s.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (s *sourced) Get() any {
	if g, ok := s.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

func runConfigCheck(ctx context.Context, env *Env, args []string) error {
	cfg, fs, from, err := serveConfigFlags(env, "check",
		"Reads the configuration as 'larder serve' would (the file, LARDER_… variables, the\n"+
			"flags given) and checks it without starting anything: unknown keys, values of\n"+
			"the wrong type, and what serve refuses before it opens a file. Exit status 0\n"+
			"if serve would accept it, 2 if not.", args)
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	path := fs.Lookup("config").Value.String()
	if path == "" {
		path = "no configuration file (defaults, environment and flags)"
	}
	fmt.Fprintf(env.Stdout, "configuration OK: %s; %d settings given\n", path, len(from))
	return nil
}

func runConfigShow(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	_, fs, from, err := serveConfigFlags(env, "show",
		"Prints the configuration 'larder serve' would run with, as a configuration file:\n"+
			"every key, its value, and where it came from (default, the file's line, the\n"+
			"environment, the command line). Passwords in URLs are masked.", args,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print a JSON object: file, and settings, a list of key, value (a string,\n"+
				"number or boolean, as in the file), from, known (false: the default its help states), and\n"+
				"reload (true: a SIGHUP applies it to a running server)")
		})
	if err != nil {
		return err
	}
	switch p := fs.Lookup("config").Value.String(); {
	case asJSON:
	case p != "":
		fmt.Fprintf(env.Stdout, "# larder serve's configuration, from %s\n", p)
	default:
		fmt.Fprintf(env.Stdout, "# larder serve's configuration: no file; defaults, environment and flags\n")
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(*sourced); ok {
			names = append(names, f.Name)
		}
	})
	slices.Sort(names)
	// Reloadable first, so that an operator sees what a SIGHUP changes.
	slices.SortStableFunc(names, func(a, b string) int {
		ra, rb := reloadable(a), reloadable(b)
		switch {
		case ra == rb:
			return 0
		case ra:
			return -1
		}
		return 1
	})
	if !asJSON {
		fmt.Fprintf(env.Stdout, "\n# Applied to a running server by SIGHUP (systemctl reload larder):\n")
	}
	header := false
	j := configJSON{File: fs.Lookup("config").Value.String(), Settings: []settingJSON{}}
	for _, n := range names {
		if !reloadable(n) && !header && !asJSON {
			fmt.Fprintf(env.Stdout, "\n# Applied at the next restart only:\n")
			header = true
		}
		f := fs.Lookup(n)
		v, known := showValue(f, from[n].text)
		where := from[n].where
		if where == "" {
			where = "default"
		}
		if asJSON {
			j.Settings = append(j.Settings, settingJSON{Key: n, Value: tomlValue(v), From: where, Known: known, Reload: reloadable(n)})
			continue
		}
		if !known {
			fmt.Fprintf(env.Stdout, "# %s = %s  # %s\n", n, v, where)
			continue
		}
		fmt.Fprintf(env.Stdout, "%s = %s  # %s\n", n, v, where)
	}
	if asJSON {
		return writeJSON(env.Stdout, j)
	}
	return nil
}

// defaultInHelp finds the default a flag's help text states.
var defaultInHelp = regexp.MustCompile(`default:? ([^,;)]+)`)

// showValue returns f's value as TOML, passwords in URLs masked, and
// whether it is known: a flag parsed by a function keeps no value it can
// print, so the text it was set to is shown, or, if it was not set, the
// default its help text states.
func showValue(f *flag.Flag, text string) (string, bool) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return strconv.Quote(f.Value.String()), true
	}
	switch v := g.Get().(type) {
	case nil:
		if text != "" {
			if _, err := strconv.ParseInt(text, 10, 64); err == nil {
				return text, true
			}
			return strconv.Quote(text), true
		}
		if m := defaultInHelp.FindStringSubmatch(f.Usage); m != nil {
			return m[1], false
		}
		return "(see larder serve -h)", false
	case bool:
		return strconv.FormatBool(v), true
	case int, int64, uint, uint64:
		return fmt.Sprint(v), true
	case string:
		if strings.Contains(v, "://") {
			v = redactURL(v)
		}
		return strconv.Quote(v), true
	default:
		return strconv.Quote(f.Value.String()), true
	}
}

// configJSON is what config show --json prints: the file ("" for none)
// and every setting, by key.
type configJSON struct {
	File     string        `json:"file"`
	Settings []settingJSON `json:"settings"`
}

// settingJSON is one setting of config show --json: its value as the
// file would hold it, where it came from ("default", the file's line, the
// environment, the command line), and whether the value is known or the
// default its help states.
type settingJSON struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	From  string `json:"from"`
	Known bool   `json:"known"`
	// Reload: a SIGHUP applies it to a running server.
	Reload bool `json:"reload"`
}

// tomlValue returns the value of v, a value as showValue writes it in
// TOML: a quoted string, a boolean or an integer; other text as it is.
func tomlValue(v string) any {
	if s, err := strconv.Unquote(v); err == nil {
		return s
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}
