package main

// Regression tests of serve's paths: a configuration that would serve a
// secret, or write over one, is refused before anything is created or
// served, with a message that names both paths.

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/tlsconf"
)

// TestServedFolderKeptApartFromSecrets: the served folder may not contain,
// nor lie inside, the server's state; outputs may not be written into the
// served folder or over the state. Each case is refused by Open, naming the
// paths, and the allowed ones start.
func TestServedFolderKeptApartFromSecrets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *ServeConfig) (wants []string)
	}{
		{"files is DATA/tls", func(t *testing.T, c *ServeConfig) []string {
			c.FilesDir = filepath.Join(c.DataDir, "tls")
			return []string{c.FilesDir, c.DataDir, "inside the data folder"}
		}},
		{"files is DATA/spaces", func(t *testing.T, c *ServeConfig) []string {
			c.FilesDir = filepath.Join(c.DataDir, "spaces")
			must(t, os.MkdirAll(c.FilesDir, 0o700))
			return []string{c.FilesDir, c.DataDir, "inside the data folder"}
		}},
		{"files is DATA/audit", func(t *testing.T, c *ServeConfig) []string {
			c.FilesDir = filepath.Join(c.DataDir, "audit")
			return []string{c.FilesDir, "inside the data folder"}
		}},
		{"files is DATA", func(t *testing.T, c *ServeConfig) []string {
			c.FilesDir = c.DataDir
			return []string{c.DataDir, "data folder"}
		}},
		{"files holds DATA", func(t *testing.T, c *ServeConfig) []string {
			c.DataDir = filepath.Join(c.FilesDir, "state")
			return []string{c.DataDir, c.FilesDir, "data folder"}
		}},
		{"files is a link to DATA/tls", func(t *testing.T, c *ServeConfig) []string {
			must(t, os.MkdirAll(filepath.Join(c.DataDir, "tls"), 0o700))
			link := filepath.Join(t.TempDir(), "www")
			must(t, os.Symlink(filepath.Join(c.DataDir, "tls"), link))
			c.FilesDir = link
			return []string{link, c.DataDir}
		}},
		{"files is a link to DATA/tls, not made yet", func(t *testing.T, c *ServeConfig) []string {
			link := filepath.Join(t.TempDir(), "www")
			must(t, os.Symlink(filepath.Join(c.DataDir, "tls"), link))
			c.FilesDir = link
			return []string{link, c.DataDir, "inside the data folder"}
		}},
		{"--tls-key in files", func(t *testing.T, c *ServeConfig) []string {
			other := t.TempDir()
			makeIdentity(t, c.FilesDir, other)
			c.TLSKey, c.TLSCert = filepath.Join(c.FilesDir, tlsconf.KeyFile), filepath.Join(other, tlsconf.CertFile)
			return []string{c.TLSKey, c.FilesDir, "--tls-key"}
		}},
		{"--tls-cert in files", func(t *testing.T, c *ServeConfig) []string {
			other := t.TempDir()
			makeIdentity(t, other, filepath.Join(c.FilesDir, "sub"))
			c.TLSKey, c.TLSCert = filepath.Join(other, tlsconf.KeyFile), filepath.Join(c.FilesDir, "sub", tlsconf.CertFile)
			return []string{c.TLSCert, c.FilesDir, "--tls-cert"}
		}},
		{"files holds the key's folder", func(t *testing.T, c *ServeConfig) []string {
			etc := t.TempDir()
			makeIdentity(t, filepath.Join(etc, "tls"), filepath.Join(etc, "tls"))
			c.TLSKey, c.TLSCert = filepath.Join(etc, "tls", tlsconf.KeyFile), filepath.Join(etc, "tls", tlsconf.CertFile)
			c.FilesDir = etc
			return []string{c.TLSKey, etc, "inside the served folder"}
		}},
		{"--pepper-file in files", func(t *testing.T, c *ServeConfig) []string {
			c.PepperFile = filepath.Join(c.FilesDir, "pepper")
			return []string{c.PepperFile, c.FilesDir, "--pepper-file"}
		}},
		{"jsonl sink in files", func(t *testing.T, c *ServeConfig) []string {
			c.Audit.Sink = "jsonl:" + filepath.Join(c.FilesDir, "audit.jsonl")
			return []string{filepath.Join(c.FilesDir, "audit.jsonl"), c.FilesDir, "--audit-sink"}
		}},
		{"sqlite sink in files", func(t *testing.T, c *ServeConfig) []string {
			c.Audit.Sink = "sqlite:" + filepath.Join(c.FilesDir, "audit.db")
			return []string{filepath.Join(c.FilesDir, "audit.db"), c.FilesDir, "--audit-sink"}
		}},
		{"jsonl sink over the pepper", func(t *testing.T, c *ServeConfig) []string {
			c.Audit.Sink = "jsonl:" + filepath.Join(c.DataDir, "pepper")
			return []string{filepath.Join(c.DataDir, "pepper"), "--audit-sink", "pepper file"}
		}},
		{"sqlite sink in DATA/spaces", func(t *testing.T, c *ServeConfig) []string {
			c.Audit.Sink = "sqlite:" + filepath.Join(c.DataDir, "spaces", "x.db")
			return []string{filepath.Join(c.DataDir, "spaces"), "--audit-sink"}
		}},
		{"--cpuprofile in files", func(t *testing.T, c *ServeConfig) []string {
			c.CPUProfile = filepath.Join(c.FilesDir, "cpu.pprof")
			return []string{c.CPUProfile, c.FilesDir, "--cpuprofile"}
		}},
		{"--cpuprofile over the database", func(t *testing.T, c *ServeConfig) []string {
			c.CPUProfile = filepath.Join(c.DataDir, "larder.db")
			return []string{c.CPUProfile, "--cpuprofile", "database"}
		}},
		{"files is DATA/deleted", func(t *testing.T, c *ServeConfig) []string {
			c.FilesDir = filepath.Join(c.DataDir, "deleted")
			return []string{c.FilesDir, "inside the data folder"}
		}},
		{"jsonl sink in DATA/deleted", func(t *testing.T, c *ServeConfig) []string {
			c.Audit.Sink = "jsonl:" + filepath.Join(c.DataDir, "deleted", "a.jsonl")
			return []string{filepath.Join(c.DataDir, "deleted"), "--audit-sink"}
		}},
		{"--cpuprofile over the TLS key", func(t *testing.T, c *ServeConfig) []string {
			c.CPUProfile = filepath.Join(c.DataDir, "tls", "key.pem")
			return []string{filepath.Join(c.DataDir, "tls"), "--cpuprofile"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testServeConfig(t)
			wants := tc.setup(t, &cfg)
			wantErrorSaying(t, "Open", openMain(t, cfg), wants...)
			if cfg.CPUProfile != "" {
				// runServe starts the profile before Open: it must check first.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _, err := runLarderContext(ctx, t, "", append([]string{"serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0",
					"--files", cfg.FilesDir, "--cpuprofile", cfg.CPUProfile}, accountFlags(cfg.AccountConfig)...)...)
				wantErrorSaying(t, "serve --cpuprofile", err, "--cpuprofile")
				if _, err := os.Stat(cfg.CPUProfile); err == nil {
					t.Errorf("the refused profile %s was written", cfg.CPUProfile)
				}
			}
		})
	}
}

// makeIdentity makes a self-signed TLS identity, its key in keyDir and its
// certificate in certDir.
func makeIdentity(t *testing.T, keyDir, certDir string) {
	t.Helper()
	dir := t.TempDir()
	_, err := tlsconf.LoadOrCreate(dir)
	must(t, err)
	for _, f := range []struct{ name, to string }{{tlsconf.KeyFile, keyDir}, {tlsconf.CertFile, certDir}} {
		must(t, os.MkdirAll(f.to, 0o700))
		must(t, os.Rename(filepath.Join(dir, f.name), filepath.Join(f.to, f.name)))
	}
}

// TestServedFolderAllowed: the default DATA/files, a folder below it, and
// folders beside the data folder start.
func TestServedFolderAllowed(t *testing.T) {
	for name, set := range map[string]func(c *ServeConfig){
		"default":              func(c *ServeConfig) { c.FilesDir = "" },
		"below DATA/files":     func(c *ServeConfig) { c.FilesDir = filepath.Join(c.DataDir, "files", "www") },
		"beside":               func(c *ServeConfig) {},
		"jsonl in DATA":        func(c *ServeConfig) { c.Audit.Sink = "jsonl:" + filepath.Join(c.DataDir, "audit.jsonl") },
		"cpuprofile elsewhere": func(c *ServeConfig) { c.CPUProfile = filepath.Join(filepath.Dir(c.DataDir), "cpu.pprof") },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testServeConfig(t)
			set(&cfg)
			if cfg.FilesDir != "" {
				must(t, os.MkdirAll(cfg.FilesDir, 0o750))
			}
			if err := openMain(t, cfg); err != nil {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

// The refusal says what to do.
func TestServedFolderRefusalSaysWhatToDo(t *testing.T) {
	cfg := testServeConfig(t)
	cfg.FilesDir = filepath.Join(cfg.DataDir, "tls")
	err := openMain(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "--files") {
		t.Errorf("got %v, want it to name --files", err)
	}
}

// TestServeFilesFolderMade: the served folder DATA/files is made at the
// first start whether the configuration names it (as dist/larder.toml
// does) or not; another folder that does not exist is refused, saying so.
func TestServeFilesFolderMade(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files func(data string) string
		want  string // "" to start
	}{
		{"default", func(string) string { return "" }, ""},
		{"named", func(data string) string { return filepath.Join(data, "files") }, ""},
		{"named with a slash", func(data string) string { return filepath.Join(data, "files") + "/" }, ""},
		{"missing", func(data string) string { return filepath.Join(filepath.Dir(data), "nonexistent") }, "does not exist: create it, or leave files unset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testServeConfig(t)
			cfg.DataDir = filepath.Join(t.TempDir(), "data") // not made yet: a first start
			cfg.FilesDir = tc.files(cfg.DataDir)
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(t.Context())
			if err == nil {
				defer m.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Open: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
