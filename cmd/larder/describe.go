package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// A cmdSpec describes one command of larder for the shell completion and
// the man pages, which are made from the commands themselves: the tables
// of commands (commands(), and those of the groups such as admin) and the
// flag set each command parses. Each command is run with -h, which
// parses nothing else and does nothing; its helpRequest hands over the
// flag set or, for a group, its commands.
type cmdSpec struct {
	path    []string // "admin", "user", "add"
	summary string
	// synopsis is the lines of its usage after "Usage: larder ", help the
	// text after them, without the list of flags.
	synopsis []string
	help     string
	flags    []*flag.Flag // sorted by name
	subs     []*cmdSpec   // a group's commands
}

// name returns the command's words: "admin user add".
func (c *cmdSpec) name() string { return strings.Join(c.path, " ") }

// remotePaths reports whether the command's arguments are paths on the
// server, which NAME:PATH may address.
func (c *cmdSpec) remotePaths() bool {
	if len(c.path) != 1 {
		return false
	}
	switch c.path[0] {
	case "get", "put", "ls", "stat", "mkdir", "mv", "rm":
		return true
	}
	return false
}

// describe returns the specs of cmds, found under the words path.
func describe(ctx context.Context, path []string, cmds []command) ([]*cmdSpec, error) {
	var specs []*cmdSpec
	for _, c := range cmds {
		var out bytes.Buffer
		// A bare environment, so that the defaults shown are the
		// program's, not those of whoever generated the page.
		env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		err := c.run(ctx, env, []string{"-h"})
		var h *helpRequest
		if !errors.As(err, &h) {
			return nil, fmt.Errorf("describing %s: -h gave %v, not the help", strings.Join(append(slices.Clone(path), c.name), " "), err)
		}
		s := &cmdSpec{path: append(slices.Clone(path), c.name), summary: c.summary}
		if h.cmds != nil {
			if s.subs, err = describe(ctx, s.path, h.cmds); err != nil {
				return nil, err
			}
		}
		text := out.String()
		if h.fs != nil {
			h.fs.VisitAll(func(f *flag.Flag) { s.flags = append(s.flags, f) })
			var defaults bytes.Buffer
			h.fs.SetOutput(&defaults)
			h.fs.PrintDefaults()
			text = strings.TrimSuffix(text, defaults.String())
		}
		s.synopsis, s.help = splitUsage(text)
		if h.cmds != nil {
			s.help = "" // the list of commands, which the pages make their own
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// splitUsage cuts the text that a command's -h printed into the lines of
// its synopsis and its help: "Usage: larder SYN\n       larder SYN2\n\n
// HELP\n\nFlags:\n".
func splitUsage(text string) (synopsis []string, help string) {
	text = strings.TrimRight(text, "\n")
	text = strings.TrimSuffix(text, "Flags:")
	head, body, _ := strings.Cut(text, "\n\n")
	for i, line := range strings.Split(head, "\n") {
		line = strings.TrimSpace(line)
		if i == 0 {
			line = strings.TrimPrefix(line, "Usage:")
		}
		line = strings.TrimPrefix(strings.TrimSpace(line), "larder ")
		if line != "" {
			synopsis = append(synopsis, line)
		}
	}
	return synopsis, strings.TrimSpace(body)
}

// describeAll returns the specs of every command of larder.
func describeAll(ctx context.Context) ([]*cmdSpec, error) {
	return describe(ctx, nil, commands())
}

// walkSpecs calls fn for each spec of specs and of their groups, parents
// first.
func walkSpecs(specs []*cmdSpec, fn func(*cmdSpec)) {
	for _, s := range specs {
		fn(s)
		walkSpecs(s.subs, fn)
	}
}

// flagSpelling returns how a flag is written: -x for one letter, --name
// for the others (the flag package takes both spellings of each).
func flagSpelling(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// takesValue reports whether f takes a value (is not a boolean).
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// flagSummary returns the first line of f's usage, without the
// backquotes that name its value.
func flagSummary(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	first, _, _ := strings.Cut(usage, "\n")
	return strings.TrimSpace(first)
}

// writeLines writes lines to w, each ended by a newline.
func writeLines(w io.Writer, lines ...string) error {
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// commandTable returns the README's command reference, a Markdown table
// of every command, what it does and its flags, made from specs so that
// a test can hold the README to the program.
func commandTable(specs []*cmdSpec) string {
	var b strings.Builder
	b.WriteString("| command | what | flags |\n|---|---|---|\n")
	walkSpecs(specs, func(s *cmdSpec) {
		var flags []string
		for _, f := range s.flags {
			flags = append(flags, "`"+flagSpelling(f)+"`")
		}
		fmt.Fprintf(&b, "| `larder %s` | %s | %s |\n", s.name(), strings.ReplaceAll(s.summary, "|", `\|`), strings.Join(flags, " "))
	})
	return b.String()
}
