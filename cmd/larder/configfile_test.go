package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a configuration file in a new folder and returns
// its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "larder.toml")
	must(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// configEnv is an environment with vars (name, value pairs).
func configEnv(t *testing.T, vars ...string) (*Env, *strings.Builder) {
	t.Helper()
	m := map[string]string{"HOME": t.TempDir()}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	var out strings.Builder
	return &Env{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return m[k] }}, &out
}

// TestConfigFileErrors: a file that names no setting, gives one a value
// of the wrong type, breaks TOML's syntax, or sets a key twice is refused
// with the file, line and column, and what to do.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		wants      []string
	}{
		{"unknown key", "data = \"/tmp/x\"\nlisen = \"127.0.0.1:1\"\n",
			[]string{":2:1: unknown key \"lisen\"", `did you mean "listen"?`, "flags of larder serve"}},
		{"unknown key in a table", "[native]\nlisen = \"x\"\n",
			[]string{":2:1: unknown key \"native-lisen\"", `did you mean "native-listen"?`}},
		{"a top key after a table", "[log]\nlevel = \"info\"\nregistraton = \"closed\"\n",
			[]string{":3:1: unknown key \"log-registraton\"", `under [log]; did you mean "registration", before the first [table]?`}},
		{"string for a number", "max-conns = \"many\"\n", []string{":1:1: max-conns: want a whole number, got a string"}},
		{"number for a string", "[native]\nlisten = 23457\n", []string{":2:1: native-listen: want a string", "got a whole number"}},
		{"string for a switch", "pprof = \"yes\"\n", []string{":1:1: pprof: want true or false, got a string"}},
		{"a fraction", "max-conns = 1.5\n", []string{":1:13: max-conns: want a string, a whole number or true or false, got a fraction"}},
		{"an array", "listen = [\"a\"]\n", []string{":1:", "listen: want a string, a whole number or true or false, got an array"}},
		{"bad value", "request-timeout = \"ten seconds\"\n", []string{":1:1: bad value \"ten seconds\" for request-timeout: want a duration such as 30s"}},
		{"bad size", "[quota]\nbytes = \"lots\"\n", []string{":2:1: bad value \"lots\" for quota-bytes"}},
		{"syntax", "listen = \"127.0.0.1:1\nfiles = 3\n", []string{":1:"}},
		{"twice", "listen = \"a\"\nlisten = \"b\"\n", []string{":2:1: listen is set twice (first at ", ":1:1)"}},
		{"twice by a table", "native-listen = \"a\"\n[native]\nlisten = \"b\"\n", []string{":3:1: native-listen is set twice"}},
		{"array of tables", "[[native]]\nlisten = \"a\"\n", []string{":1:3: an array of tables"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.file)
			env, _ := configEnv(t)
			err := Run(t.Context(), env, []string{"config", "check", "--config", p})
			if err == nil || ExitCode(err) != exitUsage {
				t.Fatalf("config check: %v (exit %d), want a usage error", err, ExitCode(err))
			}
			for _, w := range append([]string{p}, tc.wants...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("config check: %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigFileOrder: the file sets what the defaults do not, the
// environment overrides the file, the command line both; config show
// says which came from where.
func TestConfigFileOrder(t *testing.T) {
	p := writeConfig(t, "max-conns = 7\nregistration = \"closed\"\n[native]\nlisten = \"127.0.0.1:1\"\n[throttle]\npair = \"3/10s\"\n")
	env, out := configEnv(t, "LARDER_CONFIG", p, "LARDER_REGISTRATION", "open", "LARDER_MAX_CONNS", "8")
	must(t, Run(t.Context(), env, []string{"config", "show", "--max-conns", "9"}))
	for _, want := range []string{
		"max-conns = 9  # command line\n",
		"registration = \"open\"  # env LARDER_REGISTRATION\n",
		"native-listen = \"127.0.0.1:1\"  # " + p + ":4:1\n",
		"throttle-pair = \"3/10s\"  # " + p + ":6:1\n",
		"listen = \"127.0.0.1:23456\"  # default\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config show printed\n%s\nwant a line %q", out, want)
		}
	}
}

// TestConfigFileLocations: --config and LARDER_CONFIG must exist; else
// the user's file, else the system's, if they exist; else none.
func TestConfigFileLocations(t *testing.T) {
	env, _ := configEnv(t, "LARDER_CONFIG", "/nonexistent/larder.toml")
	if err := Run(t.Context(), env, []string{"config", "check"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/larder.toml") {
		t.Errorf("LARDER_CONFIG naming no file: %v, want an error naming it", err)
	}

	home := t.TempDir()
	user := filepath.Join(home, ".config", "larder", "larder.toml")
	must(t, os.MkdirAll(filepath.Dir(user), 0o700))
	must(t, os.WriteFile(user, []byte("max-conns = 11\n"), 0o600))
	system := writeConfig(t, "max-conns = 12\n")
	var out strings.Builder
	env = &Env{Stdout: &out, Stderr: &out, SystemConfig: system, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	must(t, Run(t.Context(), env, []string{"config", "show"}))
	if !strings.Contains(out.String(), "max-conns = 11  # "+user) {
		t.Errorf("with a user's file and a system's: %s\nwant the user's", out.String())
	}
	must(t, os.Remove(user))
	out.Reset()
	must(t, Run(t.Context(), env, []string{"config", "show"}))
	if !strings.Contains(out.String(), "max-conns = 12  # "+system) {
		t.Errorf("with the system's file only: %s\nwant it", out.String())
	}
}

// TestConfigFileExample: the example shipped in dist/ is valid.
func TestConfigFileExample(t *testing.T) {
	env, out := configEnv(t)
	if err := Run(t.Context(), env, []string{"config", "check", "--config", filepath.Join("..", "..", "dist", "larder.toml")}); err != nil {
		t.Fatalf("config check of dist/larder.toml: %v", err)
	}
	if !strings.Contains(out.String(), "configuration OK") {
		t.Errorf("config check printed %q", out)
	}
}

// TestConfigFileServeAndAdminAgree: the server and an admin command read
// one file, so the admin command finds the server's accounts with no
// flags of its own.
func TestConfigFileServeAndAdminAgree(t *testing.T) {
	cfg := testServeConfig(t)
	p := writeConfig(t, "data = \""+cfg.DataDir+"\"\n[hash]\nmemory = 64\npasses = 1\nlanes = 1\n")
	// A server on the file's data folder.
	env, out := configEnv(t, "LARDER_CONFIG", p)
	srv := startLarder(t, func(c *ServeConfig) { c.DataDir = cfg.DataDir })
	register(t, srv, "alice", [32]byte{1})
	must(t, Run(t.Context(), env, []string{"admin", "user", "list"}))
	if !strings.Contains(out.String(), "alice") {
		t.Errorf("admin user list with the server's file: %q, want alice", out)
	}
}
