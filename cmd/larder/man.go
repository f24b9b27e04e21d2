package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/version"
)

func runMan(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("man", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: larder man [DIR]\n\n"+
			"Writes the manual pages, in roff, made from the program's own commands and\n"+
			"flags: larder(1), and larder-CMD(1) for each command (larder-admin-user-add.1\n"+
			"for 'larder admin user add'), into the folder DIR, which is made if need be;\n"+
			"without DIR, prints larder(1) on stdout.\n"+
			"\n"+
			"  larder man ~/.local/share/man/man1 && man larder-get\n"+
			"  larder man | man -l -\n")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError("man takes at most one DIR")
	}
	specs, err := describeAll(ctx)
	if err != nil {
		return err
	}
	pages := manPages(specs)
	if len(pos) == 0 {
		_, err := env.Stdout.Write(pages["larder.1"])
		return err
	}
	dir := pos[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &localError{what: "man: cannot make the folder", err: err}
	}
	for name, page := range pages {
		if err := writePage(filepath.Join(dir, name), page); err != nil {
			return &localError{what: "man: cannot write a page", err: err}
		}
	}
	fmt.Fprintf(env.Stderr, "larder: wrote %d manual pages in %s\n", len(pages), dir)
	return nil
}

// writePage replaces the page name with page: written beside it and
// renamed over it, so that a symbolic link or a device in its place is
// never written through; such a thing is refused, and left as it was.
func writePage(name string, page []byte) error {
	if fi, err := os.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		kind := "a symbolic link"
		if fi.Mode()&fs.ModeSymlink == 0 {
			kind = client.KindOf(fi.Mode())
		}
		return fmt.Errorf("%s is %s, not a page: neither followed nor replaced (remove it, or name another DIR)", name, kind)
	}
	dir, base := filepath.Split(name)
	f, err := os.CreateTemp(cmp.Or(dir, "."), "."+base+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(page)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// manPages returns the pages, by file name: larder.1 and one per command
// that is not a group.
func manPages(specs []*cmdSpec) map[string][]byte {
	pages := map[string][]byte{"larder.1": mainPage(specs)}
	walkSpecs(specs, func(s *cmdSpec) {
		pages[manName(s)+".1"] = commandPage(s)
	})
	return pages
}

// manName returns the name of s's page: larder-admin-user-add.
func manName(s *cmdSpec) string { return "larder-" + strings.Join(s.path, "-") }

// manHeader writes the page's title lines.
func manHeader(b *bytes.Buffer, title, summary string) {
	fmt.Fprintf(b, ".TH %s 1 \"\" \"larder %s\" \"larder manual\"\n", roffArg(strings.ToUpper(title)), roffArg(version.Read().Version))
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", roffText(title), roffText(summary))
}

// mainPage returns larder(1): the synopsis and the list of commands.
func mainPage(specs []*cmdSpec) []byte {
	var b bytes.Buffer
	manHeader(&b, "larder", "a concurrent, authenticated file server and its client")
	b.WriteString(".SH SYNOPSIS\n.B larder\n.I command\n[\\fIflags\\fR] [\\fIargs\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString("larder serves files over two protocols: the course protocol and LNP/1, its own,\n" +
		"over TLS. The same program is the client. Each command has its page,\n" +
		".BR larder\\-\\fIcommand\\fR (1),\n" +
		"and its help: larder help \\fIcommand\\fR.\n")
	b.WriteString(".SH COMMANDS\n")
	walkSpecs(specs, func(s *cmdSpec) {
		fmt.Fprintf(&b, ".TP\n.B larder %s\n%s; see\n.BR %s (1).\n", roffText(s.name()), roffText(s.summary), roffText(manName(s)))
	})
	b.WriteString(".SH FILES\n.TP\n.I ~/.config/larder\n" +
		"The client's salts, pinned certificates, profile, remotes and device credentials\n" +
		"(LARDER_CONFIG_DIR names another folder).\n")
	b.WriteString(".SH SEE ALSO\nThe README and docs/ of larder's source.\n")
	return b.Bytes()
}

// commandPage returns the page of one command.
func commandPage(s *cmdSpec) []byte {
	var b bytes.Buffer
	manHeader(&b, manName(s), s.summary)
	b.WriteString(".SH SYNOPSIS\n")
	for i, syn := range s.synopsis {
		if i > 0 {
			b.WriteString(".br\n")
		}
		fmt.Fprintf(&b, ".B larder\n%s\n", roffText(strings.TrimPrefix(syn, "larder ")))
	}
	if len(s.synopsis) == 0 {
		fmt.Fprintf(&b, ".B larder %s\n", roffText(s.name()))
	}
	if s.help != "" {
		b.WriteString(".SH DESCRIPTION\n")
		roffParagraphs(&b, s.help)
	}
	if len(s.subs) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, sub := range s.subs {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s; see\n.BR %s (1).\n", roffText(sub.path[len(sub.path)-1]), roffText(sub.summary), roffText(manName(sub)))
		}
	}
	if len(s.flags) > 0 {
		b.WriteString(".SH OPTIONS\n")
		for _, f := range s.flags {
			name, usage := flag.UnquoteUsage(f)
			head := `\fB` + roffText(flagSpelling(f)) + `\fR`
			if name != "" {
				head += ` \fI` + roffText(name) + `\fR`
			}
			fmt.Fprintf(&b, ".TP\n%s\n", head)
			text := strings.Join(strings.Fields(usage), " ")
			if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" {
				text += fmt.Sprintf(" (default: %s)", def)
			}
			fmt.Fprintf(&b, "%s\n", roffText(text))
		}
	}
	fmt.Fprintf(&b, ".SH SEE ALSO\n.BR larder (1)\n")
	return b.Bytes()
}

// roffParagraphs writes text, paragraphs split by blank lines, as roff:
// a paragraph whose lines are indented (examples, lists) is kept as it
// is laid out, the others are filled.
func roffParagraphs(b *bytes.Buffer, text string) {
	for _, para := range strings.Split(text, "\n\n") {
		lines := strings.Split(strings.Trim(para, "\n"), "\n")
		indented := false
		for _, l := range lines {
			if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
				indented = true
			}
		}
		b.WriteString(".PP\n")
		if indented {
			b.WriteString(".nf\n")
		}
		for _, l := range lines {
			if !indented {
				l = strings.TrimSpace(l)
			}
			fmt.Fprintf(b, "%s\n", roffLine(roffText(strings.TrimRight(l, " \t"))))
		}
		if indented {
			b.WriteString(".fi\n")
		}
	}
}

// roffText escapes s for the text of a roff line: the backslash, the
// quotes, and the hyphen-minus, which roff would print as a hyphen (and
// break lines at).
func roffText(s string) string {
	s = strings.NewReplacer(`\`, `\e`, `-`, `\-`, "'", `\(aq`, `"`, `\(dq`).Replace(s)
	// Other than ASCII as groff's escapes, which need no preconv(1).
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.String()
}

// roffLine makes s safe as a whole line: one that starts with '.' or an
// apostrophe would be a request, and an empty one a break.
func roffLine(s string) string {
	if s == "" {
		return `\&`
	}
	if s[0] == '.' || s[0] == '\'' {
		return `\&` + s
	}
	return s
}

// roffArg escapes s for a quoted request argument.
func roffArg(s string) string {
	return strings.ReplaceAll(roffText(s), " ", `\ `)
}
