package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// completionShell sets up a folder with a "larder" on PATH that is this
// test binary running the real main, a configuration folder holding the
// remotes work and home, and the script of shell; it returns the
// environment to run the shell in, the script's path and a folder to
// run in.
func completionShell(t *testing.T, shell string) (environ []string, script, cwd string) {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("%s is not installed (apt-get install %s): its completion script is not exercised", shell, shell)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	must(t, os.Mkdir(bin, 0o755))
	must(t, os.WriteFile(filepath.Join(bin, "larder"), []byte("#!/bin/sh\nLARDER_TEST_RUN_MAIN=1 exec "+os.Args[0]+" \"$@\"\n"), 0o755))
	conf := filepath.Join(dir, "config")
	env, _, _ := testEnv(t, "127.0.0.1:1", "LARDER_CONFIG_DIR", conf)
	runOK(t, env, "remote", "add", "work", "example.com:23457")
	runOK(t, env, "remote", "add", "home", "example.org:23457")
	out, _ := runOK(t, env, "completion", shell)
	script = filepath.Join(dir, "larder."+shell)
	must(t, os.WriteFile(script, []byte(out), 0o644))
	cwd = filepath.Join(dir, "cwd")
	must(t, os.Mkdir(cwd, 0o755))
	must(t, os.WriteFile(filepath.Join(cwd, "xfile.txt"), nil, 0o644))
	environ = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LARDER_CONFIG_DIR="+conf, "HOME="+dir)
	return environ, script, cwd
}

// runShell runs the shell's code and returns its output lines.
func runShell(t *testing.T, environ []string, cwd string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = environ, cwd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// completionCases are command lines, the word under the cursor last, and
// words their completion must and must not offer.
var completionCases = []struct {
	words       []string
	want, never []string
}{
	{[]string{"ad"}, []string{"admin"}, []string{"audit"}},
	{[]string{""}, []string{"serve", "remote", "completion", "man", "get"}, nil},
	{[]string{"admin", "user", ""}, []string{"list", "add", "devices"}, []string{"serve"}},
	{[]string{"admin", "user", "add", "--"}, []string{"--data"}, []string{"--native"}},
	{[]string{"get", "--"}, []string{"--json", "--remote", "--native", "--no-resume"}, []string{"--listen", "-o"}},
	{[]string{"get", "-"}, []string{"-o", "-f", "--json"}, nil},
	{[]string{"remote", "list", "--"}, []string{"--json", "--names"}, nil},
	{[]string{"ls", "wo"}, []string{"work:"}, []string{"home:"}},
	{[]string{"put", "xf"}, []string{"xfile.txt"}, nil},
	{[]string{"get", "-o", "xf"}, []string{"xfile.txt"}, []string{"work:"}},
	{[]string{"get", "--server", "h", "--remote", "w", "--"}, []string{"--json"}, nil},
	{[]string{"get", "--server", "h", "wo"}, []string{"work:"}, nil},
	{[]string{"completion", "--"}, nil, []string{"--json"}},
}

func checkCompletion(t *testing.T, shell string, words, got, want, never []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: larder %s<TAB> offered %q, want %q among them", shell, strings.Join(words, " "), got, w)
		}
	}
	for _, w := range never {
		if slices.Contains(got, w) {
			t.Errorf("%s: larder %s<TAB> offered %q, which should not hold %q", shell, strings.Join(words, " "), got, w)
		}
	}
}

// TestCompletionBash checks the bash script's syntax, then sources it and
// calls its function as bash does at a TAB, with COMP_WORDS and
// COMP_CWORD set, and reads COMPREPLY.
func TestCompletionBash(t *testing.T) {
	environ, script, cwd := completionShell(t, "bash")
	runShell(t, environ, cwd, "bash", "-n", script)
	for _, c := range completionCases {
		words := append([]string{"larder"}, c.words...)
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		code := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_larder\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		got := runShell(t, environ, cwd, "bash", "-c", code)
		checkCompletion(t, "bash", c.words, got, c.want, c.never)
	}
	// bash's own word splitting, at the ':' of "work:": no remote name
	// again after it.
	code := "source " + script + "\nCOMP_WORDS=(larder ls work : '')\nCOMP_CWORD=4\n_larder\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	if got := runShell(t, environ, cwd, "bash", "-c", code); len(got) != 0 {
		t.Errorf("bash: larder ls work:<TAB> offered %q, want nothing", got)
	}
}

// TestCompletionFish checks the fish script's syntax, then asks fish for
// the completions of each command line (complete -C), as at a TAB.
func TestCompletionFish(t *testing.T) {
	environ, script, cwd := completionShell(t, "fish")
	runShell(t, environ, cwd, "fish", "--no-config", "-n", script)
	for _, c := range completionCases {
		line := "larder " + strings.Join(c.words, " ")
		out := runShell(t, environ, cwd, "fish", "--no-config", "-c", "source "+script+"; complete -C '"+line+"' | string replace -r '\\t.*' ''; true")
		checkCompletion(t, "fish", c.words, out, c.want, c.never)
	}
}

// TestCompletionZsh checks the zsh script's syntax, and the functions it
// shares with bash (the command path and the word lists) run in zsh. The
// completion widget itself needs an interactive zsh (zpty), which this
// test does not drive.
func TestCompletionZsh(t *testing.T) {
	environ, script, cwd := completionShell(t, "zsh")
	runShell(t, environ, cwd, "zsh", "-n", script)
	code := "autoload -Uz compinit && compinit -u -d " + filepath.Join(cwd, ".zcompdump") + "\nsource " + script + "\n" +
		"print -- path=$(_larder_path admin user add --data x)\n" +
		"print -- path2=$(_larder_path get --server h)\n" +
		"_larder_described 'admin user'; print -- described=${#reply}\n" +
		"_larder_remote get && print -- remote=yes\n" +
		"print -- flags $(_larder_flags 'remote list')\n"
	got := strings.Join(runShell(t, environ, cwd, "zsh", "-f", "-c", code), " ")
	for _, want := range []string{"path=admin", "user", "add", "path2=get", "described=" + strconv.Itoa(len(userCommands())), "remote=yes", "--json", "--names"} {
		if !strings.Contains(got, want) {
			t.Errorf("zsh: got %q, want %q in it", got, want)
		}
	}
}

// TestCompletionUnknownShell: a shell larder has no script for is a usage
// error that names the three.
func TestCompletionUnknownShell(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	wantExit(t, env, exitUsage, []string{"bash, zsh or fish"}, "completion", "powershell")
	wantExit(t, env, exitUsage, []string{"bash, zsh or fish"}, "completion")
}

// TestManPages: every command has its page, larder(1) lists them all,
// every flag of each appears in its page, and groff reads them with
// every warning on and has none to give.
func TestManPages(t *testing.T) {
	specs, err := describeAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env, _, _ := testEnv(t, "127.0.0.1:1")
	runOK(t, env, "man", dir)
	main, err := os.ReadFile(filepath.Join(dir, "larder.1"))
	must(t, err)
	n := 0
	walkSpecs(specs, func(s *cmdSpec) {
		n++
		page, err := os.ReadFile(filepath.Join(dir, manName(s)+".1"))
		if err != nil {
			t.Errorf("no page for %s: %v", s.name(), err)
			return
		}
		if !strings.Contains(string(main), roffText(manName(s))) {
			t.Errorf("larder.1 does not list %s", s.name())
		}
		for _, f := range s.flags {
			if !strings.Contains(string(page), `\fB`+roffText(flagSpelling(f))+`\fR`) {
				t.Errorf("%s.1 lacks the flag %s", manName(s), flagSpelling(f))
			}
		}
	})
	if n < len(commands()) {
		t.Errorf("described %d commands, fewer than the %d of commands()", n, len(commands()))
	}
	if out, _ := runOK(t, env, "man"); out != string(main) {
		t.Errorf("larder man printed another larder.1 than larder man DIR wrote")
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("groff is not installed: the pages are not checked for roff warnings")
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, p := range pages {
		out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", p).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff -man -ww %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
}

// TestManPagesLinkNotFollowed: a symbolic link where a page goes (planted
// in a shared folder, or left by hand) is neither written through nor
// replaced; a page there already is replaced whole, and no temporary
// file is left.
func TestManPagesLinkNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "keep")
	must(t, os.WriteFile(target, []byte("keep"), 0o600))
	must(t, os.Symlink(target, filepath.Join(dir, "larder-get.1")))
	must(t, os.WriteFile(filepath.Join(dir, "larder.1"), []byte("old"), 0o644))
	env, _, _ := testEnv(t, "127.0.0.1:1")
	err := run(env, "man", dir)
	if err == nil || !strings.Contains(Message(err), "symbolic link") {
		t.Errorf("larder man into a folder with a link where a page goes: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("larder man wrote through the link: the target holds %q", b)
	}
	must(t, os.Remove(filepath.Join(dir, "larder-get.1")))
	runOK(t, env, "man", dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "larder.1")); !bytes.HasPrefix(b, []byte(".")) {
		t.Errorf("larder.1 was not replaced: %q", b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("larder man left %v", tmp)
	}
}
